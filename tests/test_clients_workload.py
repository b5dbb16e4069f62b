"""The `clients` scenario: determinism, the ``--initial`` split, churn, and the bounded touch.

The bounded-touch test does not trust the generator's own bookkeeping: it
reads the log back, keeps the records and the live subscriptions itself, and
for every tail entry counts the subscriptions whose rows the entry can change
(by the templates' own predicates, ignoring LIMIT and ``$since``, so the count
is an upper bound).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest
import typer
from typer.testing import CliRunner

from circuit.mutations import DATA_OPS, REGISTER, UNREGISTER, read_log
from circuit.replay import Replayer, ReplayOptions
from circuit.workloads import INITIAL_FILE, LOG_FILE, SCENARIOS, Sizes, write_workload
from circuit.workloads.clients import (
    CARD_SQL,
    FEED_SQL,
    MINE_SQL,
    ROOM_CLIENTS,
    Shape,
)
from ssp_cli import gen

SCENARIO = SCENARIOS["clients"]
TOUCH_BOUND = 2 * ROOM_CLIENTS
"""A user rename reaches its home room's feeds and the cards of the room it owns."""


def sizes(clients: int, rows: int = 600, mutations: int = 1_500) -> Sizes:
    return Sizes(rows=rows, mutations=mutations, views=1, clients=clients)


def log_entries(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_same_seed_same_bytes_with_the_initial_file(tmp_path: Path) -> None:
    runs = []
    for name, seed in (("a", 4), ("b", 4), ("c", 5)):
        written = write_workload(
            SCENARIO, tmp_path / name, seed=seed, sizes=sizes(20), initial=True
        )
        assert written.initial_path is not None
        runs.append((written.initial_path.read_bytes(), written.log_path.read_bytes()))
    assert runs[0] == runs[1]
    assert runs[0][1] != runs[2][1]


def test_initial_file_is_the_state_of_the_plain_log(tmp_path: Path) -> None:
    """``--initial`` moves the state out of the log and changes nothing else."""
    plain = write_workload(SCENARIO, tmp_path / "plain", seed=2, sizes=sizes(20))
    split = write_workload(SCENARIO, tmp_path / "split", seed=2, sizes=sizes(20), initial=True)
    state = SCENARIO.state_size(sizes(20))
    lines = plain.log_path.read_bytes().splitlines(keepends=True)
    assert split.log_path.read_bytes() == b"".join(lines[state:])
    assert split.initial_path is not None and split.records == state
    records = log_entries(split.initial_path)
    for record, line in zip(records, lines[:state], strict=True):
        entry = orjson.loads(line)
        assert entry["op"] == "CREATE"
        assert record == {"table": entry["table"], "id": entry["id"], "data": entry["data"]}
    assert "--initial" in split.views_path.read_text()
    assert "--clients 20" in split.views_path.read_text()


def test_initial_and_plain_replays_end_in_the_same_rows(tmp_path: Path) -> None:
    small = sizes(9, rows=200, mutations=300)
    plain = write_workload(SCENARIO, tmp_path / "plain", seed=3, sizes=small)
    split = write_workload(SCENARIO, tmp_path / "split", seed=3, sizes=small, initial=True)
    assert split.initial_path is not None
    one = Replayer(plain.views_path, plain.log_path, ReplayOptions())
    two = Replayer(split.views_path, split.log_path, ReplayOptions(initial=str(split.initial_path)))
    one.run()
    run = two.run()
    assert run.initial is not None and run.initial.records == split.records
    names = one.circuit.view_names()
    assert names == two.circuit.view_names()
    assert len(names) > 1
    for name in names:
        assert one.circuit.rows(name) == two.circuit.rows(name), name


def test_every_client_registers_one_subscription_of_each_template(tmp_path: Path) -> None:
    written = write_workload(SCENARIO, tmp_path, seed=1, sizes=sizes(30))
    entries = log_entries(written.log_path)
    state = SCENARIO.state_size(sizes(30))
    first = entries[state : state + 90]
    assert [e["op"] for e in first] == [REGISTER] * 90
    assert Counter(e["sql"] for e in first) == {FEED_SQL: 30, CARD_SQL: 30, MINE_SQL: 30}
    assert len({e["view"] for e in first}) == 90
    assert {e["view"].rsplit("_", 1)[1] for e in first} == {"feed", "card", "mine"}


def test_state_grows_to_what_the_clients_need() -> None:
    shape = Shape(rows=100, clients=300)
    assert shape.users >= 300
    assert shape.rooms * ROOM_CLIENTS >= 300
    assert SCENARIO.state_size(sizes(300, rows=100)) == shape.state > 100
    assert Shape(rows=10_000, clients=30).state == 10_000


def affected(
    entry: dict[str, Any],
    old: dict[str, Any] | None,
    subs: dict[str, tuple[str, str]],
    messages: dict[str, dict[str, Any]],
    rooms: dict[str, dict[str, Any]],
) -> set[str]:
    """The live subscriptions whose rows ``entry`` can change (an upper bound)."""
    table = entry["table"]
    images = [d for d in (old, entry.get("data")) if d is not None]
    hit: set[str] = set()
    for name, (kind, key) in subs.items():
        if table == "message":
            if kind == "feed" and any(d["room"] == key for d in images):
                hit.add(name)
            if kind == "mine" and any(d["author"] == key for d in images):
                hit.add(name)
        elif table == "user":
            if kind == "feed" and any(
                m["room"] == key and m["author"] == entry["id"] for m in messages.values()
            ):
                hit.add(name)
            if kind == "card" and rooms[key]["owner"] == entry["id"]:
                hit.add(name)
        elif table == "room" and kind == "card" and key == entry["id"]:
            hit.add(name)
    return hit


@pytest.mark.parametrize("clients", [12, 60])
def test_each_tail_entry_touches_a_bounded_number_of_subscriptions(
    tmp_path: Path, clients: int
) -> None:
    """Per data entry, at most ``2 * ROOM_CLIENTS`` subscriptions, whatever the clients;
    and most entries do reach some subscription (the tail exercises them)."""
    written = write_workload(SCENARIO, tmp_path, seed=6, sizes=sizes(clients, mutations=900))
    records: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    subs: dict[str, tuple[str, str]] = {}
    per_room: Counter[str] = Counter()
    touched: list[int] = []
    with read_log(str(written.log_path)) as reader:
        for m in reader:
            if m.op == REGISTER:
                assert m.view is not None and m.params is not None
                kind = m.view.rsplit("_", 1)[1]
                key = m.params["me"] if kind == "mine" else m.params["room"]
                subs[m.view] = (kind, key)
                if kind == "feed":
                    per_room[key] += 1
                    assert per_room[key] <= ROOM_CLIENTS
            elif m.op == UNREGISTER:
                assert m.view is not None
                kind, key = subs.pop(m.view)
                if kind == "feed":
                    per_room[key] -= 1
            elif m.op in DATA_OPS and subs:
                assert m.table is not None and m.id is not None
                table = records[m.table]
                entry = {"table": m.table, "id": m.id, "data": m.data}
                if m.op == "DELETE":
                    entry["data"] = None
                hit = affected(entry, table.get(m.id), subs, records["message"], records["room"])
                touched.append(len(hit))
            if m.op == "DELETE":
                assert m.table is not None and m.id is not None
                records[m.table].pop(m.id)
            elif m.op in DATA_OPS:
                assert m.table is not None and m.id is not None and m.data is not None
                records[m.table][m.id] = dict(m.data)
    assert touched, "no data entry after the registrations"
    assert max(touched) <= TOUCH_BOUND
    assert sum(1 for n in touched if n) > len(touched) // 2


def test_clients_leave_and_join_under_new_names(tmp_path: Path) -> None:
    written = write_workload(SCENARIO, tmp_path, seed=1, sizes=sizes(30, mutations=3_000))
    entries = log_entries(written.log_path)
    registered = [e["view"] for e in entries if e["op"] == REGISTER]
    unregistered = [e for e in entries if e["op"] == UNREGISTER]
    assert len(registered) == len(set(registered)) > 90, "a joining client reuses a name"
    assert unregistered
    live = set(registered) - {e["view"] for e in unregistered}
    assert 0.8 * 90 <= len(live) <= 90


def cli_app() -> typer.Typer:
    """An app with only ``gen`` (a callback keeps typer from flattening the subcommand)."""
    app = typer.Typer(add_completion=False)

    @app.callback()
    def _root() -> None:
        """ssp"""

    gen.register(app)
    return app


def test_cli_clients_and_initial(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["gen", "clients", "-o", str(out), "--clients", "6", "--rows", "120"]
    result = CliRunner().invoke(cli_app(), [*args, "--mutations", "40", "--initial"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [INITIAL_FILE, LOG_FILE, "views.sql"]
    assert "120 records" in result.output
    assert len(log_entries(out / LOG_FILE)) == 40


def test_cli_refuses_clients_for_another_scenario(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli_app(), ["gen", "forum", "-o", str(tmp_path), "--clients", "3"])
    assert result.exit_code == 2
    assert not list(tmp_path.iterdir())
