"""The PostgreSQL oracle: a view's SQL run by PostgreSQL over the recorded tables.

After ``ssp record postgres``, the tables in the database hold the state the
log ends in, so the views' rows at the end of the replay must equal the same
SQL run by PostgreSQL there. This oracle checks that one state only
(``final_only``): ``ssp verify --oracle postgres --dsn DSN`` compares at the
end of the log and nowhere else. The tables passed in are not used.

The SQL is transpiled by sqlglot to PostgreSQL (which also spells out the
SPEC's NULL ordering as ``NULLS FIRST``/``LAST``); parameters are sent apart
as ``$1, $2, ...`` text values, never pasted into the SQL. Results are read
as text and converted by the recorder's rules (so numbers, booleans and json
come back as the log holds them); ``numeric`` results become floats when not
integral, as the engine computes them.

Where the two dialects disagree, the view is reported as skipped, with the
reason, never as passed: ``LIKE`` (case-insensitive in the SPEC, case-
sensitive in PostgreSQL), ``*`` and a column named ``id`` (the engine's
records carry their canonical id ``table:key`` in the ``id`` field),
``LIMIT`` without ``ORDER BY``, and whatever PostgreSQL refuses to run (its
error is the reason). ORDER BY results are compared as ordered.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlglot import exp
from sqlglot.errors import SqlglotError

from ..errors import CircuitError, SqlError
from .base import OracleResult, Rows, Skipped, Tables, canonical_json, param_values, parse_select


def _param_name(node: exp.Expression) -> str | None:
    if isinstance(node, exp.Placeholder):
        return str(node.name)
    if isinstance(node, exp.Column) and not node.table:
        ident = node.this
        if (
            isinstance(ident, exp.Identifier)
            and not ident.args.get("quoted")
            and ident.name.startswith("$")
            and len(ident.name) > 1
        ):
            return str(ident.name[1:])
    return None


def _text_param(value: Any) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return b"t" if value else b"f"
    if isinstance(value, str):
        return value.encode("utf-8")
    return canonical_json(value).encode("utf-8")


def translate(
    sql: str, params: Mapping[str, Any], dialect: str | None
) -> tuple[str, list[bytes | None], bool] | Skipped:
    """PostgreSQL text, its parameter values and whether the result is ordered (or a skip)."""
    query = parse_select(sql, dialect)
    values = param_values(params)
    if any(isinstance(n, exp.Like | exp.ILike) for n in query.walk()):
        return Skipped("LIKE: case-insensitive in the SPEC, case-sensitive in PostgreSQL")
    if any(isinstance(n, exp.Star) and not isinstance(n.parent, exp.Count) for n in query.walk()):
        return Skipped("*: the engine's records carry their canonical id in the id field")
    if any(isinstance(n, exp.Column) and n.name == "id" for n in query.walk()):
        return Skipped("column id: the engine's is the canonical id table:key")
    ordered = bool(query.args.get("order"))
    if query.args.get("limit") and not ordered:
        return Skipped("LIMIT without ORDER BY picks arbitrary rows")
    bound: list[bytes | None] = []
    slots: dict[str, int] = {}

    def bind(node: exp.Expression) -> exp.Expression:
        name = _param_name(node)
        if name is None:
            return node
        if name not in values:
            raise SqlError(f"unbound parameter ${name}")
        if name not in slots:
            bound.append(_text_param(values[name]))
            slots[name] = len(bound)
        return exp.Var(this=f"${slots[name]}")

    query = query.transform(bind)
    try:
        text = query.sql(dialect="postgres")
    except SqlglotError as err:
        return Skipped(f"sqlglot cannot write it for PostgreSQL: {err}")
    return text, bound, ordered


def _number(text: str) -> Any:
    if text.lower() in ("nan", "infinity", "-infinity"):
        return text
    try:
        value = Decimal(text)
    except InvalidOperation:
        return text
    if "." not in text and "e" not in text.lower():
        return int(value)
    as_float = float(value)
    return as_float if math.isfinite(as_float) else text


class PostgresOracle:
    """Runs views' SQL on one PostgreSQL database (module docstring)."""

    name = "postgres"
    final_only = True

    def __init__(self, dsn: str, dialect: str | None = None) -> None:
        from ..record.postgres import connect

        self.dialect = dialect
        self.conn = connect(dsn)
        self.types: dict[int, str] = {
            int(oid): str(name)
            for oid, name in self.conn.execute("SELECT oid, typname FROM pg_type").fetchall()
        }

    def evaluate(self, sql: str, params: Mapping[str, Any], tables: Tables) -> OracleResult:
        return self.snapshot(tables).evaluate(sql, params)

    def snapshot(self, tables: Tables) -> _Snapshot:
        return _Snapshot(self)

    def close(self) -> None:
        self.conn.close()

    def run(self, text: str, bound: list[bytes | None]) -> list[dict[str, Any]] | str:
        """The rows of ``text`` (a string: PostgreSQL's error)."""
        from psycopg import pq

        from ..record.changes import convert_value

        result = self.conn.pgconn.exec_params(text.encode("utf-8"), bound)
        if result.status != pq.ExecStatus.TUPLES_OK:
            message = (result.error_message or b"").decode("utf-8", "replace").strip()
            return message.splitlines()[0] if message else f"status {result.status}"
        names = [(result.fname(i) or b"").decode("utf-8") for i in range(result.nfields)]
        types = [self.types.get(result.ftype(i), "text") for i in range(result.nfields)]
        rows = []
        for r in range(result.ntuples):
            row: dict[str, Any] = {}
            for c, name in enumerate(names):
                raw = result.get_value(r, c)
                if raw is None:
                    row[name] = None
                    continue
                value = raw.decode("utf-8")
                if types[c] == "numeric":
                    row[name] = _number(value)
                else:
                    try:
                        row[name] = convert_value(types[c], value, name, None)
                    except CircuitError:
                        row[name] = value
            rows.append(row)
        return rows


class _Snapshot:
    def __init__(self, oracle: PostgresOracle) -> None:
        self.oracle = oracle

    def evaluate(self, sql: str, params: Mapping[str, Any]) -> OracleResult:
        translated = translate(sql, params, self.oracle.dialect)
        if isinstance(translated, Skipped):
            return translated
        text, bound, ordered = translated
        rows = self.oracle.run(text, bound)
        if isinstance(rows, str):
            return Skipped(f"PostgreSQL cannot run it: {rows}")
        return Rows(rows, ordered)

    def close(self) -> None:
        pass
