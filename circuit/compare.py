"""Compare two reports metric by metric, and gate on throughput and p99 latency.

``ssp compare BASE.json NEW.json`` is a regression gate for CI: every numeric
metric both reports hold is listed with its change, and the comparison fails
when throughput (``totals.entries_per_s``) fell, or p99 latency per ingest
call (``totals.latency_us.p99``) rose, by more than ``max_regression``
percent. The default of 25% leaves room for shared CI runners, whose speed
swings by 10-50% from one run to the next.

Two reports that did not measure the same work cannot be compared: a run that
stopped early, or runs over a different number of entries, raise
:class:`ReportMismatch`. Differences that leave the comparison meaningful but
worth knowing (other options, other paths, views in only one report) become
:attr:`Comparison.notes`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import CircuitError
from .report.run import Run

THROUGHPUT = "totals.entries_per_s"
P99 = "totals.latency_us.p99"
DEFAULT_MAX_REGRESSION = 25.0

HIGHER_IS_BETTER = frozenset({THROUGHPUT})
"""Metrics where a larger value is an improvement; time metrics are the opposite."""

SECTIONS = ("totals", "initial", "batch_stats", "errors", "views")


class ReportMismatch(CircuitError):
    """Two reports that did not measure the same work (the location names the report)."""


@dataclass(frozen=True, slots=True)
class Change:
    """One metric in both reports. ``percent`` is None when the base is 0."""

    name: str
    base: float
    new: float
    percent: float | None
    better: str | None
    """``higher`` or ``lower`` for metrics with a direction, None for counts."""

    @property
    def verdict(self) -> str:
        """``better``, ``worse`` or ``""`` (no direction, or no change)."""
        if self.better is None or self.new == self.base:
            return ""
        improved = (self.new > self.base) == (self.better == "higher")
        return "better" if improved else "worse"


@dataclass(frozen=True, slots=True)
class Gate:
    """One gated metric: whether its change stays within the allowed regression."""

    change: Change
    limit_percent: float

    @property
    def regression_percent(self) -> float:
        """How much worse NEW is, in percent of BASE (negative when it improved)."""
        percent = self.change.percent or 0.0
        return -percent if self.change.better == "higher" else percent

    @property
    def passed(self) -> bool:
        return self.regression_percent <= self.limit_percent


@dataclass(slots=True)
class Comparison:
    """Every shared metric's change, the two gates, and notes on what differs."""

    changes: list[Change]
    gates: list[Gate]
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(gate.passed for gate in self.gates)


def compare_runs(
    base: Run,
    new: Run,
    *,
    max_regression: float = DEFAULT_MAX_REGRESSION,
    base_name: str = "BASE",
    new_name: str = "NEW",
) -> Comparison:
    """Compare ``new`` against ``base``; raises :class:`ReportMismatch` when they cannot be.

    ``base_name`` and ``new_name`` (the files' paths) locate errors and notes.
    """
    for run, name in ((base, base_name), (new, new_name)):
        _check_comparable(run, name)
    if base.totals.entries != new.totals.entries:
        raise ReportMismatch(
            f"replayed {new.totals.entries:,} entries but {base_name} replayed "
            f"{base.totals.entries:,}: the reports measure different work",
            location=new_name,
            hint="compare reports of the same views and log",
        )
    base_metrics, new_metrics = dict(flatten(base)), dict(flatten(new))
    changes = [
        _change(name, value, new_metrics[name])
        for name, value in base_metrics.items()
        if name in new_metrics
    ]
    by_name = {c.name: c for c in changes}
    gates = [Gate(by_name[name], max_regression) for name in (THROUGHPUT, P99)]
    return Comparison(changes, gates, _notes(base, new, base_name, new_name))


def _check_comparable(run: Run, name: str) -> None:
    if not run.completed:
        raise ReportMismatch(
            f"the run stopped early ({run.stop_reason}): its numbers cover part of the log",
            location=name,
            hint="compare reports of runs that completed",
        )
    if run.totals.ingest_calls == 0:
        raise ReportMismatch("the run made no ingest calls: nothing to compare", location=name)


def flatten(run: Run) -> Iterator[tuple[str, float]]:
    """Every numeric metric of a report as ``(dotted.name, value)``, in report order.

    Operators are keyed by their path (``operators[VIEW;join].self_ns``);
    booleans, strings and lists (rejected line numbers) are not metrics.
    """
    doc = run.to_json()
    for section in SECTIONS:
        if doc.get(section) is not None:
            yield from _leaves(section, doc[section])
    for op in doc["operators"]:
        yield from _leaves(f"operators[{op['path']}]", op)


def _leaves(prefix: str, value: Any) -> Iterator[tuple[str, float]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(f"{prefix}.{key}", item)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield prefix, value


def _direction(name: str) -> str | None:
    if name in HIGHER_IS_BETTER:
        return "higher"
    last = name.rsplit(".", 1)[-1]
    if ".latency_us." in name or last.endswith("_s") or "_ns" in last:
        return "lower"
    return None


def _change(name: str, base: float, new: float) -> Change:
    percent = None if base == 0 else (new - base) / abs(base) * 100
    return Change(name, base, new, percent, _direction(name))


def _notes(base: Run, new: Run, base_name: str, new_name: str) -> list[str]:
    """What differs between the runs without making the comparison meaningless."""
    notes = []
    options = [
        f"{key} {base.run.options.get(key)!r} -> {new.run.options.get(key)!r}"
        for key in sorted(set(base.run.options) | set(new.run.options))
        if base.run.options.get(key) != new.run.options.get(key)
    ]
    if options:
        notes.append("the runs used different options: " + ", ".join(options))
    for what in ("views_path", "log_path"):
        a, b = getattr(base.run, what), getattr(new.run, what)
        if a != b:
            notes.append(f"{what}: {a} in {base_name}, {b} in {new_name}")
    only_base = sorted(set(base.views) - set(new.views))
    only_new = sorted(set(new.views) - set(base.views))
    if only_base:
        notes.append(f"views only in {base_name}: {', '.join(only_base)}")
    if only_new:
        notes.append(f"views only in {new_name}: {', '.join(only_new)}")
    return notes
