"""A bounded series of the replay's ingest calls, for plots of a run over time.

SPEC section 1 allows nothing per ingest call beyond an 8-byte timing sample,
so the series is kept in at most :data:`MAX_POINTS` buckets: each bucket sums
``span`` consecutive ingest calls (their entries, BatchStats counters and
durations, and the longest call), and when the buckets are full every two
neighbours are merged into one and ``span`` doubles. Memory is then bounded
whatever the log's length, and every ingest call is counted in exactly one
bucket. The x axis is the position in the log (entries read when the bucket
closed), not a clock, so a deterministic clock gives a deterministic series.
"""

from __future__ import annotations

from array import array
from typing import Any

from .metrics import BatchStats

MAX_POINTS = 2000
"""Most buckets kept; an even number, so that merging pairs halves them exactly."""

COLUMNS = (
    "entries",
    "calls",
    "received",
    "after_coalesce",
    "ingest_ns",
    "max_ns",
    "views_impacted",
    "views_updated",
    "events",
)
"""One value per bucket each: ``entries`` is the log position at the bucket's end, the
others are sums over its calls except ``max_ns`` (the longest call)."""


class Timeline:
    """The bounded series; :meth:`add` once per ingest call, :meth:`to_json` at the end."""

    __slots__ = ("_columns", "_current", "_max_points", "span")

    def __init__(self, max_points: int = MAX_POINTS) -> None:
        if max_points < 2 or max_points % 2:
            raise ValueError(f"max_points must be an even number >= 2, got {max_points}")
        self._max_points = max_points
        self.span = 1
        """Ingest calls per bucket (doubles at each merge)."""
        self._columns = {name: array("q") for name in COLUMNS}
        self._current = dict.fromkeys(COLUMNS, 0)

    def add(self, position: int, stats: BatchStats) -> None:
        """Count one ingest call that ended with ``position`` log entries read."""
        cur = self._current
        cur["entries"] = position
        cur["calls"] += 1
        cur["received"] += stats.entries_received
        cur["after_coalesce"] += stats.entries_after_coalesce
        cur["ingest_ns"] += stats.duration_ns
        if stats.duration_ns > cur["max_ns"]:
            cur["max_ns"] = stats.duration_ns
        cur["views_impacted"] += stats.views_impacted
        cur["views_updated"] += stats.views_updated
        cur["events"] += sum(stats.events.values())
        if cur["calls"] >= self.span:
            self._close()

    def __len__(self) -> int:
        """Buckets closed so far (the open one not counted)."""
        return len(self._columns["calls"])

    def _close(self) -> None:
        for name, column in self._columns.items():
            column.append(self._current[name])
        self._current = dict.fromkeys(COLUMNS, 0)
        if len(self) >= self._max_points:
            self._merge()

    def _merge(self) -> None:
        """Every two neighbouring buckets become one; ``span`` doubles."""
        for name, column in self._columns.items():
            if name == "entries":
                merged = column[1::2]
            elif name == "max_ns":
                merged = array("q", map(max, column[0::2], column[1::2]))
            else:
                merged = array("q", map(int.__add__, column[0::2], column[1::2]))
            self._columns[name] = merged
        self.span *= 2

    def to_json(self) -> dict[str, Any]:
        """The report's ``timeline`` section: columns of equal length, the open bucket last."""
        columns = {name: list(column) for name, column in self._columns.items()}
        if self._current["calls"]:
            for name, values in columns.items():
                values.append(self._current[name])
        return {"span_calls": self.span, "max_points": self._max_points, **columns}
