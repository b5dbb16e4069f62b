"""What the circuit counts: BatchStats per ingest call, per-view and
per-operator metrics, latency samples, and the injectable clock."""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

EVENT_KINDS = ("created", "updated", "deleted")
ANOMALY_KINDS = ("create_existing", "update_missing", "delete_missing", "stale_version")


class Clock(Protocol):
    """A monotonic clock in nanoseconds (``time.perf_counter_ns`` by default)."""

    def __call__(self) -> int: ...


def default_clock() -> Callable[[], int]:
    return time.perf_counter_ns


class FakeClock:
    """A clock for tests: every reading advances by ``step`` nanoseconds."""

    def __init__(self, step: int = 1000, start: int = 0):
        self.now = start
        self.step = step

    def __call__(self) -> int:
        self.now += self.step
        return self.now


@dataclass(slots=True)
class BatchStats:
    """What one ingest call did (SPEC section 4). Summable with ``+=``."""

    entries_received: int = 0
    entries_after_coalesce: int = 0
    noop_updates: int = 0
    anomalies: dict[str, int] = field(default_factory=dict)
    tables_touched: int = 0
    views_impacted: int = 0
    views_updated: int = 0
    events: dict[str, int] = field(default_factory=lambda: dict.fromkeys(EVENT_KINDS, 0))
    duration_ns: int = 0

    def __iadd__(self, other: BatchStats) -> BatchStats:
        self.entries_received += other.entries_received
        self.entries_after_coalesce += other.entries_after_coalesce
        self.noop_updates += other.noop_updates
        if other.anomalies:
            mine = self.anomalies
            for key, value in other.anomalies.items():
                mine[key] = mine.get(key, 0) + value
        self.tables_touched += other.tables_touched
        self.views_impacted += other.views_impacted
        self.views_updated += other.views_updated
        events = self.events
        for key, value in other.events.items():
            events[key] = events.get(key, 0) + value
        self.duration_ns += other.duration_ns
        return self

    def to_json(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchStats:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


def _plain(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else value


class Samples:
    """Timing samples at 8 bytes each (``array('q')``), with percentiles."""

    __slots__ = ("_data",)

    def __init__(self, values: Iterable[int] = ()):
        self._data = array("q", values)

    def add(self, value: int) -> None:
        self._data.append(value)

    def __len__(self) -> int:
        return len(self._data)

    def total(self) -> int:
        return sum(self._data)

    def percentile(self, q: float) -> int:
        """Nearest-rank percentile (``q`` in 0..100); 0 when there are no samples."""
        if not self._data:
            return 0
        ordered = sorted(self._data)
        rank = max(1, -(-len(ordered) * q // 100))
        return ordered[min(len(ordered), int(rank)) - 1]

    def percentiles(self, qs: Iterable[float]) -> list[int]:
        if not self._data:
            return [0 for _ in qs]
        ordered = sorted(self._data)
        n = len(ordered)
        return [ordered[min(n, max(1, int(-(-n * q // 100)))) - 1] for q in qs]

    def max(self) -> int:
        return max(self._data) if self._data else 0


@dataclass(slots=True)
class OperatorMetrics:
    """Self time and rows through one operator of one view."""

    view: str
    path: str
    self_ns: int = 0
    rows_in: int = 0
    rows_out: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "view": self.view,
            "path": self.path,
            "self_ns": self.self_ns,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
        }


@dataclass(slots=True)
class ViewMetrics:
    """Per-view counters (SPEC section 4)."""

    invocations: int = 0
    updates_emitted: int = 0
    events: dict[str, int] = field(default_factory=lambda: dict.fromkeys(EVENT_KINDS, 0))
    rows: int = 0
    members: int = 0
    state_rows: int = 0
    incremental_updates: int = 0
    full_recomputes: int = 0
    subquery_cache_hits: int = 0
    subquery_cache_misses: int = 0
    time_ns: int = 0
    samples: Samples = field(default_factory=Samples)

    def record_invocation(self, spent_ns: int) -> None:
        """One incremental run of the view in an ingest call, and its time."""
        self.time_ns += spent_ns
        self.invocations += 1
        self.incremental_updates += 1
        self.samples.add(spent_ns)

    def to_json(self) -> dict[str, Any]:
        p50, p99 = self.samples.percentiles((50, 99))
        return {
            "invocations": self.invocations,
            "updates_emitted": self.updates_emitted,
            "events": dict(self.events),
            "rows": self.rows,
            "members": self.members,
            "state_rows": self.state_rows,
            "incremental_updates": self.incremental_updates,
            "full_recomputes": self.full_recomputes,
            "subquery_cache_hits": self.subquery_cache_hits,
            "subquery_cache_misses": self.subquery_cache_misses,
            "time_ns": self.time_ns,
            "time_ns_p50": p50,
            "time_ns_p99": p99,
        }


@dataclass(slots=True)
class CircuitMetrics:
    """A snapshot of the circuit's counters: per view and per operator."""

    views: dict[str, dict[str, Any]]
    operators: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"views": self.views, "operators": self.operators}
