"""Views defined alike share their state, and still behave as if each ran alone.

Many subscriptions are the same query (every client of a page keeps the same
view). A view registered with the query, parameters and format of a live view
shares that view's state: only the first (the primary) runs, the others take
its update under their own name. An aggregate view computing the same groups
and aggregates over the same rows as a live one (HAVING, ORDER BY, LIMIT and
select list aside) shares that view's levels and groups and keeps only its
own output stage. A top-k view differing from a live one only in LIMIT/OFFSET
reads its own window of that view's ordered rows. These tests check, on random logs, that each
sharing view's updates and rows equal those of the same view running alone in
a circuit of its own, before and after its primary is unregistered (the
first sharer is then rebuilt from the tables and becomes the primary).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from test_circuit_properties import LOGS, PROPERTY, SIZES, VIEWS, Step, chunks, materialize

from circuit import Circuit, Mutation, ViewUpdate

SHARED = [v for v in VIEWS if v.groups is None]
AGGREGATES = [v for v in VIEWS if v.groups is not None]
# views computing the same groups and aggregates as ``busy`` (COUNT(*) by author), each with
# its own HAVING, ORDER BY, LIMIT and select list: they share busy's levels and groups
SAME_CORE = {
    "busiest": "SELECT author, COUNT(*) AS n FROM thread GROUP BY author ORDER BY n DESC LIMIT 2",
    "some": "SELECT author, COUNT(*) AS c FROM thread GROUP BY author HAVING COUNT(*) >= 1"
    " ORDER BY author LIMIT 3 OFFSET 1",
    "counts": "SELECT COUNT(*) AS n, author FROM thread GROUP BY author",
}
# views differing from an earlier one (named first) only in LIMIT/OFFSET: each reads its own
# window of that view's ordered rows
WINDOWS = {
    "top1": ("top2", "SELECT id, score FROM thread ORDER BY score DESC LIMIT 1"),
    "top_skip": ("top2", "SELECT id, score FROM thread ORDER BY score DESC LIMIT 3 OFFSET 1"),
    "top_join1": (
        "top_join",
        "SELECT t.id AS tid, u.name AS uname FROM thread t JOIN user u ON t.author = u.id"
        " ORDER BY t.score DESC LIMIT 1",
    ),
    "busiest1": (
        "busiest",
        "SELECT author, COUNT(*) AS n FROM thread GROUP BY author ORDER BY n DESC LIMIT 1",
    ),
    "busiest_skip": (
        "busiest",
        "SELECT author, COUNT(*) AS n FROM thread GROUP BY author ORDER BY n DESC LIMIT 2 OFFSET 1",
    ),
}


def _respelled(sql: str) -> str:
    """The same query spelled differently: sqlglot prints both back alike."""
    return "  " + sql.replace(" FROM ", "\n  FROM ").replace("SELECT", "select", 1)


def _content(update: ViewUpdate | None) -> Any:
    if update is None:
        return None
    if update.format == "flat":
        data = update.to_json()["result_data"]
        return ("flat", update.result_hash, data)
    return ("streaming", update.records)


def _by_view(updates: list[ViewUpdate]) -> dict[str, ViewUpdate]:
    return {u.view: u for u in updates}


@PROPERTY
@given(log=LOGS, sizes=SIZES, cut=st.integers(0, 8))
def test_sharing_views_equal_views_running_alone(
    log: list[Step], sizes: list[int], cut: int
) -> None:
    mutations, _states = materialize(log)
    shared = Circuit()
    alone: dict[str, Circuit] = {}
    for view in SHARED + AGGREGATES:
        shared.register_view(view.name, view.sql, format=view.format)
    for view in SHARED + AGGREGATES:
        name = f"again_{view.name}"
        shared.register_view(name, _respelled(view.sql), format=view.format)
        alone[name] = Circuit()
        alone[name].register_view(name, view.sql, format=view.format)
        again, first = shared._views[name], shared._views[view.name]
        # aggregate rows are named after their view: such a view shares levels, not updates
        assert (again.level_owner if view.groups else again.primary) is first
    for name, sql in SAME_CORE.items():
        shared.register_view(name, sql)
        alone[name] = Circuit()
        alone[name].register_view(name, sql)
        assert shared._views[name].level_owner is shared._views["busy"]
    for index, (name, (owner, sql)) in enumerate(WINDOWS.items()):
        fmt = ("streaming", "flat")[index % 2]
        shared.register_view(name, sql, format=fmt)
        alone[name] = Circuit()
        alone[name].register_view(name, sql, format=fmt)
        assert shared._views[name].window_owner is shared._views[owner]
    start = 0
    for call, size in enumerate(chunks(sizes, len(mutations))):
        if call == cut:
            for view in SHARED + AGGREGATES:
                shared.unregister_view(view.name)
                again = shared._views[f"again_{view.name}"]
                assert again.primary is None and again.level_owner is None
            assert shared._views["busiest"].level_owner is shared._views["again_busy"]
            assert shared._views["busiest1"].window_owner is shared._views["busiest"]
            assert shared._views["top1"].window_owner is shared._views["again_top2"]
            shared.unregister_view("busiest_skip")
        batch = mutations[start : start + size]
        start += size
        got = _by_view(shared.ingest_batch(batch).updates)
        for name, circuit in alone.items():
            if name not in shared.view_names():
                continue
            want = _by_view(circuit.ingest_batch(batch).updates).get(name)
            assert _content(got.get(name)) == _content(want), (name, call)
            assert shared.rows(name) == circuit.rows(name), name
            assert shared.members(name) == circuit.members(name), name


def test_only_identical_definitions_share() -> None:
    circuit = Circuit()
    circuit.register_view("a", "SELECT * FROM t WHERE x > 1")
    circuit.register_view("b", "select *  from t where x > 1")
    circuit.register_view("c", "SELECT * FROM t WHERE x > 2")
    circuit.register_view("d", "SELECT * FROM t WHERE x > 1", format="flat")
    circuit.register_view("e", "SELECT * FROM t WHERE x > :v", params={"v": 1})
    circuit.register_view("f", "SELECT * FROM t WHERE x > :v", params={"v": 1})
    circuit.register_view("g", "SELECT x, COUNT(*) AS n FROM t GROUP BY x")
    circuit.register_view("h", "SELECT x, COUNT(*) AS n FROM t GROUP BY x")
    circuit.register_view("i", "SELECT x, COUNT(*) AS n FROM t WHERE x > 1 GROUP BY x")
    circuit.register_view("j", "SELECT x, SUM(y) AS n FROM t GROUP BY x")
    views = circuit._views
    assert views["b"].primary is views["a"]
    assert views["c"].primary is None and views["d"].primary is None
    assert views["e"].primary is None and views["f"].primary is views["e"]
    # aggregate rows are named after their view: aggregate views share levels, not updates
    assert views["h"].primary is None and views["h"].level_owner is views["g"]
    assert views["i"].level_owner is None and views["j"].level_owner is None


def test_a_sharing_view_has_its_own_metrics_and_no_operators() -> None:
    circuit = Circuit()
    circuit.register_view("a", "SELECT * FROM t WHERE x > 1")
    circuit.register_view("b", "SELECT * FROM t WHERE x > 1")
    circuit.ingest_single(_create("t:1", 5))
    circuit.ingest_single(_create("t:2", 0))
    metrics = circuit.metrics()
    for name in ("a", "b"):
        assert metrics.views[name]["invocations"] == 2
        assert metrics.views[name]["updates_emitted"] == 1
        assert metrics.views[name]["events"]["created"] == 1
        assert metrics.views[name]["members"] == 1
    assert {op["view"] for op in metrics.operators} == {"a"}


def _create(rid: str, x: int) -> Mutation:
    return Mutation("CREATE", "t", rid, {"x": x})


def test_explain_says_what_a_view_shares_and_how_it_is_routed() -> None:
    circuit = Circuit()
    top = "SELECT * FROM t ORDER BY x DESC LIMIT {}"
    circuit.register_view("a", top.format(10))
    circuit.register_view("b", top.format(20))
    circuit.register_view("c", top.format(10))
    circuit.register_view("d", "SELECT k, COUNT(*) AS n FROM t GROUP BY k")
    circuit.register_view("e", "SELECT k, COUNT(*) AS n FROM t GROUP BY k HAVING COUNT(*) > 1")
    circuit.register_view(
        "p", "SELECT *, (SELECT * FROM u WHERE k = $parent.k) AS us FROM t WHERE id = 't:1'"
    )
    assert "shares state" not in circuit.explain("a")
    assert "a window (its LIMIT/OFFSET) of a's ordered rows" in circuit.explain("b")
    assert "defined as a: takes its updates" in circuit.explain("c")
    assert "the rows, groups and aggregates of d" in circuit.explain("e")
    assert "routed by shown groups: changes of u" in circuit.explain("p")
