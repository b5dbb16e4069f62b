"""The engine's fused fast paths agree with the general code they short-cut.

- ``field <op> constant`` compiles to one closure that compares numbers with
  numbers and text with text natively; the same comparison written the other
  way round (``constant <op'> field``) takes the general SQL path. Both must
  give the same truth for every kind of value a JSON record can hold.
- A single-table filter view runs fused (:meth:`circuit.view.View.run_fused`);
  its updates must equal those of the same view forced through the general
  level pipeline.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from circuit import Circuit, Mutation
from circuit.sql.plan import plan_view

FLIPPED = {">": "<", "<": ">", ">=": "<=", "<=": ">=", "=": "=", "<>": "<>"}
CONSTANTS: list[str] = ["500", "500.5", "-1", "0", "'abc'", "''", "'500'"]
VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    499,
    500,
    500.0,
    500.5,
    501,
    1e300,
    -0.0,
    "500",
    "abc",
    "ab",
    "",
    "zzz",
    [1, 2],
    {"a": 1},
    [],
]


def _predicate(sql: str) -> Any:
    plan = plan_view("v", sql, None)
    predicate = plan.top.static_filter
    assert predicate is not None
    return predicate


@pytest.mark.parametrize("op", sorted(FLIPPED))
@pytest.mark.parametrize("const", CONSTANTS)
@pytest.mark.parametrize("negate", [False, True])
def test_fused_comparison_equals_general(op: str, const: str, negate: bool) -> None:
    condition = f"x {op} {const}"
    general = f"{const} {FLIPPED[op]} x"
    if negate:
        condition, general = f"NOT ({condition})", f"NOT ({general})"
    fused = _predicate(f"SELECT * FROM t WHERE {condition}")
    reference = _predicate(f"SELECT * FROM t WHERE {general}")
    for value in VALUES:
        row = ({"id": "t:1", "x": value},)
        assert fused(row) == reference(row), (condition, value)
    missing = ({"id": "t:1"},)
    assert fused(missing) == reference(missing) is False


def _log(seed: int, n: int) -> list[Mutation]:
    rng = random.Random(seed)
    live: set[str] = set()
    out: list[Mutation] = []
    for _ in range(n):
        rid = f"t:{rng.randint(1, 40)}"
        roll = rng.random()
        if rid in live and roll < 0.25:
            out.append(Mutation(op="DELETE", table="t", id=rid))
            live.discard(rid)
            continue
        value = rng.choice([*VALUES[:12], "x", "y"])
        op = "UPDATE" if rid in live else "CREATE"
        out.append(Mutation(op=op, table="t", id=rid, data={"x": value, "k": rng.randint(0, 3)}))
        live.add(rid)
    return out


def _stream(circuit: Circuit, log: list[Mutation], batch: int) -> list[Any]:
    out: list[Any] = []
    for start in range(0, len(log), batch):
        chunk = log[start : start + batch]
        updates = (
            circuit.ingest_single(chunk[0]) if batch == 1 else circuit.ingest_batch(chunk).updates
        )
        out += [(u.view, u.seq, u.records, u.result_hash) for u in updates]
    out.append(circuit.rows("v"))
    return out


@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("fmt", ["streaming", "flat"])
@pytest.mark.parametrize("seed", range(4))
def test_fused_view_equals_general_pipeline(batch: int, fmt: str, seed: int) -> None:
    log = _log(seed, 300)
    streams = []
    for fused in (True, False):
        circuit = Circuit()
        circuit.register_view("v", "SELECT * FROM t WHERE x > 0 AND k <> 2", format=fmt)
        view = circuit._views["v"]
        assert view.fused
        view.fused = fused
        streams.append(_stream(circuit, log, batch))
    assert streams[0] == streams[1]


DIRECT_VIEWS = [
    "SELECT a.id AS aid, b.id AS bid, a.x AS x FROM t a JOIN u b ON a.k = b.k",
    "SELECT a.id AS aid, b.x AS bx FROM t a LEFT JOIN u b ON a.k = b.k WHERE a.x > 0",
    "SELECT * FROM t WHERE k IN (SELECT k FROM u WHERE x > 0)",
]


def _two_tables(seed: int, n: int) -> list[Mutation]:
    """Random entries over tables t and u whose records share the join field k."""
    rng = random.Random(seed)
    live: set[str] = set()
    out: list[Mutation] = []
    for _ in range(n):
        table = rng.choice(["t", "u"])
        rid = f"{table}:{rng.randint(1, 12)}"
        if rid in live and rng.random() < 0.25:
            out.append(Mutation(op="DELETE", table=table, id=rid))
            live.discard(rid)
            continue
        data = {"k": rng.randint(0, 3), "x": rng.choice([-1, 0, 1, 2, None])}
        out.append(
            Mutation(op="UPDATE" if rid in live else "CREATE", table=table, id=rid, data=data)
        )
        live.add(rid)
    return out


@pytest.mark.parametrize("sql", DIRECT_VIEWS)
@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("fmt", ["streaming", "flat"])
@pytest.mark.parametrize("seed", range(3))
def test_direct_member_placement_equals_window_and_accounting(
    sql: str, batch: int, fmt: str, seed: int
) -> None:
    """A top level without window or subqueries hands its row changes straight to the
    view's members; forcing them through the window and the accounting gives the same."""
    log = _two_tables(seed, 250)
    streams = []
    for direct in (True, False):
        circuit = Circuit()
        circuit.register_view("v", sql, format=fmt)
        top = circuit._views["v"].top
        assert top.sink is not None
        if not direct:
            top.sink = None
        streams.append(_stream(circuit, log, batch))
    assert streams[0] == streams[1]
