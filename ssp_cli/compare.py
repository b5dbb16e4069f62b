"""``ssp compare BASE.json NEW.json``: every shared metric's change, and a regression gate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich import box
from rich.table import Table
from rich.text import Text

from circuit.compare import DEFAULT_MAX_REGRESSION, Change, Comparison, Gate, compare_runs
from circuit.errors import CircuitError, escape_control
from circuit.report import ReportFormatError, read_report
from circuit.report.markdown import cell
from circuit.report.run import Run

from . import console
from .options import Markdown, Quiet

EXAMPLES = """Examples:

ssp compare base.json new.json
ssp compare base.json new.json --max-regression 10
ssp compare main.json pr.json --markdown "$GITHUB_STEP_SUMMARY"
ssp compare base.json new.json --quiet && echo "no regression"
"""

BaseArg = Annotated[
    Path,
    typer.Argument(
        metavar="BASE.json", help="The reference report (--report).", exists=True, dir_okay=False
    ),
]
NewArg = Annotated[
    Path,
    typer.Argument(
        metavar="NEW.json", help="The report to judge against it.", exists=True, dir_okay=False
    ),
]
MaxRegression = Annotated[
    float,
    typer.Option(
        "--max-regression",
        metavar="PCT",
        min=0,
        help="Fail (exit 1) when throughput falls, or p99 latency rises, by more than PCT percent.",
    ),
]


def compare_command(
    base: BaseArg,
    new: NewArg,
    max_regression: MaxRegression = DEFAULT_MAX_REGRESSION,
    markdown: Markdown = None,
    quiet: Quiet = False,
) -> None:
    """Compare two reports: every metric both hold, with its change.

    Exits 1 when throughput (entries/s of ingest time) fell, or p99 latency
    per ingest call rose, by more than --max-regression percent (default 25,
    as shared CI runners swing 10-50%), and 0 otherwise. Reports of runs that
    stopped early or replayed a different number of entries are refused.
    With --quiet only the gate's verdict (and errors) are printed.
    """
    with console.handle_errors():
        comparison = compare_runs(
            _read(base),
            _read(new),
            max_regression=max_regression,
            base_name=str(base),
            new_name=str(new),
        )
        out = console.stdout()
        if not quiet:
            out.print(_table(comparison, str(base), str(new)))
            for note in comparison.notes:
                out.print(Text(f"note: {escape_control(note)}"), soft_wrap=True)
        for gate in comparison.gates:
            out.print(Text(gate_line(gate)), soft_wrap=True)
        if markdown is not None:
            with markdown.open("a", encoding="utf-8") as md:
                md.write(render_markdown(comparison, str(base), str(new)))
        failed = [gate for gate in comparison.gates if not gate.passed]
        if failed:
            worst = max(failed, key=lambda g: g.regression_percent)
            console.print_error(
                f"{_label(worst.change.name)} regressed by {worst.regression_percent:.1f}% "
                f"(allowed: {max_regression:g}%)",
                location=str(new),
            )
            raise typer.Exit(console.EXIT_FAILURE)


def _read(path: Path) -> Run:
    try:
        return read_report(path)
    except (orjson.JSONDecodeError, ReportFormatError) as err:
        raise CircuitError(
            str(err), location=str(path), hint="pass a file written by --report"
        ) from None


def _label(name: str) -> str:
    return {"totals.entries_per_s": "throughput", "totals.latency_us.p99": "p99 latency"}.get(
        name, name
    )


def number(value: float) -> str:
    """Integers with separators, floats with three significant decimals at most."""
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.3f}"


def percent(change: Change) -> str:
    if change.percent is None:
        return "n/a" if change.new != change.base else "0%"
    return f"{change.percent:+.1f}%"


def gate_line(gate: Gate) -> str:
    """``ok: throughput 15,169 -> 14,002 (-7.7%; allowed: 25% worse)``."""
    c = gate.change
    status = "ok" if gate.passed else "REGRESSION"
    return (
        f"{status}: {_label(c.name)} {number(c.base)} -> {number(c.new)} "
        f"({percent(c)}; allowed: {gate.limit_percent:g}% worse)"
    )


def _table(comparison: Comparison, base: str, new: str) -> Table:
    table = Table(
        title=f"{escape_control(base)} -> {escape_control(new)}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("metric", overflow="fold")
    for header in ("base", "new", "change"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("")
    styles = {"better": "green", "worse": "red", "": ""}
    for c in comparison.changes:
        table.add_row(
            Text(escape_control(c.name)),
            number(c.base),
            number(c.new),
            percent(c),
            Text(c.verdict, style=styles[c.verdict]),
        )
    return table


def render_markdown(comparison: Comparison, base: str, new: str) -> str:
    """The gates, then every metric, as a Markdown section (for CI step summaries)."""
    out = [f"## ssp compare: {cell(base)} → {cell(new)}", ""]
    out += [f"- {cell(gate_line(gate))}" for gate in comparison.gates]
    out += [f"- note: {cell(note)}" for note in comparison.notes]
    out += ["", "| metric | base | new | change | |", "| --- | ---: | ---: | ---: | --- |"]
    out += [
        f"| {cell(c.name)} | {number(c.base)} | {number(c.new)} | {percent(c)} | {c.verdict} |"
        for c in comparison.changes
    ]
    return "\n".join(out) + "\n\n"


def register(app: typer.Typer) -> None:
    """Add ``ssp compare`` to the app."""
    app.command("compare", epilog=EXAMPLES)(compare_command)
