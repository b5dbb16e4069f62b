"""``ssp record postgres|surrealdb``: record a live database's changes as an ssp log (SPEC 9).

The work is in :mod:`circuit.record`; this module parses options, draws the
progress line on a terminal and turns Ctrl-C into a clean stop: the recorder
finishes the batch it is writing, so the log ends at a transaction boundary.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console

from circuit.record.writer import RecordStats

from . import console

POSTGRES_EXAMPLES = """Examples:

ssp record postgres --dsn postgresql://app@127.0.0.1/app --tables users,posts -o log.jsonl

ssp record postgres --dsn "host=127.0.0.1 dbname=app" --tables users,posts -o log.jsonl --initial initial.jsonl --follow

ssp record postgres --dsn postgresql://app@127.0.0.1/app --tables users --slot ssp_users -o log.jsonl --until-idle 5
"""

SURREAL_EXAMPLES = """Examples:

ssp record surrealdb --url surrealkv://data.db --ns app --db app --tables person,post -o log.jsonl

ssp record surrealdb --url surrealkv://data.db --ns app --db app --tables person -o log.jsonl --until-idle 5

ssp record surrealdb --url ws://127.0.0.1:8000 --user root --password root --ns app --db app --tables person -o log.jsonl --append --follow
"""

record_app = typer.Typer(
    name="record",
    help="Record a live database's changes as an ssp log.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

Tables = Annotated[
    str, typer.Option("--tables", help="Comma-separated tables to record (schema.table allowed).")
]
Out = Annotated[
    Path, typer.Option("--out", "-o", help="The ssp log to write (JSONL).", dir_okay=False)
]
Follow = Annotated[
    bool, typer.Option("--follow", help="Keep recording until Ctrl-C (exits 0, the log is whole).")
]
UntilIdle = Annotated[
    float | None,
    typer.Option(
        "--until-idle", min=0.0, help="Stop after SECONDS without a change.", metavar="SECONDS"
    ),
]
OnErrorOpt = Annotated[
    Literal["fail", "skip"],
    typer.Option(
        "--on-error",
        case_sensitive=False,
        help="fail: stop at a change that cannot be converted; skip: write it to --rejects.",
    ),
]
Rejects = Annotated[
    Path | None, typer.Option("--rejects", help="Where --on-error skip keeps the source lines.")
]
Append = Annotated[
    bool,
    typer.Option("--append", help="Append to the log instead of replacing it (resuming a slot)."),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress line, no summary.")]


def _tables(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise typer.BadParameter("name at least one table", param_hint="'--tables'")
    return names


@contextmanager
def stop_on_interrupt() -> Iterator[Callable[[], bool]]:
    """Ctrl-C sets a flag the recorder polls (a second Ctrl-C interrupts at once)."""
    stop = threading.Event()
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        stop.set()

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread (a test runner): no handler, no flag
        yield stop.is_set
        return
    try:
        yield stop.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def progress_line(enabled: bool) -> Iterator[Callable[[RecordStats], None] | None]:
    """A one-line live status on a terminal: changes, transactions, lag."""
    err = Console(stderr=True)
    if not enabled or not err.is_terminal:
        yield None
        return
    with err.status("recording") as status:
        yield lambda stats: status.update(f"recording: {stats.line()}")


def _summary(stats: RecordStats, out: Path, quiet: bool) -> None:
    if quiet:
        return
    text = f"recorded {stats.line()} to {out}"
    if stats.initial_rows:
        text += f"; {stats.initial_rows} initial rows"
    console.stderr().print(text, markup=False, soft_wrap=True)


@record_app.command("postgres", epilog=POSTGRES_EXAMPLES)
def record_postgres_command(
    dsn: Annotated[str, typer.Option("--dsn", help="libpq connection string or URL.")],
    tables: Tables,
    out: Out,
    slot: Annotated[
        str, typer.Option("--slot", help="Logical replication slot (created when missing).")
    ] = "ssp_record",
    initial: Annotated[
        Path | None,
        typer.Option(
            "--initial",
            dir_okay=False,
            help="Also write the tables' rows as of the slot's start (for ssp replay --initial); "
            "the slot must be new.",
        ),
    ] = None,
    follow: Follow = False,
    until_idle: UntilIdle = None,
    on_error: OnErrorOpt = "fail",
    rejects: Rejects = None,
    append: Append = False,
    quiet: Quiet = False,
) -> None:
    """Record PostgreSQL's changes to TABLES through a wal2json replication slot.

    Each committed transaction becomes its entries and one FLUSH, in commit
    order, with ts the commit time. Without --follow or --until-idle it reads
    what the slot holds now and stops. The slot keeps its place: a later run
    with --append continues the log where this one stopped.
    """
    from circuit.record.postgres import PostgresRecording, record_postgres

    if follow and until_idle is not None:
        raise typer.BadParameter("give --follow or --until-idle, not both", param_hint="'--follow'")
    job = PostgresRecording(
        dsn=dsn,
        tables=_tables(tables),
        log=str(out),
        slot=slot,
        initial=str(initial) if initial is not None else None,
        follow=follow,
        until_idle=until_idle,
        on_error=on_error,
        rejects=str(rejects) if rejects is not None else None,
        append=append,
    )
    with console.handle_errors(), stop_on_interrupt() as should_stop:
        with progress_line(not quiet) as progress:
            stats = record_postgres(job, should_stop=should_stop, progress=progress)
        _summary(stats, out, quiet)


@record_app.command("surrealdb", epilog=SURREAL_EXAMPLES)
def record_surrealdb_command(
    url: Annotated[
        str,
        typer.Option(
            "--url",
            help="surrealkv://PATH or file://PATH (embedded, on disk), ws:// or http:// (a server).",
        ),
    ],
    ns: Annotated[str, typer.Option("--ns", help="Namespace.")],
    db: Annotated[str, typer.Option("--db", help="Database.")],
    tables: Tables,
    out: Out,
    follow: Follow = False,
    until_idle: UntilIdle = None,
    on_error: OnErrorOpt = "fail",
    rejects: Rejects = None,
    append: Append = False,
    user: Annotated[
        str | None, typer.Option("--user", help="Sign in as this user (a server).")
    ] = None,
    password: Annotated[
        str | None,
        typer.Option("--password", envvar="SURREAL_PASS", help="Its password (or $SURREAL_PASS)."),
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Record SurrealDB's changes to TABLES from their changefeeds.

    The tables need CHANGEFEED <duration> INCLUDE ORIGINAL. Each versionstamp
    becomes its entries and one FLUSH (with the versionstamp, which --append
    continues after). SurrealDB gives each table of a transaction its own
    versionstamp: such a transaction becomes consecutive FLUSHes, one per table.
    Changes that expired from the changefeed before they were read stop the
    recording with an error. Without --follow or --until-idle it reads what the
    feed holds now and stops.
    """
    from circuit.record.surrealdb import SurrealRecording, record_surrealdb

    if follow and until_idle is not None:
        raise typer.BadParameter("give --follow or --until-idle, not both", param_hint="'--follow'")
    job = SurrealRecording(
        url=url,
        ns=ns,
        db=db,
        tables=_tables(tables),
        log=str(out),
        follow=follow,
        until_idle=until_idle,
        on_error=on_error,
        rejects=str(rejects) if rejects is not None else None,
        append=append,
        username=user,
        password=password,
    )
    with console.handle_errors(), stop_on_interrupt() as should_stop:
        with progress_line(not quiet) as progress:
            stats = record_surrealdb(job, should_stop=should_stop, progress=progress)
        _summary(stats, out, quiet)


def register(app: typer.Typer) -> None:
    """Add ``ssp record`` (and its sources) to the app."""
    app.add_typer(record_app, name="record")
