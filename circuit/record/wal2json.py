"""wal2json's output, format versions 1 and 2, as transactions of log entries.

Format version 2 (what ``ssp record postgres`` asks for) sends one JSON object
per action: ``B`` (begin), ``I``/``U``/``D`` with ``columns`` (the new row:
``name``, ``type``, ``value``), ``identity`` (the old row: the key, or every
column under ``REPLICA IDENTITY FULL``) and ``pk`` (with ``include-pk``), ``T``
(truncate), ``M`` (a message) and ``C`` (commit, with its ``timestamp``).
Format version 1 sends one object per transaction with a ``change`` list of
``kind``, ``columnnames``/``columntypes``/``columnvalues``, ``oldkeys`` and,
with ``include-pk``, ``pk``.

A value wal2json did not send (an unchanged TOASTed column) is simply absent
from ``columns``; the :class:`~circuit.record.changes.ChangeConverter` fills
it or refuses the change. wal2json writes ``NaN`` and infinities as ``null``
unless ``numeric-data-types-as-string`` is on, which the live recorder sets,
so a refused ``NaN`` is never a silent ``null`` there; a file recorded
without that option cannot tell the two apart (README).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from .changes import ChangeConverter, RecordError, Transaction, convert_value, is_float_or_decimal

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp_ms(text: Any, location: str | None) -> int | None:
    """A PostgreSQL timestamp (``2026-12-07 20:54:00.123456+00``) as Unix milliseconds."""
    if text is None:
        return None
    if isinstance(text, int | float):
        return int(text)
    value = str(text).strip()
    if (
        len(value) > 3
        and value[-3] in "+-"
        and value[-3:].replace("+", "").replace("-", "").isdigit()
    ):
        value += ":00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise RecordError(f"unreadable commit timestamp {text!r}", location=location) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // timedelta(milliseconds=1)


def _row(columns: Sequence[Mapping[str, Any]] | None, location: str | None) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for column in columns or ():
        name = column["name"]
        row[name] = convert_value(column.get("type"), column.get("value"), name, location)
    return row


def _table(message: Mapping[str, Any]) -> str:
    table = message.get("table")
    if not isinstance(table, str):
        raise KeyError("table")
    return table


class V2Decoder:
    """Feeds format-version 2 actions in order; :meth:`feed` returns a transaction at each ``C``."""

    def __init__(self, converter: ChangeConverter, tables: set[str] | None = None) -> None:
        self.converter = converter
        self.tables = tables
        self.current: Transaction | None = None

    def feed(self, message: Mapping[str, Any], location: str | None) -> Transaction | None:
        try:
            return self._feed(message, location)
        except (KeyError, TypeError, AttributeError) as err:
            raise RecordError(
                f"not a wal2json format-version 2 action (field {err} missing or mistyped)",
                location=location,
            ) from None

    def _feed(self, message: Mapping[str, Any], location: str | None) -> Transaction | None:
        action = message["action"]
        if action == "B":
            self.current = Transaction(location=location)
            return None
        if action == "C":
            txn = self.current or Transaction()
            self.current = None
            txn.ts = timestamp_ms(message.get("timestamp"), location)
            txn.location = location
            return txn
        if action == "M":
            return None  # a logical decoding message: not a row change
        txn = self.current or Transaction(location=location)  # no B: a transaction each
        if action == "T":
            raise RecordError(
                f"TRUNCATE of {_table(message)} cannot be written as row changes",
                location=location,
                hint="delete the rows instead, or record the table again with --initial",
            )
        table = _table(message)
        if self.tables is not None and table not in self.tables:
            return None if self.current is not None else txn
        pk = message.get("pk")
        if pk:
            self.converter.set_key(table, [k["name"] for k in pk], location)
        if action == "I":
            entries = self.converter.insert(table, _row(message["columns"], location), location)
        elif action == "U":
            new = _row(message["columns"], location)
            old = _row(message["identity"], location) if "identity" in message else None
            entries = self.converter.update(table, new, old, location)
        elif action == "D":
            entries = self.converter.delete(table, _row(message["identity"], location), location)
        else:
            raise RecordError(f"unknown wal2json action {action!r}", location=location)
        if action != "D":
            rid = entries[-1]["id"]
            for column in message["columns"]:
                if column.get("value") is None and is_float_or_decimal(column.get("type")):
                    txn.suspects.append((table, rid, column["name"], location))
        txn.entries += entries
        txn.changes += 1
        return None if self.current is not None else txn


def v1_transaction(
    message: Mapping[str, Any], converter: ChangeConverter, location: str | None
) -> Transaction:
    """One format-version 1 transaction object as a :class:`Transaction`."""
    txn = Transaction(location=location)
    try:
        txn.ts = timestamp_ms(message.get("timestamp"), location)
        for change in message["change"]:
            txn.entries += _v1_change(change, converter, location)
            txn.changes += 1
    except (KeyError, TypeError, AttributeError, IndexError) as err:
        raise RecordError(
            f"not a wal2json format-version 1 transaction (field {err} missing or mistyped)",
            location=location,
        ) from None
    return txn


def _v1_change(
    change: Mapping[str, Any], converter: ChangeConverter, location: str | None
) -> list[dict[str, Any]]:
    kind = change["kind"]
    if kind == "message":
        return []
    table = change["table"]
    if kind == "truncate":
        raise RecordError(
            f"TRUNCATE of {table} cannot be written as row changes", location=location
        )
    pk = change.get("pk")
    if pk:
        converter.set_key(table, list(pk["pknames"]), location)
    old_keys = change.get("oldkeys")
    old = None
    if old_keys:
        names = old_keys["keynames"]
        types = old_keys.get("keytypes") or [None] * len(names)
        old = {
            n: convert_value(t, v, n, location)
            for n, t, v in zip(names, types, old_keys["keyvalues"], strict=True)
        }
        if table not in converter.tables and not pk and kind != "insert":
            converter.set_key(table, list(names), location)
    if kind == "delete":
        if old is None:
            raise RecordError(f"DELETE from {table} without oldkeys", location=location)
        return converter.delete(table, old, location)
    names = change["columnnames"]
    types = change.get("columntypes") or [None] * len(names)
    row = {
        n: convert_value(t, v, n, location)
        for n, t, v in zip(names, types, change["columnvalues"], strict=True)
    }
    if kind == "insert":
        return converter.insert(table, row, location)
    if kind == "update":
        return converter.update(table, row, old, location)
    raise RecordError(f"unknown wal2json change kind {kind!r}", location=location)


def iter_v2_messages(
    messages: Iterator[tuple[Mapping[str, Any], str]], decoder: V2Decoder
) -> Iterator[Transaction]:
    """Transactions from ``(action, location)`` pairs (a helper for files)."""
    for message, location in messages:
        txn = decoder.feed(message, location)
        if txn is not None:
            yield txn
