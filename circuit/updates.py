"""View updates: what a view emits after an ingest call (SPEC section 3.3)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import orjson
from blake3 import blake3

from .metrics import BatchStats

STREAMING = "streaming"
FLAT = "flat"
FORMATS = (STREAMING, FLAT)

EMPTY_HASH = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"


class MemberVersions(Sequence[list[Any]]):
    """A flat update's ``result_data``: sorted member ids and their versions.

    Taken as two flat lists when the update is emitted (a C-speed copy), and
    turned into ``[id, version]`` pairs only when read or serialised: a flat
    view with many members then costs its consumer, not every ingest call.
    Compares equal to the list of pairs it stands for.
    """

    __slots__ = ("ids", "versions")

    def __init__(self, ids: list[str], versions: list[int]):
        self.ids = ids
        self.versions = versions

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, index: int) -> list[Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[list[Any]]: ...

    def __getitem__(self, index: int | slice) -> list[Any] | list[list[Any]]:
        if isinstance(index, slice):
            return self.to_list()[index]
        return [self.ids[index], self.versions[index]]

    def __iter__(self) -> Iterator[list[Any]]:
        for pair in zip(self.ids, self.versions, strict=True):
            yield list(pair)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MemberVersions):
            return self.ids == other.ids and self.versions == other.versions
        if isinstance(other, Sequence):
            return self.to_list() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self.to_list())

    def to_list(self) -> list[list[Any]]:
        return [[rid, version] for rid, version in zip(self.ids, self.versions, strict=True)]


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
    result_data: Sequence[list[Any]] | None = None

    def to_json(self) -> dict[str, Any]:
        if self.format == FLAT:
            data = self.result_data
            return {
                "format": FLAT,
                "view": self.view,
                "seq": self.seq,
                "result_hash": self.result_hash,
                "result_data": data.to_list() if isinstance(data, MemberVersions) else data,
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
