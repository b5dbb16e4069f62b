"""``ssp report RUN.json``: render a saved run again (terminal tables, optionally Markdown)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer

from circuit.errors import CircuitError
from circuit.report import ReportFormatError, append_markdown, read_report
from ssp_cli.terminal import render_terminal

from . import console
from .options import Markdown

EXAMPLES = """Examples:

ssp report run.json
ssp report run.json --markdown summary.md
ssp report run.json --markdown "$GITHUB_STEP_SUMMARY"
"""

RunJson = Annotated[
    Path,
    typer.Argument(
        metavar="RUN.json", help="A report written by --report.", exists=True, dir_okay=False
    ),
]


def report_command(run_json: RunJson, markdown: Markdown = None) -> None:
    """Print a saved report as tables, and append it as Markdown when asked."""
    with console.handle_errors():
        try:
            run = read_report(run_json)
        except (orjson.JSONDecodeError, ReportFormatError) as err:
            raise CircuitError(str(err), location=str(run_json)) from None
        render_terminal(run, console.stdout())
        if markdown is not None:
            append_markdown(run, markdown)


def register(app: typer.Typer) -> None:
    """Add ``ssp report`` to the app."""
    app.command("report", epilog=EXAMPLES)(report_command)
