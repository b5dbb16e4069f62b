"""The circuit's flamegraph as folded stacks: ``view;operator;operator NANOSECONDS``.

This is a flamegraph of the dataflow, not of Python frames. Each stack is a
view, then the path of the operator inside it (``thread_detail;nested:comments;
join``), weighted by the operator's self time in nanoseconds from the run's
``operators`` list. A view's own frame carries the rest of its ``time_ns``:
member accounting and event emission, which no operator owns. The ingest time
no view accounts for (applying mutations to the tables, coalescing, finding the
impacted views) is one more root frame, :data:`OUTSIDE_VIEWS`.

Folded stacks are the source of truth, as in py-spy: the speedscope renderer
(:mod:`circuit.report.speedscope`) draws from the same :class:`Stack` list, and
:func:`parse_folded` reads a file back (tests, or tools that merge profiles).

A view's ``time_ns`` also counts its registration (building its state from the
tables), which is not an ingest call, so :data:`OUTSIDE_VIEWS` is a lower bound
and is left out when nothing remains.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import escape_control
from .run import Run

OUTSIDE_VIEWS = "[tables, coalescing, dispatch]"
"""Root frame of the ingest time spent outside every view."""


@dataclass(frozen=True, slots=True)
class Stack:
    """One folded stack: frames from the root down, and its weight in nanoseconds."""

    frames: tuple[str, ...]
    weight: int


def frame_name(name: str) -> str:
    """A name made safe as one frame: no ``;`` (the frame separator), no control characters.

    A folded line ends at its last space, so spaces inside a frame are fine.
    """
    return escape_control(name).replace(";", ",")


def circuit_stacks(run: Run) -> list[Stack]:
    """The run's dataflow flamegraph: views, their operators, the time outside views.

    Stacks come in the report's order (views in registration order, operators
    as the engine lists them); zero-weight stacks are dropped, as a sampler
    would never have seen them.
    """
    stacks: list[Stack] = []
    by_view: dict[str, list[dict[str, Any]]] = {}
    for op in run.operators:
        by_view.setdefault(str(op["view"]), []).append(op)
    views_ns = 0
    for view, metrics in run.views.items():
        total = int(metrics.get("time_ns", 0))
        views_ns += total
        root = frame_name(view)
        ops = by_view.pop(view, [])
        own = total - sum(int(op["self_ns"]) for op in ops)
        stacks.append(Stack((root,), max(0, own)))
        stacks += [Stack((root, *operator_frames(view, op["path"])), op["self_ns"]) for op in ops]
    for view, ops in by_view.items():  # operators of a view the report has no metrics for
        root = frame_name(view)
        stacks += [Stack((root, *operator_frames(view, op["path"])), op["self_ns"]) for op in ops]
    outside = round(run.totals.ingest_s * 1e9) - views_ns
    stacks.append(Stack((OUTSIDE_VIEWS,), max(0, outside)))
    return [s for s in stacks if s.weight > 0]


def operator_frames(view: str, path: str) -> tuple[str, ...]:
    """The frames below the view of an operator path (``VIEW;nested:x;join``).

    The engine joins the path with ``;`` and starts it with the view's name,
    which may itself hold ``;``: the prefix is cut by length, not by splitting.
    """
    rest = path[len(view) + 1 :] if path.startswith(view + ";") else path
    return tuple(frame_name(part) for part in rest.split(";"))


def render_folded(stacks: Iterable[Stack]) -> str:
    """One ``frame;frame;frame WEIGHT`` line per stack, each ending with a newline."""
    return "".join(f"{';'.join(s.frames)} {s.weight}\n" for s in stacks)


class FoldedFormatError(ValueError):
    """A line that is not ``frames WEIGHT``; the message names the line."""


def parse_folded(text: str) -> list[Stack]:
    """Read folded stacks (blank lines skipped): the inverse of :func:`render_folded`."""
    stacks = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        frames, sep, weight = line.rpartition(" ")
        if not sep or not weight.isdigit():
            raise FoldedFormatError(f"line {number}: expected 'frame;frame WEIGHT', got {line!r}")
        # py-spy writes samples with no Python frame (an idle moment) as " N": an empty stack
        stacks.append(Stack(tuple(frames.split(";")) if frames else (), int(weight)))
    return stacks


def total_weight(stacks: Sequence[Stack]) -> int:
    return sum(s.weight for s in stacks)
