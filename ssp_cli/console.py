"""Where the CLI writes: a stdout console for results, a stderr console for the rest.

This is the one place that prints errors: exactly one line
``error: LOCATION: message``, then an optional ``hint: ...`` line, both with
control characters from the input escaped so a log line cannot forge terminal
output. :func:`handle_errors` turns the engine's errors into that output and
exit code 1, Ctrl-C into exit 130, with no traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console
from rich.text import Text

from circuit.errors import CircuitError, escape_control
from circuit.report.run import Run

EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


PIPE_WIDTH = 1000
"""Width of tables written to a file or a pipe, where no terminal limits the lines: wide
enough that no cell is folded or cut (rich sizes a table to its content, not to this)."""


def stdout() -> Console:
    """A console on the current ``sys.stdout`` (made per use, so test runners can swap it)."""
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = PIPE_WIDTH
    return console


def stderr() -> Console:
    """A console on the current ``sys.stderr``."""
    return Console(stderr=True, highlight=False)


def print_error(message: str, *, location: str | None = None, hint: str | None = None) -> None:
    """``error: LOCATION: message`` and ``hint: ...``, each on exactly one line."""
    console = stderr()
    text = escape_control(f"{location}: {message}" if location else message)
    console.print(Text.assemble(("error", "bold red"), ": ", text), soft_wrap=True)
    if hint:
        console.print(
            Text.assemble(("hint", "bold yellow"), ": ", escape_control(hint)), soft_wrap=True
        )


def fail(err: CircuitError) -> NoReturn:
    """Print an engine error and exit 1."""
    print_error(err.message, location=err.location, hint=err.hint)
    raise typer.Exit(EXIT_FAILURE)


def exit_after(run: Run, failure: CircuitError | None, was_interrupted: bool) -> None:
    """Exit 1 after a failure (printing its error), 130 after Ctrl-C; else return."""
    if failure is not None:
        fail(failure)
    if was_interrupted:
        line = run.stopped_at.line if run.stopped_at is not None else 0
        interrupted(f"{run.run.log_path}:{line}")


def interrupted(where: str | None = None) -> NoReturn:
    """Print ``error: interrupted at WHERE`` and exit 130."""
    print_error(f"interrupted at {where}" if where else "interrupted")
    raise typer.Exit(EXIT_INTERRUPTED)


@contextmanager
def handle_errors() -> Iterator[None]:
    """Turn what a command body raises into the CLI's error output and exit code.

    :class:`CircuitError` exits 1, an ``OSError`` (a file that cannot be read
    or written) exits 1 naming the file, ``KeyboardInterrupt`` exits 130.
    """
    try:
        yield
    except CircuitError as err:
        fail(err)
    except OSError as err:
        where = str(err.filename) if err.filename is not None else None
        print_error(err.strerror or str(err), location=where)
        raise typer.Exit(EXIT_FAILURE) from None
    except KeyboardInterrupt:
        interrupted()
