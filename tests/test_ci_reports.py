"""Reports a CI job can trust (issue 14): the cause of a failure, the header, the CLI basics."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from test_cli_replay import LOG, VIEWS, replay, report, ssp


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "views.sql").write_text(VIEWS, encoding="utf-8")
    (tmp_path / "log.jsonl").write_text("\n".join(LOG) + "\n", encoding="utf-8")
    return tmp_path


def test_a_bad_views_file_is_named_in_the_report_and_the_summary(files: Path) -> None:
    (files / "views.sql").write_text("CREATE VIEW broken AS SELEC * FROM user;\n")
    result = replay("--report", "run.json", "--markdown", "summary.md")
    assert result.exit_code == 1
    printed = result.stderr.splitlines()[0].removeprefix("error: ")
    error = report()["error"]
    assert error is not None and f"{error['location']}: {error['message']}" == printed
    assert error["location"].startswith("views.sql")
    first_two = "\n".join((files / "summary.md").read_text().splitlines()[:2])
    assert f"failed: error: {printed}" in first_two
    assert "log.jsonl:0" not in (files / "summary.md").read_text()


def test_a_completed_run_has_no_error_and_its_header_names_the_options(files: Path) -> None:
    result = replay("--report", "run.json", "--mode", "single", "--batch-size", "7")
    assert result.exit_code == 0, result.output
    assert report()["error"] is None
    lines = result.stdout.splitlines()
    assert "mode single, executor sequential" in lines[2]
    assert "batch size" not in lines[2]  # single mode ignores it
    result = replay("--batch-size", "7")
    assert "mode batch, batch size 7, executor sequential" in result.stdout


def test_an_unwritable_output_is_refused_before_the_replay(files: Path) -> None:
    for flag in ("--report", "--markdown"):
        result = replay(flag, "missing/dir/out.file")
        assert result.exit_code == 1, (flag, result.output)
        assert result.stderr.startswith(f"error: {flag}: cannot write missing/dir/out.file")
        assert result.stdout == ""  # nothing was replayed
    assert not (files / "missing").exists()


def test_version_and_short_help() -> None:
    result = ssp("--version")
    assert result.exit_code == 0 and result.stdout.startswith("ssp ")
    for command in ([], ["replay"], ["compare"], ["bench"], ["report"], ["profile"]):
        result = ssp(*command, "-h")
        assert result.exit_code == 0, command
        assert "Usage: ssp" in result.stdout


def test_the_views_table_is_not_cut_when_piped(files: Path) -> None:
    long_name = "a_view_with_a_rather_long_name_that_would_not_fit_in_eighty_columns_at_all"
    (files / "views.sql").write_text(
        f"CREATE VIEW {long_name} AS SELECT * FROM user WHERE status = 'active';\n"
    )
    result = replay()
    assert result.exit_code == 0, result.output
    assert any(long_name in line for line in result.stdout.splitlines())


def test_report_of_a_bench_includes_the_bench_table(files: Path) -> None:
    args = ("bench", "views.sql", "log.jsonl", "--matrix", "mode=single,batch", "--repeat", "1")
    assert ssp(*args, "--report", "bench.json", "--quiet").exit_code == 0
    result = ssp("report", "bench.json", "--markdown", "summary.md")
    assert result.exit_code == 0, result.output
    assert "Bench: 2 combinations x 1 runs" in result.stdout
    assert "mode=batch" in result.stdout
    assert "<summary>Bench: 2 combinations" in (files / "summary.md").read_text()
    assert orjson.loads((files / "bench.json").read_bytes())["bench"]["combinations"][0]["runs"]


def test_the_timeline_is_bounded_and_counts_every_call_once() -> None:
    from circuit.metrics import BatchStats
    from circuit.timeline import Timeline

    timeline = Timeline(max_points=4)
    for call in range(1, 12):
        timeline.add(call * 10, BatchStats(entries_received=10, duration_ns=call))
    doc = timeline.to_json()
    assert doc["span_calls"] == 4  # 11 calls: merged twice to stay within 4 buckets
    assert len(doc["calls"]) <= 4
    assert sum(doc["calls"]) == 11 and sum(doc["received"]) == 110
    assert sum(doc["ingest_ns"]) == sum(range(1, 12))
    assert doc["max_ns"] == [4, 8, 11] and doc["entries"] == [40, 80, 110]


def test_a_replay_report_carries_its_timeline(files: Path) -> None:
    assert replay("--report", "run.json", "--mode", "single").exit_code == 0
    timeline = report()["timeline"]
    assert sum(timeline["calls"]) == report()["totals"]["ingest_calls"]
    assert timeline["entries"][-1] == report()["totals"]["entries"]
