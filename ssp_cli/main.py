"""The ``ssp`` application: one module per command, each exposing ``register(app)``."""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Annotated

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
    context_settings={"help_option_names": ["-h", "--help"]},
)


def version_text() -> str:
    """``ssp VERSION (Python X.Y.Z)``."""
    import platform

    try:
        number = package_version("ssp")
    except PackageNotFoundError:  # run from a source tree that was never installed
        number = "unknown"
    return f"ssp {number} (Python {platform.python_version()})"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(version_text())
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            is_eager=True,
            callback=_print_version,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Replay and profile mutation logs through an incremental view-maintenance circuit."""


for _name in COMMAND_MODULES:
    importlib.import_module(f"ssp_cli.{_name}").register(app)


def main() -> None:
    """Console-script entry point."""
    app()
