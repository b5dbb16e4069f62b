"""``ssp import debezium|wal2json|maxwell FILE``: change streams those tools wrote, as an ssp log.

The files are JSON lines; every line is converted by the rules of
:mod:`circuit.record.changes` and an error names ``FILE:LINE``.

- **debezium**: one change event per line, with the JSON converter's schema
  envelope (``{"schema", "payload"}``) or without it. ``op`` ``c``/``r``
  (snapshot read) is a CREATE, ``u`` an UPDATE (``before`` may be null), ``d``
  a DELETE; a null line or payload (a Kafka tombstone) is skipped; ``t``
  (truncate) is refused. ``ts`` is ``source.ts_ms``. Transactions are the
  runs of events with the same ``transaction.id`` or ``source.txId`` (each
  event alone when neither is set). ``__debezium_unavailable_value`` (an
  unchanged TOASTed value) is filled from ``before`` or the last row seen.
  With the schema envelope, ``io.debezium.data.Json`` fields are parsed and
  ``org.apache.kafka.connect.data.Decimal`` / ``VariableScaleDecimal`` are
  decoded; without it those stay the strings Debezium wrote.
  The key is not in the value: ``--key TABLE=COL[,COL]``, else a column ``id``.
- **wal2json**: format version 2 (one action per line, as ``pg_recvlogical``
  writes it) or 1 (one transaction per line), told apart line by line.
- **maxwell**: ``insert``/``bootstrap-insert``, ``update`` (``old`` holds
  the changed columns' old values), ``delete``; ``ts`` is in seconds;
  transactions end at ``"commit": true``; other types (bootstrap markers,
  DDL) are skipped. The key is ``primary_key_columns`` when Maxwell wrote it
  (``output_primary_key_columns``), else ``--key``, else ``id``.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any, Literal

from .changes import (
    ChangeConverter,
    RecordError,
    TableInfo,
    Transaction,
    convert_value,
    json_from_text,
    loads_exact,
    number_from_text,
)
from .wal2json import V2Decoder, v1_transaction
from .writer import LogWriter, OnError, RecordStats

Format = Literal["debezium", "wal2json", "maxwell"]
UNAVAILABLE = "__debezium_unavailable_value"


def _lines(path: str) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as source:
        for number, line in enumerate(source, 1):
            if line.strip():
                yield number, line


def _default_key(table: str, row: Mapping[str, Any]) -> tuple[str, ...] | None:
    return ("id",) if "id" in row else None


def import_file(
    fmt: Format,
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    keys: Mapping[str, tuple[str, ...]] | None = None,
    on_error: OnError = "fail",
    rejects: str | os.PathLike[str] | None = None,
) -> RecordStats:
    """Convert ``path`` (in ``fmt``) to the ssp log ``out``; returns the counts."""
    source = os.fspath(path)
    if os.path.abspath(source) == os.path.abspath(os.fspath(out)):
        raise RecordError("the log must not overwrite the file it converts", location="-o")
    converter = ChangeConverter(
        {t: TableInfo(k) for t, k in (keys or {}).items()},
        default_key=_default_key,
        missing_hint="the source left the value out and no earlier row of the record was seen: "
        "record with REPLICA IDENTITY FULL or import a snapshot first",
    )
    steps: dict[str, Callable[..., Iterator[Transaction]]] = {
        "debezium": _debezium,
        "wal2json": _wal2json,
        "maxwell": _maxwell,
    }
    with LogWriter(out, on_error=on_error, rejects=rejects) as writer:
        for txn in steps[fmt](source, converter, writer):
            writer.write(txn)
    return writer.stats


def _parse(raw: bytes, location: str) -> Any:
    try:
        return loads_exact(raw)
    except ValueError as err:
        raise RecordError(f"not JSON: {err}", location=location) from None


# --- Debezium -------------------------------------------------------------------------------


def _field_schemas(schema: Any) -> dict[str, dict[str, Any]]:
    """``{column: field schema}`` of the envelope's ``after`` (or ``before``) struct."""
    if not isinstance(schema, dict):
        return {}
    for part in schema.get("fields") or ():
        if isinstance(part, dict) and part.get("field") in ("after", "before"):
            return {f["field"]: f for f in part.get("fields") or () if isinstance(f, dict)}
    return {}


def _decimal(raw: str, scale: int, column: str, location: str) -> Any:
    try:
        data = base64.b64decode(raw, validate=True)
    except ValueError:
        raise RecordError(
            f"column {column}: {raw!r} is not a base64 decimal", location=location
        ) from None
    unscaled = int.from_bytes(data, "big", signed=True)
    text = str(Decimal(unscaled).scaleb(-scale))
    return number_from_text(text, "decimal", column, location)


def _debezium_value(value: Any, schema: dict[str, Any] | None, column: str, location: str) -> Any:
    if value is None or schema is None:
        return convert_value(None, value, column, location)
    name = schema.get("name")
    if name == "io.debezium.data.Json" and isinstance(value, str):
        return json_from_text(value, column, location)
    if name == "org.apache.kafka.connect.data.Decimal" and isinstance(value, str):
        scale = int((schema.get("parameters") or {}).get("scale", 0))
        return _decimal(value, scale, column, location)
    if name == "io.debezium.data.VariableScaleDecimal" and isinstance(value, dict):
        return _decimal(value["value"], int(value["scale"]), column, location)
    return convert_value(None, value, column, location)


def _debezium_row(
    row: Any, schemas: dict[str, dict[str, Any]], location: str
) -> tuple[dict[str, Any], list[str]]:
    if not isinstance(row, dict):
        raise RecordError("before/after is not an object", location=location)
    out: dict[str, Any] = {}
    missing = []
    for column, value in row.items():
        if value == UNAVAILABLE:
            missing.append(column)
        else:
            out[column] = _debezium_value(value, schemas.get(column), column, location)
    return out, missing


def _debezium(path: str, converter: ChangeConverter, writer: LogWriter) -> Iterator[Transaction]:
    current: Transaction | None = None
    current_id: Any = None
    for number, raw in _lines(path):
        location = f"{path}:{number}"
        try:
            event = _parse(raw, location)
            schemas: dict[str, dict[str, Any]] = {}
            if isinstance(event, dict) and "payload" in event and "schema" in event:
                schemas = _field_schemas(event["schema"])
                event = event["payload"]
            if event is None:
                continue  # a tombstone
            if not isinstance(event, dict) or "op" not in event:
                raise RecordError("not a Debezium change event (no op)", location=location)
            source = event.get("source") or {}
            txn_id = (
                (event.get("transaction") or {}).get("id")
                or source.get("txId")
                or source.get("gtid")
            )
            if current is not None and (txn_id is None or txn_id != current_id):
                yield current
                current = None
            entries = _debezium_entries(event, source, schemas, converter, location)
        except RecordError as err:
            writer.reject(raw, err)
            continue
        if current is None:
            current = Transaction(location=location)
            current_id = txn_id
        current.entries += entries
        current.changes += 1
        current.location = location
        ts = source.get("ts_ms", event.get("ts_ms"))
        if isinstance(ts, int):
            current.ts = ts
        if txn_id is None:
            yield current
            current = None
    if current is not None:
        yield current


def _debezium_entries(
    event: dict[str, Any],
    source: Mapping[str, Any],
    schemas: dict[str, dict[str, Any]],
    converter: ChangeConverter,
    location: str,
) -> list[dict[str, Any]]:
    op = event["op"]
    table = source.get("table")
    if not isinstance(table, str):
        raise RecordError("the event's source names no table", location=location)
    if op == "t":
        raise RecordError(
            f"TRUNCATE of {table} cannot be written as row changes", location=location
        )
    if op == "m":
        return []
    before = event.get("before")
    after = event.get("after")
    if op in ("c", "r"):
        row, missing = _debezium_row(after, schemas, location)
        if missing:
            raise RecordError(
                f"a CREATE in {table} without {', '.join(missing)}", location=location
            )
        return converter.insert(table, row, location)
    if op == "u":
        row, missing = _debezium_row(after, schemas, location)
        old = _debezium_row(before, schemas, location)[0] if before is not None else None
        return converter.update(table, row, old, location, missing=missing)
    if op == "d":
        old, _missing = _debezium_row(before, schemas, location)
        return converter.delete(table, old, location)
    raise RecordError(f"unknown Debezium op {op!r}", location=location)


# --- wal2json -------------------------------------------------------------------------------


def _wal2json(path: str, converter: ChangeConverter, writer: LogWriter) -> Iterator[Transaction]:
    decoder = V2Decoder(converter)
    for number, raw in _lines(path):
        location = f"{path}:{number}"
        try:
            message = _parse(raw, location)
            if isinstance(message, dict) and "change" in message:
                txn: Transaction | None = v1_transaction(message, converter, location)
            elif isinstance(message, dict) and "action" in message:
                txn = decoder.feed(message, location)
            else:
                raise RecordError("not wal2json output (no change or action)", location=location)
        except RecordError as err:
            writer.reject(raw, err)
            continue
        if txn is not None:
            yield txn


# --- Maxwell --------------------------------------------------------------------------------

MAXWELL_SKIPPED = frozenset({"bootstrap-start", "bootstrap-complete", "heartbeat"})


def _maxwell(path: str, converter: ChangeConverter, writer: LogWriter) -> Iterator[Transaction]:
    current: Transaction | None = None
    for number, raw in _lines(path):
        location = f"{path}:{number}"
        try:
            event = _parse(raw, location)
            if not isinstance(event, dict) or "type" not in event:
                raise RecordError("not a Maxwell event (no type)", location=location)
            kind = event["type"]
            if kind in MAXWELL_SKIPPED or ("data" not in event and "table" not in event):
                continue
            if kind.startswith("table-") or kind.startswith("database-"):
                continue  # DDL
            entries = _maxwell_entries(event, converter, location)
        except RecordError as err:
            writer.reject(raw, err)
            continue
        if current is None:
            current = Transaction(location=location)
        current.entries += entries
        current.changes += 1
        current.location = location
        ts = event.get("ts")
        if isinstance(ts, int | float):
            current.ts = int(ts * 1000)
        if event.get("commit") or "xid" not in event:
            yield current
            current = None
    if current is not None:
        yield current


def _maxwell_entries(
    event: dict[str, Any], converter: ChangeConverter, location: str
) -> list[dict[str, Any]]:
    table = event.get("table")
    data = event.get("data")
    if not isinstance(table, str) or not isinstance(data, dict):
        raise RecordError("a Maxwell row event needs table and data", location=location)
    key = event.get("primary_key_columns")
    if isinstance(key, list) and key:
        converter.set_key(table, [str(k) for k in key], location)
    row = {c: convert_value(None, v, c, location) for c, v in data.items()}
    kind = event["type"]
    if kind in ("insert", "bootstrap-insert"):
        return converter.insert(table, row, location)
    if kind == "update":
        changed = event.get("old") or {}
        old = row | {c: convert_value(None, v, c, location) for c, v in changed.items()}
        return converter.update(table, row, old, location)
    if kind == "delete":
        return converter.delete(table, row, location)
    raise RecordError(f"unknown Maxwell type {kind!r}", location=location)
