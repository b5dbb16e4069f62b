"""Subscriptions of one template: planned once, bound per view, exact as if planned alone.

A template's SQL is planned once (``BindablePlan``); registering another
subscription compiles only the conjuncts of its top WHERE that read
parameters. These tests check, on random logs with random registrations and
unregistrations of random templates and parameter values, that a circuit
binding templates gives byte-identical updates, rows and members to one that
plans every view alone (``Circuit(share=False)``), in all three modes, and
that every live subscription's rows equal SQLite's at the end; that a bound
plan is the plan planned alone; that a template whose parameters reach
elsewhere falls back to planning per view; and that registering or
unregistering one subscription does no work on the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from conftest import by_canonical_json, make_circuit
from hypothesis import given
from hypothesis import strategies as st
from test_circuit_properties import LOGS, PROPERTY, SIZES, USER_IDS, Step, chunks, materialize

from circuit import Circuit, Mutation
from circuit.oracle import Rows, get_oracle
from circuit.sql.plan import BindablePlan, parsed_template, plan_view

TEMPLATES = (
    "SELECT * FROM thread WHERE author = $who",
    "SELECT * FROM thread WHERE score = 1 AND author = $who",
    "SELECT * FROM thread WHERE author = $who AND score >= $min",
    "SELECT t.id AS tid, t.score AS score, u.name AS uname FROM thread t"
    " JOIN user u ON t.author = u.id WHERE t.author = $who ORDER BY t.score DESC, t.id LIMIT 2",
    "SELECT t.id AS tid, u.name AS uname, u.age AS age FROM thread t"
    " JOIN user u ON u.id = t.author WHERE t.score = $min",
    "SELECT id, name, (SELECT id, score FROM thread WHERE author = $parent.id"
    " ORDER BY score DESC, id) AS threads FROM user WHERE id = $who",
    "SELECT * FROM user WHERE age > $min OR name = $name",
    "SELECT author, COUNT(*) AS n FROM thread WHERE score >= $min GROUP BY author",
    # parameters outside the top WHERE: planned per view
    "SELECT id, $min AS floor FROM user WHERE name = $name",
    "SELECT id FROM thread WHERE author IN (SELECT id FROM user WHERE name = $name)",
)
BOUND = TEMPLATES[:8]
PARAMS = st.fixed_dictionaries(
    {
        "who": st.sampled_from([*USER_IDS, None]),
        "min": st.sampled_from([0, 1, 1.0, 2]),
        "name": st.sampled_from(["a", "b"]),
        "n": st.integers(0, 3),
    }
)


@dataclass(frozen=True)
class Churn:
    """Before the call at ``call``: register subscription ``sub`` (or unregister it)."""

    call: int
    sub: int
    template: int
    params: dict[str, Any]
    format: str
    leave: bool


CHURN = st.lists(
    st.builds(
        Churn,
        call=st.integers(0, 6),
        sub=st.integers(0, 5),
        template=st.integers(0, len(TEMPLATES) - 1),
        params=PARAMS,
        format=st.sampled_from(["streaming", "streaming", "flat"]),
        leave=st.booleans(),
    ),
    min_size=1,
    max_size=14,
)


def _control(churn: list[Churn], call: int, calls: int, live: set[str]) -> list[Mutation]:
    out = []
    for c in churn:
        if c.call % calls != call:
            continue
        name = f"s{c.sub}"
        if c.leave:
            if name in live:
                live.discard(name)
                out.append(Mutation(op="UNREGISTER", view=name))
        else:
            live.add(name)
            out.append(
                Mutation(
                    op="REGISTER",
                    view=name,
                    sql=TEMPLATES[c.template],
                    params=c.params,
                    format=c.format,
                )
            )
    return out


def _run(circuit: Circuit, mode: str, calls: list[list[Mutation]]) -> list[Any]:
    seen: list[Any] = []
    for batch in calls:
        if mode == "single":
            updates = [u for m in batch for u in circuit.ingest_single(m)]
        elif mode == "batch":
            updates = circuit.ingest_batch(batch).updates
        else:
            circuit.ingest_deferred(batch)
            updates = circuit.flush().updates
        seen.append([u.to_json() for u in updates])
        seen.append({v: (circuit.rows(v), circuit.members(v)) for v in circuit.view_names()})
    return seen


@PROPERTY
@given(log=LOGS, sizes=SIZES, churn=CHURN, mode=st.sampled_from(["single", "batch", "deferred"]))
def test_bound_templates_equal_views_planned_alone(
    log: list[Step], sizes: list[int], churn: list[Churn], mode: str
) -> None:
    mutations, _ = materialize(log)
    calls: list[list[Mutation]] = []
    live: set[str] = set()
    start = 0
    parts = list(chunks(sizes, len(mutations)))
    for call, size in enumerate(parts):
        calls.append(_control(churn, call, len(parts), live) + mutations[start : start + size])
        start += size
    bound, alone = make_circuit(), make_circuit(share=False)
    assert _run(bound, mode, calls) == _run(alone, mode, calls)
    snapshot = get_oracle("sqlite").snapshot(bound.tables())
    try:
        for name in bound.view_names():
            view = bound._views[name]
            result = snapshot.evaluate(view.plan.sql, view.params or {})
            assert isinstance(result, Rows), (name, result)
            want = result.rows if result.ordered else by_canonical_json(result.rows)
            assert bound.rows(name) == want, name
    finally:
        snapshot.close()


@pytest.mark.parametrize("sql", BOUND)
def test_a_bound_plan_is_the_plan_planned_alone(sql: str) -> None:
    assert isinstance(parsed_template(sql, view="t").bindable("t", None), BindablePlan)
    for who, low in (("user:1", 1), (None, 2.0), ("user:2", 0)):
        params = {"who": who, "min": low, "name": "a"}
        bound = plan_view("v", sql, params)
        alone = plan_view("v", sql, params, bind=False)
        assert bound.describe() == alone.describe()
        assert (bound.identity, bound.window_family, bound.route, bound.tables) == (
            alone.identity,
            alone.window_family,
            alone.route,
            alone.tables,
        )
        assert bound.top.seed == alone.top.seed
        if alone.top.aggregate is not None:
            assert bound.top.aggregate is not None
            assert bound.top.aggregate.core == alone.top.aggregate.core


@pytest.mark.parametrize("sql", TEMPLATES[8:])
def test_parameters_outside_the_top_where_plan_each_view_alone(sql: str) -> None:
    assert parsed_template(sql, view="t").bindable("t", None) is None


def test_an_unbound_parameter_is_the_same_error_bound_or_alone() -> None:
    from circuit.errors import SqlError

    errors = []
    for bind in (True, False):
        with pytest.raises(SqlError) as caught:
            plan_view("v", TEMPLATES[2], {"who": "user:1"}, path="views.sql", bind=bind)
        errors.append(str(caught.value))
    assert errors[0] == errors[1]
    assert "'min' is not bound" in errors[0]


class CountingViews(dict[str, Any]):
    """The circuit's view registry, counting every walk over it."""

    walks = 0

    def values(self) -> Any:
        CountingViews.walks += 1
        return super().values()

    def items(self) -> Any:
        CountingViews.walks += 1
        return super().items()

    def __iter__(self) -> Any:
        CountingViews.walks += 1
        return super().__iter__()


def test_the_nth_subscription_touches_no_other_view(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registering or unregistering one subscription builds one view, runs no other view's
    levels and never walks the registry of live views."""
    from circuit import view as view_module

    circuit = make_circuit()
    for i in range(40):
        circuit.ingest_single(
            Mutation(op="CREATE", table="thread", id=f"thread:{i}", data={"author": f"user:{i}"})
        )
    for i in range(30):
        circuit.register_view(f"s{i}", TEMPLATES[3], {"who": f"user:{i % 10}"})
    circuit._views = CountingViews(circuit._views)
    built: list[str] = []
    original = view_module.View.initial

    def counting_initial(self: view_module.View, clock: Any) -> None:
        built.append(self.name)
        original(self, clock)

    monkeypatch.setattr(view_module.View, "initial", counting_initial)
    invocations = {n: v.metrics.invocations for n, v in circuit._views.items()}
    CountingViews.walks = 0
    circuit.register_view("s30", TEMPLATES[3], {"who": "user:31"})
    circuit.register_view("s31", TEMPLATES[3], {"who": "user:1"})  # shares s1's state
    circuit.unregister_view("s31")
    circuit.unregister_view("s5")  # its sharers s15 and s25 are rebuilt, nothing else
    assert CountingViews.walks == 0
    assert built == ["s30", "s15"]  # s25 now shares s15
    assert all(
        circuit._views[n].metrics.invocations == count
        for n, count in invocations.items()
        if n in circuit._views
    )
