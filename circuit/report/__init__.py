"""Renderers of a :class:`~circuit.report.run.Run`: JSON report, Markdown, folded stacks,
speedscope. The terminal tables are the CLI's (``ssp_cli.terminal``): the engine never
imports rich or typer.
"""

from .json import read_report, write_atomic, write_report
from .markdown import append_markdown, render_markdown
from .run import SCHEMA, ReportFormatError, Run

__all__ = [
    "SCHEMA",
    "ReportFormatError",
    "Run",
    "append_markdown",
    "read_report",
    "render_markdown",
    "write_atomic",
    "write_report",
]
