"""The circuit: views, the dependency index, and the ingest calls.

(API contract; the implementation lands with the engine work.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .metrics import BatchStats, CircuitMetrics, Clock
from .mutations import Mutation
from .updates import BatchResult, ViewUpdate


class Circuit:
    """Tables (Z-sets of records) and incrementally maintained views.

    ``clock`` returns nanoseconds (inject a :class:`~circuit.metrics.FakeClock`
    in tests); ``strict`` turns anomalies into :class:`MutationLogError`;
    ``coalesce`` (batch and deferred) nets out entries of one record within
    a call; ``pending_limit`` flushes deferred entries automatically.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        strict: bool = False,
        coalesce: bool = True,
        pending_limit: int = 10_000,
    ) -> None:
        raise NotImplementedError

    # views
    def register_view(
        self, name: str, sql: str, params: Mapping[str, Any] | None = None, format: str = "streaming"
    ) -> ViewUpdate | None:
        raise NotImplementedError

    def unregister_view(self, name: str) -> None:
        raise NotImplementedError

    def view_names(self) -> list[str]:
        """Registered views in registration order."""
        raise NotImplementedError

    # ingestion
    def ingest_single(self, m: Mutation) -> list[ViewUpdate]:
        """Apply and propagate one data mutation; ``last_stats`` holds its BatchStats."""
        raise NotImplementedError

    def ingest_batch(self, ms: Iterable[Mutation]) -> BatchResult:
        raise NotImplementedError

    def ingest_deferred(self, ms: Iterable[Mutation]) -> BatchResult | None:
        """Queue; returns the flush's result when the pending limit triggered one."""
        raise NotImplementedError

    def flush(self) -> BatchResult:
        raise NotImplementedError

    @property
    def pending(self) -> int:
        raise NotImplementedError

    @property
    def seq(self) -> int:
        raise NotImplementedError

    last_stats: BatchStats

    # state
    def rows(self, view: str) -> list[dict[str, Any]]:
        """The view's rows: ORDER BY order, else sorted by canonical JSON."""
        raise NotImplementedError

    def members(self, view: str) -> list[tuple[str, int]]:
        """``(id, version)`` of every member, sorted by id."""
        raise NotImplementedError

    def tables(self) -> Mapping[str, Mapping[str, dict[str, Any]]]:
        """Current records: table name -> {canonical id -> record}."""
        raise NotImplementedError

    def metrics(self) -> CircuitMetrics:
        raise NotImplementedError

    def explain(self, view: str) -> str:
        """The view's plan as an indented tree of operators."""
        raise NotImplementedError

    def dependency_index(self) -> dict[str, list[str]]:
        """table -> the views that read it (registration order)."""
        raise NotImplementedError
