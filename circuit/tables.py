"""The tables: records with versions, and applying mutations to them.

A table is a Z-set of records with weights in {0, 1}: a dict from canonical id
to the stored record (whose ``id`` field is the canonical id). Versions count
the writes of a record since its CREATE. :meth:`Tables.apply_many` applies
mutations the forgiving way of SPEC section 1 and reports what happened; it is
the single place where anomalies, stale versions and no-op updates are
decided, for every ingestion mode.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .errors import CircuitError, MutationLogError
from .mutations import CREATE, DELETE, UPDATE, Mutation
from .sql.keys import hash_key
from .sql.values import json_equal


def field_key(record: dict[str, Any] | None, field: str) -> Any:
    """A record's key in the field index by ``field`` (None: no record, or NULL)."""
    if record is None:
        return None
    value = record.get(field)
    return None if value is None else hash_key(value)


class Tables:
    """Every table's records and every record's version."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, dict[str, Any]]] = {}
        self.versions: dict[str, int] = {}
        # table -> field -> value key -> {id: record}; built when a view first asks
        self.indexes: dict[str, dict[str, dict[Any, dict[str, dict[str, Any]]]]] = {}

    def field_index(self, table: str, field: str) -> dict[Any, dict[str, dict[str, Any]]]:
        """Records of a table by the (hashable) value of one top-level field.

        Built by one scan on first use and kept up to date by every write, so
        that a nested subquery group (``WHERE thread = $parent.id``) or a view
        pinned to a constant reads only its own records. Shared by all views.
        """
        by_field = self.indexes.setdefault(table, {})
        index = by_field.get(field)
        if index is None:
            index = by_field[field] = {}
            for rid, record in self.records.get(table, {}).items():
                value = record.get(field)
                if value is not None:
                    index.setdefault(hash_key(value), {})[rid] = record
        return index

    def reindex(
        self, table: str, rid: str, old: dict[str, Any] | None, new: dict[str, Any] | None
    ) -> None:
        """Move one record between the buckets of its table's field indexes."""
        for field, index in self.indexes[table].items():
            if old is not None:
                value = old.get(field)
                if value is not None:
                    bucket = index.get(hash_key(value))
                    if bucket is not None:
                        bucket.pop(rid, None)
                        if not bucket:
                            del index[hash_key(value)]
            if new is not None:
                value = new.get(field)
                if value is not None:
                    index.setdefault(hash_key(value), {})[rid] = new

    def get(self, table: str, rid: str) -> dict[str, Any] | None:
        rows = self.records.get(table)
        return None if rows is None else rows.get(rid)

    def version(self, rid: str) -> int:
        return self.versions.get(rid, 0)

    def apply_many(
        self,
        entries: Iterable[Mutation],
        strict: bool,
        anomalies: dict[str, int],
        versions_before: dict[str, int],
        records_before: dict[str, tuple[str, dict[str, Any] | None]],
    ) -> tuple[list[Applied], int]:
        """Apply data mutations in order, in place, the forgiving way of SPEC section 1.

        Returns the entries that changed a record, each with the record before
        and after it, and the number of no-op updates (identical data). Counts
        anomalies by kind in ``anomalies``; fills ``versions_before`` and
        ``records_before`` with each written id's version and record before
        its first write. One loop for a whole call: this is the hottest path
        of every ingestion mode.
        """
        records, versions, indexes = self.records, self.versions, self.indexes
        applied: list[Applied] = []
        noops = 0
        for m in entries:
            table, rid = m.table, m.id
            if table is None or rid is None:
                raise CircuitError(f"a {m.op} entry needs a table and an id")
            rows = records.get(table)
            if rows is None:
                rows = records[table] = {}
            current = rows.get(rid)
            stored_version = versions.get(rid, 0) if current is not None else 0
            version = m.version
            if version is not None and current is not None and version <= stored_version:
                _count(anomalies, _anomaly("stale_version", m, strict))
                continue
            op = m.op
            if op == DELETE:
                if current is None:
                    _count(anomalies, _anomaly("delete_missing", m, strict))
                    continue
                del rows[rid]
                del versions[rid]
                new: dict[str, Any] | None = None
            else:
                if current is not None:
                    if op == CREATE:
                        _count(anomalies, _anomaly("create_existing", m, strict))
                elif op == UPDATE:
                    _count(anomalies, _anomaly("update_missing", m, strict))
                data = m.data if m.data is not None else {}
                new = data if data.get("id") == rid else {**data, "id": rid}
                if current is not None:
                    if version is None and json_equal(new, current):
                        noops += 1
                        continue
                    versions[rid] = version if version is not None else stored_version + 1
                else:
                    versions[rid] = version if version is not None else 1
                rows[rid] = new
            if table in indexes:
                self.reindex(table, rid, current, new)
            if rid not in versions_before:
                versions_before[rid] = stored_version
                records_before[rid] = (table, current)
            applied.append((m, current, new))
        return applied, noops


Applied = tuple[Mutation, dict[str, Any] | None, dict[str, Any] | None]
"""An applied entry with the record before and after it."""


def _count(anomalies: dict[str, int], kind: str) -> None:
    anomalies[kind] = anomalies.get(kind, 0) + 1


def _anomaly(kind: str, m: Mutation, strict: bool) -> str:
    if strict:
        raise MutationLogError(
            f"{kind.replace('_', ' ')}: {m.op} of {m.id}",
            path=m.source,
            line=m.line,
            hint="drop --strict to apply anomalies the forgiving way and count them",
        )
    return kind
