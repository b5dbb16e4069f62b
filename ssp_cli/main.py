"""The ``ssp`` application: one module per command, each exposing ``register(app)``."""

from __future__ import annotations

import importlib

import typer

COMMAND_MODULES = (
    "replay",
    "verify",
    "explain",
    "profile",
    "bench",
    "compare",
    "gen",
    "report",
    "record",
    "import_cmd",
)

app = typer.Typer(
    name="ssp",
    help="Replay and profile mutation logs through an incremental view-maintenance circuit.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

for _name in COMMAND_MODULES:
    importlib.import_module(f"ssp_cli.{_name}").register(app)


def main() -> None:
    """Console-script entry point."""
    app()
