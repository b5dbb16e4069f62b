"""``ssp explain VIEWS``: each view's plan, the dependency index, and the shared tables."""

from __future__ import annotations

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from circuit.circuit import Circuit
from circuit.errors import escape_control
from circuit.sql import load_views

from . import console
from .options import Dialect, Params, ViewsArg, parse_params

EXAMPLES = """Examples:

ssp explain fixtures/forum/views.sql
ssp explain views.sql --param user_id=5
ssp explain views.sql --dialect sqlite
"""


def explain_command(views: ViewsArg, param: Params = None, dialect: Dialect = None) -> None:
    """Print each view's plan as a tree of operators, and which views read which tables.

    Views are registered on an empty circuit, so parametrized views need
    their parameters (--param).
    """
    with console.handle_errors():
        circuit = Circuit()
        params = parse_params(param)
        for view in load_views(views, dialect=dialect):
            circuit.register_view(view.name, view.sql, params=params, format=view.format)
        out = console.stdout()
        for name in circuit.view_names():
            out.print(Text(escape_control_lines(circuit.explain(name))), soft_wrap=True)
            out.print()
        index = circuit.dependency_index()
        table = Table(
            title="Dependency index", title_justify="left", title_style="bold", box=box.SIMPLE_HEAD
        )
        table.add_column("table")
        table.add_column("views")
        table.add_column("shared", justify="right")
        for source, readers in sorted(index.items()):
            table.add_row(
                Text(escape_control(source)),
                Text(", ".join(escape_control(v) for v in readers)),
                "yes" if len(readers) > 1 else "",
            )
        out.print(table)
        shared = sorted(t for t, readers in index.items() if len(readers) > 1)
        summary = ", ".join(escape_control(t) for t in shared) if shared else "none"
        out.print(Text(f"Tables read by several views: {summary}"), soft_wrap=True)


def escape_control_lines(text: str) -> str:
    """Escape control characters but keep the plan's own line breaks."""
    return "\n".join(escape_control(line) for line in text.splitlines())


def register(app: typer.Typer) -> None:
    """Add ``ssp explain`` to the app."""
    app.command("explain", epilog=EXAMPLES)(explain_command)
