"""A GitHub-flavoured Markdown summary of a :class:`Run`, appended to a file.

Meant for ``$GITHUB_STEP_SUMMARY`` (whose limit is 1 MiB per step), so the
summary is bounded whatever the run: the top 10 views only (and a line saying
how many were left out), at most 20 rejected line numbers, cells and lines
clipped to a fixed length.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import escape_control
from . import summary
from .run import Run

TOP_VIEWS = 10
MAX_CELL = 120
MAX_LINE = 2000


def cell(text: str) -> str:
    """Make arbitrary text (a quoted view name, a path) safe inside a table cell."""
    text = escape_control(text)
    if len(text) > MAX_CELL:
        text = text[: MAX_CELL - 1] + "…"
    for raw, safe in (("\\", "\\\\"), ("|", "\\|"), ("<", "&lt;"), (">", "&gt;"), ("`", "\\`")):
        text = text.replace(raw, safe)
    return text


def render_markdown(run: Run) -> str:
    """The summary as Markdown text, ending with a blank line.

    The first line is the verdict (the error, on a failed run), the second the
    hint when there is one; then the inputs and the options that shape the
    numbers; then every table folded in a ``<details>`` block, so a CI job
    summary shows the verdict without scrolling.
    """
    mark = "✅" if run.completed else ("❌" if run.error is not None else "⚠️")
    head = f"### {mark} ssp {cell(run.run.command)}: {inline(summary.headline(run))}"
    out = [head]
    if run.error is not None and run.error.hint:
        out.append(f"hint: {inline(run.error.hint)}")
    inputs = " × ".join(p for p in (run.run.views_path, run.run.log_path) if p)
    out += ["", f"{cell(inputs)} · {inline(summary.options_line(run))}", ""]
    for section in summary.sections(run, TOP_VIEWS):
        out += [f"<details><summary>{inline(section.title)}</summary>", ""]
        out.append("| " + " | ".join(section.headers) + " |")
        out.append("|" + "|".join([" --- "] + [" ---: "] * (len(section.headers) - 1)) + "|")
        out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in section.rows]
        if section.note:
            out += ["", *(f"- {inline(line)}" for line in section.note.splitlines())]
        out += ["", "</details>", ""]
    return "\n".join(out) + "\n"


def inline(text: str) -> str:
    """Text safe in a Markdown paragraph (clipped at :data:`MAX_LINE`, unlike a cell)."""
    text = escape_control(text)
    if len(text) > MAX_LINE:
        text = text[: MAX_LINE - 1] + "…"
    for raw, safe in (("\\", "\\\\"), ("<", "&lt;"), (">", "&gt;"), ("`", "\\`")):
        text = text.replace(raw, safe)
    return text


def append_markdown(run: Run, path: str | os.PathLike[str]) -> None:
    """Append the summary to ``path`` (created if missing), as CI step summaries expect."""
    with Path(path).open("a", encoding="utf-8") as out:
        out.write(render_markdown(run))
