"""Value semantics against SQLite, the oracle (SPEC 2: expressions follow SQLite).

Every function of ``circuit.sql.values`` is checked against stdlib ``sqlite3``
with the values loaded as the SPEC says: a bool as 1/0, a list or dict as its
canonical JSON text, in columns without a declared type (no affinity). A grid
of edge values covers every pair; hypothesis adds random values drawn from
small alphabets so that collisions, numeric-looking strings and ties happen.
"""

from __future__ import annotations

import math
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from circuit.errors import ReplayError, SqlError
from circuit.sql import values as V
from circuit.sql.values import Value

FUZZ = os.environ.get("SSP_FUZZ") == "1"
EXAMPLES = 2000 if FUZZ else 150

GRID: list[Value] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2,
    3,
    7,
    -7,
    10,
    2**53 + 1,
    2**63 - 1,
    -(2**63),
    -(2**63) + 1,
    0.0,
    -0.0,
    0.5,
    -2.5,
    2.0,
    3.0,
    1e20,
    -1e20,
    1e-5,
    0.1,
    float(2**53),
    9.223372036854776e18,
    1.7976931348623157e308,
    "",
    " ",
    "a",
    "A",
    "b",
    "abc",
    "ABC",
    "é",
    "É",
    "\U0001f600",
    "0",
    "1",
    "01",
    "-1",
    " 2",
    "2 ",
    "2.0",
    "0.5",
    ".5",
    "5.",
    "1e2",
    "1e",
    "1.5e3x",
    "12abc",
    "abc12",
    "0x10",
    "-",
    "+3",
    "1e-400",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "99999999999999999999x",
    "a%b_c",
    "a\x00b",
    "[1]",
    [],
    [1, 2],
    [True, None, "x"],
    {},
    {"b": 1, "a": [2.5, {"c": "é"}]},
    {"a": 1},
]


def to_sqlite(v: Value) -> Any:
    """The value SQLite holds for *v* (SPEC 2): bools as 1/0, JSON values as text."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, list | dict):
        return V.canonical_json(v)
    return v


def as_sql_result(v: Any) -> Any:
    """A predicate's ``True``/``False`` as the SQL integers SQLite returns."""
    return int(v) if isinstance(v, bool) else v


def same(ours: Any, theirs: Any) -> bool:
    """Identical SQL results: same type, same value, same sign of zero."""
    ours = as_sql_result(ours)
    if type(ours) is not type(theirs):
        return False
    if isinstance(ours, float):
        return ours == theirs and math.copysign(1, ours) == math.copysign(1, theirs)
    return bool(ours == theirs)


def connect(case_sensitive_like: bool = True) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute(f"PRAGMA case_sensitive_like = {'ON' if case_sensitive_like else 'OFF'}")
    return conn


# Binary operations: (name, SQL over columns a and b, our function).
BINARY: list[tuple[str, str, Callable[[Value, Value], Any]]] = [
    ("eq", "a = b", V.eq),
    ("ne", "a <> b", V.ne),
    ("lt", "a < b", V.lt),
    ("le", "a <= b", V.le),
    ("gt", "a > b", V.gt),
    ("ge", "a >= b", V.ge),
    (
        "compare",
        "CASE WHEN a < b THEN -1 WHEN a = b THEN 0 WHEN a > b THEN 1 END",
        V.compare,
    ),
    ("and", "a AND b", V.and_),
    ("or", "a OR b", V.or_),
    ("add", "a + b", V.add),
    ("sub", "a - b", V.sub),
    ("mul", "a * b", V.mul),
    ("div", "a / b", V.div),
    ("mod", "a % b", V.mod),
    ("concat", "a || b", V.concat),
    ("like", "a LIKE b", lambda a, b: V.like(a, b)),
    ("coalesce", "coalesce(a, b)", lambda a, b: to_sqlite(V.coalesce(a, b))),
    ("in_pair", "a IN (b, 5)", lambda a, b: V.in_list(a, [b, 5])),
    ("in_compiled", "a IN (b, 5)", lambda a, b: V.compile_in_list([b, 5])(a)),
    ("in_one", "a IN (b)", lambda a, b: V.in_list(a, [b])),
]

# Unary operations: (name, SQL over column a, our function).
UNARY: list[tuple[str, str, Callable[[Value], Any]]] = [
    ("not", "NOT a", V.not_),
    ("truth", "CASE WHEN a THEN 1 WHEN NOT a THEN 0 END", V.truth),
    ("is_true", "CASE WHEN a THEN 1 ELSE 0 END", V.is_true),
    ("neg", "-a", V.neg),
    ("to_text", "CAST(a AS TEXT)", V.to_text),
    ("concat_empty", "a || ''", lambda a: V.concat(a, "")),
    ("lower", "lower(a)", V.lower),
    ("upper", "upper(a)", V.upper),
    ("length", "length(a)", V.length),
    ("in_empty", "a IN ()", lambda a: V.in_list(a, [])),
    ("in_null", "a IN (1, NULL)", lambda a: V.in_list(a, [1, None])),
    ("in_null_compiled", "a IN (1, NULL)", lambda a: V.compile_in_list([1, None])(a)),
    ("add_zero", "a + 0", lambda a: V.add(a, 0)),
    ("mul_real", "a * 1.0", lambda a: V.mul(a, 1.0)),
    ("mod_real", "a % 2.5", lambda a: V.mod(a, 2.5)),
    ("mod_int", "7 % a", lambda a: V.mod(7, a)),
]


def sqlite_rows(sql_exprs: Sequence[str], rows: Sequence[Sequence[Value]]) -> list[tuple[Any, ...]]:
    """Evaluate each expression over each row (columns a, b, c) in SQLite."""
    conn = connect()
    conn.execute("CREATE TABLE t(i, a, b, c)")
    conn.executemany(
        "INSERT INTO t VALUES (?, ?, ?, ?)",
        [
            (i, *(to_sqlite(v) for v in row), *([None] * (3 - len(row))))
            for i, row in enumerate(rows)
        ],
    )
    select = ", ".join(f"({e})" for e in sql_exprs)
    return conn.execute(f"SELECT {select} FROM t ORDER BY i").fetchall()


def mismatches(
    ops: Sequence[tuple[str, str, Callable[..., Any]]], rows: Sequence[Sequence[Value]]
) -> Iterator[str]:
    """Every (operation, operands) where our result differs from SQLite's."""
    expected = sqlite_rows([sql for _, sql, _ in ops], rows)
    for row, theirs in zip(rows, expected, strict=True):
        for (name, _, func), want in zip(ops, theirs, strict=True):
            got = func(*row)
            if not same(got, want):
                yield f"{name}{tuple(row)!r}: ours {got!r}, SQLite {want!r}"


def test_binary_operations_match_sqlite_on_grid() -> None:
    pairs = [(a, b) for a in GRID for b in GRID]
    assert list(mismatches(BINARY, pairs)) == []


def test_unary_operations_match_sqlite_on_grid() -> None:
    assert list(mismatches(UNARY, [(a,) for a in GRID])) == []


def test_abs_matches_sqlite_except_the_overflow_sqlite_also_rejects() -> None:
    rows = [(v,) for v in GRID if v != -(2**63)]
    assert list(mismatches([("abs", "abs(a)", V.abs_)], rows)) == []
    with pytest.raises(sqlite3.OperationalError, match="integer overflow"):
        connect().execute("SELECT abs(-9223372036854775807 - 1)").fetchone()
    with pytest.raises(ReplayError, match="integer overflow"):
        V.abs_(-(2**63))


def test_between_matches_sqlite() -> None:
    small = [None, 1, 2.5, "a", "1", [1], True]
    rows = [(a, b, c) for a in small for b in small for c in small]
    assert list(mismatches([("between", "a BETWEEN b AND c", V.between)], rows)) == []


def test_float_text_examples() -> None:
    assert [V.to_text(x) for x in (1.0, 0.1, 1e20, -0.0, 1e15, 1e-5, 1e-4, 100.0)] == [
        "1.0",
        "0.1",
        "1.0e+20",
        "0.0",
        "1.0e+15",
        "1.0e-05",
        "0.0001",
        "100.0",
    ]
    assert V.to_text(1e308 * 10) == "Inf"
    assert V.to_text(True) == "1"


def test_infinity_and_nan_results_match_sqlite() -> None:
    conn = connect()
    row = conn.execute(
        "SELECT 1e308 * 10, (1e308 * 10) || '', -(1e308 * 10) || '', "
        "(1e308 * 10) - (1e308 * 10), (1e308 * 10) * 0"
    ).fetchone()
    inf = 1e308 * 10
    ours = (V.mul(1e308, 10), V.concat(inf, ""), V.concat(-inf, ""), V.sub(inf, inf), V.mul(inf, 0))
    assert ours == row


def test_sort_key_orders_like_sqlite_order_by() -> None:
    conn = connect()
    conn.execute("CREATE TABLE t(i, v)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, to_sqlite(v)) for i, v in enumerate(GRID)])
    theirs = [i for (i,) in conn.execute("SELECT i FROM t ORDER BY v, i")]
    ours = sorted(range(len(GRID)), key=lambda i: (V.sort_key(GRID[i]), i))
    assert ours == theirs


@pytest.mark.parametrize(
    ("terms", "descending", "nulls_first"),
    [
        ("a DESC", [True], [None]),
        ("a ASC NULLS LAST", [False], [False]),
        ("a DESC NULLS FIRST", [True], [True]),
        ("a DESC, b", [True, False], [None, None]),
        ("a, b DESC NULLS FIRST", [False, True], [None, True]),
        ("b DESC NULLS LAST, a DESC", [True, True], [False, None]),
    ],
)
def test_order_key_matches_sqlite_order_by(
    terms: str, descending: list[bool], nulls_first: list[bool | None]
) -> None:
    small = [None, 1, -2.5, 3.0, "", "a", "B", "ab", [1], {"a": 1}, True]
    rows = [(a, b) for a in small for b in small]
    conn = connect()
    conn.execute("CREATE TABLE t(i, a, b)")
    conn.executemany(
        "INSERT INTO t VALUES (?, ?, ?)",
        [(i, to_sqlite(a), to_sqlite(b)) for i, (a, b) in enumerate(rows)],
    )
    theirs = [i for (i,) in conn.execute(f"SELECT i FROM t ORDER BY {terms}, i")]
    key = V.make_order_key(descending, nulls_first)
    columns = {"a": 0, "b": 1}
    picked = [columns[term.split()[0].rstrip(",")] for term in terms.split(",")]
    ours = sorted(range(len(rows)), key=lambda i: (key([rows[i][c] for c in picked]), i))
    assert ours == theirs
    assert V.order_key(rows[0], descending, nulls_first) == key(rows[0])


def test_sort_key_is_consistent_with_compare() -> None:
    present = [v for v in GRID if v is not None]
    for a in present:
        for b in present:
            ka, kb = V.sort_key(a), V.sort_key(b)
            assert V.compare(a, b) == (ka > kb) - (ka < kb), (a, b)


def test_desc_text_reverses_order() -> None:
    words = ["", "a", "ab", "b", "é"]
    assert sorted(words, key=V.DescText) == sorted(words, reverse=True)
    assert V.DescText("x") == V.DescText("x")
    assert hash(V.DescText("x")) == hash("x")


# ---------------------------------------------------------------------------
# LIKE
# ---------------------------------------------------------------------------


def sqlite_like(value: Value, pattern: Value, *, case_sensitive: bool, escape: str | None) -> Any:
    conn = connect(case_sensitive)
    sql = "SELECT ? LIKE ?" + (" ESCAPE ?" if escape is not None else "")
    params = [to_sqlite(value), to_sqlite(pattern)] + ([escape] if escape is not None else [])
    return conn.execute(sql, params).fetchone()[0]


LIKE_CASES: list[tuple[Value, str, str | None]] = [
    ("abc", "abc", None),
    ("abc", "ABC", None),
    ("abc", "a%", None),
    ("abc", "%c", None),
    ("abc", "%b%", None),
    ("abc", "a_c", None),
    ("abc", "_", None),
    ("", "%", None),
    ("", "", None),
    ("", "_", None),
    ("a%c", "a\\%c", "\\"),
    ("abc", "a\\%c", "\\"),
    ("a_c", "a\\_c", "\\"),
    ("abc", "abc\\", "\\"),
    ("ab", "a%", "%"),
    ("a%", "a%%", "%"),
    ("aXb", "aXXb", "X"),
    ("ab", "aXb", "X"),
    ("éA", "éa", None),
    ("ÉA", "é%", None),
    ("a\x00b", "a", None),
    ("a\x00b", "a%b", None),
    ("ab", "a\x00z", None),
    ("xab", "%ab", None),
    ("x\x00ab", "%ab", None),
    ("x\x00ab", "%a%", None),
    (12, "1%", None),
    (1.5, "1.5", None),
    (True, "1", None),
    ([1, 2], "[1,%", None),
    ({"a": 1}, '{"a":_}', None),
    (None, "%", None),
    ("abc", "%%a%%%c%", None),
    ("abcabcab", "%abc_b", None),
    ("aaab", "%a_b", None),
    ("mississippi", "%ss_ss%i", None),
    ("mississippi", "m%iss%ppi", None),
    ("mississippi", "m%iss%ppix", None),
]


@pytest.mark.parametrize("case_sensitive", [True, False])
@pytest.mark.parametrize(("value", "pattern", "escape"), LIKE_CASES)
def test_like_cases_match_sqlite(
    value: Value, pattern: str, escape: str | None, case_sensitive: bool
) -> None:
    want = sqlite_like(value, pattern, case_sensitive=case_sensitive, escape=escape)
    got = V.like(value, pattern, case_sensitive=case_sensitive, escape=escape)
    assert as_sql_result(got) == want
    matcher = V.compile_like(pattern, case_sensitive, escape)
    assert as_sql_result(matcher(value)) == want


def test_like_null_pattern_and_bad_escape() -> None:
    assert V.like("a", None) is None
    assert V.compile_like(None)("a") is None
    with pytest.raises(SqlError, match="single character"):
        V.compile_like("a", True, "ab")


LIKE_TEXT = st.text(alphabet="abAB%_\\\x00é", max_size=8)


@settings(max_examples=EXAMPLES * 2, deadline=None)
@given(
    value=LIKE_TEXT,
    pattern=LIKE_TEXT,
    case_sensitive=st.booleans(),
    escape=st.sampled_from([None, "\\", "a", "%", "_"]),
)
def test_like_fuzz_matches_sqlite(
    value: str, pattern: str, case_sensitive: bool, escape: str | None
) -> None:
    want = sqlite_like(value, pattern, case_sensitive=case_sensitive, escape=escape)
    got = V.like(value, pattern, case_sensitive=case_sensitive, escape=escape)
    assert as_sql_result(got) == want


def test_like_hostile_pattern_completes_without_backtracking() -> None:
    text = "a" * 10_000
    assert V.like(text, "%a%a%a%a%a%a%b") is False
    assert V.like(text, "%a_a%a_%_a%a%_b") is False
    assert V.like(text + "b", "%a%a%a%a%a%a%b") is True
    assert V.like("ab" * 5_000, "%" + "a_" * 200 + "c%") is False


# ---------------------------------------------------------------------------
# Property tests against SQLite
# ---------------------------------------------------------------------------

EDGE_INTS = [0, 1, -1, 2, 7, -7, 2**31, 2**53 + 1, 2**63 - 1, -(2**63), -(2**63) + 1]
EDGE_FLOATS = [0.0, -0.0, 0.5, -1.5, 2.0, 1e20, 1e-7, 0.1, 9.223372036854776e18]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(EDGE_INTS),
    st.integers(min_value=-20, max_value=20),
    st.sampled_from(EDGE_FLOATS),
    st.floats(min_value=-100, max_value=100, allow_nan=False).map(lambda f: round(f, 2)),
    st.text(alphabet="0123456789.eE+- xaé", max_size=6),
    st.text(alphabet="aAbé[]", max_size=3),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=2),
        st.dictionaries(st.sampled_from(["a", "b"]), inner, max_size=2),
    ),
    max_leaves=3,
)


@settings(max_examples=EXAMPLES, deadline=None)
@given(a=VALUES, b=VALUES)
def test_binary_operations_fuzz_match_sqlite(a: Value, b: Value) -> None:
    assert list(mismatches(BINARY, [(a, b)])) == []


@settings(max_examples=EXAMPLES, deadline=None)
@given(a=VALUES)
def test_unary_operations_fuzz_match_sqlite(a: Value) -> None:
    assert list(mismatches(UNARY, [(a,)])) == []


@settings(max_examples=EXAMPLES, deadline=None)
@given(f=st.floats(allow_nan=False, allow_infinity=False))
def test_float_text_fuzz_matches_sqlite(f: float) -> None:
    assert list(mismatches([("to_text", "a || ''", V.to_text)], [(f,)])) == []


@settings(max_examples=EXAMPLES, deadline=None)
@given(text=st.text(alphabet="0123456789.eE+- \t", max_size=25))
def test_text_to_number_fuzz_matches_sqlite(text: str) -> None:
    ops = [
        ("add_zero", "a + 0", lambda a: V.add(a, 0)),
        ("is_true", "CASE WHEN a THEN 1 ELSE 0 END", V.is_true),
        ("mod", "a % 7", lambda a: V.mod(a, 7)),
        ("abs", "abs(a)", V.abs_),
    ]
    assert list(mismatches(ops, [(text,)])) == []


# ---------------------------------------------------------------------------
# JSON equality and canonical JSON
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (3, 3.0, True),
        (3, 3.5, False),
        (True, 1, False),
        (False, 0, False),
        (0.0, -0.0, True),
        (True, True, True),
        (None, None, True),
        (None, 0, False),
        ("3", 3, False),
        ({"a": 1, "b": 2}, {"b": 2.0, "a": 1}, True),
        ({"a": 1}, {"a": 1, "b": None}, False),
        ({"a": 1}, {"b": 1}, False),
        ([1, [2, {"x": True}]], [1.0, [2, {"x": True}]], True),
        ([1, [2, {"x": True}]], [1, [2, {"x": 1}]], False),
        ([1, 2], [2, 1], False),
        ([1], [1, 1], False),
        ([], {}, False),
        (2**53 + 1, float(2**53), False),
    ],
)
def test_json_equal(a: Value, b: Value, equal: bool) -> None:
    assert V.json_equal(a, b) is equal
    assert V.json_equal(b, a) is equal


def nested(depth: int) -> Value:
    value: Value = {"leaf": [1.5, "é", True, None]}
    for i in range(depth):
        value = [value] if i % 2 else {"k": value, "a": i}
    return value


def test_deep_values_encode_and_compare() -> None:
    shallow = nested(100)
    assert V.canonical_json(shallow) == V._canonical_json_deep(shallow)
    deep = nested(1000)
    text = V.canonical_json(deep)
    assert text.startswith('[{"a":998,"k":[{"a":996,"k":[')
    assert text.count("[") == text.count("]")
    assert V.json_equal(deep, nested(1000))


def test_canonical_json_form() -> None:
    assert V.canonical_json({"b": [1, 2.0], "a": "é"}) == '{"a":"é","b":[1,2.0]}'


# ---------------------------------------------------------------------------
# Reals to and from text, to the last digit
# ---------------------------------------------------------------------------

NUMERIC_TEXT = st.builds(
    lambda sign, digits, point, exp: (
        sign + (digits[:point] + "." + digits[point:] if point is not None else digits) + exp
    ),
    st.sampled_from(["", "-", "+", " "]),
    st.text(alphabet="0123456789", min_size=1, max_size=22),
    st.none() | st.integers(min_value=0, max_value=22),
    st.just("") | st.integers(min_value=-345, max_value=345).map(lambda e: f"e{e}"),
)


@settings(max_examples=EXAMPLES, deadline=None)
@given(text=NUMERIC_TEXT)
def test_text_to_real_fuzz_matches_sqlite_to_the_last_bit(text: str) -> None:
    ops = [("real", "a + 0.0", lambda a: V.add(a, 0.0)), ("number", "a + 0", lambda a: V.add(a, 0))]
    assert list(mismatches(ops, [(text,)])) == []


@pytest.mark.parametrize(
    ("value", "text"),
    [
        # Neither conversion is correctly rounded in SQLite: these differ from Python's.
        (4007482289101535.0, "4.00748228910153e+15"),
        (-36529801247752.75, "-36529801247752.7"),
        (V.add("7e-261", 0.0), "7.0e-261"),
        (V.add("8.e126", 0.0), "8.0e+126"),
    ],
)
def test_real_text_regressions(value: Value, text: str) -> None:
    assert V.to_text(value) == text
    assert list(mismatches([("to_text", "a || ''", V.to_text)], [(value,)])) == []


def test_text_to_real_regressions() -> None:
    assert V.add("7e-261", 0.0) == 7.0000000000000005e-261
    assert V.add("8.e126", 0.0) == 8.000000000000001e126
