"""The summary of a :class:`Run` as rich tables on a terminal (or plain text when piped)."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from circuit.errors import escape_control
from circuit.report import summary
from circuit.report.run import Run

TOP_VIEWS = 15


def render_terminal(run: Run, console: Console, *, top_views: int = TOP_VIEWS) -> None:
    """Print the title, the status line and one table per summary section.

    Every cell is a :class:`Text` built from escaped input, so a view name
    can neither inject rich markup nor terminal control sequences.
    """
    console.print(Text(escape_control(summary.title(run)), style="bold"), soft_wrap=True)
    style = "green" if run.completed else "bold red"
    console.print(Text(escape_control(summary.headline(run)), style=style), soft_wrap=True)
    if run.error is not None and run.error.hint:
        console.print(Text(escape_control(f"hint: {run.error.hint}")), soft_wrap=True)
    console.print(Text(escape_control(summary.options_line(run))), soft_wrap=True)
    for section in summary.sections(run, top_views):
        table = Table(
            title=section.title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD
        )
        longest = max((len(row[0]) for row in section.rows), default=0)
        table.add_column(section.headers[0], overflow="fold", min_width=min(longest, 30))
        for header in section.headers[1:]:
            table.add_column(header, justify="right", no_wrap=True)
        for row in section.rows:
            table.add_row(*(Text(escape_control(c)) for c in row))
        console.print(table)
        for line in (section.note or "").splitlines():
            console.print(Text(escape_control(line)), soft_wrap=True)
