"""``ssp import debezium|wal2json|maxwell FILE -o LOG``: convert a recorded change stream (SPEC 9)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from circuit.record.imports import import_file

from . import console

EXAMPLES = """Examples:

ssp import debezium changes.jsonl -o log.jsonl --key customers=id

ssp import wal2json recvlogical.jsonl -o log.jsonl

ssp import maxwell maxwell.jsonl -o log.jsonl --on-error skip --rejects rejected.jsonl
"""


def _keys(values: list[str] | None) -> dict[str, tuple[str, ...]]:
    keys = {}
    for value in values or ():
        table, sep, columns = value.partition("=")
        names = tuple(c.strip() for c in columns.split(",") if c.strip())
        if not sep or not table.strip() or not names:
            raise typer.BadParameter(
                f"{value!r}: write TABLE=COLUMN[,COLUMN]", param_hint="'--key'"
            )
        keys[table.strip()] = names
    return keys


def import_command(
    fmt: Annotated[
        Literal["debezium", "wal2json", "maxwell"],
        typer.Argument(metavar="FORMAT", help="debezium, wal2json (format 1 or 2) or maxwell."),
    ],
    source: Annotated[
        Path, typer.Argument(metavar="FILE", exists=True, dir_okay=False, help="JSON lines.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", dir_okay=False, help="The ssp log to write.")],
    key: Annotated[
        list[str] | None,
        typer.Option(
            "--key",
            help="TABLE=COLUMN[,COLUMN]: a table's primary key where the format does not carry "
            "it (default: a column named id). Repeatable.",
        ),
    ] = None,
    on_error: Annotated[
        Literal["fail", "skip"],
        typer.Option("--on-error", help="fail: stop at a bad line; skip: copy it to --rejects."),
    ] = "fail",
    rejects: Annotated[
        Path | None, typer.Option("--rejects", help="Where --on-error skip copies bad lines.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary.")] = False,
) -> None:
    """Convert FILE, written by Debezium, wal2json or Maxwell, into an ssp log.

    Each source transaction becomes its entries and one FLUSH; ids are
    TABLE:KEY as ssp record writes them. A line that cannot be converted stops
    the import with FILE:LINE, or with --on-error skip goes to --rejects.
    """
    with console.handle_errors():
        stats = import_file(fmt, source, out, keys=_keys(key), on_error=on_error, rejects=rejects)
    if not quiet:
        console.stderr().print(f"imported {stats.line()} to {out}", markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``ssp import`` to the app."""
    app.command("import", epilog=EXAMPLES)(import_command)
