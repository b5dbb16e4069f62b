"""Incremental operators. Each owns its integrated state and maps a delta of
its input to a delta of its output, in time proportional to the delta.

A delta here is a dict ``row key -> (old row, new row)``: the row as it was
before the ingest call and as it is after it (``None`` where it did not / no
longer exists). Retraction and insertion of the same key travel together, so
an update is never split into two unrelated events.
"""

from typing import Any

Row = tuple[Any, ...]
RowKey = tuple[Any, ...]
Delta = dict[RowKey, tuple[Row | None, Row | None]]
TableChanges = dict[str, list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]]]
