"""`ssp gen` and the bundled fixtures: determinism, valid output, the CLI contract."""

from __future__ import annotations

import random
from itertools import islice
from pathlib import Path

import orjson
import pytest
import sqlglot
import typer
from sqlglot import exp
from typer.testing import CliRunner

from circuit import Circuit
from circuit.errors import MutationLogError
from circuit.mutations import DATA_OPS, REGISTER, UNREGISTER, read_log
from circuit.replay import Mode, ReplayOptions, replay
from circuit.sql import load_views
from circuit.workloads import LOG_FILE, SCENARIOS, VIEWS_FILE, Sizes, clients, write_workload
from circuit.workloads.subscriptions import TEMPLATES
from ssp_cli import gen

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
SMALL = {
    "forum": Sizes(rows=80, mutations=700, views=7, aggregates=True),
    "chat": Sizes(rows=120, mutations=900, views=6),
    "subscriptions": Sizes(rows=100, mutations=800, views=40),
    "orders": Sizes(rows=20, mutations=300, views=3),
    "clients": Sizes(rows=300, mutations=500, views=1, clients=12),
}


def generate(tmp: Path, name: str, seed: int, sizes: Sizes | None = None) -> tuple[bytes, bytes]:
    """Generate ``name`` into ``tmp`` and return the bytes of views.sql and log.jsonl."""
    written = write_workload(SCENARIOS[name], tmp, seed=seed, sizes=sizes or SMALL[name])
    return written.views_path.read_bytes(), written.log_path.read_bytes()


def test_every_scenario_has_small_sizes_and_a_cli_choice() -> None:
    assert list(SMALL) == list(SCENARIOS)
    assert [s.value for s in gen.ScenarioName] == list(SCENARIOS)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_same_seed_same_bytes_and_another_seed_differs(tmp_path: Path, name: str) -> None:
    first = generate(tmp_path / "a", name, seed=7)
    again = generate(tmp_path / "b", name, seed=7)
    other = generate(tmp_path / "c", name, seed=8)
    assert first == again
    assert first[1] != other[1]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_log_is_valid_and_free_of_anomalies(tmp_path: Path, name: str) -> None:
    """Every line passes the log reader, ``ts`` never decreases, and no entry is an anomaly.

    A generated workload measures the engine on realistic traffic, so every
    CREATE is of an absent id, every UPDATE and DELETE of a present one, and
    every UNREGISTER of a registered view.
    """
    sizes = SMALL[name]
    generate(tmp_path, name, seed=3)
    live: set[str] = set()
    views: set[str] = set()
    last_ts = 0.0
    with read_log(str(tmp_path / LOG_FILE)) as reader:
        entries = list(reader)
    assert len(entries) == SCENARIOS[name].state_size(sizes) + sizes.mutations
    for m in entries:
        assert m.ts is not None and m.ts >= last_ts
        last_ts = m.ts
        if m.op in DATA_OPS:
            assert m.id is not None and m.id.startswith(f"{m.table}:")
            assert (m.op == "CREATE") == (m.id not in live), m
            if m.op == "DELETE":
                live.discard(m.id)
            else:
                live.add(m.id)
        elif m.op == REGISTER:
            assert m.sql is not None and m.params is not None
            views.add(m.view or "")
        else:
            assert m.op == UNREGISTER and m.view in views
            views.discard(m.view)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_views_file_holds_only_create_view(tmp_path: Path, name: str) -> None:
    views_sql, _ = generate(tmp_path, name, seed=3)
    text = views_sql.decode()
    statements = [s for s in sqlglot.parse(text) if s is not None]
    assert statements
    for statement in statements:
        assert isinstance(statement, exp.Create)
        assert str(statement.args["kind"]).upper() == "VIEW"
    expected = {"subscriptions": 2, "clients": 1}.get(name, SMALL[name].views)
    assert len(statements) == expected
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line == "-- format: flat":
            assert lines[index + 1].startswith("CREATE VIEW ")


def test_forum_aggregates_can_be_left_out(tmp_path: Path) -> None:
    plain = SCENARIOS["forum"].views(Sizes(rows=100, mutations=0, views=8, aggregates=False))
    with_aggregates = SCENARIOS["forum"].views(Sizes(rows=100, mutations=0, views=8))
    assert not any("GROUP BY" in v.sql or "NOT EXISTS" in v.sql for v in plain)
    assert any("GROUP BY" in v.sql for v in with_aggregates)
    assert any("NOT EXISTS" in v.sql for v in with_aggregates)


def test_subscriptions_register_replace_and_unregister(tmp_path: Path) -> None:
    generate(tmp_path, "subscriptions", seed=5)
    lines = [orjson.loads(line) for line in (tmp_path / LOG_FILE).read_bytes().splitlines()]
    registers = [e for e in lines if e["op"] == REGISTER]
    assert len(registers) == SMALL["subscriptions"].views
    assert any(e["op"] == UNREGISTER for e in lines)
    assert len({e["view"] for e in registers}) < len(registers), "no view was re-registered"
    assert {":room" in e["sql"] or "$" in e["sql"] for e in registers} == {True}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_entries_are_generated_lazily(name: str) -> None:
    """A log far too large to hold in memory still yields its first entries at once."""
    huge = Sizes(rows=10**12, mutations=10**12, views=1)
    first = list(islice(SCENARIOS[name].entries(random.Random(1), huge), 50))
    assert len(first) == 50


def test_bundled_forum_fixture_is_reproducible(tmp_path: Path) -> None:
    """The committed fixture is exactly what the command in fixtures/README.md writes."""
    views_sql, log = generate(tmp_path, "forum", 1, Sizes(rows=3000, mutations=9000, views=8))
    assert views_sql == (FIXTURES / "forum" / VIEWS_FILE).read_bytes()
    assert log == (FIXTURES / "forum" / LOG_FILE).read_bytes()


@pytest.mark.parametrize(
    ("log", "line", "problem"),
    [
        ("not_json.jsonl", 3, "JSON"),
        ("unknown_op.jsonl", 2, "UPSERT"),
        ("missing_table.jsonl", 3, "table"),
        ("wrong_table_id.jsonl", 2, "thread"),
        ("nan.jsonl", 2, "NaN"),
    ],
)
def test_bad_fixtures_fail_at_the_documented_line(log: str, line: int, problem: str) -> None:
    with pytest.raises(MutationLogError) as caught, read_log(str(FIXTURES / "bad" / log)) as r:
        list(r)
    assert caught.value.line == line
    assert problem in caught.value.message


def cli_app() -> typer.Typer:
    """An app with only ``gen`` (and a callback, so typer keeps the ``gen`` subcommand)."""
    app = typer.Typer(add_completion=False)

    @app.callback()
    def _root() -> None:
        """ssp"""

    gen.register(app)
    return app


def test_cli_writes_both_files(tmp_path: Path) -> None:
    out = tmp_path / "nested" / "out"
    args = ["gen", "orders", "-o", str(out), "--rows", "5", "--mutations", "20", "--seed", "2"]
    result = CliRunner().invoke(cli_app(), args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [LOG_FILE, VIEWS_FILE]
    assert len((out / LOG_FILE).read_bytes().splitlines()) == 25
    assert "25 entries" in result.output


def test_cli_quiet_prints_nothing(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli_app(), ["gen", "chat", "-o", str(tmp_path), "--quiet"])
    assert result.exit_code == 0
    assert result.output == ""


@pytest.mark.parametrize(
    "args",
    [
        ["gen", "nope", "-o", "unused"],
        ["gen", "forum", "-o", "unused", "--rows", "2"],
        ["gen", "forum", "-o", "unused", "--mutations", "-1"],
        ["gen", "forum"],
    ],
)
def test_cli_usage_errors_exit_2(tmp_path: Path, args: list[str]) -> None:
    result = CliRunner().invoke(cli_app(), args)
    assert result.exit_code == 2
    assert not (tmp_path / "unused").exists()


def test_cli_reports_an_unwritable_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = CliRunner().invoke(cli_app(), ["gen", "orders", "-o", str(blocker / "out")])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {blocker}")
    assert blocker.read_text() == "not a directory"


def test_cli_help_ends_with_examples() -> None:
    result = CliRunner().invoke(cli_app(), ["gen", "--help"])
    assert result.exit_code == 0
    tail = result.output[result.output.index("Examples:") :]
    examples = [line.strip() for line in tail.splitlines()[1:] if line.strip()]
    assert examples and all(line.startswith("ssp gen ") for line in examples)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_generated_views_register(tmp_path: Path, name: str) -> None:
    """Every generated view is inside the SQL subset: the engine registers it."""
    sizes = SMALL[name]
    write_workload(SCENARIOS[name], tmp_path, seed=1, sizes=sizes)
    engine = Circuit()
    names = []
    for view in load_views(tmp_path / VIEWS_FILE):
        engine.register_view(view.name, view.sql, format=view.format)
        names.append(view.name)
    if name == "subscriptions":
        params = {"room": "room:1", "user": "user:1", "since": 0}
        for view_name, sql in TEMPLATES:
            used = {k: v for k, v in params.items() if f"${k}" in sql or f":{k}" in sql}
            engine.register_view(view_name, sql, params=used)
            names.append(view_name)
    if name == "clients":
        params = {"room": "room:1", "me": "user:1", "since": 0}
        for suffix, sql in clients.TEMPLATES:
            used = {k: v for k, v in params.items() if f"${k}" in sql}
            engine.register_view(f"c0_{suffix}", sql, params=used)
            names.append(f"c0_{suffix}")
    assert engine.view_names() == names


@pytest.mark.parametrize("mode", ["single", "batch", "deferred"])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_generated_workload_replays_cleanly(tmp_path: Path, name: str, mode: Mode) -> None:
    """A small workload replays to its end in every mode with no anomaly and no reject."""
    sizes = SMALL[name]
    if name == "forum":
        sizes = Sizes(sizes.rows, sizes.mutations, sizes.views)
    written = write_workload(SCENARIOS[name], tmp_path, seed=2, sizes=sizes)
    options = ReplayOptions(mode=mode, frame_ms=16 if mode == "deferred" else None)
    run = replay(written.views_path, written.log_path, options)
    assert run.completed
    assert run.totals.entries == SCENARIOS[name].state_size(sizes) + sizes.mutations
    assert run.errors.rejected == 0
    assert not any(run.errors.anomalies.values())
