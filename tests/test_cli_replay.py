"""``ssp replay``, ``ssp explain`` and ``ssp report`` through the CLI: options, files, exit codes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_report import check_report
from typer.testing import CliRunner, Result

from ssp_cli import console
from ssp_cli.main import app

VIEWS = """\
CREATE VIEW active_users AS SELECT * FROM user WHERE status = 'active';

-- format: flat
CREATE VIEW user_threads AS
SELECT t.id AS id, u.name AS name FROM thread t JOIN user u ON t.author = u.id;
"""


def entry(op: str, table: str, key: int, **data: Any) -> str:
    return orjson.dumps({"op": op, "table": table, "id": str(key), "data": data}).decode()


LOG = [
    entry("CREATE", "user", 1, name="Ada", status="active"),
    entry("CREATE", "user", 2, name="Bob", status="away"),
    entry("CREATE", "thread", 1, author="user:1"),
    '{"op": "FLUSH"}',
    entry("UPDATE", "user", 2, name="Bob", status="active"),
    entry("CREATE", "thread", 2, author="user:2"),
    entry("DELETE", "user", 1),
]


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``views.sql`` and ``log.jsonl`` in a fresh working directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "views.sql").write_text(VIEWS, encoding="utf-8")
    (tmp_path / "log.jsonl").write_text("\n".join(LOG) + "\n", encoding="utf-8")
    return tmp_path


def ssp(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def replay(*args: str) -> Result:
    return ssp("replay", "views.sql", "log.jsonl", *args)


def report(path: str = "run.json") -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(Path(path).read_bytes())
    return doc


def test_replay_prints_a_summary_and_writes_nothing_unasked(files: Path) -> None:
    result = replay()
    assert result.exit_code == 0, result.output
    for text in ("entries", "throughput", "latency p99", "events created", "active_users"):
        assert text in result.stdout
    assert result.stderr == ""
    assert sorted(p.name for p in files.iterdir()) == ["log.jsonl", "views.sql"]


def test_quiet_prints_nothing(files: Path) -> None:
    result = replay("--quiet", "--report", "run.json")
    assert result.exit_code == 0
    assert result.stdout == "" and result.stderr == ""
    check_report(report())


def test_the_report_follows_section_6(files: Path) -> None:
    result = replay("--report", "run.json", "--batch-size", "2")
    assert result.exit_code == 0, result.output
    doc = report()
    check_report(doc)
    assert doc["completed"] is True and doc["stopped_at"] is None and doc["initial"] is None
    assert doc["totals"]["entries"] == len(LOG)
    assert doc["batch_stats"]["entries_received"] == len(LOG) - 1
    assert set(doc["views"]) == {"active_users", "user_threads"}
    assert doc["run"]["command"] == "replay"
    assert doc["run"]["options"]["batch_size"] == 2


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--mode", "single"], {"mode": "single"}),
        (["--mode", "DEFERRED", "--flush-every", "2"], {"mode": "deferred", "flush_every": 2}),
        (["--mode", "deferred", "--frame-ms", "2.5"], {"frame_ms": 2.5}),
        (["--mode", "deferred", "--pending-limit", "3"], {"pending_limit": 3}),
        (["--no-coalesce"], {"coalesce": False}),
        (["--executor", "sequential", "--workers", "2"], {"executor": "sequential", "workers": 2}),
        (["--parallel-threshold", "8"], {"parallel_threshold": 8}),
        (["--format", "flat", "--strict"], {"format": "flat", "strict": True}),
        (["--dialect", "sqlite"], {"dialect": "sqlite"}),
        (
            ["--param", "n=5", "--param", "s=abc", "--param", 'q="5"'],
            {"params": {"n": 5, "s": "abc", "q": "5"}},
        ),
    ],
)
def test_replay_options_reach_the_run(
    files: Path, args: list[str], expected: dict[str, Any]
) -> None:
    result = replay(*args, "--report", "run.json", "--quiet")
    assert result.exit_code == 0, result.output
    options = report()["run"]["options"]
    assert {key: options[key] for key in expected} == expected


def test_every_mode_ends_in_the_same_state(files: Path) -> None:
    dumps = set()
    for mode in ("single", "batch", "deferred"):
        result = replay("--mode", mode, "--dump", f"{mode}.json", "--quiet")
        assert result.exit_code == 0, result.output
        dumps.add((files / f"{mode}.json").read_bytes())
    assert len(dumps) == 1
    state = orjson.loads(dumps.pop())
    assert state["views"]["active_users"]["members"] == [["user:2", 2]]
    assert state["views"]["active_users"]["rows"] == [
        {"id": "user:2", "name": "Bob", "status": "active"}
    ]
    assert list(state["views"]["active_users"]["rows"][0]) == ["id", "name", "status"]


def test_updates_are_written_as_jsonl(files: Path) -> None:
    result = replay("--updates", "updates.jsonl", "--quiet", "--format", "streaming")
    assert result.exit_code == 0, result.output
    lines = [orjson.loads(line) for line in (files / "updates.jsonl").read_bytes().splitlines()]
    assert lines and all(line["format"] == "streaming" for line in lines)
    assert [line["seq"] for line in lines] == sorted(line["seq"] for line in lines)
    assert {"id": "user:1", "event": "created", "version": 1} in lines[0]["records"]


def test_the_log_can_come_from_stdin(files: Path) -> None:
    log = (files / "log.jsonl").read_text(encoding="utf-8")
    result = CliRunner().invoke(
        app, ["replay", "views.sql", "-", "--report", "run.json", "--quiet"], input=log
    )
    assert result.exit_code == 0, result.output
    assert report()["totals"]["entries"] == len(LOG)


def test_markdown_is_appended(files: Path) -> None:
    (files / "summary.md").write_text("before\n", encoding="utf-8")
    result = replay("--markdown", "summary.md", "--quiet")
    assert result.exit_code == 0
    text = (files / "summary.md").read_text(encoding="utf-8")
    assert text.startswith("before\n### ✅ ssp replay: completed: 7 entries")
    assert "<summary>Views by time" in text


def test_initial_records_are_reported_apart(files: Path) -> None:
    seed = orjson.dumps({"table": "user", "id": "9", "data": {"status": "active"}})
    (files / "seed.jsonl").write_bytes(seed + b"\n")
    result = replay("--initial", "seed.jsonl", "--report", "run.json", "--dump", "d.json")
    assert result.exit_code == 0, result.output
    doc = report()
    assert doc["initial"]["records"] == 1
    assert doc["totals"]["entries"] == len(LOG)
    members = orjson.loads((files / "d.json").read_bytes())["views"]["active_users"]["members"]
    assert ["user:9", 1] in members


def test_a_bad_line_is_one_error_line_exit_1_and_a_report(files: Path) -> None:
    lines = [*LOG[:2], '{"op": "CREATE", "table": "user"', *LOG[2:]]
    (files / "log.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = replay("--report", "run.json", "--dump", "d.json")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if not line.startswith("hint: ")]
    assert len(errors) == 1 and errors[0].startswith("error: log.jsonl:3: ")
    assert "failed: error: log.jsonl:3: " in result.stdout
    assert "(stopped at log.jsonl:3 after 2 entries)" in result.stdout
    doc = report()
    check_report(doc)
    assert (doc["completed"], doc["stop_reason"]) == (False, "error")
    assert doc["stopped_at"] == {"line": 3, "entries": 2}
    assert not (files / "d.json").exists()


def test_skipped_lines_go_to_the_rejects_file(files: Path) -> None:
    lines = [*LOG[:2], "not json", *LOG[2:]]
    (files / "log.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = replay("--on-error", "skip", "--rejects", "bad.jsonl", "--report", "run.json")
    assert result.exit_code == 0, result.output
    assert (files / "bad.jsonl").read_text() == "not json\n"
    errors = report()["errors"]
    assert (errors["rejected"], errors["rejected_lines"]) == (1, [3])


def test_max_entries_stops_early_with_exit_0(files: Path) -> None:
    result = replay("--max-entries", "3", "--report", "run.json", "--quiet")
    assert result.exit_code == 0
    doc = report()
    assert (doc["completed"], doc["stop_reason"]) == (False, "max_entries")
    assert doc["stopped_at"] == {"line": 3, "entries": 3}


def test_strict_turns_an_anomaly_into_an_error(files: Path) -> None:
    (files / "log.jsonl").write_text(LOG[0] + "\n" + LOG[0] + "\n", encoding="utf-8")
    assert replay("--quiet").exit_code == 0
    result = replay("--quiet", "--strict", "--mode", "single")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: log.jsonl:2: ")


def test_the_processes_executor_gives_the_sequential_updates(files: Path, tmp_path: Path) -> None:
    outputs = []
    for executor in ("sequential", "processes"):
        updates = tmp_path / f"{executor}.jsonl"
        dump = tmp_path / f"{executor}.json"
        result = replay(
            "--executor",
            executor,
            "--workers",
            "2",
            "--parallel-threshold",
            "1",
            "--updates",
            str(updates),
            "--dump",
            str(dump),
        )
        assert result.exit_code == 0, result.stderr
        outputs.append((updates.read_bytes(), dump.read_bytes()))
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize(
    "args",
    [
        ["--mode", "stream"],
        ["--batch-size", "0"],
        ["--param", "novalue"],
        ["--frame-ms", "0"],
        ["--on-error", "ignore"],
        ["--no-such-option"],
    ],
)
def test_usage_errors_exit_2(files: Path, args: list[str]) -> None:
    assert replay(*args).exit_code == 2


def test_missing_inputs_are_usage_errors(files: Path) -> None:
    assert ssp("replay", "views.sql", "nope.jsonl").exit_code == 2
    assert ssp("replay").exit_code == 2


def test_an_output_over_an_input_is_refused(files: Path) -> None:
    before = (files / "log.jsonl").read_bytes()
    result = replay("--report", "log.jsonl")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: --report: log.jsonl is an input file")
    assert (files / "log.jsonl").read_bytes() == before


def test_sql_errors_name_the_view(files: Path) -> None:
    (files / "views.sql").write_text("CREATE VIEW v AS SELECT * FROM t WHERE x = $missing;\n")
    result = replay("--report", "run.json")
    assert result.exit_code == 1
    assert "view v" in result.stderr.splitlines()[0]
    assert report()["stop_reason"] == "error"


def test_errors_escape_control_characters(capsys: pytest.CaptureFixture[str]) -> None:
    console.print_error("bad \x1b[31mred", location="log.jsonl:1", hint="a\nb")
    assert capsys.readouterr().err == "error: log.jsonl:1: bad \\x1b[31mred\nhint: a\\nb\n"


def test_explain_prints_plans_and_the_dependency_index(files: Path) -> None:
    result = ssp("explain", "views.sql")
    assert result.exit_code == 0, result.output
    assert "view active_users" in result.stdout and "view user_threads" in result.stdout
    assert "Dependency index" in result.stdout
    assert "Tables read by several views: user" in result.stdout


def test_explain_binds_params(files: Path) -> None:
    (files / "views.sql").write_text("CREATE VIEW mine AS SELECT * FROM user WHERE id = $me;\n")
    assert ssp("explain", "views.sql").exit_code == 1
    assert ssp("explain", "views.sql", "--param", "me=user:1").exit_code == 0


def test_report_renders_a_saved_run(files: Path) -> None:
    assert replay("--report", "run.json", "--quiet").exit_code == 0
    result = ssp("report", "run.json", "--markdown", "summary.md")
    assert result.exit_code == 0, result.output
    assert "latency p99" in result.stdout
    assert "views.sql × log.jsonl · mode batch" in (files / "summary.md").read_text()


def test_report_refuses_other_json(files: Path) -> None:
    (files / "other.json").write_text('{"schema": "x"}')
    result = ssp("report", "other.json")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: other.json: not an ssp.report/1 report")
    (files / "broken.json").write_text("{")
    assert ssp("report", "broken.json").exit_code == 1


@pytest.mark.parametrize("command", ["replay", "explain", "report"])
def test_help_ends_with_examples(command: str) -> None:
    result = ssp(command, "--help")
    assert result.exit_code == 0
    examples = result.stdout.split("Examples:")[1]
    lines = [line.strip() for line in examples.splitlines() if line.strip()]
    assert lines and all(line.startswith(f"ssp {command} ") for line in lines)


def big_log(path: Path, lines: int) -> None:
    with path.open("wb") as out:
        for n in range(lines):
            data = {"name": f"user {n}", "status": "active"}
            out.write(orjson.dumps({"op": "CREATE", "table": "user", "id": str(n), "data": data}))
            out.write(b"\n")


def test_ctrl_c_writes_the_report_and_exits_130(tmp_path: Path) -> None:
    (tmp_path / "views.sql").write_text(VIEWS, encoding="utf-8")
    big_log(tmp_path / "log.jsonl", 300_000)
    updates = tmp_path / "updates.jsonl"
    args = ["replay", "views.sql", "log.jsonl", "--mode", "single", "--report", "run.json"]
    process = subprocess.Popen(
        [sys.executable, "-m", "ssp_cli", *args, "--updates", str(updates)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 30
        while not (updates.exists() and updates.stat().st_size > 0):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the replay never started"
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert b"Traceback" not in stderr
    assert stderr.decode().splitlines()[-1].startswith("error: interrupted at log.jsonl:")
    assert b"stopped (interrupted)" in stdout
    doc = report(str(tmp_path / "run.json"))
    check_report(doc)
    assert (doc["completed"], doc["stop_reason"]) == (False, "interrupted")
    assert 0 < doc["stopped_at"]["entries"] < 300_000
