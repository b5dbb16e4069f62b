"""The oracles on hand-written cases, independently of the engine.

Every expected result here is worked out by hand from the SPEC, so a bug in
an oracle cannot agree with the same bug in the engine.
"""

from __future__ import annotations

from typing import Any

import pytest

from circuit.errors import SqlError
from circuit.oracle import Rows, Skipped, diff_rows, get_oracle, normalize_value
from circuit.oracle.sqlglot_exec import SqlglotOracle
from circuit.oracle.sqlite import SqliteOracle

Tables = dict[str, dict[str, dict[str, Any]]]


def table(name: str, *records: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Records keyed by canonical id; each record's ``id`` is ``name:key``."""
    out = {}
    for record in records:
        rid = f"{name}:{record['id']}"
        out[rid] = {**record, "id": rid}
    return out


def rows(sql: str, tables: Tables, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    result = SqliteOracle().evaluate(sql, params or {}, tables)
    assert isinstance(result, Rows), result
    return result.rows


def ids(sql: str, tables: Tables, params: dict[str, Any] | None = None) -> list[str]:
    return [row["id"] for row in rows(sql, tables, params)]


NUMS = {"t": table("t", {"id": 1, "x": 1}, {"id": 2, "x": None}, {"id": 3, "x": 3}, {"id": 4})}


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("NOT (x > 1)", ["t:1"]),
        ("x <> 1", ["t:3"]),
        ("x != 1 OR x IS NULL", ["t:2", "t:3", "t:4"]),
        ("NOT (x > 1 AND x IS NULL)", ["t:1", "t:3"]),
        ("x = NULL", []),
        ("x IS NOT NULL AND x BETWEEN 1 AND 2", ["t:1"]),
        ("x IN (3, NULL)", ["t:3"]),
        ("NOT (x IN (3, NULL))", []),
        ("x NOT IN (SELECT x FROM t WHERE id = 't:3')", ["t:1"]),
        ("x NOT IN (SELECT x FROM t)", []),
        ("COALESCE(x, 0) = 0", ["t:2", "t:4"]),
    ],
)
def test_three_valued_logic(where: str, expected: list[str]) -> None:
    assert sorted(ids(f"SELECT id FROM t WHERE {where}", NUMS)) == expected


MIXED = {
    "t": table(
        "t",
        {"id": 1, "v": 10},
        {"id": 2, "v": 2.5},
        {"id": 3, "v": "B"},
        {"id": 4, "v": "a"},
        {"id": 5, "v": True},
        {"id": 6, "v": None},
        {"id": 7, "v": "10"},
    )
}


def test_mixed_types_sort_numbers_before_strings_and_booleans_as_integers() -> None:
    assert ids("SELECT id FROM t ORDER BY v", MIXED) == [
        "t:6",  # NULL first ascending
        "t:5",  # true is 1
        "t:2",
        "t:1",
        "t:7",  # strings by code point: "10" < "B" < "a"
        "t:3",
        "t:4",
    ]
    assert sorted(ids("SELECT id FROM t WHERE v > 2", MIXED)) == ["t:1", "t:2", "t:3", "t:4", "t:7"]
    assert ids("SELECT id FROM t WHERE v = 1", MIXED) == ["t:5"]
    assert ids("SELECT id FROM t WHERE v = '10'", MIXED) == ["t:7"]


def test_order_by_ties_break_by_record_id_ascending_in_both_directions() -> None:
    tables = {"t": table("t", *({"id": key, "k": 1} for key in ("2", "10", "1")), {"id": 3})}
    assert ids("SELECT id FROM t ORDER BY k", tables) == ["t:3", "t:1", "t:10", "t:2"]
    assert ids("SELECT id FROM t ORDER BY k DESC", tables) == ["t:1", "t:10", "t:2", "t:3"]
    assert ids("SELECT id FROM t ORDER BY k DESC NULLS FIRST", tables)[0] == "t:3"
    assert ids("SELECT id FROM t ORDER BY k NULLS LAST LIMIT 2", tables) == ["t:1", "t:10"]


def test_limit_without_order_by_keeps_the_first_rows_by_key_and_is_unordered() -> None:
    tables = {"t": table("t", {"id": "b"}, {"id": "a"}, {"id": "c"})}
    result = SqliteOracle().evaluate("SELECT id FROM t LIMIT 2", {}, tables)
    assert result == Rows([{"id": "t:a"}, {"id": "t:b"}], ordered=False)


def test_order_by_an_output_name_means_that_item() -> None:
    tables = {"t": table("t", {"id": 1, "a": 1, "b": 9}, {"id": 2, "a": 2, "b": 0})}
    assert ids("SELECT id, b AS a FROM t ORDER BY a", tables) == ["t:2", "t:1"]
    assert ids("SELECT id, b AS c FROM t ORDER BY a", tables) == ["t:1", "t:2"]


def test_join_rows_tie_break_by_ids_in_from_join_order() -> None:
    tables = {
        "a": table("a", {"id": 2, "k": 1}, {"id": 1, "k": 1}),
        "b": table("b", {"id": 2, "k": 1}, {"id": 1, "k": 1}),
    }
    got = rows("SELECT a.id AS x, b.id AS y FROM a JOIN b ON a.k = b.k ORDER BY a.k", tables)
    assert [(r["x"], r["y"]) for r in got] == [
        ("a:1", "b:1"),
        ("a:1", "b:2"),
        ("a:2", "b:1"),
        ("a:2", "b:2"),
    ]


def test_star_expands_to_the_fields_each_record_has() -> None:
    tables = {"t": table("t", {"id": 1, "a": 1, "n": None}, {"id": 2, "b": [1, {"z": True}]})}
    assert sorted(rows("SELECT * FROM t", tables), key=lambda r: r["id"]) == [
        {"id": "t:1", "a": 1, "n": None},
        {"id": "t:2", "b": [1, {"z": True}]},
    ]
    # an explicit item replaces the field `*` brings, and is present even when NULL
    assert sorted(rows("SELECT *, b AS a FROM t", tables), key=lambda r: r["id"]) == [
        {"id": "t:1", "a": None, "n": None},
        {"id": "t:2", "a": [1, {"z": True}], "b": [1, {"z": True}]},
    ]


def test_bare_columns_pass_stored_values_through_and_missing_fields_are_null() -> None:
    tables = {"t": table("t", {"id": 1, "f": True, "o": {"k": [1]}, "s": "[1]"}, {"id": 2})}
    assert sorted(rows("SELECT id, f, o, s FROM t", tables), key=lambda r: r["id"]) == [
        {"id": "t:1", "f": True, "o": {"k": [1]}, "s": "[1]"},
        {"id": "t:2", "f": None, "o": None, "s": None},
    ]


def test_nested_paths_read_fields_of_objects() -> None:
    tables = {
        "t": table(
            "t",
            {"id": 1, "o": {"k": {"deep": 5}, "l": [1]}},
            {"id": 2, "o": "not an object"},
            {"id": 3, "o": {"k": 2}},
        )
    }
    got = rows("SELECT id, o.k AS k, o.k.deep AS d, o.l AS l FROM t WHERE o.k IS NOT NULL", tables)
    assert sorted(got, key=lambda r: r["id"]) == [
        {"id": "t:1", "k": {"deep": 5}, "d": 5, "l": [1]},
        {"id": "t:3", "k": 2, "d": None, "l": None},
    ]


def test_booleans_are_the_integers_one_and_zero() -> None:
    tables = {"t": table("t", {"id": 1, "f": True}, {"id": 2, "f": False}, {"id": 3, "f": 1})}
    assert sorted(ids("SELECT id FROM t WHERE f = 1", tables)) == ["t:1", "t:3"]
    assert sorted(ids("SELECT id FROM t WHERE f = TRUE", tables)) == ["t:1", "t:3"]
    assert rows("SELECT f + 1 AS g FROM t WHERE id = 't:1'", tables) == [{"g": 2}]


def test_sqlite_expression_semantics() -> None:
    tables = {"t": table("t", {"id": 1, "a": 7, "b": 2, "f": 3.0, "s": "Abc"})}
    assert rows(
        "SELECT a / b AS q, a % b AS m, f / b AS r, a / 0 AS z, f || 'x' AS c, "
        "LENGTH(s) AS n, UPPER(s) AS u, LOWER(s) AS l, ABS(-a) AS p, "
        "CASE WHEN a > 5 THEN 'big' ELSE 'small' END AS k FROM t",
        tables,
    ) == [
        {
            "q": 3,
            "m": 1,
            "r": 1.5,
            "z": None,
            "c": "3.0x",
            "n": 3,
            "u": "ABC",
            "l": "abc",
            "p": 7,
            "k": "big",
        }
    ]


def test_like_is_case_sensitive_and_ilike_is_not() -> None:
    tables = {"t": table("t", {"id": 1, "s": "Apple"}, {"id": 2, "s": "apple"}, {"id": 3, "s": 5})}
    assert ids("SELECT id FROM t WHERE s LIKE 'a%'", tables) == ["t:2"]
    assert sorted(ids("SELECT id FROM t WHERE s ILIKE 'a%'", tables)) == ["t:1", "t:2"]
    assert sorted(ids("SELECT id FROM t WHERE s NOT LIKE 'a%'", tables)) == ["t:1", "t:3"]
    assert ids("SELECT id FROM t WHERE s LIKE '5'", tables) == ["t:3"]


def test_parameters_bind_both_spellings_as_values() -> None:
    tables = {"t": table("t", {"id": 1, "s": "x'; DROP TABLE t; --"}, {"id": 2, "s": "y"})}
    params = {"p": "x'; DROP TABLE t; --", "flag": True, "n": 2}
    assert ids("SELECT id FROM t WHERE s = $p", tables, params) == ["t:1"]
    assert ids("SELECT id FROM t WHERE s = :p OR 1 = $flag - 1", tables, params) == ["t:1"]
    assert rows("SELECT $n * 2 AS v FROM t WHERE id = 't:2'", tables, params) == [{"v": 4}]
    with pytest.raises(SqlError, match="unbound parameter"):
        SqliteOracle().evaluate("SELECT id FROM t WHERE s = $missing", {}, tables)


FORUM = {
    "user": table(
        "user", {"id": 1, "name": "ann", "admin": True}, {"id": 2, "name": "bob", "Age": 3}
    ),
    "thread": table(
        "thread",
        {"id": 1, "author": "user:1", "title": "hi"},
        {"id": 2, "author": "user:9", "title": "lost"},
    ),
    "comment": table(
        "comment",
        {"id": 1, "thread": "thread:1", "by": "user:2", "n": 2},
        {"id": 2, "thread": "thread:1", "by": "user:1", "n": 1},
        {"id": 3, "thread": "thread:1", "by": "user:2", "n": 1},
    ),
}


def test_nested_subqueries_give_arrays_objects_and_null() -> None:
    sql = (
        "CREATE VIEW threads AS SELECT *, "
        "(SELECT * FROM user WHERE id = $parent.author)[0] AS author, "
        "(SELECT id, (SELECT name FROM user WHERE id = $parent.by LIMIT 1) AS who "
        " FROM comment WHERE thread = $parent.id ORDER BY n DESC) AS comments, "
        "(SELECT id FROM comment WHERE thread = $parent.id) AS ids "
        "FROM thread"
    )
    got = sorted(rows(sql, FORUM), key=lambda r: r["id"])
    assert got == [
        {
            "id": "thread:1",
            "title": "hi",
            "author": {"id": "user:1", "name": "ann", "admin": True},
            "comments": [
                {"id": "comment:1", "who": {"name": "bob"}},
                {"id": "comment:2", "who": {"name": "ann"}},
                {"id": "comment:3", "who": {"name": "bob"}},
            ],
            "ids": [{"id": "comment:1"}, {"id": "comment:2"}, {"id": "comment:3"}],
        },
        {"id": "thread:2", "title": "lost", "author": None, "comments": [], "ids": []},
    ]


def test_parent_reads_the_stored_field_even_when_the_parent_output_replaces_it() -> None:
    sql = (
        "SELECT id, 'replaced' AS author, "
        "(SELECT name FROM user WHERE id = $parent.author LIMIT 1) AS who FROM thread"
    )
    got = sorted(rows(sql, FORUM), key=lambda r: r["id"])
    assert got == [
        {"id": "thread:1", "author": "replaced", "who": {"name": "ann"}},
        {"id": "thread:2", "author": "replaced", "who": None},
    ]


def test_unqualified_names_in_a_subquery_are_its_own_records_fields() -> None:
    # `title` is a thread field, not a user field: inside the subquery it is NULL
    sql = "SELECT id, (SELECT id FROM user WHERE title IS NULL AND id = $parent.author) AS u FROM thread"
    got = sorted(rows(sql, FORUM), key=lambda r: r["id"])
    assert got == [{"id": "thread:1", "u": [{"id": "user:1"}]}, {"id": "thread:2", "u": []}]


def test_nested_limit_keeps_the_first_rows_by_key() -> None:
    sql = "SELECT id, (SELECT id FROM comment WHERE thread = $parent.id LIMIT 2) AS c FROM thread"
    got = sorted(rows(sql, FORUM), key=lambda r: r["id"])
    assert got[0]["c"] == [{"id": "comment:1"}, {"id": "comment:2"}]


def test_where_subqueries_and_joins() -> None:
    assert sorted(ids("SELECT id FROM user WHERE id IN (SELECT author FROM thread)", FORUM)) == [
        "user:1"
    ]
    assert ids("SELECT id FROM user WHERE id NOT IN (SELECT author FROM thread)", FORUM) == [
        "user:2"
    ]
    got = rows(
        "SELECT c.id AS c, u.name AS name FROM comment c JOIN user u ON c.by = u.id "
        "WHERE u.admin IS NULL ORDER BY c.n, name",
        FORUM,
    )
    assert got == [{"c": "comment:3", "name": "bob"}, {"c": "comment:1", "name": "bob"}]


def test_group_by_and_distinct_follow_sqlite() -> None:
    got = rows("SELECT by, COUNT(*) AS n, SUM(n) AS s FROM comment GROUP BY by ORDER BY n", FORUM)
    assert got == [{"by": "user:1", "n": 1, "s": 1}, {"by": "user:2", "n": 2, "s": 3}]
    assert rows("SELECT DISTINCT by FROM comment ORDER BY by DESC", FORUM) == [
        {"by": "user:2"},
        {"by": "user:1"},
    ]


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT id FROM t UNION SELECT id FROM t", "UNION"),
        ("SELECT (SELECT id FROM t)[1] AS x FROM t", "only (subquery)[0]"),
        ("SELECT id FROM (SELECT id FROM t) AS s", "only plain tables"),
    ],
)
def test_constructs_the_sqlite_oracle_cannot_run_are_skipped(sql: str, reason: str) -> None:
    result = SqliteOracle().evaluate(sql, {}, NUMS)
    assert isinstance(result, Skipped)
    assert reason in result.reason


def test_sqlglot_oracle_agrees_with_sqlite_on_what_it_runs() -> None:
    for sql in (
        "SELECT id, x + 1 AS y FROM t WHERE NOT (x > 1) OR x IS NULL",
        "SELECT id, x FROM t ORDER BY x DESC LIMIT 3",
        "SELECT id, COALESCE(x, -1) * 2 AS y FROM t WHERE x IN (1, 3) OR x IS NULL",
        "SELECT id FROM t WHERE x BETWEEN $lo AND 3",
    ):
        mine = SqlglotOracle().evaluate(sql, {"lo": 2}, NUMS)
        theirs = SqliteOracle().evaluate(sql, {"lo": 2}, NUMS)
        assert isinstance(mine, Rows) and isinstance(theirs, Rows)
        assert diff_rows(mine.rows, theirs.rows, ordered=theirs.ordered) is None, sql


@pytest.mark.parametrize(
    ("sql", "tables", "reason"),
    [
        ("SELECT id FROM t WHERE s LIKE 'a%'", NUMS, "LIKE"),
        ("SELECT id, x / 2 AS h FROM t", NUMS, "/"),
        ("SELECT id FROM t WHERE x IN (SELECT x FROM t)", NUMS, "subquery"),
        ("SELECT * FROM t", NUMS, "lack some fields"),
        ("SELECT id FROM t WHERE v > 2", MIXED, "not supported between"),
        ("SELECT id FROM user", FORUM, "upper-case"),
    ],
)
def test_sqlglot_oracle_skips_what_it_would_get_wrong(
    sql: str, tables: Tables, reason: str
) -> None:
    result = get_oracle("sqlglot").evaluate(sql, {}, tables)
    assert isinstance(result, Skipped)
    assert reason in result.reason


def test_diff_normalizes_booleans_only() -> None:
    assert diff_rows([{"a": True, "b": [False]}], [{"a": 1, "b": [0]}], ordered=False) is None
    assert normalize_value({"x": [True, {"y": False}]}) == {"x": [1, {"y": 0}]}
    diff = diff_rows([{"a": 3}], [{"a": 3.0}], ordered=False)
    assert diff is not None
    assert diff.only_ssp == ['{"a":3}'] and diff.only_oracle == ['{"a":3.0}']


def test_diff_reports_missing_extra_and_order() -> None:
    diff = diff_rows([{"a": 1}, {"a": 1}], [{"a": 1}, {"a": 2}], ordered=False)
    assert diff is not None
    assert (diff.only_ssp, diff.only_oracle) == (['{"a":1}'], ['{"a":2}'])
    text = diff.render()
    assert "rows only in ssp (1):" in text and "rows only in the oracle (1):" in text
    assert diff_rows([{"a": 1}, {"a": 2}], [{"a": 2}, {"a": 1}], ordered=False) is None
    order = diff_rows([{"a": 1}, {"a": 2}], [{"a": 2}, {"a": 1}], ordered=True)
    assert order is not None and order.order == (0, '{"a":1}', '{"a":2}')
    assert "different order: first difference at position 0" in order.render()


def test_grouped_and_distinct_columns_keep_sql_equality_and_decode_nested_values() -> None:
    tables = {
        "t": table(
            "t",
            {"id": 1, "v": 1, "o": {"k": 1}},
            {"id": 2, "v": 1.0, "o": {"k": 1}},
            {"id": 3, "v": True, "o": "x"},
        )
    }
    assert rows("SELECT DISTINCT v FROM t", tables) == [{"v": 1}]
    nulls = {"t": table("t", {"id": 1}, {"id": 2, "v": None})}
    assert rows("SELECT DISTINCT v FROM t", nulls) == [{"v": None}]
    got = rows("SELECT o, COUNT(*) AS n FROM t GROUP BY o ORDER BY n", tables)
    assert got == [{"o": "x", "n": 1}, {"o": {"k": 1}, "n": 2}]
