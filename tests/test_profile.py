"""``ssp profile`` and the circuit flamegraph renderers: formats produced and readable."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_compare import make_run
from test_report import check_report
from typer.testing import CliRunner, Result

from circuit.metrics import FakeClock
from circuit.replay import ReplayOptions, replay
from circuit.report.folded import (
    OUTSIDE_VIEWS,
    FoldedFormatError,
    Stack,
    circuit_stacks,
    parse_folded,
    render_folded,
)
from circuit.report.speedscope import SPEEDSCOPE_SCHEMA, render_speedscope
from ssp_cli import profile
from ssp_cli.main import app

VIEWS = """\
CREATE VIEW active AS SELECT * FROM user WHERE status = 'active';
CREATE VIEW "odd;name" AS SELECT t.id AS id, u.id AS author FROM thread t JOIN user u ON t.author = u.id;
"""
LOG = "\n".join(
    orjson.dumps(entry).decode()
    for entry in [
        {"op": "CREATE", "table": "user", "id": "1", "data": {"status": "active"}},
        {"op": "CREATE", "table": "user", "id": "2", "data": {"status": "away"}},
        {"op": "CREATE", "table": "thread", "id": "1", "data": {"author": "user:1"}},
        {"op": "UPDATE", "table": "user", "id": "2", "data": {"status": "active"}},
    ]
)


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "views.sql").write_text(VIEWS, encoding="utf-8")
    (tmp_path / "log.jsonl").write_text(LOG + "\n", encoding="utf-8")
    return tmp_path


def test_circuit_stacks_split_view_time_into_operators() -> None:
    run = make_run()  # ingest_s 0.1 s; view v: 5000 ns, of which v;join 100 ns
    stacks = circuit_stacks(run)
    assert stacks == [
        Stack(("v",), 4900),
        Stack(("v", "join"), 100),
        Stack((OUTSIDE_VIEWS,), 100_000_000 - 5000),
    ]


def test_folded_lines_round_trip_and_parse(files: Path) -> None:
    run = replay("views.sql", "log.jsonl", ReplayOptions(mode="single"), clock=FakeClock())
    stacks = circuit_stacks(run)
    text = render_folded(stacks)
    assert parse_folded(text) == stacks
    roots = {s.frames[0] for s in stacks}
    assert {"active", "odd,name"} <= roots  # ';' in a name cannot split a frame
    for line in text.splitlines():
        frames, _, weight = line.rpartition(" ")
        assert int(weight) > 0 and all(frames.split(";"))
    joined = [s for s in stacks if s.frames[0] == "odd,name" and len(s.frames) > 1]
    assert joined and all(";" not in f for s in joined for f in s.frames)


def test_parse_folded_rejects_other_text() -> None:
    with pytest.raises(FoldedFormatError, match="line 2"):
        parse_folded("a;b 3\nno weight here\n")


def test_speedscope_document_has_the_schema_keys() -> None:
    stacks = [Stack(("v",), 10), Stack(("v", "join"), 5), Stack(("w", "join"), 7)]
    doc = orjson.loads(render_speedscope(stacks, "test"))
    assert doc["$schema"] == SPEEDSCOPE_SCHEMA
    assert {"shared", "profiles", "name", "activeProfileIndex", "exporter"} <= set(doc)
    frames = [f["name"] for f in doc["shared"]["frames"]]
    assert frames == ["v", "join", "w"]  # each distinct frame once
    (prof,) = doc["profiles"]
    assert prof["type"] == "sampled" and prof["unit"] == "nanoseconds"
    assert prof["samples"] == [[0], [0, 1], [2, 1]]
    assert prof["weights"] == [10, 5, 7]
    assert prof["endValue"] == 22


def test_replay_argv_rebuilds_the_options(files: Path) -> None:
    options = ReplayOptions(
        mode="deferred",
        batch_size=7,
        flush_every=3,
        frame_ms=16.0,
        coalesce=False,
        params={"n": 5, "s": "x y"},
        format="flat",
        strict=True,
        max_entries=100,
    )
    argv = profile.replay_argv(options)
    result = CliRunner().invoke(
        app, ["replay", "views.sql", "log.jsonl", *argv, "--quiet", "--report", "r.json"]
    )
    assert result.exit_code == 0, result.output
    assert orjson.loads(Path("r.json").read_bytes())["run"]["options"] == options.to_json()


def test_output_format_follows_the_extension() -> None:
    assert profile.output_format("pyinstrument", Path("a.speedscope.json")) == "speedscope"
    assert profile.output_format("py-spy", Path("A.SVG")) == "flamegraph"
    assert profile.output_format("py-spy", Path("p.folded")) == "raw"
    assert profile.output_format("circuit", Path("p.html")) is None
    assert profile.output_format("circuit", Path(".folded")) is None


def test_ptrace_refusal_is_explained() -> None:
    err = profile._py_spy_error("Error: Operation not permitted (os error 1)\n", 1)
    assert "ptrace is not permitted" in err.message
    assert err.hint is not None and "--cap-add SYS_PTRACE" in err.hint
    assert "--profiler pyinstrument" in err.hint
    other = profile._py_spy_error("something else broke\n", 3)
    assert other.message == "py-spy failed: something else broke"


# -- the command -------------------------------------------------------------------


def ssp_profile(*args: str) -> Result:
    return CliRunner().invoke(app, ["profile", "views.sql", "log.jsonl", *args])


def report() -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(Path("run.json").read_bytes())
    check_report(doc)
    return doc


def test_circuit_profiler_writes_folded_and_speedscope(files: Path) -> None:
    result = ssp_profile("--profiler", "circuit", "-o", "c.folded", "--report", "run.json")
    assert result.exit_code == 0, result.output
    assert parse_folded(Path("c.folded").read_text(encoding="utf-8"))
    section = report()["profile"]
    assert section["profiler"] == "circuit" and section["format"] == "folded"
    assert section["slowdown"] is None and "no sampling" in section["note"]
    assert "profile: circuit (folded) -> c.folded" in result.stdout
    result = ssp_profile("--profiler", "circuit", "-o", "c.speedscope.json", "--quiet")
    assert result.exit_code == 0 and result.stdout == ""
    assert orjson.loads(Path("c.speedscope.json").read_bytes())["profiles"][0]["samples"]


@pytest.mark.parametrize("name", ["p.txt", "p.html", "p.speedscope.json"])
def test_pyinstrument_formats(files: Path, name: str) -> None:
    result = ssp_profile("-o", name, "--quiet", "--report", "run.json")
    assert result.exit_code == 0, result.output
    assert Path(name).stat().st_size > 0
    if name.endswith(".json"):
        assert "profiles" in orjson.loads(Path(name).read_bytes())
    section = report()["profile"]
    assert section["baseline"] is not None and section["slowdown"] is not None
    assert sorted(p.name for p in files.iterdir()) == sorted(
        ["views.sql", "log.jsonl", "run.json", name]
    )


def test_no_baseline_says_so(files: Path) -> None:
    result = ssp_profile("-o", "p.txt", "--no-baseline")
    assert result.exit_code == 0
    assert "slowdown not measured (--no-baseline)" in result.stdout


def test_usage_and_replay_errors(files: Path) -> None:
    result = ssp_profile("--profiler", "circuit", "-o", "c.svg")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: --output: the circuit profiler cannot write 'c.svg'",
        "hint: name a file ending in one of: .folded .speedscope.json",
    ]
    assert ssp_profile("--profiler", "gprof", "-o", "x.txt").exit_code == 2
    assert ssp_profile("--profiler", "circuit").exit_code == 2  # -o is required
    Path("log.jsonl").write_text(LOG + "\n{oops\n", encoding="utf-8")
    result = ssp_profile("--profiler", "circuit", "-o", "c.folded", "--report", "run.json")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: log.jsonl:5:")
    assert report()["stop_reason"] == "error"


def test_help_ends_with_examples() -> None:
    result = CliRunner().invoke(app, ["profile", "--help"], env={"COLUMNS": "200"})
    examples = result.stdout[result.stdout.index("Examples:") :]
    assert "ssp profile views.sql log.jsonl --profiler circuit -o circuit.folded" in examples


@pytest.mark.slow
def test_py_spy_samples_a_child_replay(files: Path) -> None:
    """Needs ptrace (root or SYS_PTRACE); a refusal must be the explained error."""
    result = ssp_profile("--profiler", "py-spy", "-o", "s.folded", "--report", "run.json")
    if result.exit_code == 1 and "ptrace" in result.stderr:
        assert "hint: " in result.stderr
        pytest.skip("ptrace is not permitted here")
    assert result.exit_code == 0, result.output
    assert parse_folded(Path("s.folded").read_text(encoding="utf-8"))
    doc = report()
    assert doc["run"]["command"] == "profile" and doc["profile"]["profiler"] == "py-spy"


@pytest.mark.slow
def test_suite_quick_run(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    try:
        import suite
    finally:
        sys.path.pop(0)
    out = tmp_path / "suite.json"
    assert suite.main(["--quick", "--view-counts", "3", "--json", str(out)]) == 0
    doc = orjson.loads(out.read_bytes())
    assert doc["schema"] == "ssp.bench.suite/1"
    systems = {(r["section"], r["system"]) for r in doc["results"]}
    assert {("W1", "engine"), ("W1", "hand-written"), ("state", "engine")} <= systems
    engine = {r["case"]: r["created"] for r in doc["results"] if r["system"] == "engine"}
    hand = {r["case"]: r["created"] for r in doc["results"] if r["system"] == "hand-written"}
    assert engine["single"] == hand["single"] > 0  # both did the same work
    assert all("met" in t for t in doc["targets"])
