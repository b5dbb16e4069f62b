"""The sqlglot oracle: ``sqlglot.executor.execute``, a small pure-Python SQL engine.

It is a second opinion next to SQLite, written by other people, so it shares
none of the SQLite oracle's translation code. Its semantics are Python's
where SQLite's differ, so it runs only what it gets right and skips the rest
with the reason:

- constructs: subqueries of any kind, ``LIKE``/``ILIKE`` (case rules),
  ``/`` and ``%`` (Python divides integers as floats), nested paths ``a.b``,
  ``$parent``, ``GROUP BY``/aggregates/``DISTINCT``/``HAVING``, ``LEFT JOIN``,
  ``OFFSET``, ``*`` over a join;
- data: nested lists or objects in a table the view reads, field names with
  upper-case letters (its schema folds them), and ``*`` over a
  table whose records do not all have the same fields (the executor needs
  uniform columns, which would turn a missing field into a NULL one);
- any error the executor raises (a comparison of a string with a number is a
  ``TypeError`` in Python): reported as skipped with the error.

Booleans are loaded as 1/0 (the SPEC's integers); parameters become literal
nodes of the syntax tree (the executor has no bind parameters).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.executor import execute

from ..errors import SqlError
from .base import OracleResult, Rows, Skipped, Tables, param_values, parse_select

_UNSUPPORTED: tuple[tuple[type[exp.Expr], str], ...] = (
    (exp.Subquery, "a subquery"),
    (exp.Exists, "EXISTS"),
    (exp.Like, "LIKE (Python case rules)"),
    (exp.ILike, "ILIKE"),
    (exp.Div, "/ (Python divides integers as floats)"),
    (exp.Mod, "%"),
    (exp.Dot, "a nested path"),
    (exp.Bracket, "a subquery with [index]"),
    (exp.AggFunc, "an aggregate"),
    (exp.Group, "GROUP BY"),
    (exp.Having, "HAVING"),
    (exp.Distinct, "DISTINCT"),
    (exp.Offset, "OFFSET"),
)


ARITHMETIC = "+ - * over strings"


class SqlglotOracle:
    """Evaluates a view with ``sqlglot.executor`` (see the module docstring)."""

    name = "sqlglot"

    def __init__(self, dialect: str | None = None) -> None:
        self.dialect = dialect

    def snapshot(self, tables: Tables) -> _Snapshot:
        return _Snapshot(self, tables)

    def evaluate(self, sql: str, params: Mapping[str, Any], tables: Tables) -> OracleResult:
        query = parse_select(sql, self.dialect).copy()
        if not isinstance(query, exp.Select):
            return Skipped(f"a top-level {query.key.upper()}")
        reason = _unsupported(query)
        if reason is not None:
            return Skipped(reason)
        refs = [query.args["from_"].this, *(join.this for join in query.args.get("joins") or [])]
        if not all(isinstance(ref, exp.Table) for ref in refs):
            return Skipped("FROM something other than a table")
        star = any(
            isinstance(e, exp.Star) or (isinstance(e, exp.Column) and isinstance(e.this, exp.Star))
            for e in query.expressions
        )
        if star and len(refs) > 1:
            return Skipped("* over a join")
        aliases = {e.alias for e in query.expressions if isinstance(e, exp.Alias)}
        order = query.args.get("order")
        sorted_names = {
            column.name
            for column in (order.find_all(exp.Column) if order is not None else ())
            if not column.table
        }
        referenced = {
            column.name
            for column in query.find_all(exp.Column)
            if not column.name.startswith("$") and column.name not in aliases
        }
        loaded: dict[str, list[dict[str, Any]]] = {}
        schema: dict[str, dict[str, str]] = {}
        for ref in refs:
            table = _load(tables.get(ref.name, {}), uniform=star, referenced=referenced)
            if isinstance(table, Skipped):
                return table
            loaded[ref.name] = table[0]
            schema[ref.name] = dict.fromkeys(table[1], "UNKNOWN")
            if sorted_names & aliases & set(table[1]):
                return Skipped("ORDER BY an output name that is also a field (ambiguous here)")
        _bind(query, param_values(params))
        hazard = _python_semantics(query, loaded)
        if hazard is not None:
            return Skipped(hazard)
        for ident in query.find_all(exp.Identifier):
            ident.set("quoted", True)  # the executor folds unquoted names to lower case
        ordered = query.args.get("order") is not None
        if ordered or query.args.get("limit") is not None:
            keys = [exp.column("id", table=ref.alias_or_name, quoted=True) for ref in refs]
            terms = [*(query.args["order"].expressions if ordered else []), *keys]
            query.set("order", exp.Order(expressions=terms))
        try:
            result = execute(query, schema=schema, tables=loaded)
        except (SqlglotError, TypeError, ValueError, KeyError, AttributeError) as err:
            return Skipped(f"sqlglot executor failed: {type(err).__name__}: {err}")
        return Rows([dict(zip(result.columns, row, strict=True)) for row in result.rows], ordered)


class _Snapshot:
    """The executor keeps no state between queries: a snapshot only remembers the tables."""

    def __init__(self, oracle: SqlglotOracle, tables: Tables) -> None:
        self.oracle = oracle
        self.tables = tables

    def evaluate(self, sql: str, params: Mapping[str, Any]) -> OracleResult:
        return self.oracle.evaluate(sql, params, self.tables)

    def close(self) -> None:
        """Nothing to release."""


def _unsupported(query: exp.Select) -> str | None:
    """The first construct of ``query`` this oracle does not run, else None."""
    for node in query.walk():
        for kind, reason in _UNSUPPORTED:
            if isinstance(node, kind):
                return reason
        if isinstance(node, exp.Select) and node is not query:
            return "a subquery"
        if isinstance(node, exp.Column) and node.table == "$parent":
            return "$parent"
        if isinstance(node, exp.Join) and (node.side or node.kind not in ("", "INNER")):
            return f"{node.side} {node.kind} JOIN".strip()
    return None


def _load(
    records: Mapping[str, dict[str, Any]], *, uniform: bool, referenced: set[str]
) -> tuple[list[dict[str, Any]], list[str]] | Skipped:
    """Records as executor rows (booleans 1/0) and the table's columns.

    The columns are every field plus, unless ``*`` reads a non-empty table,
    every name the query references (all NULL where missing), so that an
    empty table or a field no record has still resolves.
    """
    fields: dict[str, None] = {"id": None}
    if not uniform or not records:  # with no records, `*` has no row to widen
        fields.update(dict.fromkeys(sorted(referenced)))
    for record in records.values():
        fields.update(dict.fromkeys(record))
        if any(isinstance(value, dict | list) for value in record.values()):
            return Skipped("nested lists or objects in the data")
    if any(name != name.lower() for name in fields):
        return Skipped("a field name with upper-case letters (the executor folds them)")
    if uniform and any(len(record) != len(fields) for record in records.values()):
        return Skipped("* over records that lack some fields")
    rows = [{name: _value(record.get(name)) for name in fields} for record in records.values()]
    return rows, list(fields)


def _python_semantics(query: exp.Select, loaded: Mapping[str, list[dict[str, Any]]]) -> str | None:
    """Where Python would compute something else than SQLite on these values, say what.

    ``+ - *`` on strings concatenate or repeat in Python; ``||`` renders
    floats differently (``1e+20`` vs SQLite's ``1.0e+20``); ``UPPER``/``LOWER``
    fold non-ASCII letters, SQLite does not. The check looks at the literals
    and at every value of the columns under such an operator (by column name,
    over every table the query reads, which errs on the side of skipping).
    """
    values: dict[str, list[Any]] = {}
    for rows in loaded.values():
        for row in rows:
            for name, value in row.items():
                values.setdefault(name, []).append(value)
    hazards: tuple[tuple[type[exp.Expr], str, Callable[[Any], bool]], ...] = (
        (exp.Add, ARITHMETIC, lambda v: isinstance(v, str)),
        (exp.Sub, ARITHMETIC, lambda v: isinstance(v, str)),
        (exp.Mul, ARITHMETIC, lambda v: isinstance(v, str)),
        (exp.Neg, ARITHMETIC, lambda v: isinstance(v, str)),
        (exp.DPipe, "|| over floats", lambda v: isinstance(v, float)),
        (
            exp.Upper,
            "UPPER/LOWER of non-ASCII text",
            lambda v: isinstance(v, str) and not v.isascii(),
        ),
        (
            exp.Lower,
            "UPPER/LOWER of non-ASCII text",
            lambda v: isinstance(v, str) and not v.isascii(),
        ),
    )
    for kind, reason, bad in hazards:
        for node in query.find_all(kind):
            for leaf in node.walk():
                if reason == ARITHMETIC and isinstance(leaf, exp.DPipe | exp.Upper | exp.Lower):
                    return reason  # text computed at run time
                if isinstance(leaf, exp.Literal) and bad(_literal_value(leaf)):
                    return reason
                if isinstance(leaf, exp.Column) and any(map(bad, values.get(leaf.name, ()))):
                    return reason
    return None


def _literal_value(node: exp.Literal) -> Any:
    if node.is_string:
        return node.this
    text = str(node.this)
    return float(text) if any(ch in text for ch in ".eE") else int(text)


def _value(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


def _literal(value: Any) -> exp.Expr:
    value = _value(value)
    if value is None:
        return exp.Null()
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    raise SqlError(f"parameter value {value!r} cannot be a literal")


def _bind(query: exp.Select, params: Mapping[str, Any]) -> None:
    """Replace ``$name`` and ``:name`` by literal nodes of their values, TRUE/FALSE by 1/0."""
    for node in list(query.walk()):
        if isinstance(node, exp.Boolean):
            node.replace(exp.Literal.number(int(node.this)))
            continue
        name = None
        if isinstance(node, exp.Placeholder):
            name = node.name
        elif isinstance(node, exp.Column) and not node.table and node.name.startswith("$"):
            name = node.name[1:]
        if name is None:
            continue
        if name not in params:
            raise SqlError(f"unbound parameter ${name}")
        node.replace(_literal(params[name]))
