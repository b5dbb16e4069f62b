"""Standard SQL beyond the subset (SPEC 2): each construct against SQLite, maintained.

The harness keeps plain SQLite tables ``t1`` and ``t2`` (columns ``id, a, b, c`` declared
without a type, so no affinity converts a value) next to a :class:`Circuit` fed the same
mutations, and after registration and after every ingest call (single, batch or deferred
mode) compares each view's rows with what SQLite answers for the same SQL. Views are written
as sqllogictest writes them (``--dialect sqlite``), every output named. Hypothesis draws the
data and the mutations; ``SSP_FUZZ=1`` draws many more. Each construct also has a test that an
entry's work (operator rows in and out) does not grow with the table size.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from circuit import Circuit, Mutation
from circuit.metrics import FakeClock

FUZZ = os.environ.get("SSP_FUZZ") == "1"
PROPERTY = settings(
    max_examples=600 if FUZZ else 25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TABLES = ("t1", "t2")
COLUMNS = ("a", "b", "c")
KEYS = ("0", "1", "2", "3", "4")

VALUES = st.one_of(
    st.none(), st.integers(-2, 3), st.integers(-2, 3), st.sampled_from([0.5, 2.0, "x", "2", ""])
)


@st.composite
def mutations(draw: st.DrawFn) -> Mutation:
    table = draw(st.sampled_from(TABLES))
    key = draw(st.sampled_from(KEYS))
    op = draw(st.sampled_from(["CREATE", "CREATE", "UPDATE", "DELETE"]))
    if op == "DELETE":
        return Mutation.delete(table, key)
    data = {name: draw(VALUES) for name in COLUMNS}
    return (
        Mutation.create(table, key, data) if op == "CREATE" else Mutation.update(table, key, data)
    )


logs = st.lists(mutations(), min_size=1, max_size=25)
modes = st.sampled_from(["single", "batch", "deferred"])


class Mirror:
    """The SQLite side: the circuit's tables as plain SQLite tables."""

    def __init__(self) -> None:
        self.db = sqlite3.connect(":memory:")
        for table in TABLES:
            self.db.execute(f"CREATE TABLE {table}(id, a, b, c)")

    def sync(self, circuit: Circuit) -> None:
        for table in TABLES:
            self.db.execute(f"DELETE FROM {table}")
            for rid, record in circuit.tables().get(table, {}).items():
                row = [rid, *(record.get(c) for c in COLUMNS)]
                self.db.execute(f"INSERT INTO {table} VALUES (?, ?, ?, ?)", row)

    def rows(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        cursor = self.db.execute(sql)
        return [d[0] for d in cursor.description], cursor.fetchall()


def _norm(value: Any) -> Any:
    if isinstance(value, float):
        return ("n", round(value, 9))
    if isinstance(value, int):
        return ("n", float(value))
    return ("t", value) if value is not None else ("", None)


def check(circuit: Circuit, mirror: Mirror, views: dict[str, tuple[str, bool]], when: str) -> None:
    mirror.sync(circuit)
    for name, (sql, ordered) in views.items():
        names, expected = mirror.rows(sql)
        got = [tuple(row.get(n) for n in names) for row in circuit.rows(name)]
        if not ordered:
            got = sorted(got, key=lambda row: repr([_norm(v) for v in row]))
            expected = sorted(expected, key=lambda row: repr([_norm(v) for v in row]))
        mine = [tuple(_norm(v) for v in row) for row in got]
        theirs = [tuple(_norm(v) for v in row) for row in expected]
        assert mine == theirs, f"{when}: {sql}\ncircuit {got}\nsqlite  {expected}"
        for a, b in zip(got, expected, strict=True):
            for x, y in zip(a, b, strict=True):  # types too: 1 is not 1.0 is not '1'
                assert type(x) is type(y) or {type(x), type(y)} <= {int, float}, (when, sql, a, b)


def run(views: Sequence[str | tuple[str, bool]], log: list[Mutation], mode: str) -> Circuit:
    """Register the views on empty tables, then replay ``log``, checking after every call."""
    circuit = Circuit(clock=FakeClock(), dialect="sqlite", pending_limit=4)
    mirror = Mirror()
    registered: dict[str, tuple[str, bool]] = {}
    for index, view in enumerate(views):
        sql, ordered = (view, False) if isinstance(view, str) else view
        circuit.register_view(f"v{index}", sql)
        registered[f"v{index}"] = (sql, ordered)
    check(circuit, mirror, registered, "after registration")
    for position, m in enumerate(log):
        if mode == "single":
            circuit.ingest_single(m)
        elif mode == "batch":
            if position % 3 != 2 and position != len(log) - 1:
                continue
            start = position - position % 3
            circuit.ingest_batch(log[start : position + 1])
        else:
            circuit.ingest_deferred([m])
            if position % 2 == 0 and position != len(log) - 1:
                continue
            circuit.flush()
        check(circuit, mirror, registered, f"{mode} after entry {position + 1}")
    return circuit


def work(circuit: Circuit, view: str) -> int:
    """Operator rows in and out so far for ``view``."""
    ops = circuit.metrics().operators
    return sum(op["rows_in"] + op["rows_out"] for op in ops if op["view"] == view)


def _fill(circuit: Circuit, n: int) -> None:
    circuit.ingest_batch(
        [Mutation.create("t1", str(i), {"a": i, "b": i, "c": "x"}) for i in range(n)]
        + [Mutation.create("t2", str(i), {"a": i, "b": i, "c": "y"}) for i in range(n)]
    )


def entry_work(sql: str, n: int, entry: Mutation) -> int:
    circuit = Circuit(clock=FakeClock(), dialect="sqlite")
    circuit.register_view("v", sql)
    _fill(circuit, n)
    before = work(circuit, "v")
    circuit.ingest_single(entry)
    return work(circuit, "v") - before


def assert_work_flat(sql: str, entry: Mutation) -> None:
    small, large = entry_work(sql, 50, entry), entry_work(sql, 400, entry)
    assert large <= small * 2 + 4, f"{sql}: {small} rows of work at 50 rows, {large} at 400"


# --- ORDER BY a column position -------------------------------------------------------------


def test_order_by_position_is_the_select_items_expression() -> None:
    sql = "SELECT a AS x, b * 2 AS y, id AS k FROM t1 ORDER BY 2 DESC, 1, 3 LIMIT 3"
    log = [Mutation.create("t1", k, {"a": int(k) % 2, "b": int(k), "c": "x"}) for k in KEYS]
    run([(sql, True)], [*log, Mutation.delete("t1", "4"), Mutation.delete("t1", "3")], "single")


def test_order_by_position_out_of_range_is_an_error_naming_the_view() -> None:
    circuit = Circuit(dialect="sqlite")
    with pytest.raises(Exception, match=r"view v.*ORDER BY term 3"):
        circuit.register_view("v", "SELECT a, b FROM t1 ORDER BY 3")


@PROPERTY
@given(
    log=logs,
    mode=modes,
    terms=st.lists(
        st.tuples(st.sampled_from(["1", "2", "3"]), st.sampled_from(["", " DESC"])),
        min_size=1,
        max_size=3,
    ),
    limit=st.integers(1, 4),
)
def test_order_by_positions_against_sqlite(
    log: list[Mutation], mode: str, terms: list[tuple[str, str]], limit: int
) -> None:
    order = ", ".join(p + d for p, d in terms)
    # the id makes the order total, so SQLite's order is the only right one
    sql = f"SELECT a AS x, b AS y, id AS k FROM t1 ORDER BY {order}, 3 LIMIT {limit}"
    run([(sql, True)], log, mode)


# --- comma joins and CROSS JOIN -------------------------------------------------------------

JOIN_VIEWS = [
    "SELECT t1.id AS i, t2.id AS j FROM t1, t2 WHERE t1.a = t2.a",
    "SELECT t1.id AS i, t2.id AS j, t2.c AS c FROM t1, t2 WHERE t2.b = t1.a AND t1.b > t2.a",
    "SELECT x.id AS i, y.id AS j FROM t1 AS x CROSS JOIN t2 AS y",
    "SELECT x.id AS i, y.id AS j FROM t1 AS x CROSS JOIN t2 AS y WHERE x.a < y.b OR y.c = 'x'",
    "SELECT p.id AS i, q.id AS j, r.id AS k FROM t1 p, t2 q, t1 r"
    " WHERE p.a = r.b AND q.b = r.a AND q.a = 1",
    "SELECT p.id AS i, q.id AS j FROM t1 p, t2 q WHERE q.a = 2 AND p.b = 2",
    "SELECT p.id AS i, q.id AS j FROM t1 p, t2 q WHERE p.a < 2 AND q.b IN (0, 1, 'x')",
]


@PROPERTY
@given(log=logs, mode=modes, views=st.lists(st.sampled_from(JOIN_VIEWS), min_size=1, max_size=3))
def test_comma_and_cross_joins_against_sqlite(
    log: list[Mutation], mode: str, views: list[str]
) -> None:
    run(views, log, mode)


def test_comma_join_equalities_become_join_keys() -> None:
    circuit = Circuit(dialect="sqlite")
    circuit.register_view("v", JOIN_VIEWS[0])
    assert "ON t1.a = t2.a (hash index)" in circuit.explain("v")
    circuit.register_view("p", JOIN_VIEWS[2])
    assert "a product" in circuit.explain("p")


def test_a_product_is_counted_in_state_rows() -> None:
    circuit = Circuit(dialect="sqlite")
    circuit.register_view("p", JOIN_VIEWS[2])
    _fill(circuit, 10)
    assert len(circuit.rows("p")) == 100
    assert circuit.metrics().views["p"]["state_rows"] >= 20


def test_comma_join_entry_work_does_not_grow_with_the_tables() -> None:
    assert_work_flat(JOIN_VIEWS[0], Mutation.update("t1", "3", {"a": 4, "b": 3, "c": "z"}))
    assert_work_flat(JOIN_VIEWS[4], Mutation.update("t2", "3", {"a": 1, "b": 2, "c": "z"}))


# --- CAST, NULLIF, IFNULL -------------------------------------------------------------------

CAST_VIEWS = [
    "SELECT id AS k, CAST(a AS INTEGER) AS i, CAST(b AS REAL) AS r, CAST(c AS TEXT) AS t FROM t1",
    "SELECT id AS k, CAST(c AS NUMERIC) AS n, CAST(a AS VARCHAR(4)) AS v FROM t1",
    "SELECT id AS k, NULLIF(a, b) AS z, IFNULL(a, c) AS f, - + - a AS m FROM t1",
    "SELECT id AS k FROM t1 WHERE CAST(c AS INTEGER) > NULLIF(a, 0)",
]


@PROPERTY
@given(log=logs, mode=modes, views=st.lists(st.sampled_from(CAST_VIEWS), min_size=1, max_size=2))
def test_cast_nullif_ifnull_against_sqlite(
    log: list[Mutation], mode: str, views: list[str]
) -> None:
    run(views, log, mode)


def test_cast_follows_sqlite_on_text_prefixes() -> None:
    texts = ["1e3", "12abc", " 12", "abc", "3.0", "  4.5e1x", "", "-0", "9223372036854775807"]
    log = [Mutation.create("t1", str(i), {"a": 1, "b": t, "c": t}) for i, t in enumerate(texts)]
    run(CAST_VIEWS[:2], log, "batch")


def test_cast_to_blob_is_refused_naming_the_view() -> None:
    with pytest.raises(Exception, match=r"view v.*CAST"):
        Circuit(dialect="sqlite").register_view("v", "SELECT CAST(a AS BLOB) AS x FROM t1")


def test_cast_entry_work_does_not_grow_with_the_tables() -> None:
    assert_work_flat(CAST_VIEWS[3], Mutation.update("t1", "3", {"a": 4, "b": 3, "c": "7"}))


# --- SELECT without FROM --------------------------------------------------------------------

CONSTANT_VIEWS = [
    "SELECT 1 AS x, 7 / 2 AS y, 'a' || 2 AS z, CAST('12x' AS INTEGER) AS w",
    "SELECT - COUNT(*) AS n, NULLIF(COUNT(*), 1) AS m, SUM(3) AS s",
    "SELECT 2 AS x WHERE 1 > 2",
    "SELECT id AS k FROM t1 WHERE EXISTS (SELECT 1 WHERE 2 > 1) AND a > 0",
]


@PROPERTY
@given(
    log=logs, mode=modes, views=st.lists(st.sampled_from(CONSTANT_VIEWS), min_size=1, max_size=3)
)
def test_select_without_from_against_sqlite(
    log: list[Mutation], mode: str, views: list[str]
) -> None:
    run(views, log, mode)


def test_a_constant_view_does_no_work_on_table_changes() -> None:
    for sql in CONSTANT_VIEWS[:3]:
        assert entry_work(sql, 50, Mutation.update("t1", "3", {"a": 4, "b": 3, "c": "7"})) == 0
    circuit = Circuit(dialect="sqlite")
    circuit.register_view("v", CONSTANT_VIEWS[0])
    assert "one constant row (no FROM)" in circuit.explain("v")
    assert circuit.members("v") == []  # the row is no record


# --- scalar subqueries ----------------------------------------------------------------------

SCALAR_VIEWS = [
    "SELECT id AS k, a AS x FROM t1 WHERE a > (SELECT avg(a) FROM t2)",
    "SELECT id AS k, (SELECT count(*) FROM t2 WHERE t2.a = t1.a) AS n FROM t1",
    "SELECT id AS k, (SELECT max(b) FROM t2 WHERE t2.a = t1.a) + 1 AS n FROM t1",
    "SELECT id AS k, (SELECT count(*) FROM t1 AS x WHERE x.b < t1.b) AS n FROM t1",
    "SELECT id AS k, (SELECT sum(b) FROM t2 WHERE t2.a >= t1.a AND t2.c <> t1.c) AS s FROM t1",
    "SELECT id AS k FROM t1 WHERE EXISTS (SELECT 1 FROM t2 WHERE t2.b > t1.b)",
    "SELECT id AS k, CASE WHEN a > (SELECT min(a) FROM t1) THEN 1 ELSE 0 END AS f FROM t1",
    "SELECT (SELECT count(*) FROM t1) AS n, (SELECT max(a) FROM t2) AS m",
    (
        "SELECT id AS k, (SELECT count(*) FROM t2 WHERE t2.a < t1.a) AS n FROM t1 ORDER BY 2, 1",
        True,
    ),
]


@PROPERTY
@given(log=logs, mode=modes, views=st.lists(st.sampled_from(SCALAR_VIEWS), min_size=1, max_size=3))
def test_scalar_subqueries_against_sqlite(
    log: list[Mutation], mode: str, views: list[str | tuple[str, bool]]
) -> None:
    run(views, log, mode)


def test_a_scalar_subquery_with_two_rows_is_an_error_naming_the_view() -> None:
    circuit = Circuit(dialect="sqlite")
    circuit.register_view("v", "SELECT id AS k, (SELECT b FROM t2 WHERE t2.a = t1.a) AS n FROM t1")
    circuit.ingest_batch(
        [Mutation.create("t1", "1", {"a": 1}), Mutation.create("t2", "1", {"a": 1})]
    )
    assert circuit.rows("v")[0]["n"] is None
    with pytest.raises(Exception, match=r"view v.*more than one row"):
        circuit.ingest_single(Mutation.create("t2", "2", {"a": 1, "b": 2}))


def test_a_correlated_scalar_subquery_touches_only_its_group() -> None:
    # equality: a change of t2 re-evaluates only the t1 rows of its group
    assert_work_flat(SCALAR_VIEWS[1], Mutation.update("t2", "3", {"a": 4, "b": 3, "c": "z"}))
    assert_work_flat(SCALAR_VIEWS[1], Mutation.update("t1", "3", {"a": 4, "b": 3, "c": "z"}))
    # uncorrelated: a change that leaves the value alone re-evaluates nothing
    assert_work_flat(SCALAR_VIEWS[0], Mutation.update("t2", "3", {"a": 3, "b": 3, "c": "z"}))


def test_an_inequality_subquery_reevaluates_only_rows_whose_range_holds_the_change() -> None:
    # x.b < t1.b: a new t1 row with b = n - 2.5 changes the count of two rows only
    for n in (50, 400):
        circuit = Circuit(clock=FakeClock(), dialect="sqlite")
        circuit.register_view("v", SCALAR_VIEWS[3])
        _fill(circuit, n)
        before = work(circuit, "v")
        circuit.ingest_single(Mutation.create("t1", "new", {"a": 0, "b": n - 2.5, "c": "x"}))
        stage = next(op for op in circuit.metrics().operators if op["path"].endswith("scalar#0"))
        assert work(circuit, "v") - before < 40, n
        assert stage["rows_out"] >= 2


def test_explain_names_the_scalar_subquery_and_the_select_list_rule() -> None:
    circuit = Circuit(dialect="sqlite")
    circuit.register_view("v", SCALAR_VIEWS[3])
    text = circuit.explain("v")
    assert "scalar subquery" in text and "ordered index" in text
    default = Circuit()
    default.register_view("n", "SELECT id, (SELECT * FROM t2 WHERE t2.a = $parent.a) AS m FROM t1")
    assert "nested m (array)" in default.explain("n")


# --- UNION [ALL] / INTERSECT / EXCEPT -------------------------------------------------------

SET_VIEWS = [
    "SELECT a AS x FROM t1 UNION SELECT a FROM t2",
    "SELECT a AS x, c AS y FROM t1 UNION ALL SELECT b, c FROM t2 WHERE b > 0",
    "SELECT a AS x FROM t1 INTERSECT SELECT b FROM t2",
    "SELECT a AS x FROM t1 EXCEPT SELECT a FROM t2 UNION ALL SELECT b FROM t1",
    ("SELECT a AS x, id AS k FROM t1 UNION SELECT b, id FROM t2 ORDER BY 1 DESC, 2 LIMIT 3", True),
    "SELECT a + 1 AS x FROM t1 WHERE c = 'x' EXCEPT SELECT CAST(b AS INTEGER) FROM t2",
]


@PROPERTY
@given(log=logs, mode=modes, views=st.lists(st.sampled_from(SET_VIEWS), min_size=1, max_size=3))
def test_set_operations_against_sqlite(
    log: list[Mutation], mode: str, views: list[str | tuple[str, bool]]
) -> None:
    run(views, log, mode)


def test_set_operation_entry_work_does_not_grow_with_the_tables() -> None:
    for sql in SET_VIEWS[:4]:
        assert_work_flat(sql, Mutation.update("t1", "3", {"a": 4, "b": 3, "c": "z"}))
        assert_work_flat(sql, Mutation.update("t2", "3", {"a": 4, "b": 3, "c": "z"}))


def test_explain_shows_the_set_operation_tree() -> None:
    circuit = Circuit(dialect="sqlite")
    circuit.register_view("v", SET_VIEWS[3])
    assert "set operation ((#0 EXCEPT #1) UNION ALL #2)" in circuit.explain("v")


# --- DISTINCT with aggregates, aggregates of DISTINCT values, GROUP BY spellings ------------

AGGREGATE_VIEWS = [
    "SELECT DISTINCT count(*) AS n, max(a) AS m FROM t1",
    "SELECT DISTINCT a AS x, count(*) AS n FROM t1 GROUP BY t1.a",
    "SELECT DISTINCT - b + 1 AS x FROM t1 AS cor0 GROUP BY cor0.b",
    "SELECT a AS x, sum(DISTINCT b) AS s, avg(DISTINCT b) AS v, count(DISTINCT b) AS c,"
    " min(DISTINCT b) AS lo, max(DISTINCT b) AS hi FROM t1 GROUP BY a",
    "SELECT t1.b * 2 AS y FROM t1 GROUP BY b",
]


@PROPERTY
@given(
    log=logs, mode=modes, views=st.lists(st.sampled_from(AGGREGATE_VIEWS), min_size=1, max_size=3)
)
def test_distinct_with_aggregates_against_sqlite(
    log: list[Mutation], mode: str, views: list[str]
) -> None:
    run(views, log, mode)


def test_distinct_with_aggregates_entry_work_does_not_grow_with_the_tables() -> None:
    for sql in AGGREGATE_VIEWS[1:]:
        assert_work_flat(sql, Mutation.update("t1", "3", {"a": 4, "b": 3, "c": "z"}))


def test_distinct_over_aggregates_of_some_groups_stays_refused() -> None:
    with pytest.raises(Exception, match=r"view v.*DISTINCT together with GROUP BY"):
        Circuit(dialect="sqlite").register_view(
            "v", "SELECT DISTINCT count(*) AS n FROM t1 GROUP BY a"
        )


def test_conditions_on_one_source_are_applied_before_a_product() -> None:
    circuit = Circuit(dialect="sqlite")
    circuit.register_view("p", JOIN_VIEWS[-1])
    _fill(circuit, 200)
    assert len(circuit.rows("p")) == 4
    assert circuit.metrics().views["p"]["state_rows"] <= 12  # not 200 x 200
