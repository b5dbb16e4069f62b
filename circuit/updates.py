"""View updates: what a view emits after an ingest call (SPEC section 3.3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from blake3 import blake3

from .metrics import BatchStats

STREAMING = "streaming"
FLAT = "flat"
FORMATS = (STREAMING, FLAT)

EMPTY_HASH = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"


@dataclass(frozen=True, slots=True)
class ViewUpdate:
    """One view's update for one ingest call.

    Streaming updates carry ``records`` (``{"id", "event", "version"}``
    ordered created, updated, deleted, each by id); flat updates carry every
    member as ``result_data`` (``[id, version]`` sorted by id) and
    ``result_hash``.
    """

    view: str
    seq: int
    format: str
    records: list[dict[str, Any]] | None = None
    result_hash: str | None = None
    result_data: list[list[Any]] | None = None

    def to_json(self) -> dict[str, Any]:
        if self.format == FLAT:
            return {
                "format": FLAT,
                "view": self.view,
                "seq": self.seq,
                "result_hash": self.result_hash,
                "result_data": self.result_data,
            }
        return {"format": STREAMING, "view": self.view, "seq": self.seq, "records": self.records}

    def to_bytes(self) -> bytes:
        """One JSONL line (without the newline)."""
        return orjson.dumps(self.to_json())


def result_hash(sorted_ids: list[str]) -> str:
    """BLAKE3 hex of the sorted member ids, each followed by one NUL byte."""
    if not sorted_ids:
        return EMPTY_HASH
    text = "\0".join(sorted_ids) + "\0"
    return blake3(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(slots=True)
class BatchResult:
    """What an ingest call returns: the view updates and its :class:`BatchStats`."""

    updates: list[ViewUpdate] = field(default_factory=list)
    stats: BatchStats = field(default_factory=BatchStats)
