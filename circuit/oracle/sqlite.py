"""The SQLite oracle: the view's SQL, transpiled by sqlglot, run by stdlib sqlite3.

The SPEC defines the engine's expression semantics as SQLite's, so SQLite is an
exact oracle once the records are loaded the right way and the few places
where the SPEC goes beyond SQL are spelled out in SQL:

- Each table is loaded natively: one column per field (the union over its
  records, plus every name the query resolves to it), declared without a type
  so no affinity converts values; booleans become 1/0 and nested lists and
  objects their canonical JSON text, which is how the SPEC compares them. A
  hidden column holds the canonical JSON of the whole record: ``*`` expands
  from it (a field the record lacks stays absent), and ``a.b`` reads the
  nested field with ``json_extract`` on it.
- Column references are resolved here, not by SQLite, with the SPEC's scoping
  (an unqualified name in a subquery is a field of that subquery's own FROM
  record; ``$parent.f`` is the parent level's FROM record), and every table
  gets a generated alias so scopes cannot capture each other's names.
- Parameters are bound as named ``?``-style parameters, never pasted into the
  SQL text.
- ORDER BY gets the row key appended (record ids in FROM/JOIN order, the
  group-by values, or the row itself for DISTINCT) so ties are deterministic;
  LIMIT without ORDER BY orders by the row key.
- Select-list subqueries become correlated JSON builders: ``json_object`` (or
  ``json_set`` over the record's JSON for ``*``), aggregated with
  ``json_group_array`` over an ordered derived table, or the first row alone
  for ``LIMIT 1`` and ``(subquery)[0]``. The derived table always has an
  ORDER BY, which keeps SQLite from flattening it, so the array is in order.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from ..errors import SqlError, VerificationError
from .base import OracleResult, Rows, Skipped, Tables, canonical_json, param_values, parse_select

JSON_COLUMN = "__ssp_json__"
"""Hidden column with the canonical JSON of the whole record."""

NESTED_COLUMN = "__ssp_obj__"
"""Column name of the JSON objects inside a nested array's derived table."""

INT64 = (-(2**63), 2**63 - 1)

_SELECT_ARGS = frozenset(
    {"expressions", "from_", "from", "joins", "where", "group", "having", "order", "limit"}
    | {"offset", "distinct", "kind", "hint", "exclude", "operation_modifiers"}
)


class _Skip(Exception):
    """Raised during translation for a construct this oracle cannot run."""


def sql_value(value: Any) -> Any:
    """A record value as SQLite stores it: bools 1/0, nested values as canonical JSON."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dict | list):
        return canonical_json(value)
    if isinstance(value, int) and not INT64[0] <= value <= INT64[1]:
        return float(value)
    return value


def _ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def _func(name: str, *args: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this=name, expressions=list(args))


def _json_path(path: list[str]) -> exp.Expression:
    """``'$."a"."b"'``; SQLite's path syntax cannot quote a ``"`` inside a key."""
    if any('"' in part for part in path):
        raise _Skip("a field name containing '\"' in a nested path")
    return exp.Literal.string("$" + "".join(f'."{part}"' for part in path))


def _names(node: exp.Expression) -> list[str] | None:
    """The dotted names of a column reference (``a.b.c`` -> ``[a, b, c]``), else None."""
    if isinstance(node, exp.Dot):
        head = _names(node.this)
        if head is None or not isinstance(node.expression, exp.Identifier):
            return None
        return [*head, node.expression.name]
    if isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
        return [part.name for part in node.parts]
    return None


def _has_aggregate(nodes: list[exp.Expression]) -> bool:
    """True when an aggregate function appears outside any subquery."""

    def walk(node: exp.Expression) -> bool:
        if isinstance(node, exp.AggFunc):
            return True
        if isinstance(node, exp.Subquery | exp.Select):
            return False
        return any(walk(child) for child in node.iter_expressions())

    return any(walk(node) for node in nodes)


@dataclass(slots=True)
class _Ref:
    """One table in a FROM/JOIN list: its visible name, table and generated alias."""

    visible: str
    table: str
    alias: str


@dataclass(slots=True)
class _Scope:
    refs: list[_Ref]
    parent: _Scope | None

    def lookup(self, name: str) -> _Ref | None:
        scope: _Scope | None = self
        while scope is not None:
            for ref in scope.refs:
                if ref.visible == name:
                    return ref
            scope = scope.parent
        return None


@dataclass(slots=True)
class _Item:
    """One explicit select-list item, translated.

    ``value`` is what the item outputs (JSON text when ``json`` is true),
    ``sort`` the SQL value ORDER BY uses when it names the item (None for a
    nested subquery, which cannot be sorted on). ``nested`` is set for a
    column read in a GROUP BY / DISTINCT query, where the value must stay a
    SQL value: it says whether that value is a nested list or object, whose
    JSON text the row builder then decodes.
    """

    name: str
    value: exp.Expression
    sort: exp.Expression | None
    json: bool
    nested: exp.Expression | None = None


@dataclass(slots=True)
class _Plan:
    """A translated query: SQL, bindings, the tables to load, and how to build rows."""

    sql: str
    bindings: dict[str, Any]
    columns: dict[str, set[str]]
    build: Callable[[tuple[Any, ...]], dict[str, Any]]
    ordered: bool


class SqliteOracle:
    """Evaluates a view with SQLite (see the module docstring for how)."""

    name = "sqlite"

    def __init__(self, dialect: str | None = None) -> None:
        self.dialect = dialect

    def evaluate(self, sql: str, params: Mapping[str, Any], tables: Tables) -> OracleResult:
        with closing(self.snapshot(tables)) as snapshot:
            return snapshot.evaluate(sql, params)

    def snapshot(self, tables: Tables) -> SqliteSnapshot:
        return SqliteSnapshot(tables, self.dialect)


class SqliteSnapshot:
    """One in-memory database of one state of the tables, shared by the views checked on it.

    Tables are loaded when a query first reads them; a column a later query
    needs that no record has is added (all NULL) with ``ALTER TABLE``.
    """

    def __init__(self, tables: Tables, dialect: str | None) -> None:
        self.tables = tables
        self.dialect = dialect
        self.conn = sqlite3.connect(":memory:")
        self.conn.execute("PRAGMA case_sensitive_like = ON")
        self.loaded: dict[str, dict[str, str]] = {}
        """table -> {lower-cased column: column} of what the database holds."""

    def close(self) -> None:
        self.conn.close()

    def evaluate(self, sql: str, params: Mapping[str, Any]) -> OracleResult:
        try:
            plan = _Translator(self.tables, params).translate(parse_select(sql, self.dialect))
            self._ensure(plan.columns)
        except _Skip as skip:
            return Skipped(str(skip))
        try:
            raw = self.conn.execute(plan.sql, plan.bindings).fetchall()
        except sqlite3.Error as err:
            raise VerificationError(
                f"the SQLite oracle failed: {err}", location=f"oracle query {plan.sql}"
            ) from err
        try:
            rows = [plan.build(row) for row in raw]
        except _Skip as skip:
            return Skipped(str(skip))
        return Rows(rows, plan.ordered)

    def _ensure(self, columns: dict[str, set[str]]) -> None:
        """Load the tables ``columns`` names and add the columns they lack."""
        names = {*self.loaded, *columns}
        if len({name.lower() for name in names}) != len(names):
            raise _Skip("table names that differ only in case (SQLite folds them)")
        for table, needed in columns.items():
            if table not in self.loaded:
                self._load(table)
            have = self.loaded[table]
            for column in sorted(needed):
                exact = have.get(column.lower())
                if exact is None:
                    self.conn.execute(
                        f"ALTER TABLE {_ident(table).sql('sqlite')} "
                        f"ADD COLUMN {_ident(column).sql('sqlite')}"
                    )
                    have[column.lower()] = column
                elif exact != column:
                    raise _Skip(f"columns {exact!r} and {column!r} differ only in case")

    def _load(self, table: str) -> None:
        """Create and fill one untyped table with a column per field."""
        records = self.tables.get(table, {})
        fields: dict[str, None] = {"id": None}
        for record in records.values():
            fields.update(dict.fromkeys(record))
        names = list(fields)
        if JSON_COLUMN in fields:
            raise _Skip(f"a field named {JSON_COLUMN}")
        folded = {name.lower(): name for name in names}
        if len(folded) != len(names):
            raise _Skip(f"fields of {table} that differ only in case (SQLite folds them)")
        quoted = ", ".join(_ident(name).sql("sqlite") for name in [*names, JSON_COLUMN])
        self.conn.execute(f"CREATE TABLE {_ident(table).sql('sqlite')} ({quoted})")
        marks = ", ".join("?" * (len(names) + 1))
        self.conn.executemany(
            f"INSERT INTO {_ident(table).sql('sqlite')} VALUES ({marks})",
            (
                [*(sql_value(record.get(name)) for name in names), canonical_json(record)]
                for record in records.values()
            ),
        )
        self.loaded[table] = folded


@dataclass(slots=True)
class _Translator:
    """Rewrites a parsed view into SQLite SQL (one instance per evaluation)."""

    tables: Tables
    params: Mapping[str, Any]
    bindings: dict[str, Any] = field(default_factory=dict)
    columns: dict[str, set[str]] = field(default_factory=dict)
    aliases: itertools.count[int] = field(default_factory=itertools.count)
    _fields: dict[str, set[str]] = field(default_factory=dict)

    def translate(self, query: exp.Expr) -> _Plan:
        if not isinstance(query, exp.Select):
            raise _Skip(f"a top-level {query.key.upper()} (only SELECT is evaluated)")
        self.params = param_values(self.params)
        sel, scope = self._core(query.copy(), None)
        items, stars = self._items(sel, scope)
        ordered = bool(sel.args.get("order"))
        flat: list[exp.Expression] = []
        star_slots = []
        for ref in stars:
            star_slots.append(len(flat))
            flat.append(exp.column(_ident(JSON_COLUMN), table=_ident(ref.alias)))
        item_slots = []
        for item in items:
            item_slots.append((item.name, len(flat), item.json, item.nested is not None))
            flat.append(item.value)
            if item.nested is not None:
                flat.append(item.nested)
        sel.set("expressions", [exp.alias_(e, f"c{i}", quoted=True) for i, e in enumerate(flat)])
        self._order(sel, scope, items)

        def build(raw: tuple[Any, ...]) -> dict[str, Any]:
            row: dict[str, Any] = {}
            for slot in star_slots:
                if raw[slot] is None:
                    continue
                record = json.loads(raw[slot])
                clash = row.keys() & record.keys()
                if clash:
                    raise _Skip(f"`*` brings field {sorted(clash)[0]!r} twice")
                row.update(record)
            for name, slot, is_json, flagged in item_slots:
                value = raw[slot]
                if flagged and raw[slot + 1]:
                    is_json = True
                row[name] = json.loads(value) if is_json and value is not None else value
            return row

        return _Plan(sel.sql(dialect="sqlite"), self.bindings, self.columns, build, ordered)

    # -- FROM, JOIN, WHERE --------------------------------------------------

    def _core(self, sel: exp.Select, parent: _Scope | None) -> tuple[exp.Select, _Scope]:
        """Resolve FROM/JOIN into a scope and translate WHERE, ON, GROUP BY, HAVING."""
        for key, value in sel.args.items():
            if value and key not in _SELECT_ARGS:
                raise _Skip(f"SELECT with {key.upper()}")
        for key in ("kind", "hint", "exclude", "operation_modifiers"):
            if sel.args.get(key):
                raise _Skip(f"SELECT with {key.upper()}")
        source = sel.args.get("from_") or sel.args.get("from")
        scope = _Scope([], parent)
        if source is None:
            if sel.args.get("joins"):
                raise _Skip("JOIN without FROM")
        else:
            scope.refs.append(self._table(source.this))
        for join in sel.args.get("joins") or []:
            if join.args.get("using") or join.args.get("method"):
                raise _Skip("JOIN with USING or NATURAL")
            if join.side not in ("", "LEFT") or join.kind not in ("", "INNER", "OUTER"):
                raise _Skip(f"{join.side} {join.kind} JOIN".strip())
            scope.refs.append(self._table(join.this))
        for join in sel.args.get("joins") or []:
            if join.args.get("on") is not None:
                join.set("on", self._expr(join.args["on"], scope))
        where = sel.args.get("where")
        if where is not None:
            where.set("this", self._expr(where.this, scope))
        group = sel.args.get("group")
        if group is not None:
            group.set("expressions", [self._expr(e, scope) for e in group.expressions])
        return sel, scope

    def _table(self, node: exp.Expression) -> _Ref:
        if not isinstance(node, exp.Table) or node.args.get("db") or not node.name:
            raise _Skip(f"FROM {node.sql()} (only plain tables are evaluated)")
        ref = _Ref(node.alias_or_name, node.name, f"t{next(self.aliases)}")
        self.columns.setdefault(ref.table, set())
        node.set("this", _ident(ref.table))
        node.set("alias", exp.TableAlias(this=exp.to_identifier(ref.alias)))
        return ref

    def _table_fields(self, table: str) -> set[str]:
        if table not in self._fields:
            records = self.tables.get(table, {})
            self._fields[table] = {name for record in records.values() for name in record}
        return self._fields[table]

    # -- expressions ----------------------------------------------------------

    def _expr(
        self,
        node: exp.Expression,
        scope: _Scope,
        outputs: Mapping[str, exp.Expression | None] | None = None,
    ) -> exp.Expression:
        """Translate an expression of ``scope`` (WHERE, ON, ORDER BY, select items).

        ``outputs`` maps output names to their SQL values for ORDER BY and
        HAVING, where a bare output name means that item (None: not sortable).
        """

        def rewrite(n: exp.Expression) -> exp.Expression:
            names = _names(n)
            if (
                names is not None
                and outputs is not None
                and len(names) == 1
                and names[0] in outputs
            ):
                sort = outputs[names[0]]
                if sort is None:
                    raise _Skip("ORDER BY or HAVING on a select-list subquery")
                return sort.copy()
            if names is not None:
                return self._reference(names, scope)
            if isinstance(n, exp.Placeholder):
                return self._param(n.name)
            if isinstance(n, exp.Subquery | exp.Select):
                inner = n.this if isinstance(n, exp.Subquery) else n
                if not isinstance(inner, exp.Select):
                    raise _Skip(f"a {inner.key.upper()} subquery")
                translated = self._where_subquery(inner.copy(), scope)
                return exp.Subquery(this=translated) if isinstance(n, exp.Subquery) else translated
            if isinstance(n, exp.Bracket):
                raise _Skip("[index] outside the select list")
            if isinstance(n, exp.Column) and isinstance(n.this, exp.Star):
                raise _Skip("alias.* inside an expression")
            if isinstance(n, exp.Div):
                n.set("typed", True)  # SQLite division: integers divide as integers
            return n

        return node.transform(rewrite, copy=False)

    def _param(self, name: str) -> exp.Expression:
        if name not in self.params:
            raise SqlError(f"unbound parameter ${name}")
        slot = f"p{len(self.bindings)}"
        self.bindings[slot] = sql_value(self.params[name])
        return exp.Placeholder(this=slot)

    def _resolve(self, names: list[str], scope: _Scope) -> tuple[_Ref, list[str]] | None:
        """The table and field path a dotted name reads; None for a parameter."""
        head = names[0]
        if head == "$parent":
            parent = scope.parent
            if parent is None or len(names) < 2:
                raise _Skip("$parent outside a subquery")
            if len(parent.refs) != 1:
                raise _Skip("$parent in a parent level with a JOIN")
            return parent.refs[0], names[1:]
        if head.startswith("$") and len(names) == 1:
            return None
        if len(names) >= 2:
            ref = scope.lookup(head)
            if ref is not None:
                return ref, names[1:]
        if len(scope.refs) == 1:
            return scope.refs[0], names
        having = [ref for ref in scope.refs if head in self._table_fields(ref.table)]
        if len(having) > 1:
            raise _Skip(f"unqualified column {head!r} in a join where several tables have it")
        return (having or scope.refs)[0], names

    def _reference(self, names: list[str], scope: _Scope) -> exp.Expression:
        """The SQL value of a column reference: a column, or json_extract of a nested path."""
        resolved = self._resolve(names, scope)
        if resolved is None:
            return self._param(names[0][1:])
        ref, path = resolved
        self.columns[ref.table].add(path[0])
        if len(path) == 1:
            return exp.column(_ident(path[0]), table=exp.to_identifier(ref.alias))
        return _func("json_extract", self._record_json(ref), _json_path(path))

    def _json_reference(self, names: list[str], scope: _Scope) -> exp.Expression:
        """A column reference as a JSON value (keeps nested lists/objects as JSON)."""
        resolved = self._resolve(names, scope)
        if resolved is None:
            return self._param(names[0][1:])
        ref, path = resolved
        self.columns[ref.table].add(path[0])
        return _func("json_extract", self._record_json(ref), _json_path(path))

    @staticmethod
    def _record_json(ref: _Ref) -> exp.Expression:
        return exp.column(_ident(JSON_COLUMN), table=exp.to_identifier(ref.alias))

    def _where_subquery(self, sel: exp.Select, parent: _Scope) -> exp.Select:
        """A subquery in WHERE/ON/HAVING or an expression: plain SQL semantics."""
        sel, scope = self._core(sel, parent)
        sel.set("expressions", [self._plain_item(e, scope) for e in sel.expressions])
        self._order(sel, scope, [])
        return sel

    def _plain_item(self, node: exp.Expression, scope: _Scope) -> exp.Expression:
        if isinstance(node, exp.Star):
            return node
        if isinstance(node, exp.Column) and isinstance(node.this, exp.Star):
            raise _Skip("alias.* in a WHERE subquery")
        return self._expr(node, scope)

    # -- select lists -----------------------------------------------------------

    def _items(self, sel: exp.Select, scope: _Scope) -> tuple[list[_Item], list[_Ref]]:
        """Translate the select list: the explicit items and the tables ``*`` expands."""
        grouped = bool(
            sel.args.get("group") or sel.args.get("distinct") or _has_aggregate(sel.expressions)
        )
        items: list[_Item] = []
        stars: list[_Ref] = []
        for node in sel.expressions:
            if isinstance(node, exp.Star):
                stars.extend(scope.refs)
                continue
            if isinstance(node, exp.Column) and isinstance(node.this, exp.Star):
                ref = scope.lookup(node.table)
                if ref is None or ref not in scope.refs:
                    raise SqlError(f"{node.sql()}: no table {node.table!r} in FROM")
                stars.append(ref)
                continue
            body = node.this if isinstance(node, exp.Alias) else node
            names = _names(body)
            if isinstance(node, exp.Alias):
                name = node.alias
            elif names is not None:
                name = names[-1]
            else:
                raise SqlError(f"select item {node.sql()} needs a name (AS name)")
            if any(item.name == name for item in items):
                raise SqlError(f"two select items named {name!r}")
            items.append(self._item(name, body, scope, grouped))
        if stars and grouped:
            raise _Skip("* with GROUP BY, DISTINCT or an aggregate")
        return items, stars

    def _item(self, name: str, body: exp.Expression, scope: _Scope, grouped: bool) -> _Item:
        if isinstance(body, exp.Bracket):
            index = body.expressions
            if not isinstance(body.this, exp.Subquery) or [e.sql() for e in index] != ["0"]:
                raise _Skip(f"{body.sql()} (only (subquery)[0] is evaluated)")
            return _Item(name, self._nested(body.this, scope, first=True), None, True)
        if isinstance(body, exp.Subquery):
            return _Item(name, self._nested(body, scope, first=False), None, True)
        names = _names(body)
        if names is not None and not (len(names) == 1 and names[0][0] == "$"):
            plain = self._reference(names, scope)
            if grouped:
                resolved = self._resolve(names, scope)
                assert resolved is not None  # not a parameter
                ref, path = resolved
                kind = _func("json_type", self._record_json(ref), _json_path(path))
                # a missing field (json_type NULL) and a JSON null must not differ here
                nested = exp.Coalesce(
                    this=exp.In(
                        this=kind,
                        expressions=[exp.Literal.string("object"), exp.Literal.string("array")],
                    ),
                    expressions=[exp.Literal.number(0)],
                )
                return _Item(name, plain, plain.copy(), False, nested)
            value = _func("json_quote", self._json_reference(names, scope))
            return _Item(name, value, plain, True)
        value = self._expr(body, scope)
        return _Item(name, value, value.copy(), False)

    def _nested(self, sub: exp.Subquery, outer: _Scope, *, first: bool) -> exp.Expression:
        """A select-list subquery as JSON text: an array of objects, or one object/NULL."""
        sel = sub.this
        if not isinstance(sel, exp.Select):
            raise _Skip(f"a {sel.key.upper()} in the select list")
        sel, scope = self._core(sel.copy(), outer)
        limit = sel.args.get("limit")
        limit_value = limit.expression if isinstance(limit, exp.Limit) else None
        first = first or (limit_value is not None and limit_value.sql() == "1")
        items, stars = self._items(sel, scope)
        obj = self._object(items, stars)
        sel.set("expressions", [obj])
        self._order(sel, scope, items, always=True)
        if first:
            sel.set("limit", exp.Limit(expression=exp.Literal.number(1)))
            return exp.Subquery(this=sel)
        sel.set("expressions", [exp.alias_(obj, NESTED_COLUMN, quoted=True)])
        inner = exp.column(_ident(NESTED_COLUMN))
        array = exp.select(_func("json_group_array", _func("json", inner))).from_(
            exp.Subquery(this=sel)
        )
        return exp.Subquery(this=array)

    @staticmethod
    def _object(items: list[_Item], stars: list[_Ref]) -> exp.Expression:
        """A JSON object of one nested row: the record's JSON for ``*``, with the items set."""
        values = [_func("json", item.value) if item.json else item.value.copy() for item in items]
        if len(stars) > 1:
            raise _Skip("* over a join inside a select-list subquery")
        if stars:
            args: list[exp.Expression] = [_Translator._record_json(stars[0])]
            for item, value in zip(items, values, strict=True):
                args += [_json_path([item.name]), value]
            return _func("json_set", *args) if items else args[0]
        pairs: list[exp.Expression] = []
        for item, value in zip(items, values, strict=True):
            pairs += [exp.Literal.string(item.name), value]
        return _func("json_object", *pairs)

    # -- ORDER BY / LIMIT ---------------------------------------------------------

    def _order(
        self, sel: exp.Select, scope: _Scope, items: list[_Item], *, always: bool = False
    ) -> None:
        """Translate HAVING and ORDER BY (where output names mean their item, as in
        SQLite) and append the row key to ORDER BY as the tie-break."""
        outputs = {item.name: item.sort for item in items}
        having = sel.args.get("having")
        if having is not None:
            having.set("this", self._expr(having.this, scope, outputs))
        order = sel.args.get("order")
        limited = sel.args.get("limit") is not None or sel.args.get("offset") is not None
        if order is None and not (always or limited):
            return
        terms: list[exp.Expression] = []
        for ordered in order.expressions if order is not None else []:
            if isinstance(ordered.this, exp.Literal) and not ordered.this.is_string:
                raise _Skip("ORDER BY a column position")
            # an output name counts only as a whole term; inside an expression a name
            # is a field (SQLite resolves FROM columns first)
            bare = _names(ordered.this) is not None
            ordered.set("this", self._expr(ordered.this, scope, outputs if bare else None))
            if ordered.this.find(exp.Column, exp.Subquery, exp.Select) is not None:
                terms.append(ordered)
            # else: a constant (e.g. an output name for a literal) orders nothing, and
            # SQLite would read an integer constant as a column position
        terms.extend(
            exp.Ordered(this=key, desc=False, nulls_first=True)  # row keys: NULL first
            for key in self._row_key(sel, scope, items)
        )
        sel.set("order", exp.Order(expressions=terms) if terms else None)

    def _row_key(self, sel: exp.Select, scope: _Scope, items: list[_Item]) -> list[exp.Expression]:
        """The SPEC's row key: ids in FROM/JOIN order, group-by values, or the row itself."""
        group = sel.args.get("group")
        if group is not None:
            return [e.copy() for e in group.expressions]
        if sel.args.get("distinct"):
            # a constant item orders nothing, and SQLite would read an integer as a position
            return [
                item.sort.copy()
                for item in items
                if item.sort is not None
                and item.sort.find(exp.Column, exp.Subquery, exp.Select) is not None
            ]
        if _has_aggregate(sel.expressions):
            return []
        for ref in scope.refs:
            self.columns[ref.table].add("id")
        return [exp.column(_ident("id"), table=exp.to_identifier(ref.alias)) for ref in scope.refs]
