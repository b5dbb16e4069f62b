"""``ssp replay VIEWS LOG``: replay a log and print a summary, optionally writing files.

:func:`execute` and :func:`finish` are the replay with the CLI's trimmings
(progress bar, ``--updates`` stream, report, Markdown, summary); commands that
replay too (verify, profile, bench) reuse them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from circuit.circuit import Circuit
from circuit.errors import CircuitError, ReplayError
from circuit.replay import (
    ProgressSink,
    Replayer,
    ReplayInterrupted,
    ReplayOptions,
    RunFailed,
    dump_state,
)
from circuit.report import append_markdown, write_atomic, write_report
from circuit.report.run import Run
from circuit.updates import ViewUpdate
from ssp_cli.terminal import render_terminal

from . import console
from .options import OUTPUT_PANEL, LogArg, Markdown, Quiet, Report, ViewsArg, with_replay_options

EXAMPLES = """Examples:

ssp replay fixtures/forum/views.sql fixtures/forum/log.jsonl
ssp replay views.sql log.jsonl --mode single --report run.json
ssp replay views.sql log.jsonl --mode deferred --frame-ms 16
ssp replay views.sql log.jsonl --param user_id=5 --format flat
ssp replay views.sql log.jsonl --initial seed.jsonl --dump state.json
ssp replay views.sql log.jsonl --updates updates.jsonl --quiet
ssp replay views.sql log.jsonl --on-error skip --rejects bad.jsonl
ssp replay views.sql log.jsonl --markdown "$GITHUB_STEP_SUMMARY"
"""

Updates = Annotated[
    Path | None,
    typer.Option(
        "--updates",
        dir_okay=False,
        help="Write every view update here as JSONL, as it is emitted.",
        rich_help_panel=OUTPUT_PANEL,
    ),
]
Dump = Annotated[
    Path | None,
    typer.Option(
        "--dump",
        dir_okay=False,
        help="Write the final state of every view here as canonical JSON "
        "(not written when the replay fails or is interrupted).",
        rich_help_panel=OUTPUT_PANEL,
    ),
]


@dataclass(slots=True)
class Outcome:
    """A finished replay: its record, the circuit it left, and how it ended."""

    run: Run
    circuit: Circuit
    failure: CircuitError | None = None
    interrupted: bool = False

    def exit(self) -> None:
        """Exit 1 after a failure (printing its error), 130 after Ctrl-C; else return."""
        console.exit_after(self.run, self.failure, self.interrupted)


def execute(
    views: Path,
    log: str,
    options: ReplayOptions,
    *,
    command: str,
    updates: Path | None = None,
    quiet: bool = False,
    on_update: Callable[[ViewUpdate], None] | None = None,
) -> Outcome:
    """Replay with a progress bar (on a terminal, unless quiet) and the ``--updates`` stream.

    A failed or interrupted replay is an :class:`Outcome` too, so its report
    can still be written; :meth:`Outcome.exit` then reports it.
    """
    if updates is not None:
        refuse_overwriting_inputs({"--updates": updates}, views, log)
    with ExitStack() as stack:
        sink = on_update
        if updates is not None:
            sink = _updates_writer(stack.enter_context(updates.open("wb")), on_update)
        progress = stack.enter_context(progress_bar(enabled=not quiet))
        replayer = Replayer(
            views, log, options, on_update=sink, progress=progress, command=command, argv=sys.argv
        )
        try:
            run = replayer.run()
        except RunFailed as err:
            return Outcome(err.run, replayer.circuit, failure=err.cause)
        except ReplayInterrupted as err:
            return Outcome(err.run, replayer.circuit, interrupted=True)
        return Outcome(run, replayer.circuit)


def finish(run: Run, *, report: Path | None, markdown: Path | None, quiet: bool) -> None:
    """Write the report and the Markdown summary the options name, then print the summary."""
    if report is not None:
        write_report(run, report)
    if markdown is not None:
        append_markdown(run, markdown)
    if not quiet and not (run.stop_reason == "error" and run.totals.entries == 0):
        render_terminal(run, console.stdout())  # an empty summary would bury the error


def refuse_overwriting_inputs(outputs: dict[str, Path | None], *inputs: str | Path) -> None:
    """Refuse, before starting, an output that is one of the inputs (it would destroy it)
    or that cannot be written (a missing or read-only directory), so a long replay is
    not wasted on a file it could never write."""
    sources = {os.path.realpath(p) for p in inputs if str(p) != "-"}
    for flag, path in outputs.items():
        if path is None:
            continue
        if os.path.realpath(path) in sources:
            raise ReplayError(f"{path} is an input file", location=flag, hint="name another file")
        check_writable(path, flag)


def check_writable(path: Path, flag: str) -> None:
    """Raise :class:`ReplayError` naming ``flag`` when ``path`` cannot be written."""
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise ReplayError(f"{path} is a directory", location=flag, hint="name a file")
    if not parent.is_dir():
        raise ReplayError(
            f"cannot write {path}: directory {parent} does not exist",
            location=flag,
            hint=f"create it first (mkdir -p {parent})",
        )
    if target.exists() and not os.access(target, os.W_OK):
        raise ReplayError(f"cannot write {path}: permission denied", location=flag)
    if not target.exists() and not os.access(parent, os.W_OK | os.X_OK):
        raise ReplayError(f"cannot write {path}: directory {parent} is not writable", location=flag)


def _updates_writer(
    out: BinaryIO, also: Callable[[ViewUpdate], None] | None
) -> Callable[[ViewUpdate], None]:
    """Each update as one JSONL line, written as it comes (the OS buffers, nothing piles up)."""
    write = out.write

    def sink(update: ViewUpdate) -> None:
        write(update.to_bytes() + b"\n")
        if also is not None:
            also(update)

    return sink


@contextmanager
def progress_bar(*, enabled: bool) -> Iterator[ProgressSink | None]:
    """A transient bar by bytes of the log read, on stderr, only when stderr is a terminal."""
    stderr = console.stderr()
    if not enabled or not stderr.is_terminal:
        yield None
        return
    columns = (
        TextColumn("replaying"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=stderr, transient=True) as progress:
        task = progress.add_task("replay", total=None)

        def update(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        yield update


@with_replay_options
def replay_command(
    views: ViewsArg,
    log: LogArg,
    options: ReplayOptions,
    updates: Updates = None,
    dump: Dump = None,
    report: Report = None,
    markdown: Markdown = None,
    quiet: Quiet = False,
) -> None:
    """Replay a mutation log through the views and print a summary.

    The summary shows throughput, latency per ingest call, BatchStats totals,
    anomalies and rejects, and the costliest views. Only the files named by
    options are written; the report is written even when the replay fails
    (exit 1) or is interrupted (exit 130).
    """
    with console.handle_errors():
        refuse_overwriting_inputs(
            {"--dump": dump, "--report": report, "--markdown": markdown}, views, log
        )
        outcome = execute(views, log, options, command="replay", updates=updates, quiet=quiet)
        finish(outcome.run, report=report, markdown=markdown, quiet=quiet)
        if dump is not None and outcome.failure is None and not outcome.interrupted:
            write_atomic(dump, dump_state(outcome.circuit))
        outcome.exit()


def register(app: typer.Typer) -> None:
    """Add ``ssp replay`` to the app."""
    app.command("replay", epilog=EXAMPLES)(replay_command)
