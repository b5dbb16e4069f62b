"""The :class:`Oracle` protocol, its result types, and helpers shared by oracles."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from ..errors import CircuitError, SqlError

Tables = Mapping[str, Mapping[str, dict[str, Any]]]
"""table name -> {canonical record id -> record}, as :meth:`Circuit.tables` returns."""


@dataclass(frozen=True, slots=True)
class Rows:
    """The rows an oracle computed.

    ``ordered`` is true when the view has a top-level ORDER BY, so the order of
    ``rows`` is part of the answer; otherwise the rows are a multiset.
    """

    rows: list[dict[str, Any]]
    ordered: bool


@dataclass(frozen=True, slots=True)
class Skipped:
    """The oracle cannot evaluate this view; ``reason`` names the construct.

    A skipped check is never a passed check: callers count it apart.
    """

    reason: str


OracleResult = Rows | Skipped


class Snapshot(Protocol):
    """An oracle bound to one state of the tables, to evaluate several views on it."""

    def evaluate(self, sql: str, params: Mapping[str, Any]) -> OracleResult: ...

    def close(self) -> None: ...


class Oracle(Protocol):
    """Evaluates one view's SQL from scratch.

    ``sql`` is a ``SELECT`` or ``CREATE VIEW name AS SELECT`` in the SPEC's
    dialect; ``params`` binds ``$name`` / ``:name``; ``tables`` holds the
    current records. Implementations raise :class:`~circuit.errors.SqlError`
    for SQL that no oracle could accept (a parse error, an unbound parameter)
    and return :class:`Skipped` for valid SQL they cannot run.
    """

    name: str

    def evaluate(self, sql: str, params: Mapping[str, Any], tables: Tables) -> OracleResult: ...

    def snapshot(self, tables: Tables) -> Snapshot:
        """Bind to ``tables`` (which must not change until ``close``): work is shared."""
        ...


def canonical_json(value: Any) -> str:
    """Canonical JSON text: keys sorted, ``,``/``:`` separators, non-ASCII kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def parse_select(sql: str, dialect: str | None = None) -> exp.Expr:
    """Parse a view's SQL and return its query (the body of a ``CREATE VIEW``)."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except ParseError as err:
        raise SqlError(f"cannot parse the view's SQL: {err}") from err
    if isinstance(tree, exp.Create):
        body = tree.expression
        if not isinstance(body, exp.Query):
            raise SqlError("CREATE VIEW without a SELECT")
        return body
    return tree


def param_values(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters keyed by bare name (a leading ``$`` or ``:`` in a key is dropped)."""
    return {key.lstrip("$:"): value for key, value in params.items()}


def get_oracle(name: str, dialect: str | None = None, *, dsn: str | None = None) -> Oracle:
    """The oracle called ``name`` (``sqlite``, ``sqlglot``, or ``postgres`` on ``dsn``)."""
    if name == "sqlite":
        from .sqlite import SqliteOracle

        return SqliteOracle(dialect=dialect)
    if name == "sqlglot":
        from .sqlglot_exec import SqlglotOracle

        return SqlglotOracle(dialect=dialect)
    if name == "postgres":
        from .postgres import PostgresOracle

        if dsn is None:
            raise CircuitError("the postgres oracle needs a database", location="--dsn")
        return PostgresOracle(dsn, dialect=dialect)
    raise ValueError(f"unknown oracle {name!r} (choose sqlite, sqlglot or postgres)")
