"""The Run record and its renderers: the JSON schema of SPEC section 6, Markdown, terminal."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import orjson
import pytest
from rich.console import Console

from circuit.metrics import BatchStats
from circuit.report import (
    SCHEMA,
    ReportFormatError,
    Run,
    append_markdown,
    read_report,
    render_markdown,
    write_report,
)
from circuit.report.run import (
    Errors,
    InitialLoad,
    Latency,
    RunError,
    RunInfo,
    StoppedAt,
    Totals,
)
from ssp_cli.terminal import render_terminal

NUMBER = (int, float)

SECTION_6: dict[str, Any] = {
    "schema": str,
    "run": {
        "command": str,
        "argv": list,
        "options": dict,
        "views_path": (str, type(None)),
        "log_path": (str, type(None)),
        "python": str,
        "platform": str,
        "started_at": str,
        "git_revision": (str, type(None)),
    },
    "totals": {
        "entries": int,
        "ingest_calls": int,
        "wall_s": NUMBER,
        "read_s": NUMBER,
        "ingest_s": NUMBER,
        "entries_per_s": NUMBER,
        "latency_us": {"p50": NUMBER, "p90": NUMBER, "p99": NUMBER, "max": NUMBER},
    },
    "batch_stats": {
        "entries_received": int,
        "entries_after_coalesce": int,
        "noop_updates": int,
        "anomalies": dict,
        "tables_touched": int,
        "views_impacted": int,
        "views_updated": int,
        "events": {"created": int, "updated": int, "deleted": int},
        "duration_ns": int,
    },
    "views": dict,
    "operators": list,
    "errors": {"rejected": int, "rejected_lines": list, "anomalies": dict},
    "completed": bool,
    "stop_reason": (str, type(None)),
}
INITIAL = {"records": int, "load_s": NUMBER, "register_s": NUMBER}
STOPPED_AT = {"line": int, "entries": int}
VIEW_KEYS = {"invocations", "time_ns", "time_ns_p50", "time_ns_p99", "rows", "members"}
OPERATOR = {"view": str, "path": str, "self_ns": int, "rows_in": int, "rows_out": int}


def check_shape(value: Any, shape: Any, where: str = "report") -> None:
    """Every key of ``shape`` is in ``value`` with the given type (nested dicts recurse)."""
    if isinstance(shape, dict):
        assert isinstance(value, dict), where
        for key, inner in shape.items():
            assert key in value, f"{where}.{key} missing"
            check_shape(value[key], inner, f"{where}.{key}")
    else:
        assert isinstance(value, shape), f"{where}: {type(value).__name__}"
        if shape is int or shape == NUMBER:
            assert not isinstance(value, bool), where


def check_report(doc: dict[str, Any]) -> None:
    """The report of SPEC section 6, key by key (the CLI tests use it too)."""
    check_shape(doc, SECTION_6)
    assert doc["schema"] == SCHEMA
    assert "initial" in doc and "stopped_at" in doc
    if doc["initial"] is not None:
        check_shape(doc["initial"], INITIAL, "initial")
    if doc["stopped_at"] is not None:
        check_shape(doc["stopped_at"], STOPPED_AT, "stopped_at")
    assert doc["stop_reason"] in (None, "interrupted", "error", "max_entries")
    assert doc["completed"] == (doc["stop_reason"] is None)
    assert len(doc["errors"]["rejected_lines"]) <= 1000
    for name, metrics in doc["views"].items():
        assert set(metrics) >= VIEW_KEYS, name
    for operator in doc["operators"]:
        check_shape(operator, OPERATOR, "operators[]")


def view_metrics(time_ns: int) -> dict[str, Any]:
    return {
        "invocations": 3,
        "updates_emitted": 2,
        "events": {"created": 1, "updated": 0, "deleted": 0},
        "rows": 4,
        "members": 5,
        "state_rows": 6,
        "incremental_updates": 3,
        "full_recomputes": 0,
        "subquery_cache_hits": 0,
        "subquery_cache_misses": 0,
        "time_ns": time_ns,
        "time_ns_p50": time_ns // 3,
        "time_ns_p99": time_ns // 2,
    }


def sample_run(views: int = 3, **changes: Any) -> Run:
    run = Run(
        run=RunInfo(
            command="replay",
            argv=["ssp", "replay", "v.sql", "log.jsonl"],
            options={"mode": "batch", "batch_size": 100},
            views_path="v.sql",
            log_path="log.jsonl",
            python="CPython 3.11.7",
            platform="Linux",
            started_at="2025-01-01T00:00:00.000Z",
            git_revision=None,
        ),
        totals=Totals(
            entries=1200,
            ingest_calls=12,
            wall_s=0.5,
            read_s=0.1,
            ingest_s=0.3,
            entries_per_s=4000.0,
            latency_us=Latency(p50=10.0, p90=20.0, p99=30.5, max=40.0),
        ),
        batch_stats=BatchStats(entries_received=1200, anomalies={"stale_version": 2}),
        views={f"view{i}": view_metrics(1000 * (i + 1)) for i in range(views)},
        operators=[{"view": "view0", "path": "scan", "self_ns": 5, "rows_in": 1, "rows_out": 1}],
        errors=Errors(rejected=2, rejected_lines=[7, 9], anomalies={"stale_version": 2}),
    )
    for key, value in changes.items():
        setattr(run, key, value)
    return run


def test_the_report_has_every_key_of_section_6() -> None:
    check_report(sample_run().to_json())
    failed = sample_run(
        completed=False,
        stop_reason="error",
        stopped_at=StoppedAt(line=17, entries=16),
        initial=InitialLoad(records=10, load_s=0.1, register_s=0.2),
    )
    check_report(failed.to_json())


def test_write_and_read_round_trip_atomically(tmp_path: Path) -> None:
    run = sample_run(
        initial=InitialLoad(records=10, load_s=0.1, register_s=0.2),
        extra={"bench": {"combinations": []}},
    )
    path = tmp_path / "run.json"
    write_report(run, path)
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]
    doc = orjson.loads(path.read_bytes())
    assert list(doc)[:2] == ["schema", "run"]
    assert doc["bench"] == {"combinations": []}
    assert read_report(path) == run
    assert path.read_bytes().endswith(b"\n")


def test_other_json_is_not_a_report() -> None:
    with pytest.raises(ReportFormatError, match="schema"):
        Run.from_json({"schema": "other/1"})
    with pytest.raises(ReportFormatError, match="malformed"):
        Run.from_json({"schema": SCHEMA, "run": {}})
    with pytest.raises(ReportFormatError):
        Run.from_json([1, 2])


def test_markdown_has_the_summary_tables() -> None:
    text = render_markdown(sample_run())
    first, second, third = text.splitlines()[:3]
    assert first.startswith("### ✅ ssp replay: completed: 1,200 entries, 4,000 entries/s")
    assert "wall 0.50 s" in first
    assert second == "" and third.startswith("v.sql × log.jsonl · mode ")
    for title in ("Throughput and latency", "BatchStats totals", "Anomalies and rejects"):
        assert f"<details><summary>{title}</summary>" in text
    assert text.count("<details>") == text.count("</details>") == 4
    assert "| latency p99 (µs) | 30.5 |" in text
    assert "| anomaly stale_version | 2 |" in text
    assert "| rejected at lines | 7, 9 |" in text
    assert "| --- | ---: |" in text


def test_markdown_shows_the_top_10_views_by_time_and_stays_small() -> None:
    text = render_markdown(sample_run(views=500))
    assert "<summary>Views by time (top 10 of 500)</summary>" in text
    assert "| view499 |" in text and "| view489 |" not in text
    assert "- 490 more views not shown (" in text
    assert len(text.encode()) < 16 * 1024


def test_markdown_stays_under_1_mib_for_30000_views_with_long_names() -> None:
    run = sample_run(views=0)
    run.views = {f"view_{i}_" + "x" * 500: view_metrics(i) for i in range(30_000)}
    run.error = RunError("m" * 100_000, "views.sql:1:1: view " + "y" * 10_000, "h" * 10_000)
    run.completed, run.stop_reason = False, "error"
    assert len(render_markdown(run).encode()) < 64 * 1024


def test_markdown_cells_cannot_break_the_table() -> None:
    run = sample_run(views=0)
    run.views = {"a|b\n<script>": view_metrics(1)}
    text = render_markdown(run)
    # Rendered, the cell reads a|b\n<script>: the escaped newline keeps its backslash.
    assert "| a\\|b\\\\n&lt;script&gt; |" in text


def test_markdown_says_where_a_failed_run_stopped() -> None:
    run = sample_run(completed=False, stop_reason="max_entries", stopped_at=StoppedAt(17, 16))
    first = render_markdown(run).splitlines()[0]
    assert "stopped (max_entries) at log.jsonl:17 after 16 entries" in first


def test_markdown_of_a_failed_run_names_the_cause_in_its_first_two_lines() -> None:
    run = sample_run(completed=False, stop_reason="error", stopped_at=StoppedAt(0, 0))
    run.error = RunError("no such column 'nme'", "v.sql:3:12: view top", "did you mean 'name'?")
    first, second = render_markdown(run).splitlines()[:2]
    assert first == "### ❌ ssp replay: failed: error: v.sql:3:12: view top: no such column 'nme'"
    assert second == "hint: did you mean 'name'?"
    assert "log.jsonl:0" not in render_markdown(run)


def test_the_error_round_trips_through_the_report(tmp_path: Path) -> None:
    run = sample_run(completed=False, stop_reason="error", stopped_at=StoppedAt(3, 2))
    run.error = RunError("not JSON", "log.jsonl:3", None)
    path = tmp_path / "run.json"
    write_report(run, path)
    assert orjson.loads(path.read_bytes())["error"] == {
        "message": "not JSON",
        "location": "log.jsonl:3",
        "hint": None,
    }
    assert read_report(path) == run
    assert sample_run().to_json()["error"] is None


def test_markdown_is_appended(tmp_path: Path) -> None:
    path = tmp_path / "summary.md"
    path.write_text("# CI\n", encoding="utf-8")
    append_markdown(sample_run(), path)
    append_markdown(sample_run(), path)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# CI\n") and text.count("✅ ssp replay:") == 2


def test_terminal_tables_show_throughput_latency_and_views() -> None:
    buffer = io.StringIO()
    run = sample_run()
    run.views["[bold]x\x1b"] = view_metrics(10**9)
    render_terminal(run, Console(file=buffer, width=200))
    out = buffer.getvalue()
    for text in ("throughput", "4,000", "latency p99", "30.5", "events created", "Views by time"):
        assert text in out
    assert "[bold]x\\x1b" in out and "\x1b" not in out
