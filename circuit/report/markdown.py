"""A GitHub-flavoured Markdown summary of a :class:`Run`, appended to a file.

Meant for ``$GITHUB_STEP_SUMMARY`` (whose limit is 1 MiB per step), so the
summary is bounded whatever the run: the top 10 views only, at most 20
rejected line numbers, and cells clipped to a fixed length.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import escape_control
from . import summary
from .run import Run

TOP_VIEWS = 10
MAX_CELL = 120


def cell(text: str) -> str:
    """Make arbitrary text (a quoted view name, a path) safe inside a table cell."""
    text = escape_control(text)
    if len(text) > MAX_CELL:
        text = text[: MAX_CELL - 1] + "…"
    for raw, safe in (("\\", "\\\\"), ("|", "\\|"), ("<", "&lt;"), (">", "&gt;"), ("`", "\\`")):
        text = text.replace(raw, safe)
    return text


def render_markdown(run: Run) -> str:
    """The summary as Markdown text, ending with a blank line."""
    out = [f"## {cell(summary.title(run))}", "", f"**{cell(summary.status(run))}**", ""]
    for section in summary.sections(run, TOP_VIEWS):
        out += [f"### {section.title}", ""]
        out.append("| " + " | ".join(section.headers) + " |")
        out.append("|" + "|".join([" --- "] + [" ---: "] * (len(section.headers) - 1)) + "|")
        out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in section.rows]
        out.append("")
    return "\n".join(out) + "\n"


def append_markdown(run: Run, path: str | os.PathLike[str]) -> None:
    """Append the summary to ``path`` (created if missing), as CI step summaries expect."""
    with Path(path).open("a", encoding="utf-8") as out:
        out.write(render_markdown(run))
