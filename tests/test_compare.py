"""``ssp compare``: metric changes, the regression gate's exit codes, refused reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner, Result

from circuit.compare import (
    P99,
    THROUGHPUT,
    ReportMismatch,
    compare_runs,
    flatten,
    parse_metric_limits,
)
from circuit.errors import CircuitError
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
    assert [j.name for j in comparison.judgements] == [THROUGHPUT, P99]
    assert all("threshold alone (single runs)" in j.rule for j in comparison.judgements)


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
    assert result.stdout.splitlines()[0] == "verdict: pass (throughput, p99 latency)"
    assert "ok: throughput" in result.stdout and "ok: p99 latency" in result.stdout
    assert "0 → 0" not in result.stdout and "unchanged beyond noise: 1 views (v)" in result.stdout
    assert result.stderr == ""


def test_cli_fails_on_regression_with_one_error_line(reports: Path) -> None:
    result = compare("base.json", "slow.json", "--markdown", "summary.md")
    assert result.exit_code == 1
    assert "REGRESSION: throughput" in result.stdout
    assert result.stderr.splitlines() == [
        "error: slow.json: throughput regressed by 50.0% (allowed: 25%; single runs, "
        "threshold alone)"
    ]
    summary = Path("summary.md").read_text(encoding="utf-8")
    first = summary.splitlines()[0]
    assert first.startswith("### ❌ ssp compare: verdict: regression (throughput)")
    assert compare("base.json", "slow.json", "--max-regression", "60").exit_code == 0


def test_cli_quiet_prints_only_the_gate(reports: Path) -> None:
    result = compare("base.json", "same.json", "--quiet")
    assert result.exit_code == 0
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == ["verdict", "ok", "ok"]


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


# -- the noise-aware gate ----------------------------------------------------------


def sampled(throughputs: list[float], p99s: list[float] | None = None) -> Run:
    """A bench-like report: its ``bench`` section holds one run per sample."""
    p99s = p99s or [50.0] * len(throughputs)
    run = make_run(entries_per_s=sorted(throughputs)[len(throughputs) // 2])
    runs = [
        {
            "entries_per_s": t,
            "latency_p50_us": 10.0,
            "latency_p90_us": 20.0,
            "latency_p99_us": p,
            "latency_max_us": p * 2,
        }
        for t, p in zip(throughputs, p99s, strict=True)
    ]
    run.extra["bench"] = {"repeat": len(runs), "combinations": [{"label": "a", "runs": runs}]}
    return run


def test_mann_whitney_matches_known_exact_and_normal_values() -> None:
    from circuit.stats import mann_whitney_u, min_p_value

    # fully separated 5 vs 5: the exact two-sided p is 2 / C(10, 5)
    test = mann_whitney_u([6, 7, 8, 9, 10], [1, 2, 3, 4, 5])
    assert (test.u, test.method) == (25.0, "exact")
    assert test.p_value == pytest.approx(2 / 252)
    assert mann_whitney_u([1, 3, 5], [2, 4, 6]).p_value == pytest.approx(0.7)
    # ties: the normal approximation with tie and continuity corrections; by hand
    # U = 1.5, sd = sqrt(36 / 12 * (13 - 96 / 132)) = 6.068, z = 16 / 6.068 = 2.637
    tied = mann_whitney_u([1, 2, 2, 3, 3, 3], [3, 4, 4, 5, 5, 5])
    assert (tied.u, tied.method) == (1.5, "normal")
    assert tied.p_value == pytest.approx(0.00837, abs=0.0001)
    assert mann_whitney_u([1, 1], [1, 1]).p_value == 1.0
    assert min_p_value(3, 3) == pytest.approx(0.1)
    assert min_p_value(5, 5) < 0.05


def test_sampled_regression_needs_significance_and_the_limit() -> None:
    base = sampled([1000, 1010, 990, 1005, 995])
    slow = sampled([700, 720, 690, 710, 705])
    comparison = compare_runs(base, slow)
    assert comparison.verdict == "regression"
    tput = comparison.judgements[0]
    assert tput.outcome == "regression" and tput.p_value == pytest.approx(2 / 252)
    assert "Mann-Whitney U over 5 vs 5 runs" in tput.rule
    assert [j.name for j in comparison.decided_by] == [THROUGHPUT]


def test_noisy_samples_beyond_the_limit_are_inconclusive_not_a_failure() -> None:
    base = sampled([1000, 600, 1400, 900, 1100])
    noisy = sampled([800, 1300, 500, 850, 1000])
    comparison = compare_runs(base, noisy)
    assert comparison.judgements[0].outcome == "inconclusive"
    assert comparison.passed and comparison.verdict == "inconclusive"
    assert "the samples overlap" in comparison.judgements[0].rule


def test_three_runs_cannot_reach_significance_and_say_so() -> None:
    comparison = compare_runs(sampled([1000, 1001, 1002]), sampled([500, 501, 502]))
    assert comparison.verdict == "inconclusive"
    assert "use --repeat 5" in comparison.judgements[0].rule


def test_a_significant_but_small_difference_passes() -> None:
    comparison = compare_runs(sampled([1000, 1001, 1002, 1003, 1004]), sampled([970] * 5))
    tput = comparison.judgements[0]
    assert tput.outcome == "pass" and "a real difference" in tput.rule


def test_sampled_improvement_and_per_metric_limits() -> None:
    fast = sampled([2000, 2010, 1990, 2005, 1995], [30.0, 31, 29, 30, 30])
    comparison = compare_runs(sampled([1000, 1010, 990, 1005, 995]), fast)
    assert comparison.verdict == "improvement"
    slow_p99 = sampled([1000, 1010, 990, 1005, 995], [65.0, 66, 64, 65, 65])
    base = sampled([1000, 1010, 990, 1005, 995])
    assert compare_runs(base, slow_p99).verdict == "regression"
    loose = compare_runs(base, slow_p99, metrics=parse_metric_limits(["p99=40"]))
    assert loose.verdict == "pass"
    with pytest.raises(CircuitError, match="NAME=PCT"):
        parse_metric_limits(["p99"])
    with pytest.raises(ReportMismatch, match="no metric"):
        compare_runs(base, slow_p99, metrics={"totals.nothing": 5.0})


def test_a_single_run_against_samples_is_judged_by_the_threshold_and_noted() -> None:
    comparison = compare_runs(sampled([1000, 1010, 990, 1005, 995]), make_run(), new_name="n")
    assert "threshold alone" in comparison.judgements[0].rule
    assert any("n holds a single run" in note for note in comparison.notes)


def test_runs_capped_at_the_same_entry_compare() -> None:
    def capped(line: int) -> Run:
        run = make_run()
        run.completed, run.stop_reason = False, "max_entries"
        run.stopped_at = StoppedAt(line=line, entries=100)
        return run

    assert compare_runs(capped(101), capped(101)).verdict == "pass"
    with pytest.raises(ReportMismatch, match="different work"):
        compare_runs(capped(101), make_run())
    with pytest.raises(ReportMismatch, match="line 120 but BASE") as err:
        compare_runs(capped(101), capped(120))
    assert err.value.hint == "give both runs the same --max-entries"


def test_unchanged_views_collapse_to_one_line_and_changed_ones_are_shown() -> None:
    base, new = make_run(), make_run()
    base.views = {f"v{i}": {"invocations": 10, "time_ns": 5000, "rows": 3} for i in range(20)}
    new.views = {k: dict(v) for k, v in base.views.items()}
    new.views["v7"]["rows"] = 4
    comparison = compare_runs(base, new)
    assert [c.name for c in comparison.shown()] == ["views.v7.rows"]
    views, _ = comparison.unchanged()
    assert len(views) == 19 and "v7" not in views


def test_markdown_of_30000_views_stays_under_1_mib() -> None:
    from ssp_cli.compare import render_markdown

    base, new = make_run(), make_run(entries_per_s=500.0)
    base.views = {f"view_{i}": {"invocations": 10, "rows": i} for i in range(30_000)}
    new.views = {k: {"invocations": 11, "rows": v["rows"] + 1} for k, v in base.views.items()}
    text = render_markdown(compare_runs(base, new), "base.json", "new.json")
    assert len(text.encode()) < 1 << 20
    assert text.splitlines()[0].startswith("### ❌ ssp compare: verdict: regression")
    assert "<details>" in text


def test_cli_json_and_github_formats(reports: Path) -> None:
    result = compare("base.json", "slow.json", "--format", "json")
    assert result.exit_code == 1
    verdict = orjson.loads(result.stdout)
    assert verdict["verdict"] == "regression" and verdict["decided_by"] == [THROUGHPUT]
    assert verdict["metrics"][0]["test"] == "threshold"
    result = compare("base.json", "slow.json", "--format", "github")
    assert result.exit_code == 1
    errors = [line for line in result.stdout.splitlines() if line.startswith("::error ")]
    assert len(errors) == 1 and "REGRESSION: throughput" in errors[0]
    write_report(make_run(entries_per_s=5000.0), "fast.json")
    result = compare("base.json", "fast.json", "--format", "github")
    assert result.exit_code == 0
    assert any(line.startswith("::notice ") for line in result.stdout.splitlines())
