"""Renderers of a :class:`~circuit.report.run.Run`: JSON report, Markdown, terminal tables.

The terminal renderer (``circuit.report.terminal``) is imported on its own so
that the engine does not pull in rich.
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
