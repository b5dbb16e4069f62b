"""From row changes to ssp log entries: values, record ids, missing columns, transactions.

Every source (a live PostgreSQL slot, a wal2json, Debezium or Maxwell file,
SurrealDB changefeeds) ends here with rows as ``{column: value}``. The rules
are SPEC section 9's:

- the record id is ``table:`` and the primary key: the key's value as text
  (a string as is, a number as its JSON) or, for a composite key, the
  canonical JSON list of the key's values;
- an INSERT is a ``CREATE``, an UPDATE an ``UPDATE`` with the whole new row,
  a DELETE a ``DELETE``; an UPDATE that changes the key is a ``DELETE`` of the
  old id and a ``CREATE`` of the new one;
- a column the source did not send (PostgreSQL leaves an unchanged TOASTed
  value out of an UPDATE, Debezium writes a placeholder) is taken from the
  old row the source sent, else from the last row seen for that id, else the
  change is refused with an error that says to set ``REPLICA IDENTITY FULL``;
- values: integers as integers (as strings beyond 64 bits), other numbers as
  floats where the float's shortest text is the same decimal number (``0.1``,
  ``10.50``) and as strings otherwise (``12345678901234567890.12``); ``NaN`` and infinities are refused (the log
  has no such number and writing ``null`` would be silently wrong); json and
  jsonb text as JSON values.

:class:`ChangeConverter` keeps the last row seen per record only for the
tables that need it (state, not history: memory grows with the tables).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from ..errors import CircuitError

INT64 = (-(2**63), 2**63 - 1)
INTEGER_TYPES = frozenset(
    {"smallint", "integer", "bigint", "int", "int2", "int4", "int8", "oid", "smallserial"}
    | {"serial", "bigserial", "serial2", "serial4", "serial8", "tinyint", "mediumint"}
)
FLOAT_TYPES = frozenset({"real", "double precision", "float4", "float8", "float", "double"})
DECIMAL_TYPES = frozenset({"numeric", "decimal"})
BOOL_TYPES = frozenset({"boolean", "bool"})
JSON_TYPES = frozenset({"json", "jsonb"})
NON_FINITE = frozenset({"nan", "infinity", "+infinity", "-infinity", "inf", "+inf", "-inf"})


class RecordError(CircuitError):
    """A change that cannot be converted; ``location`` names its source position."""


class NumText(str):
    """A JSON number's text, kept exact by :func:`loads_exact` until its column type is known."""

    __slots__ = ()


def loads_exact(text: str | bytes) -> Any:
    """JSON with every non-integer number kept as :class:`NumText` (no float rounding)."""
    return json.loads(text, parse_float=NumText, parse_constant=_no_constant)


def base_type(type_name: str | None) -> str:
    """``numeric(10,2)`` -> ``numeric``; ``character varying(5)`` -> ``character varying``."""
    if not type_name:
        return ""
    name = type_name.strip().lower()
    if name.endswith("[]"):
        return "array"
    cut = name.find("(")
    if cut >= 0:
        name = name[:cut].strip() + name[name.find(")", cut) + 1 :]
    if name.startswith('"') or "." in name:
        name = name.rsplit(".", 1)[-1].strip('"')
    return name.strip()


def _refuse_non_finite(value: str, column: str, location: str | None) -> None:
    raise RecordError(
        f"column {column} holds {value}, which a JSON log cannot carry",
        location=location,
        hint="ssp refuses it rather than writing null; store NULL or a finite number instead",
    )


def number_from_text(text: str, kind: str, column: str, location: str | None) -> Any:
    """A number's text as the log writes it (see the module docstring)."""
    stripped = text.strip()
    if stripped.lower() in NON_FINITE:
        _refuse_non_finite(stripped, column, location)
    try:
        if kind == "int":
            return int(stripped)
        if kind == "float":
            value = float(stripped)
            if not math.isfinite(value):
                _refuse_non_finite(stripped, column, location)
            return value
        decimal = Decimal(stripped)
    except (ValueError, InvalidOperation):
        raise RecordError(f"column {column}: {text!r} is not a number", location=location) from None
    if not decimal.is_finite():
        _refuse_non_finite(stripped, column, location)
    if "." not in stripped and "e" not in stripped.lower():
        integer = int(decimal)
        return integer if INT64[0] <= integer <= INT64[1] else stripped
    as_float = float(decimal)
    if math.isfinite(as_float) and Decimal(repr(as_float)) == decimal:
        return as_float  # the float's JSON text is the same decimal number
    return stripped


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value


def _no_constant(text: str) -> Any:
    raise ValueError(f"{text} is not a JSON number")


def json_from_text(text: str, column: str, location: str | None) -> Any:
    """A json/jsonb column's text as a JSON value; non-finite numbers are refused."""
    try:
        return json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
    except ValueError as err:
        raise RecordError(f"column {column}: invalid JSON ({err})", location=location) from None


def convert_value(type_name: str | None, value: Any, column: str, location: str | None) -> Any:
    """One column value, sent as ``value`` by a source that named its type ``type_name``."""
    if value is None:
        return None
    kind = base_type(type_name)
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            _refuse_non_finite(repr(value), column, location)
        return value
    if isinstance(value, NumText):
        # an untyped source's number is a JSON number: beyond the float range it is refused
        number_kind = "decimal" if kind in DECIMAL_TYPES else "float"
        return number_from_text(value, number_kind, column, location)
    if isinstance(value, int):
        if kind in DECIMAL_TYPES and not INT64[0] <= value <= INT64[1]:
            return str(value)
        return value
    if not isinstance(value, str):
        return value
    if kind in INTEGER_TYPES:
        return number_from_text(value, "int", column, location)
    if kind in FLOAT_TYPES:
        return number_from_text(value, "float", column, location)
    if kind in DECIMAL_TYPES:
        return number_from_text(value, "decimal", column, location)
    if kind in BOOL_TYPES:
        lowered = value.lower()
        if lowered in ("t", "true", "1", "y", "yes", "on"):
            return True
        if lowered in ("f", "false", "0", "n", "no", "off"):
            return False
        raise RecordError(f"column {column}: {value!r} is not a boolean", location=location)
    if kind in JSON_TYPES:
        return json_from_text(value, column, location)
    return value


def key_text(values: Sequence[Any]) -> str:
    """The key part of a record id (module docstring)."""
    if len(values) == 1:
        value = values[0]
        return value if isinstance(value, str) else canonical(value)
    return canonical(list(values))


def canonical(value: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, non-ASCII kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def encode_entry(entry: Mapping[str, Any], location: str | None) -> bytes:
    """One log line (with its newline); a value JSON cannot carry is a :class:`RecordError`."""
    try:
        return orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:
        pass  # an integer beyond 64 bits (orjson refuses it) or a lone surrogate
    try:
        text = json.dumps(entry, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return (text + "\n").encode("utf-8")
    except (ValueError, UnicodeEncodeError) as err:
        raise RecordError(f"cannot write the change as JSON: {err}", location=location) from None


@dataclass
class Transaction:
    """The log entries of one committed transaction; ``ts`` is its commit time (ms).

    ``suspects`` lists ``(table, record id, column, location)`` of numeric
    values that arrived as ``null``, which wal2json also writes for ``NaN`` and
    infinities: the live recorder checks them before writing the transaction.
    ``marks`` go into its ``FLUSH`` (a source position such as SurrealDB's
    ``versionstamp``; replay ignores fields it does not know).
    """

    entries: list[dict[str, Any]] = field(default_factory=list)
    ts: int | None = None
    location: str | None = None
    changes: int = 0
    suspects: list[tuple[str, str, str, str | None]] = field(default_factory=list)
    marks: dict[str, Any] = field(default_factory=dict)


def is_float_or_decimal(type_name: str | None) -> bool:
    """True for the types whose NaN (and infinities) wal2json writes as ``null``."""
    kind = base_type(type_name)
    return kind in FLOAT_TYPES or kind in DECIMAL_TYPES


@dataclass(frozen=True, slots=True)
class TableInfo:
    """What the converter knows of a table: its key columns, all its columns, whether to cache.

    ``columns`` is empty when unknown: then the columns seen so far stand in.
    ``cache`` says to keep the last row of each record (for values a later
    change may leave out); a table whose old rows come whole can skip it.
    """

    key: tuple[str, ...]
    columns: tuple[str, ...] = ()
    cache: bool = True


MissingHint = "set REPLICA IDENTITY FULL on the table (ALTER TABLE t REPLICA IDENTITY FULL) or record with --initial"


class ChangeConverter:
    """Turns row changes into log entries, per table, by the rules of the module docstring."""

    def __init__(
        self,
        tables: Mapping[str, TableInfo] | None = None,
        *,
        default_key: Callable[[str, Mapping[str, Any]], tuple[str, ...] | None] | None = None,
        missing_hint: str = MissingHint,
    ) -> None:
        self.tables: dict[str, TableInfo] = dict(tables or {})
        self.default_key = default_key
        self.missing_hint = missing_hint
        self.rows: dict[str, dict[str, dict[str, Any]]] = {}
        self.seen_columns: dict[str, dict[str, None]] = {}

    def info(self, table: str, row: Mapping[str, Any] | None, location: str | None) -> TableInfo:
        """The table's :class:`TableInfo`, from the configuration or ``default_key``."""
        info = self.tables.get(table)
        if info is not None:
            return info
        key = self.default_key(table, row or {}) if self.default_key else None
        if not key:
            raise RecordError(
                f"table {table}: no primary key known",
                location=location,
                hint="give it with --key TABLE=COLUMN[,COLUMN]",
            )
        info = TableInfo(tuple(key))
        self.tables[table] = info
        return info

    def set_key(self, table: str, key: Sequence[str], location: str | None) -> None:
        """Learn (or check) a table's key from a source that sends it with each change."""
        info = self.tables.get(table)
        if info is None:
            self.tables[table] = TableInfo(tuple(key))
        elif info.key != tuple(key) and key:
            raise RecordError(
                f"table {table}: primary key changed from {list(info.key)} to {list(key)}",
                location=location,
            )

    def record_id(
        self, table: str, info: TableInfo, row: Mapping[str, Any], location: str | None
    ) -> str:
        values = []
        for column in info.key:
            if column not in row or row[column] is None:
                raise RecordError(
                    f"table {table}: the change has no value for key column {column}",
                    location=location,
                    hint=self.missing_hint,
                )
            values.append(row[column])
        return f"{table}:{key_text(values)}"

    def _remember(self, table: str, info: TableInfo, rid: str, row: dict[str, Any]) -> None:
        seen = self.seen_columns.setdefault(table, {})
        for column in row:
            if column not in seen:
                seen[column] = None
        if info.cache:
            self.rows.setdefault(table, {})[rid] = row

    def _complete(
        self,
        table: str,
        info: TableInfo,
        new: dict[str, Any],
        old: Mapping[str, Any] | None,
        old_id: str | None,
        missing: Iterable[str],
        location: str | None,
    ) -> dict[str, Any]:
        """``new`` with the columns in ``missing`` (or unknown to it) filled in, or an error."""
        wanted = list(missing)
        columns = info.columns or tuple(self.seen_columns.get(table, ()))
        wanted += [c for c in columns if c not in new and c not in wanted]
        if not wanted:
            return new
        cached = self.rows.get(table, {}).get(old_id) if old_id is not None else None
        lacking = []
        for column in wanted:
            if old is not None and column in old:
                new[column] = old[column]
            elif cached is not None and column in cached:
                new[column] = cached[column]
            else:
                lacking.append(column)
        if lacking:
            raise RecordError(
                f"UPDATE of {old_id or table} lacks column(s) {', '.join(lacking)} (a value the "
                "source did not send, such as an unchanged TOASTed value) and no earlier row of "
                "it was seen",
                location=location,
                hint=self.missing_hint,
            )
        if info.columns:
            return {c: new[c] for c in info.columns if c in new} | {
                c: v for c, v in new.items() if c not in info.columns
            }
        return new

    def insert(self, table: str, row: dict[str, Any], location: str | None) -> list[dict[str, Any]]:
        info = self.info(table, row, location)
        rid = self.record_id(table, info, row, location)
        self._remember(table, info, rid, row)
        return [{"op": "CREATE", "table": table, "id": rid, "data": row}]

    def update(
        self,
        table: str,
        new: dict[str, Any],
        old: Mapping[str, Any] | None,
        location: str | None,
        *,
        missing: Iterable[str] = (),
    ) -> list[dict[str, Any]]:
        """An UPDATE; ``old`` is the old row (or its key) when the source sent one."""
        missing = list(missing)
        info = self.info(table, new if not missing else (old or new), location)
        old_id = None
        if old is not None and all(k in old and old[k] is not None for k in info.key):
            old_id = self.record_id(table, info, old, location)
        if any(k in missing for k in info.key):
            if old_id is None:
                raise RecordError(
                    f"table {table}: an UPDATE without its key",
                    location=location,
                    hint=self.missing_hint,
                )
            for k in info.key:
                if k in missing:
                    new[k] = old[k]  # type: ignore[index]
        new_id = self.record_id(table, info, new, location)
        row = self._complete(table, info, new, old, old_id or new_id, missing, location)
        if old_id is not None and old_id != new_id:
            self.rows.get(table, {}).pop(old_id, None)
            self._remember(table, info, new_id, row)
            return [
                {"op": "DELETE", "table": table, "id": old_id},
                {"op": "CREATE", "table": table, "id": new_id, "data": row},
            ]
        self._remember(table, info, new_id, row)
        return [{"op": "UPDATE", "table": table, "id": new_id, "data": row}]

    def delete(
        self, table: str, old: Mapping[str, Any], location: str | None
    ) -> list[dict[str, Any]]:
        info = self.info(table, old, location)
        rid = self.record_id(table, info, old, location)
        self.rows.get(table, {}).pop(rid, None)
        return [{"op": "DELETE", "table": table, "id": rid}]

    def seed(self, table: str, row: dict[str, Any], location: str | None) -> str:
        """Remember an initial row (``--initial``) and return its record id."""
        info = self.info(table, row, location)
        rid = self.record_id(table, info, row, location)
        self._remember(table, info, rid, row)
        return rid
