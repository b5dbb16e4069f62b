"""``ssp bench VIEWS LOG --matrix KEY=V1,V2 ... --repeat N``: compare replay options."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich import box
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from circuit.bench import (
    Bench,
    Combination,
    MatrixError,
    expand,
    parse_matrix,
    render_markdown,
    run_bench,
    table_rows,
)
from circuit.errors import escape_control
from circuit.replay import ReplayInterrupted, ReplayOptions, RunFailed, replay
from circuit.report import write_report
from circuit.report.run import Run

from . import console
from .options import LogArg, Markdown, Quiet, Report, ViewsArg, with_replay_options
from .replay import refuse_overwriting_inputs

EXIT_USAGE = 2

EXAMPLES = """Examples:

ssp bench views.sql log.jsonl --matrix mode=single,batch,deferred --repeat 5
ssp bench views.sql log.jsonl --matrix batch_size=10,100,1000 --report b.json
ssp bench views.sql log.jsonl --matrix coalesce=true,false --repeat 5
ssp bench views.sql log.jsonl --mode deferred --matrix flush-every=10,100
"""

MatrixOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--matrix",
        metavar="KEY=V1,V2",
        help="Replay option KEY (a field of ReplayOptions: mode, batch_size, coalesce, ...) "
        "and the values to try. Repeatable: every combination runs.",
    ),
]
Repeat = Annotated[
    int,
    typer.Option("--repeat", min=1, help="Runs per combination (medians over them)."),
]


@with_replay_options
def bench_command(
    views: ViewsArg,
    log: LogArg,
    options: ReplayOptions,
    matrix: MatrixOpt = None,
    repeat: Repeat = 3,
    report: Report = None,
    markdown: Markdown = None,
    quiet: Quiet = False,
) -> None:
    """Replay the log under every combination of the --matrix values and compare them.

    Runs are interleaved (each repetition runs every combination once, every
    other repetition in reverse order), so drift in the machine's speed and
    what one run leaves to the next hit all combinations alike. The table shows
    the median throughput and its spread, latency percentiles per ingest
    call, and ratios against the first combination; a verdict line judges
    each combination against it. The report is the first combination's median
    run with a `bench` section holding every run.
    """
    with console.handle_errors():
        if log == "-":
            _usage("the log is replayed several times: give a file, not -", location="LOG")
        refuse_overwriting_inputs({"--report": report, "--markdown": markdown}, views, log)
        try:
            axes = parse_matrix(matrix or [])
            combinations = expand(options, axes)
        except MatrixError as err:
            _usage(err.message, location=err.location, hint=err.hint)

        def runner(opts: ReplayOptions) -> Run:
            return replay(views, log, opts, command="bench", argv=sys.argv)

        with _progress(len(combinations) * repeat, enabled=not quiet) as on_run:
            try:
                bench = run_bench(combinations, repeat, runner, axes=axes, on_run=on_run)
            except RunFailed as err:
                if report is not None:
                    write_report(err.run, report)
                console.fail(err.cause)
            except ReplayInterrupted as err:
                if report is not None:
                    write_report(err.run, report)
                stopped = err.run.stopped_at
                console.interrupted(f"{log}:{stopped.line if stopped is not None else 0}")
        if report is not None:
            write_report(bench_run(bench), report)
        if markdown is not None:
            with markdown.open("a", encoding="utf-8") as out:
                out.write(render_markdown(bench))
        if not quiet:
            _print(bench)


def bench_run(bench: Bench) -> Run:
    """The report: the baseline's median run, with the ``bench`` section added."""
    run = bench.baseline.median_run()
    run.extra["bench"] = bench.to_json()
    return run


def _usage(message: str, *, location: str | None = None, hint: str | None = None) -> None:
    console.print_error(message, location=location, hint=hint)
    raise typer.Exit(EXIT_USAGE)


@contextmanager
def _progress(
    total: int, *, enabled: bool
) -> Iterator[Callable[[int, int, Combination], None] | None]:
    """A bar of runs done, on stderr, only on a terminal."""
    stderr = console.stderr()
    if not enabled or not stderr.is_terminal:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=stderr, transient=True) as progress:
        task = progress.add_task("bench", total=total)

        def started(done: int, repetition: int, combination: Combination) -> None:
            label = escape_control(combination.label)
            progress.update(task, completed=done, description=f"run {repetition + 1}: {label}")

        yield started


def _print(bench: Bench) -> None:
    out = console.stdout()
    table = Table(
        title=f"{len(bench.results)} combinations x {bench.repeat} runs (interleaved)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    headers = ("combination", "entries/s", "±", "ratio", "p50 µs", "p99 µs", "p99 ratio")
    table.add_column(headers[0], overflow="fold")
    for header in headers[1:]:
        table.add_column(header, justify="right", no_wrap=True)
    for row in table_rows(bench):
        table.add_row(*(Text(escape_control(c)) for c in row))
    out.print(table)
    out.print("± is half the range of throughput over the runs, in % of the median.")
    for result in bench.results[1:]:
        out.print(Text(escape_control(bench.verdict(result))), soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``ssp bench`` to the app."""
    app.command("bench", epilog=EXAMPLES)(bench_command)
