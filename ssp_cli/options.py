"""The replay options of SPEC section 5, declared once for every command that replays.

Each option is an ``Annotated`` typer type (``Mode``, ``BatchSize``, ...).
:func:`with_replay_options` adds all of them to a command and hands the
command one :class:`~circuit.replay.ReplayOptions` instead::

    @app.command(epilog=EXAMPLES)
    @with_replay_options
    def verify(views: ViewsArg, log: LogArg, options: ReplayOptions, every: int = 1) -> None:
        ...

Output options shared by several commands (``--report``, ``--markdown``,
``--quiet``) and the ``VIEWS``/``LOG`` arguments live here as well.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import typer

from circuit.errors import CircuitError
from circuit.executors import PIPELINE_DEPTH
from circuit.mutations import OnError
from circuit.replay import Executor, Format, Mode, ReplayOptions

from . import console

REPLAY_PANEL = "Replay options"
OUTPUT_PANEL = "Output"

ViewsArg = Annotated[
    Path,
    typer.Argument(
        metavar="VIEWS",
        help="Views file: CREATE VIEW statements (*.sql).",
        exists=True,
        dir_okay=False,
    ),
]


def _existing_log(value: str) -> str:
    """A log file that exists, or ``-`` (typer's own ``allow_dash`` check misses ``-``)."""
    if value != "-" and not Path(value).is_file():
        raise typer.BadParameter(f"file {value!r} does not exist.")
    return value


LogArg = Annotated[
    str,
    typer.Argument(
        metavar="LOG",
        help="Mutation log (JSONL); - reads standard input.",
        callback=_existing_log,
    ),
]

ModeOpt = Annotated[
    Mode,
    typer.Option(
        "--mode",
        case_sensitive=False,
        help="One ingest call per entry (single), per --batch-size entries (batch), "
        "or per flush (deferred).",
        rich_help_panel=REPLAY_PANEL,
    ),
]
BatchSize = Annotated[
    int,
    typer.Option(
        "--batch-size", min=1, help="Data entries per batch.", rich_help_panel=REPLAY_PANEL
    ),
]
FlushEvery = Annotated[
    int | None,
    typer.Option(
        "--flush-every",
        min=1,
        help="Deferred: flush every N entries.",
        rich_help_panel=REPLAY_PANEL,
    ),
]


def _positive(value: float | None) -> float | None:
    if value is not None and not value > 0:
        raise typer.BadParameter(f"must be positive, got {value}")
    return value


FrameMs = Annotated[
    float | None,
    typer.Option(
        "--frame-ms",
        callback=_positive,
        help="Deferred: flush when an entry's ts crosses a frame boundary of MS milliseconds.",
        rich_help_panel=REPLAY_PANEL,
    ),
]
PendingLimit = Annotated[
    int,
    typer.Option(
        "--pending-limit",
        min=1,
        help="Deferred: flush when this many entries are queued.",
        rich_help_panel=REPLAY_PANEL,
    ),
]
Coalesce = Annotated[
    bool,
    typer.Option(
        "--coalesce/--no-coalesce",
        help="Net out the entries of one record within an ingest call.",
        rich_help_panel=REPLAY_PANEL,
    ),
]
ExecutorOpt = Annotated[
    Executor,
    typer.Option(
        "--executor",
        case_sensitive=False,
        help="How impacted views are propagated: in this process, or spread over "
        "--workers processes (calls impacting fewer than --parallel-threshold views stay here).",
        rich_help_panel=REPLAY_PANEL,
    ),
]
Workers = Annotated[
    int | None,
    typer.Option(
        "--workers", min=1, help="Processes executor: worker count.", rich_help_panel=REPLAY_PANEL
    ),
]
ParallelThreshold = Annotated[
    int,
    typer.Option(
        "--parallel-threshold",
        min=0,
        help="Fewest impacted views worth sending to workers.",
        rich_help_panel=REPLAY_PANEL,
    ),
]
PipelineDepth = Annotated[
    int,
    typer.Option(
        "--pipeline-depth",
        min=0,
        help="Processes executor, batch and deferred modes: calls the workers may still be "
        "running while the next ones are applied (more throughput, later updates); 0 waits "
        "for each call.",
        rich_help_panel=REPLAY_PANEL,
    ),
]


def _check_params(values: list[str] | None) -> list[str] | None:
    for value in values or ():
        name, sep, _ = value.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"expected NAME=VALUE, got {value!r}")
    return values


Params = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        metavar="NAME=VALUE",
        callback=_check_params,
        help="Bind a view parameter ($name or :name); VALUE is parsed as JSON, else a string. "
        "Repeatable.",
        rich_help_panel=REPLAY_PANEL,
    ),
]
Initial = Annotated[
    Path | None,
    typer.Option(
        "--initial",
        exists=True,
        dir_okay=False,
        help="JSONL records loaded before the views are registered (timed apart).",
        rich_help_panel=REPLAY_PANEL,
    ),
]
FormatOpt = Annotated[
    Format | None,
    typer.Option(
        "--format",
        case_sensitive=False,
        help="Output format of every view, overriding the views' own.",
        rich_help_panel=REPLAY_PANEL,
    ),
]
OnErrorOpt = Annotated[
    OnError,
    typer.Option(
        "--on-error",
        case_sensitive=False,
        help="At a bad log line: stop (fail) or copy it to --rejects and go on (skip).",
        rich_help_panel=REPLAY_PANEL,
    ),
]
Rejects = Annotated[
    Path | None,
    typer.Option(
        "--rejects",
        dir_okay=False,
        help="File that receives rejected log lines verbatim.",
        rich_help_panel=REPLAY_PANEL,
    ),
]
Strict = Annotated[
    bool,
    typer.Option("--strict", help="Make every anomaly an error.", rich_help_panel=REPLAY_PANEL),
]
MaxEntries = Annotated[
    int | None,
    typer.Option(
        "--max-entries",
        min=0,
        help="Stop after N log entries.",
        rich_help_panel=REPLAY_PANEL,
    ),
]
Dialect = Annotated[
    str | None,
    typer.Option(
        "--dialect",
        help="sqlglot dialect of the views file (default: sqlglot's own).",
        rich_help_panel=REPLAY_PANEL,
    ),
]

Report = Annotated[
    Path | None,
    typer.Option(
        "--report",
        dir_okay=False,
        help="Write the JSON report here (also when the run fails or is interrupted).",
        rich_help_panel=OUTPUT_PANEL,
    ),
]
Markdown = Annotated[
    Path | None,
    typer.Option(
        "--markdown",
        dir_okay=False,
        help="Append a Markdown summary here (e.g. $GITHUB_STEP_SUMMARY).",
        rich_help_panel=OUTPUT_PANEL,
    ),
]
Quiet = Annotated[
    bool,
    typer.Option(
        "--quiet", "-q", help="No progress bar and no summary.", rich_help_panel=OUTPUT_PANEL
    ),
]


def parse_params(values: list[str] | None) -> dict[str, Any]:
    """``NAME=VALUE`` pairs to a dict; VALUE is JSON if it parses, else the string itself."""
    params: dict[str, Any] = {}
    for value in values or ():
        name, _, raw = value.partition("=")
        try:
            params[name] = orjson.loads(raw)
        except orjson.JSONDecodeError:
            params[name] = raw
    return params


_REPLAY_PARAMETERS: list[tuple[str, Any, Any]] = [
    ("mode", ModeOpt, "batch"),
    ("batch_size", BatchSize, 100),
    ("flush_every", FlushEvery, None),
    ("frame_ms", FrameMs, None),
    ("pending_limit", PendingLimit, 10_000),
    ("coalesce", Coalesce, True),
    ("executor", ExecutorOpt, "sequential"),
    ("workers", Workers, None),
    ("parallel_threshold", ParallelThreshold, 4),
    ("pipeline_depth", PipelineDepth, PIPELINE_DEPTH),
    ("param", Params, None),
    ("initial", Initial, None),
    ("format", FormatOpt, None),
    ("on_error", OnErrorOpt, "fail"),
    ("rejects", Rejects, None),
    ("strict", Strict, False),
    ("max_entries", MaxEntries, None),
    ("dialect", Dialect, None),
]
REPLAY_OPTION_NAMES = tuple(name for name, _, _ in _REPLAY_PARAMETERS)


def build_options(values: dict[str, Any]) -> ReplayOptions:
    """A :class:`ReplayOptions` from the parsed flags (names as in the command signature)."""
    return ReplayOptions(
        mode=values["mode"],
        batch_size=values["batch_size"],
        flush_every=values["flush_every"],
        frame_ms=values["frame_ms"],
        pending_limit=values["pending_limit"],
        coalesce=values["coalesce"],
        executor=values["executor"],
        workers=values["workers"],
        parallel_threshold=values["parallel_threshold"],
        pipeline_depth=values["pipeline_depth"],
        params=parse_params(values["param"]),
        initial=_path(values["initial"]),
        format=values["format"],
        on_error=values["on_error"],
        rejects=_path(values["rejects"]),
        strict=values["strict"],
        max_entries=values["max_entries"],
        dialect=values["dialect"],
    )


def _path(value: Path | None) -> str | None:
    return None if value is None else str(value)


R = TypeVar("R")


def with_replay_options(command: Callable[..., R]) -> Callable[..., R]:
    """Give a typer command every replay option; it receives ``options: ReplayOptions``.

    The wrapper's signature is the command's (without ``options``) plus the
    replay options, which is what typer reads to build the flags. Invalid
    combinations print the usual ``error: ...`` line and exit 1.
    """
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != "options"]
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)
        for name, kind, default in _REPLAY_PARAMETERS
    ]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> R:
        values = {name: kwargs.pop(name) for name in REPLAY_OPTION_NAMES}
        try:
            options = build_options(values)
        except CircuitError as err:
            console.fail(err)
        return command(*args, options=options, **kwargs)

    annotations = {p.name: p.annotation for p in own + added}
    if signature.return_annotation is not inspect.Signature.empty:
        annotations["return"] = signature.return_annotation
    setattr(wrapper, "__signature__", signature.replace(parameters=own + added))  # noqa: B010
    wrapper.__annotations__ = annotations
    return wrapper
