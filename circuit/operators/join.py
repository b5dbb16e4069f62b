"""Sources and inner equi-joins of one query level.

Rows are tuples of records in FROM/JOIN order; a row's key is the tuple of
their ids. The chain keeps, for join step *i*, a hash index of the rows built
so far (left) and of source *i*'s records (right), both by join key, and
applies the DBSP rule ``d(A ⋈ B) = dA ⋈ B + A ⋈ dB + dA ⋈ dB`` as two
lookups: every row touching a change is enumerated once in the old state
(before the indexes are updated) and once in the new state (after).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..sql.keys import hash_key
from ..sql.plan import JoinStep, LevelPlan
from . import Delta, Row, RowKey, TableChanges

KeyFn = Callable[[Row], Any]


def _join_key(fns: list[Callable[[Row], Any]]) -> KeyFn:
    """Equality key of a row; None (never matches) when any part is NULL."""
    if len(fns) == 1:
        only = fns[0]

        def one(row: Row) -> Any:
            value = only(row)
            if value is None:
                return None
            return hash_key(value)

        return one

    def many(row: Row) -> Any:
        out = []
        for fn in fns:
            value = fn(row)
            if value is None:
                return None
            out.append(hash_key(value))
        return tuple(out)

    return many


class _JoinIndexes:
    """Integrated state of one join step."""

    __slots__ = ("left", "left_key", "right", "right_key", "table")

    def __init__(self, step: JoinStep):
        self.table = step.table
        self.left_key = _join_key(step.left_keys)
        right_fn = _join_key(step.right_keys)
        self.right_key: KeyFn = lambda record: right_fn((record,))
        self.left: dict[Any, dict[RowKey, Row]] = {}
        self.right: dict[Any, dict[str, dict[str, Any]]] = {}

    def size(self) -> int:
        return sum(len(b) for b in self.left.values()) + sum(len(b) for b in self.right.values())


class JoinChain:
    """Source scan plus the level's join steps."""

    def __init__(self, plan: LevelPlan):
        self.first_table = plan.sources[0][0]
        self.steps = [_JoinIndexes(step) for step in plan.joins]
        self.tables = {table for table, _ in plan.sources}

    def state_rows(self) -> int:
        return sum(step.size() for step in self.steps)

    def initial(self, records: dict[str, dict[str, dict[str, Any]]]) -> Delta:
        """The delta that builds the level from the current tables."""
        changes: TableChanges = {
            table: [(rid, None, rec) for rid, rec in records.get(table, {}).items()]
            for table in self.tables
        }
        return self.process(changes)

    def process(self, changes: TableChanges) -> Delta:
        delta: Delta = {}
        for rid, old, new in changes.get(self.first_table, ()):
            delta[(rid,)] = (None if old is None else (old,), None if new is None else (new,))
        for step in self.steps:
            delta = self._step(step, delta, changes.get(step.table, ()))
        return delta

    @staticmethod
    def _step(
        step: _JoinIndexes,
        delta: Delta,
        right_changes: Any,
    ) -> Delta:
        left, right = step.left, step.right
        left_key, right_key = step.left_key, step.right_key
        old_out: dict[RowKey, Row] = {}
        new_out: dict[RowKey, Row] = {}
        # old state: changed left rows against old right, old left against changed right
        for key, (old, _new) in delta.items():
            if old is not None:
                bucket = right.get(left_key(old))
                if bucket:
                    for rid, rec in bucket.items():
                        old_out[(*key, rid)] = (*old, rec)
        for rid, old_rec, _new_rec in right_changes:
            if old_rec is not None:
                lbucket = left.get(right_key(old_rec))
                if lbucket:
                    for lkey, lrow in lbucket.items():
                        old_out[(*lkey, rid)] = (*lrow, old_rec)
        # integrate
        for key, (old, new) in delta.items():
            if old is not None:
                k = left_key(old)
                if k is not None:
                    lbucket = left.get(k)
                    if lbucket is not None:
                        lbucket.pop(key, None)
                        if not lbucket:
                            del left[k]
            if new is not None:
                k = left_key(new)
                if k is not None:
                    left.setdefault(k, {})[key] = new
        for rid, old_rec, new_rec in right_changes:
            if old_rec is not None:
                k = right_key(old_rec)
                if k is not None:
                    bucket = right.get(k)
                    if bucket is not None:
                        bucket.pop(rid, None)
                        if not bucket:
                            del right[k]
            if new_rec is not None:
                k = right_key(new_rec)
                if k is not None:
                    right.setdefault(k, {})[rid] = new_rec
        # new state
        for key, (_old, new) in delta.items():
            if new is not None:
                bucket = right.get(left_key(new))
                if bucket:
                    for rid, rec in bucket.items():
                        new_out[(*key, rid)] = (*new, rec)
        for rid, _old_rec, new_rec in right_changes:
            if new_rec is not None:
                lbucket = left.get(right_key(new_rec))
                if lbucket:
                    for lkey, lrow in lbucket.items():
                        new_out[(*lkey, rid)] = (*lrow, new_rec)
        out: Delta = {key: (row, new_out.pop(key, None)) for key, row in old_out.items()}
        for key, row in new_out.items():
            out[key] = (None, row)
        return out
