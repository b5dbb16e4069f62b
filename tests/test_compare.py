"""``ssp compare``: metric changes, the regression gate's exit codes, refused reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner, Result

from circuit.compare import P99, THROUGHPUT, ReportMismatch, compare_runs, flatten
from circuit.report import Run, write_report
from circuit.report.run import Latency, RunInfo, StoppedAt, Totals
from ssp_cli.main import app


def make_run(
    entries_per_s: float = 1000.0, p99: float = 50.0, entries: int = 100, **options: Any
) -> Run:
    info = RunInfo(
        command="replay",
        argv=["ssp", "replay"],
        options={"mode": "batch", "batch_size": 100, **options},
        views_path="views.sql",
        log_path="log.jsonl",
        python="CPython 3.11",
        platform="linux",
        started_at="2024-01-01T00:00:00.000Z",
        git_revision=None,
    )
    totals = Totals(
        entries=entries,
        ingest_calls=10,
        ingest_s=entries / entries_per_s,
        entries_per_s=entries_per_s,
        latency_us=Latency(p50=10.0, p90=20.0, p99=p99, max=p99 * 2),
    )
    views = {"v": {"invocations": 10, "time_ns": 5000, "rows": 3}}
    operators = [{"view": "v", "path": "v;join", "self_ns": 100, "rows_in": 4, "rows_out": 4}]
    return Run(run=info, totals=totals, views=views, operators=operators)


def changes(base: Run, new: Run) -> dict[str, Any]:
    return {c.name: c for c in compare_runs(base, new).changes}


def test_every_numeric_metric_is_compared_with_its_direction() -> None:
    found = changes(make_run(), make_run(entries_per_s=800.0, p99=60.0))
    assert found[THROUGHPUT].percent == pytest.approx(-20.0)
    assert found[THROUGHPUT].verdict == "worse"
    assert found[P99].verdict == "worse"
    assert found["totals.latency_us.p50"].verdict == ""  # unchanged
    assert found["views.v.time_ns"].better == "lower"
    assert found["views.v.rows"].better is None  # a count has no direction
    assert "operators[v;join].self_ns" in found
    assert not any(name.startswith("run.") for name in found)  # strings are not metrics
    assert "errors.rejected_lines" not in dict(flatten(make_run()))


@pytest.mark.parametrize(
    ("tput", "p99", "passed"),
    [
        (1000.0, 50.0, True),
        (760.0, 62.0, True),  # 24% fewer entries/s, 24% more p99: within 25%
        (740.0, 50.0, False),  # throughput fell 26%
        (1000.0, 63.0, False),  # p99 rose 26%
        (5000.0, 10.0, True),  # improvements always pass
    ],
)
def test_gate_allows_the_threshold_and_no_more(tput: float, p99: float, passed: bool) -> None:
    comparison = compare_runs(make_run(), make_run(entries_per_s=tput, p99=p99))
    assert comparison.passed is passed
    assert [g.change.name for g in comparison.gates] == [THROUGHPUT, P99]


def test_threshold_is_configurable() -> None:
    new = make_run(entries_per_s=950.0)
    assert compare_runs(make_run(), new, max_regression=10).passed
    assert not compare_runs(make_run(), new, max_regression=4).passed


def test_reports_of_different_work_are_refused() -> None:
    with pytest.raises(ReportMismatch, match="different work"):
        compare_runs(make_run(), make_run(entries=99), new_name="new.json")
    stopped = make_run()
    stopped.completed, stopped.stop_reason = False, "error"
    stopped.stopped_at = StoppedAt(line=3, entries=2)
    with pytest.raises(ReportMismatch, match="stopped early") as err:
        compare_runs(make_run(), stopped, new_name="new.json")
    assert err.value.location == "new.json"


def test_other_options_are_noted_not_refused() -> None:
    comparison = compare_runs(make_run(), make_run(mode="single"), base_name="a", new_name="b")
    assert any("mode 'batch' -> 'single'" in note for note in comparison.notes)


# -- the command -------------------------------------------------------------------


@pytest.fixture
def reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    write_report(make_run(), "base.json")
    write_report(make_run(entries_per_s=990.0), "same.json")
    write_report(make_run(entries_per_s=500.0), "slow.json")
    return tmp_path


def compare(*args: str) -> Result:
    return CliRunner().invoke(app, ["compare", *args])


def test_cli_passes_within_threshold(reports: Path) -> None:
    result = compare("base.json", "same.json")
    assert result.exit_code == 0, result.output
    assert "totals.entries_per_s" in result.stdout
    assert "ok: throughput" in result.stdout and "ok: p99 latency" in result.stdout
    assert result.stderr == ""


def test_cli_fails_on_regression_with_one_error_line(reports: Path) -> None:
    result = compare("base.json", "slow.json", "--markdown", "summary.md")
    assert result.exit_code == 1
    assert "REGRESSION: throughput" in result.stdout
    assert result.stderr.splitlines() == [
        "error: slow.json: throughput regressed by 50.0% (allowed: 25%)"
    ]
    summary = Path("summary.md").read_text(encoding="utf-8")
    assert summary.startswith("## ssp compare") and "| totals.entries_per_s |" in summary
    assert compare("base.json", "slow.json", "--max-regression", "60").exit_code == 0


def test_cli_quiet_prints_only_the_gate(reports: Path) -> None:
    result = compare("base.json", "same.json", "--quiet")
    assert result.exit_code == 0
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == ["ok", "ok"]


def test_cli_refuses_unreadable_and_mismatched_reports(reports: Path) -> None:
    Path("garbage.json").write_text("{not json", encoding="utf-8")
    Path("other.json").write_bytes(orjson.dumps({"schema": "something/2"}))
    write_report(make_run(entries=7), "short.json")
    for bad, text in (
        ("garbage.json", "error: garbage.json:"),
        ("other.json", "not an ssp.report/1 report"),
        ("short.json", "replayed 7 entries but base.json replayed 100"),
    ):
        result = compare("base.json", bad)
        assert result.exit_code == 1, bad
        assert text in result.stderr
        assert result.stderr.startswith("error: ")
    assert compare("base.json", "missing.json").exit_code == 2
    assert compare("base.json", "same.json", "--max-regression", "-1").exit_code == 2


def test_help_ends_with_examples() -> None:
    result = CliRunner().invoke(app, ["compare", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    examples = result.stdout[result.stdout.index("Examples:") :]
    assert "ssp compare base.json new.json --max-regression 10" in examples
