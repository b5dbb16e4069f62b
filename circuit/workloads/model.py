"""The pieces every scenario is built from: sizes, view definitions, log
entries, a monotonic ``ts`` source, pools of live records, and text.

Determinism is the point of this module. Every choice goes through one
``random.Random`` that the caller seeded; pools keep their ids in lists (never
sets or dict iteration over changing keys), so the same seed and sizes give the
same sequence of entries on every run and every platform.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

Entry = dict[str, Any]
"""One log line as a JSON object (SPEC section 1)."""

BASE_TS = 1_700_000_000_000
"""Milliseconds since the epoch of the first entry: a fixed date, never the wall clock."""


@dataclass(frozen=True, slots=True)
class Sizes:
    """How big a workload is.

    ``rows`` records are created first, ``mutations`` entries follow them, and
    ``views`` views are defined (each scenario's help says how it reads these).
    ``aggregates`` adds the GROUP BY and NOT EXISTS views where a scenario has
    them; ``clients`` sizes the `clients` scenario (None: its default).
    """

    rows: int
    mutations: int
    views: int
    aggregates: bool = True
    clients: int | None = None


@dataclass(frozen=True, slots=True)
class ViewDef:
    """One ``CREATE VIEW`` of ``views.sql``, with the comment written above it."""

    name: str
    sql: str
    comment: str
    format: str = "streaming"


def _rows(sizes: Sizes) -> int:
    return sizes.rows


@dataclass(frozen=True, slots=True)
class Scenario:
    """A workload generator.

    ``views`` lists the views of ``views.sql`` for the sizes; ``entries``
    yields exactly ``state_size(sizes) + sizes.mutations`` log entries, lazily, so a
    log of millions of entries is never held in memory. ``min_rows`` is the
    fewest initial records the scenario can be built from. ``state_size``
    says how many leading entries are the state, all CREATEs (``sizes.rows``
    unless the scenario needs more): what ``ssp gen --initial`` writes apart.
    """

    name: str
    summary: str
    defaults: Sizes
    min_rows: int
    views: Callable[[Sizes], list[ViewDef]]
    entries: Callable[[random.Random, Sizes], Iterator[Entry]]
    state_size: Callable[[Sizes], int] = _rows


def create(table: str, rid: str, data: dict[str, Any], ts: int) -> Entry:
    """A CREATE entry (``rid`` is the canonical ``table:key`` id)."""
    return {"op": "CREATE", "table": table, "id": rid, "data": data, "ts": ts}


def update(table: str, rid: str, data: dict[str, Any], ts: int) -> Entry:
    """An UPDATE entry: ``data`` is the whole new record, not a patch."""
    return {"op": "UPDATE", "table": table, "id": rid, "data": data, "ts": ts}


def delete(table: str, rid: str, ts: int) -> Entry:
    """A DELETE entry (no ``data``: SPEC section 1 allows omitting it)."""
    return {"op": "DELETE", "table": table, "id": rid, "ts": ts}


class Ticker:
    """The ``ts`` of successive entries: strictly increasing milliseconds.

    Each call advances by a random step in ``[1, max_step]``, so gaps vary the
    way a recording's would while the order stays total.
    """

    __slots__ = ("_max_step", "_rng", "now")

    def __init__(self, rng: random.Random, max_step: int = 40, start: int = BASE_TS):
        self._rng = rng
        self._max_step = max_step
        self.now = start

    def __call__(self) -> int:
        self.now += self._rng.randint(1, self._max_step)
        return self.now


class Pool:
    """The live records of one table, with O(1) add, remove and random choice.

    Ids sit in a list (removal swaps the last id into the hole) so that
    ``choice`` depends only on the sequence of operations, never on hashing.
    Recently deleted records are kept, up to ``keep_deleted``, so a scenario
    can re-create them; the bound keeps memory independent of the log's length.
    """

    __slots__ = ("_deleted", "_ids", "_pos", "records", "table")

    def __init__(self, table: str, keep_deleted: int = 1000):
        self.table = table
        self.records: dict[str, dict[str, Any]] = {}
        self._ids: list[str] = []
        self._pos: dict[str, int] = {}
        self._deleted: deque[tuple[str, dict[str, Any]]] = deque(maxlen=keep_deleted)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, rid: object) -> bool:
        return rid in self._pos

    def put(self, rid: str, data: dict[str, Any]) -> None:
        """Store ``data`` as the record ``rid`` (adding it when new)."""
        if rid not in self._pos:
            self._pos[rid] = len(self._ids)
            self._ids.append(rid)
        self.records[rid] = data

    def remove(self, rid: str) -> None:
        """Drop ``rid`` and remember it for :meth:`pop_deleted`."""
        index = self._pos.pop(rid)
        last = self._ids.pop()
        if last != rid:
            self._ids[index] = last
            self._pos[last] = index
        self._deleted.append((rid, self.records.pop(rid)))

    def choice(self, rng: random.Random) -> str:
        """A random live id (the pool must not be empty)."""
        return self._ids[int(rng.random() * len(self._ids))]

    def pop_deleted(self, rng: random.Random) -> tuple[str, dict[str, Any]] | None:
        """Take a random remembered deleted record, or ``None`` when there is none."""
        if not self._deleted:
            return None
        index = rng.randrange(len(self._deleted))
        item = self._deleted[index]
        del self._deleted[index]
        return item


def pick(rng: random.Random, weights: tuple[tuple[str, float], ...]) -> str:
    """One name from ``(name, weight)`` pairs, weights summing to about 1."""
    roll = rng.random()
    for name, weight in weights:
        roll -= weight
        if roll < 0:
            return name
    return weights[-1][0]


WORDS = (
    "async", "build", "cache", "circuit", "commit", "compile", "config", "deploy", "docs",
    "error", "feature", "fix", "flaky", "graph", "index", "issue", "join", "kernel", "latency",
    "lorem", "merge", "metric", "migrate", "network", "parser", "patch", "plugin", "query",
    "release", "replay", "review", "rust", "schema", "server", "snapshot", "stream", "sync",
    "table", "test", "thread", "timeout", "token", "update", "version", "view", "worker",
    "yaml", "zero", "question", "thanks", "idea", "benchmark", "python", "sqlite", "docker",
)  # fmt: skip

FIRST_NAMES = (
    "Ada", "Alan", "Åsa", "Bea", "Chen", "Dana", "Eve", "Farid", "Grace", "Hugo", "Ines", "José",
    "Kai", "Lena", "Łukasz", "Mia", "Ngọc", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq",
    "Uma", "Vera", "Wei", "Xavier", "Yuki", "Zoë", "李雷",
)  # fmt: skip

LAST_NAMES = (
    "Adams", "Bauer", "Costa", "Dubois", "Eriksson", "Fischer", "García", "Haddad", "Ito",
    "Jensen", "Kowalski", "Lopez", "Müller", "Nakamura", "O'Brien", "Patel", "Rossi", "Singh",
    "Tanaka", "Novák", "Wang", "Young",
)  # fmt: skip


def words(rng: random.Random, low: int, high: int) -> str:
    """``low`` to ``high`` random words joined by spaces."""
    # One ``choices`` call rather than a ``choice`` per word: text is most of the generator's work.
    return " ".join(rng.choices(WORDS, k=rng.randint(low, high)))


def person(rng: random.Random) -> str:
    """A display name, sometimes with non-ASCII characters."""
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
