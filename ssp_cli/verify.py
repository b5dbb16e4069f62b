"""``ssp verify VIEWS LOG``: replay and check every view against an independent oracle."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.markup import escape
from rich.table import Table

from circuit.replay import ReplayOptions
from circuit.report import append_markdown, write_report
from circuit.verify import VerificationResult, verify

from . import console
from .options import OUTPUT_PANEL, LogArg, Markdown, Quiet, Report, ViewsArg, with_replay_options
from .replay import progress_bar, refuse_overwriting_inputs

EXAMPLES = """Examples:

ssp verify fixtures/forum/views.sql fixtures/forum/log.jsonl
ssp verify views.sql log.jsonl --mode single --every 10
ssp verify views.sql log.jsonl --oracle sqlglot --mode deferred --flush-every 50
ssp verify views.sql log.jsonl --repro repro/ --report verify.json
ssp verify views.sql log.jsonl --oracle postgres --dsn postgresql://db/app
"""

OracleOpt = Annotated[
    Literal["sqlite", "sqlglot", "postgres"],
    typer.Option(
        "--oracle",
        case_sensitive=False,
        help="Evaluate views from scratch with SQLite (exact) or sqlglot's Python executor "
        "(skips what it cannot run), or run them in PostgreSQL over the recorded tables at the "
        "end of the log (needs --dsn; skips where the dialects differ).",
    ),
]
Dsn = Annotated[
    str | None,
    typer.Option("--dsn", help="The recorded PostgreSQL database, for --oracle postgres."),
]
Every = Annotated[
    int, typer.Option("--every", min=1, help="Check the views after every N ingest calls.")
]
Repro = Annotated[
    Path | None,
    typer.Option(
        "--repro",
        file_okay=False,
        help="On a mismatch, write a minimal reproduction here (views.sql, log.jsonl, repro.json).",
        rich_help_panel=OUTPUT_PANEL,
    ),
]


@with_replay_options
def verify_command(
    views: ViewsArg,
    log: LogArg,
    options: ReplayOptions,
    oracle: OracleOpt = "sqlite",
    dsn: Dsn = None,
    every: Every = 1,
    repro: Repro = None,
    report: Report = None,
    markdown: Markdown = None,
    quiet: Quiet = False,
) -> None:
    """Replay the log and compare every view's rows with an oracle's, from scratch.

    The views are checked after each registration, after every N ingest calls
    and at the end. The first mismatch stops the replay and exits 1 with a
    readable diff (and a reproduction with --repro). Views the oracle cannot
    evaluate are listed as skipped, never as passed.
    """
    with console.handle_errors():
        refuse_overwriting_inputs({"--report": report, "--markdown": markdown}, views, log)
        with progress_bar(enabled=not quiet) as progress:
            result = verify(
                views,
                log,
                options,
                oracle=oracle,
                dsn=dsn,
                every=every,
                repro_dir=repro,
                argv=sys.argv,
                progress=progress,
            )
        if report is not None:
            write_report(result.run, report)
        if markdown is not None:
            append_markdown(result.run, markdown)
        _print(result, quiet=quiet)
        if result.failure is not None:
            console.fail(result.failure)
        if result.interrupted:
            stopped = result.run.stopped_at
            console.interrupted(f"{log}:{stopped.line if stopped is not None else 0}")
        mismatch = result.mismatch
        if mismatch is not None:
            console.print_error(
                f"view {mismatch.view}: rows differ from the {oracle} oracle after ingest call "
                f"seq {mismatch.seq}",
                location=f"{log}:{mismatch.line}",
                hint=f"reproduction in {mismatch.repro}" if mismatch.repro else "use --repro DIR",
            )
            raise typer.Exit(console.EXIT_FAILURE)


def _print(result: VerificationResult, *, quiet: bool) -> None:
    """The per-view table (unless quiet) and, on a mismatch, the diff (always)."""
    out = console.stdout()
    if result.mismatch is not None:
        out.print(f"view {result.mismatch.view} differs at seq {result.mismatch.seq}:")
        out.print(result.mismatch.diff.render(), markup=False, highlight=False)
        out.print(f"SQL: {result.mismatch.sql.strip()}", markup=False)
    if quiet:
        return
    table = Table(title=f"verification against {result.oracle} (every {result.every} calls)")
    table.add_column("view")
    table.add_column("passed", justify="right")
    table.add_column("skipped", justify="right")
    table.add_column("skip reason")
    for name, checks in result.views.items():
        reason = escape("; ".join(checks.skip_reasons))
        table.add_row(escape(name), str(checks.passed), str(checks.skipped), reason)
    out.print(table)
    status = "ok" if result.ok else "FAILED"
    out.print(f"{status}: {result.passed} checks passed, {result.skipped} skipped")


def register(app: typer.Typer) -> None:
    """Add ``ssp verify`` to the app."""
    app.command("verify", epilog=EXAMPLES)(verify_command)
