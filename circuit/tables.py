"""The tables: records with versions, and applying mutations to them.

A table is a Z-set of records with weights in {0, 1}: a dict from canonical id
to the stored record (whose ``id`` field is the canonical id). Versions count
the writes of a record since its CREATE. :meth:`Tables.apply` applies one
mutation the forgiving way of SPEC section 1 and reports what happened; it is
the single place where anomalies, stale versions and no-op updates are
decided, for every ingestion mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import MutationLogError
from .mutations import CREATE, DELETE, UPDATE, Mutation
from .sql.values import json_equal

NOOP = "noop"


@dataclass(slots=True)
class Change:
    """The net change of one record within an ingest call."""

    table: str
    id: str
    old: dict[str, Any] | None
    old_version: int
    new: dict[str, Any] | None
    new_version: int


class Tables:
    """Every table's records and every record's version."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, dict[str, Any]]] = {}
        self.versions: dict[str, int] = {}

    def get(self, table: str, rid: str) -> dict[str, Any] | None:
        rows = self.records.get(table)
        return None if rows is None else rows.get(rid)

    def version(self, rid: str) -> int:
        return self.versions.get(rid, 0)

    def apply(self, m: Mutation, strict: bool) -> tuple[str | None, str | None]:
        """Apply one data mutation in place.

        Returns ``(anomaly, outcome)``: the anomaly kind or None, and the
        outcome ``"applied"``, ``"noop"`` (identical data), ``"stale"`` or
        ``"nothing"`` (a DELETE of a missing record).
        """
        table, rid = m.table, m.id
        assert table is not None and rid is not None
        rows = self.records.get(table)
        if rows is None:
            rows = self.records[table] = {}
        current = rows.get(rid)
        stored_version = self.versions.get(rid, 0) if current is not None else 0
        if m.version is not None and current is not None and m.version <= stored_version:
            return _anomaly("stale_version", m, strict), "stale"
        op = m.op
        anomaly = None
        if op == DELETE:
            if current is None:
                return _anomaly("delete_missing", m, strict), "nothing"
            del rows[rid]
            del self.versions[rid]
            return None, "applied"
        if op == CREATE and current is not None:
            anomaly = _anomaly("create_existing", m, strict)
        elif op == UPDATE and current is None:
            anomaly = _anomaly("update_missing", m, strict)
        data = m.data if m.data is not None else {}
        record = data if data.get("id") == rid else {**data, "id": rid}
        if current is not None:
            if m.version is None and json_equal(record, current):
                return anomaly, NOOP
            self.versions[rid] = m.version if m.version is not None else stored_version + 1
        else:
            self.versions[rid] = m.version if m.version is not None else 1
        rows[rid] = record
        return anomaly, "applied"


def _anomaly(kind: str, m: Mutation, strict: bool) -> str:
    if strict:
        raise MutationLogError(
            f"{kind.replace('_', ' ')}: {m.op} of {m.id}",
            path=m.source,
            line=m.line,
            hint="drop --strict to apply anomalies the forgiving way and count them",
        )
    return kind
