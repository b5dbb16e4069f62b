"""The tables: records with versions, and applying mutations to them.

A table is a Z-set of records with weights in {0, 1}: a dict from canonical id
to the stored record (whose ``id`` field is the canonical id). Versions count
the writes of a record since its CREATE. :meth:`Tables.apply` applies one
mutation the forgiving way of SPEC section 1 and reports what happened; it is
the single place where anomalies, stale versions and no-op updates are
decided, for every ingestion mode.
"""

from __future__ import annotations

from typing import Any

from .errors import MutationLogError
from .mutations import CREATE, DELETE, UPDATE, Mutation
from .sql.keys import hash_key
from .sql.values import json_equal

APPLIED = "applied"
NOOP = "noop"
STALE = "stale"
NOTHING = "nothing"


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

    def apply(
        self, m: Mutation, strict: bool
    ) -> tuple[str | None, str, dict[str, Any] | None, int, dict[str, Any] | None]:
        """Apply one data mutation in place.

        Returns ``(anomaly, outcome, old record, old version, new record)``:
        the anomaly kind or None; the outcome :data:`APPLIED`, :data:`NOOP`
        (identical data), :data:`STALE` or :data:`NOTHING` (a DELETE of a
        missing record); the record before and after.
        """
        table, rid = m.table, m.id
        assert table is not None and rid is not None
        rows = self.records.get(table)
        if rows is None:
            rows = self.records[table] = {}
        current = rows.get(rid)
        versions = self.versions
        stored_version = versions.get(rid, 0) if current is not None else 0
        version = m.version
        if version is not None and current is not None and version <= stored_version:
            return _anomaly("stale_version", m, strict), STALE, current, stored_version, current
        op = m.op
        anomaly = None
        if op == DELETE:
            if current is None:
                return _anomaly("delete_missing", m, strict), NOTHING, None, 0, None
            del rows[rid]
            del versions[rid]
            if table in self.indexes:
                self.reindex(table, rid, current, None)
            return None, APPLIED, current, stored_version, None
        if current is not None:
            if op == CREATE:
                anomaly = _anomaly("create_existing", m, strict)
        elif op == UPDATE:
            anomaly = _anomaly("update_missing", m, strict)
        data = m.data if m.data is not None else {}
        record = data if data.get("id") == rid else {**data, "id": rid}
        if current is not None:
            if version is None and json_equal(record, current):
                return anomaly, NOOP, current, stored_version, current
            versions[rid] = version if version is not None else stored_version + 1
        else:
            versions[rid] = version if version is not None else 1
        rows[rid] = record
        if table in self.indexes:
            self.reindex(table, rid, current, record)
        return anomaly, APPLIED, current, stored_version, record


def _anomaly(kind: str, m: Mutation, strict: bool) -> str:
    if strict:
        raise MutationLogError(
            f"{kind.replace('_', ' ')}: {m.op} of {m.id}",
            path=m.source,
            line=m.line,
            hint="drop --strict to apply anomalies the forgiving way and count them",
        )
    return kind
