"""``ssp bench``: matrix parsing and expansion, interleaving, summaries and verdicts, the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from test_compare import make_run
from test_report import check_report
from typer.testing import CliRunner, Result

from circuit.bench import (
    Axis,
    Bench,
    MatrixError,
    expand,
    measure_capacity,
    parse_matrix,
    run_bench,
    schedule,
)
from circuit.bench import (
    Result as BenchResult,
)
from circuit.metrics import FakeClock
from circuit.replay import ReplayOptions, replay
from circuit.report.run import Run
from ssp_cli.main import app

VIEWS = "CREATE VIEW active AS SELECT * FROM user WHERE status = 'active';\n"
LOG = "\n".join(
    orjson.dumps({"op": "CREATE", "table": "user", "id": str(i), "data": {"status": s}}).decode()
    for i, s in enumerate(["active", "away", "active", "active"], start=1)
)


def test_matrix_values_take_the_option_types() -> None:
    axes = parse_matrix(
        ["mode=single,batch", "batch-size=10,100", "coalesce=true,no", "flush_every=none,5"]
    )
    assert axes == [
        Axis("mode", ("single", "batch")),
        Axis("batch_size", (10, 100)),
        Axis("coalesce", (True, False)),
        Axis("flush_every", (None, 5)),
    ]
    assert parse_matrix(["frame_ms=16.5"]) == [Axis("frame_ms", (16.5,))]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("colour=red", "unknown key 'colour'"),
        ("mode=fast", "'fast' is not one of single, batch, deferred"),
        ("batch_size=ten", "'ten' is not an integer"),
        ("coalesce=maybe", "not a boolean"),
        ("params=1", "cannot be varied"),
        ("mode", "expected KEY=V1,V2"),
        ("mode=single,single", "repeated"),
    ],
)
def test_bad_matrix_specs_name_the_problem(spec: str, message: str) -> None:
    with pytest.raises(MatrixError, match=message) as err:
        parse_matrix([spec])
    assert err.value.location == f"--matrix {spec}"


def test_a_key_given_twice_is_refused() -> None:
    with pytest.raises(MatrixError, match="given twice"):
        parse_matrix(["mode=single", "mode=batch"])


def test_expansion_is_every_combination_first_axis_slowest() -> None:
    base = ReplayOptions(batch_size=7)
    combos = expand(base, parse_matrix(["mode=single,batch", "coalesce=true,false"]))
    assert [c.label for c in combos] == [
        "mode=single coalesce=true",
        "mode=single coalesce=false",
        "mode=batch coalesce=true",
        "mode=batch coalesce=false",
    ]
    assert all(c.options.batch_size == 7 for c in combos)  # the options given apart stay
    assert combos[3].options.mode == "batch" and combos[3].options.coalesce is False
    assert [c.label for c in expand(base, [])] == ["as given"]


def test_invalid_combinations_are_matrix_errors() -> None:
    with pytest.raises(MatrixError, match="batch_size=0: must be at least 1"):
        expand(ReplayOptions(), parse_matrix(["batch_size=0,10"]))


def test_schedule_is_round_robin_per_repetition_every_other_one_reversed() -> None:
    assert schedule(3, 2) == [(0, 0), (0, 1), (0, 2), (1, 2), (1, 1), (1, 0)]
    assert schedule(2, 3) == [(0, 0), (0, 1), (1, 1), (1, 0), (2, 0), (2, 1)]


def test_runs_are_interleaved_and_summarised() -> None:
    combos = expand(ReplayOptions(), parse_matrix(["batch_size=10,20"]))
    calls: list[int] = []
    speed = {10: [1000.0, 1100.0, 900.0], 20: [2000.0, 2100.0, 1900.0]}

    def runner(options: ReplayOptions) -> Run:
        calls.append(options.batch_size)
        done = sum(1 for c in calls if c == options.batch_size) - 1
        rate = speed[options.batch_size][done]
        return make_run(entries_per_s=rate, p99=1e6 / rate)

    bench = run_bench(combos, 3, runner)
    assert calls == [10, 20, 20, 10, 10, 20]  # every other repetition reversed
    base, other = bench.results
    assert base.summary("entries_per_s").median == 1000.0
    assert other.summary("entries_per_s").spread_percent == pytest.approx(10.0)
    assert bench.ratio(other, "entries_per_s") == pytest.approx(2.0)
    assert bench.ratio(other, "latency_p99_us") == pytest.approx(0.5)
    assert bench.verdict(other).endswith(": faster")
    assert base.median_run().totals.entries_per_s == 1000.0
    section = bench.to_json()
    assert section["baseline"] == "batch_size=10"
    assert [c["verdict"] for c in section["combinations"]][1:] == [bench.verdict(other)]
    assert section["combinations"][0]["verdict"] is None
    assert len(section["combinations"][1]["runs"]) == 3


def verdict(base: list[float], other: list[float]) -> str:
    def result(rates: list[float]) -> BenchResult:
        (combo,) = expand(ReplayOptions(), [])
        return BenchResult(combo, [make_run(entries_per_s=r) for r in rates])

    bench = Bench([], len(base), [result(base), result(other)])
    return bench.verdict(bench.results[1])


def test_verdicts_respect_noise() -> None:
    assert "within noise (the ranges" in verdict([100, 120, 110], [115, 130, 125])
    assert "less than 5% apart" in verdict([100, 101, 100], [103, 104, 103])
    assert verdict([100, 101, 100], [50, 52, 51]).endswith(": slower")
    assert "use --repeat 3 or more" in verdict([100], [200])


def test_a_real_replay_with_a_fake_clock(tmp_path: Path) -> None:
    (tmp_path / "v.sql").write_text(VIEWS, encoding="utf-8")
    (tmp_path / "l.jsonl").write_text(LOG, encoding="utf-8")
    combos = expand(ReplayOptions(), parse_matrix(["mode=single,batch"]))

    def runner(options: ReplayOptions) -> Run:
        return replay(tmp_path / "v.sql", tmp_path / "l.jsonl", options, clock=FakeClock())

    bench = run_bench(combos, 2, runner)
    single, batch = bench.results
    assert [run.totals.ingest_calls for run in single.runs] == [4, 4]
    assert [run.totals.ingest_calls for run in batch.runs] == [1, 1]
    assert single.summary("entries_per_s").spread_percent == 0.0  # the fake clock repeats


# -- the command -------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "views.sql").write_text(VIEWS, encoding="utf-8")
    (tmp_path / "log.jsonl").write_text(LOG, encoding="utf-8")
    return tmp_path


def bench(*args: str) -> Result:
    return CliRunner().invoke(app, ["bench", "views.sql", "log.jsonl", *args])


def test_cli_writes_the_report_and_markdown(files: Path) -> None:
    result = bench(
        "--matrix", "mode=single,batch", "--repeat", "2", "--report", "b.json", "--markdown", "b.md"
    )
    assert result.exit_code == 0, result.output
    assert "mode=batch vs mode=single" in result.stdout
    doc: dict[str, Any] = orjson.loads(Path("b.json").read_bytes())
    check_report(doc)
    assert doc["run"]["command"] == "bench"
    assert doc["run"]["options"]["mode"] == "single"  # the baseline's median run
    labels = [c["label"] for c in doc["bench"]["combinations"]]
    assert labels == ["mode=single", "mode=batch"]
    assert doc["bench"]["matrix"] == {"mode": ["single", "batch"]}
    markdown = Path("b.md").read_text(encoding="utf-8")
    assert markdown.startswith("## ssp bench: 2 combinations x 2 runs")


def test_cli_usage_errors_exit_2(files: Path) -> None:
    for args, text in (
        (["--matrix", "speed=1,2"], "error: --matrix speed=1,2: unknown key 'speed'"),
        (["--matrix", "batch_size=0"], "must be at least 1"),
    ):
        result = bench(*args)
        assert result.exit_code == 2, args
        assert text in result.stderr
        assert result.stderr.startswith("error: ")
    stdin = CliRunner().invoke(app, ["bench", "views.sql", "-", "--quiet"], input=LOG)
    assert stdin.exit_code == 2 and "not -" in stdin.stderr
    assert not list(files.glob("*.json"))


def test_cli_failure_exits_1_and_keeps_the_report(files: Path) -> None:
    Path("log.jsonl").write_text(LOG + "\nnot json\n", encoding="utf-8")
    result = bench("--repeat", "1", "--quiet", "--report", "b.json")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: log.jsonl:5:")
    assert orjson.loads(Path("b.json").read_bytes())["stop_reason"] == "error"


def test_help_ends_with_examples() -> None:
    result = CliRunner().invoke(app, ["bench", "--help"], env={"COLUMNS": "200"})
    examples = result.stdout[result.stdout.index("Examples:") :]
    assert (
        "ssp bench views.sql log.jsonl --matrix mode=single,batch,deferred --repeat 5" in examples
    )


def test_process_executor_combinations_get_the_machine_capacity() -> None:
    combos = expand(ReplayOptions(workers=3), parse_matrix(["executor=sequential,processes"]))
    probes: list[int] = []
    capacities = iter([1.5, 1.9, 1.7])

    def capacity(processes: int) -> float:
        probes.append(processes)
        return next(capacities)

    def runner(options: ReplayOptions) -> Run:
        return make_run(entries_per_s=1700.0 if options.executor == "processes" else 1000.0)

    bench = run_bench(combos, 3, runner, capacity=capacity)
    assert probes == [3, 3, 3]  # once per repetition, as many processes as workers
    assert bench.capacity == [1.5, 1.9, 1.7]
    assert bench.verdict(bench.results[1]).endswith(
        "machine capacity 1.70x (3 CPU-bound processes vs 1, median over the repetitions), "
        "so 100% of it"
    )
    assert bench.to_json()["capacity"] == {"processes": 3, "runs": [1.5, 1.9, 1.7], "median": 1.7}


def test_no_capacity_probe_without_the_process_executor() -> None:
    combos = expand(ReplayOptions(), parse_matrix(["batch_size=10,20"]))

    def capacity(processes: int) -> float:
        raise AssertionError("probed without the process executor")

    bench = run_bench(combos, 1, lambda options: make_run(), capacity=capacity)
    assert bench.capacity == []
    assert bench.to_json()["capacity"] is None
    assert "capacity" not in bench.verdict(bench.results[1])


def test_capacity_probe_runs_real_processes() -> None:
    assert 0 < measure_capacity(2, work=10_000) < 4
