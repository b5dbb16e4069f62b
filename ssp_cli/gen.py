"""`ssp gen`: write a synthetic workload (views.sql and log.jsonl) into a directory."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from circuit.errors import escape_control
from circuit.workloads import SCENARIOS, Sizes, write_workload
from circuit.workloads.writer import Progress as ProgressCallback

EPILOG = """\
Examples:

  ssp gen forum -o out/forum

  ssp gen forum -o out/forum-1m --seed 7 --rows 100000 --mutations 1000000

  ssp gen chat -o out/chat --mutations 50000

  ssp gen subscriptions -o out/subs --views 500 --quiet

  ssp gen orders -o out/orders --rows 1000 --mutations 100000

  ssp gen clients -o out/clients --clients 3000 --rows 250000 --initial
"""


class ScenarioName(StrEnum):
    """The scenarios of :data:`circuit.workloads.SCENARIOS`, as a choice typer validates."""

    forum = "forum"
    chat = "chat"
    subscriptions = "subscriptions"
    orders = "orders"
    clients = "clients"


def _scenario_help() -> str:
    lines = [
        f"{name}: {s.summary} (rows {s.defaults.rows}, mutations {s.defaults.mutations},"
        f" views {s.defaults.views})."
        for name, s in SCENARIOS.items()
    ]
    return "Workload to generate. " + " ".join(lines)


def gen(
    scenario: Annotated[
        ScenarioName,
        typer.Argument(
            help=_scenario_help(),
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Directory to write views.sql and log.jsonl into (created).",
        ),
    ],
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same bytes.")] = 1,
    rows: Annotated[
        int | None,
        typer.Option(
            min=1, show_default="per scenario", help="Records created before the activity."
        ),
    ] = None,
    mutations: Annotated[
        int | None,
        typer.Option(
            min=0, show_default="per scenario", help="Log entries after the initial records."
        ),
    ] = None,
    views: Annotated[
        int | None,
        typer.Option(
            min=0,
            show_default="per scenario",
            help="Views in views.sql, cycling through the scenario's templates; for "
            "subscriptions, REGISTER entries in the log; clients has one view and ignores it.",
        ),
    ] = None,
    clients: Annotated[
        int | None,
        typer.Option(
            min=0,
            show_default="30",
            help="clients: clients registering a room feed, a room card and their own "
            "messages each (three subscriptions) after the state.",
        ),
    ] = None,
    initial: Annotated[
        bool,
        typer.Option(
            "--initial/--no-initial",
            help="Also write the state as records into initial.jsonl (for `ssp replay "
            "--initial`) and start the log after it.",
        ),
    ] = False,
    aggregates: Annotated[
        bool,
        typer.Option(
            "--aggregates/--no-aggregates",
            help="forum: include the GROUP BY (comment counts, latest reply) and NOT EXISTS "
            "(unanswered threads) views among the templates.",
        ),
    ] = True,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar, no summary.")
    ] = False,
) -> None:
    """Write a synthetic workload into OUT: views.sql and log.jsonl, ready for `ssp replay`.

    The same scenario, seed and sizes always give the same bytes. The default
    sizes replay in a few seconds; the flags scale a workload from thousands to
    millions of entries, written as a stream. Nothing is written outside OUT.
    """
    spec = SCENARIOS[scenario.value]
    sizes = Sizes(
        rows=spec.defaults.rows if rows is None else rows,
        mutations=spec.defaults.mutations if mutations is None else mutations,
        views=spec.defaults.views if views is None else views,
        aggregates=aggregates,
        clients=clients,
    )
    if clients is not None and scenario is not ScenarioName.clients:
        raise typer.BadParameter("only the clients scenario has clients", param_hint="'--clients'")
    if sizes.rows < spec.min_rows:
        raise typer.BadParameter(
            f"{spec.name} needs at least {spec.min_rows} rows", param_hint="'--rows'"
        )
    if sizes.views < 1 and scenario not in (ScenarioName.subscriptions, ScenarioName.clients):
        raise typer.BadParameter(f"{spec.name} needs at least 1 view", param_hint="'--views'")
    console = Console(stderr=True)
    try:
        with _progress(console, spec.state_size(sizes) + sizes.mutations, quiet) as advance:
            written = write_workload(
                spec, out, seed=seed, sizes=sizes, progress=advance, initial=initial
            )
    except OSError as err:
        where = escape_control(str(err.filename or out))
        typer.echo(f"error: {where}: {escape_control(err.strerror or str(err))}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        # The writer has removed its temporary files: nothing half-written is left behind.
        typer.echo(f"error: {escape_control(str(out))}: interrupted", err=True)
        raise typer.Exit(130) from None
    if not quiet:
        state = ""
        if written.initial_path is not None:
            state = f", {written.initial_path} ({written.records} records)"
        typer.echo(
            f"wrote {written.views_path} ({written.views} views){state} and "
            f"{written.log_path} ({written.entries} entries)"
        )


@contextmanager
def _progress(console: Console, total: int, quiet: bool) -> Iterator[ProgressCallback | None]:
    """A progress callback drawing a rich bar on a terminal; ``None`` otherwise."""
    if quiet or not console.is_terminal:
        yield None
        return
    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("generating", total=total)
        yield lambda n: bar.advance(task, n)


def register(app: typer.Typer) -> None:
    """Add ``ssp gen`` to the app."""
    app.command("gen", epilog=EPILOG)(gen)
