"""``ssp compare BASE.json NEW.json``: every shared metric's change, and a regression gate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import orjson
import typer
from rich import box
from rich.table import Table
from rich.text import Text

from circuit.compare import (
    Change,
    Comparison,
    Judgement,
    compare_runs,
    label,
    parse_metric_limits,
)
from circuit.errors import CircuitError, escape_control
from circuit.report import ReportFormatError, read_report
from circuit.report.markdown import cell
from circuit.report.run import Run

from . import console
from .options import Markdown, Quiet

OutputFormat = Literal["text", "json", "github"]

EXAMPLES = """Examples:

ssp compare base.json new.json
ssp compare base.json new.json --max-regression 10
ssp compare main.json pr.json --markdown "$GITHUB_STEP_SUMMARY"
ssp compare base.json new.json --quiet && echo "no regression"
ssp compare base.json new.json --metric p99=40 --metric throughput=10
ssp compare base.json new.json --format json
ssp compare base.json new.json --format github
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
    float | None,
    typer.Option(
        "--max-regression",
        metavar="PCT",
        min=0,
        help="Fail (exit 1) when throughput falls, or p99 latency rises, by more than PCT "
        "percent (default 25 for single runs, 10 when both reports carry --repeat samples, "
        "which must then also differ at 95% confidence).",
    ),
]
MetricOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--metric",
        metavar="NAME=PCT",
        help="Gate NAME with its own limit: throughput, p50, p90, p99, max, or a dotted "
        "name such as views.NAME.time_ns. Repeatable.",
    ),
]
FormatOpt = Annotated[
    OutputFormat,
    typer.Option(
        "--format",
        case_sensitive=False,
        help="text (a table of what changed), json (the machine-readable verdict) or github "
        "(text plus ::error::/::notice:: annotations).",
    ),
]


def compare_command(
    base: BaseArg,
    new: NewArg,
    max_regression: MaxRegression = None,
    metric: MetricOpt = None,
    output_format: FormatOpt = "text",
    markdown: Markdown = None,
    quiet: Quiet = False,
) -> None:
    """Compare two reports: a verdict on throughput and p99 latency, then what changed.

    With repeated samples on both sides (`ssp bench --repeat N` reports) a
    regression needs a Mann-Whitney U test at 95% confidence and a change
    beyond the limit; a change beyond the limit the samples cannot confirm is
    inconclusive (exit 0). Single runs are judged by the limit alone. Only
    metrics that changed beyond noise are listed; unchanged views and
    operators are one line. Exits 1 on a regression. Reports of runs that
    stopped early (or stopped by --max-entries at different entries) or that
    replayed a different number of entries are refused.
    """
    with console.handle_errors():
        limits = parse_metric_limits(metric or [])
        comparison = compare_runs(
            _read(base),
            _read(new),
            max_regression=max_regression,
            metrics=limits,
            base_name=str(base),
            new_name=str(new),
        )
        show(comparison, str(base), str(new), output_format=output_format, quiet=quiet)
        if markdown is not None:
            with markdown.open("a", encoding="utf-8") as md:
                md.write(render_markdown(comparison, str(base), str(new)))
        exit_on_regression(comparison, str(new))


def show(comparison: Comparison, base: str, new: str, *, output_format: str, quiet: bool) -> None:
    """Print the comparison in ``output_format`` (``ssp bench --compare`` uses it too)."""
    out = console.stdout()
    if output_format == "json":
        out.out(
            orjson.dumps(comparison.to_json(base, new), option=orjson.OPT_INDENT_2).decode(),
            highlight=False,
        )
        return
    out.print(Text(verdict_line(comparison)), soft_wrap=True)
    for judgement in comparison.judgements:
        out.print(Text(gate_line(judgement)), soft_wrap=True)
    if not quiet:
        shown = comparison.shown()
        if shown:
            out.print(_table(shown[:MAX_TEXT_ROWS], base, new))
        if len(shown) > MAX_TEXT_ROWS:
            more = len(shown) - MAX_TEXT_ROWS
            out.print(f"{more} more changes not shown (--format json lists every one)")
        out.print(Text(escape_control(unchanged_line(comparison))), soft_wrap=True)
        for note in comparison.notes:
            out.print(Text(f"note: {escape_control(note)}"), soft_wrap=True)
    if output_format == "github":
        for line in github_annotations(comparison, new):
            out.out(line, highlight=False)


def exit_on_regression(comparison: Comparison, new: str) -> None:
    """One ``error:`` line and exit 1 when a gated metric regressed."""
    failed = [j for j in comparison.judgements if j.outcome == "regression"]
    if failed:
        worst = max(failed, key=lambda j: j.regression_percent)
        console.print_error(
            f"{label(worst.name)} regressed by {worst.regression_percent:.1f}% "
            f"(allowed: {worst.limit_percent:g}%; {_test(worst)})",
            location=new,
        )
        raise typer.Exit(console.EXIT_FAILURE)


def _test(j: Judgement) -> str:
    if j.p_value is None:
        return "single runs, threshold alone"
    return f"Mann-Whitney U p={j.p_value:.4f}"


def verdict_line(comparison: Comparison) -> str:
    """``verdict: regression (throughput)``: the outcome and the metrics that decided it."""
    names = ", ".join(label(j.name) for j in comparison.decided_by)
    return f"verdict: {comparison.verdict}" + (f" ({names})" if names else "")


def unchanged_line(comparison: Comparison) -> str:
    """One line for every view and operator that did not change beyond noise."""
    views, operators = comparison.unchanged()
    if not views and not operators:
        return "every view changed beyond noise" if comparison.changes else "no views"
    listed = ", ".join(views[:5]) + (", …" if len(views) > 5 else "")
    head = f"unchanged beyond noise: {len(views)} views ({listed})" if views else "unchanged: "
    return f"{head} and {operators} operators" if operators else head


def github_annotations(comparison: Comparison, new: str) -> list[str]:
    """GitHub workflow commands: ``::error::`` per regression, ``::notice::`` per
    improvement, ``::warning::`` per inconclusive metric."""
    kinds = {"regression": "error", "improvement": "notice", "inconclusive": "warning"}
    lines = []
    for j in comparison.judgements:
        kind = kinds.get(j.outcome)
        if kind is not None:
            title = _escape_property(f"ssp compare: {label(j.name)} {j.outcome}")
            lines.append(f"::{kind} title={title}::{_escape_data(gate_line(j))}")
    return lines


def _escape_data(text: str) -> str:
    """A workflow command's message, escaped as the GitHub runner expects."""
    text = escape_control(text)
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    """A workflow command's property value (``title=``): ``:`` and ``,`` escaped too."""
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _read(path: Path) -> Run:
    try:
        return read_report(path)
    except (orjson.JSONDecodeError, ReportFormatError) as err:
        raise CircuitError(
            str(err), location=str(path), hint="pass a file written by --report"
        ) from None


def number(value: float) -> str:
    """Integers with separators, floats with three significant decimals at most."""
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.3f}"


def percent(change: Change | Judgement) -> str:
    if change.percent is None:
        return "n/a" if change.new != change.base else "0%"
    return f"{change.percent:+.1f}%"


def gate_line(j: Judgement) -> str:
    """``ok: throughput 15,169 -> 14,002 (-7.7%): RULE``; REGRESSION, IMPROVEMENT,
    INCONCLUSIVE for the other outcomes."""
    status = {"pass": "ok"}.get(j.outcome, j.outcome.upper())
    median = "median " if j.sampled else ""
    return (
        f"{status}: {label(j.name)} {median}{number(j.base)} -> {number(j.new)} "
        f"({percent(j)}): {j.rule}"
    )


def _table(shown: list[Change], base: str, new: str) -> Table:
    table = Table(
        title=f"changed beyond noise: {escape_control(base)} -> {escape_control(new)}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("metric", overflow="fold")
    for header in ("base", "new", "change"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("")
    styles = {"better": "green", "worse": "red", "": ""}
    for c in shown:
        table.add_row(
            Text(escape_control(c.name)),
            number(c.base),
            number(c.new),
            percent(c),
            Text(c.verdict, style=styles[c.verdict]),
        )
    return table


MAX_MARKDOWN_ROWS = 50
MAX_TEXT_ROWS = 60


def render_markdown(comparison: Comparison, base: str, new: str) -> str:
    """The verdict line, the gated metrics, then what changed in a ``<details>`` block."""
    mark = {"pass": "✅", "improvement": "🚀", "inconclusive": "⚠️", "regression": "❌"}
    out = [
        f"### {mark[comparison.verdict]} ssp compare: {cell(verdict_line(comparison))}",
        "",
        f"{cell(base)} → {cell(new)}",
        "",
    ]
    out += [f"- {cell(gate_line(j))}" for j in comparison.judgements]
    out += [f"- note: {cell(note)}" for note in comparison.notes]
    shown = comparison.shown()
    out += ["", f"- {cell(unchanged_line(comparison))}", ""]
    if shown:
        out += [
            f"<details><summary>{len(shown)} metrics changed beyond noise</summary>",
            "",
            "| metric | base | new | change | |",
            "| --- | ---: | ---: | ---: | --- |",
        ]
        out += [
            f"| {cell(c.name)} | {number(c.base)} | {number(c.new)} | {percent(c)} | {c.verdict} |"
            for c in shown[:MAX_MARKDOWN_ROWS]
        ]
        if len(shown) > MAX_MARKDOWN_ROWS:
            out += ["", f"{len(shown) - MAX_MARKDOWN_ROWS} more not shown"]
        out += ["", "</details>", ""]
    return "\n".join(out) + "\n"


def register(app: typer.Typer) -> None:
    """Add ``ssp compare`` to the app."""
    app.command("compare", epilog=EXAMPLES)(compare_command)
