"""Log entries: the :class:`Mutation` value, reading a JSONL log as a stream.

(The reader and validation are filled in by the mutation-log work; the value
type below is the contract the circuit is written against.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CREATE = "CREATE"
UPDATE = "UPDATE"
DELETE = "DELETE"
REGISTER = "REGISTER"
UNREGISTER = "UNREGISTER"
FLUSH = "FLUSH"

DATA_OPS = frozenset({CREATE, UPDATE, DELETE})


@dataclass(frozen=True, slots=True)
class Mutation:
    """One log entry.

    ``op`` is upper-case. For data ops ``table`` and the canonical ``id``
    (``table:key``) are set and ``data`` holds the record (``None`` for a
    DELETE). ``line`` is the 1-based line of the log the entry came from, or 0
    when it was built in code; ``source`` names the file.
    """

    op: str
    table: str | None = None
    id: str | None = None
    data: dict[str, Any] | None = None
    version: int | None = None
    ts: float | None = None
    view: str | None = None
    sql: str | None = None
    params: dict[str, Any] | None = None
    format: str | None = None
    line: int = 0
    source: str | None = None

    @staticmethod
    def create(table: str, id: str, data: dict[str, Any], version: int | None = None) -> Mutation:
        return Mutation(CREATE, table, canonical_id(table, id), data, version)

    @staticmethod
    def update(table: str, id: str, data: dict[str, Any], version: int | None = None) -> Mutation:
        return Mutation(UPDATE, table, canonical_id(table, id), data, version)

    @staticmethod
    def delete(table: str, id: str, version: int | None = None) -> Mutation:
        return Mutation(DELETE, table, canonical_id(table, id), None, version)


def canonical_id(table: str, raw_id: str) -> str:
    """``table:key``; an id without ``:`` gets the table prefixed.

    An id whose prefix names another table raises ``ValueError`` (the reader
    turns it into a :class:`~circuit.errors.MutationLogError`).
    """
    prefix, sep, _ = raw_id.partition(":")
    if not sep:
        return f"{table}:{raw_id}"
    if prefix != table:
        raise ValueError(f"id {raw_id!r} names table {prefix!r}, not {table!r}")
    return raw_id
