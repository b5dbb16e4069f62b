"""Sources and inner equi-joins of one query level.

Rows are tuples of records in FROM/JOIN order; a row's key is the tuple of
their ids. The chain keeps, for join step *i*, a hash index of the rows built
so far (left) and of source *i*'s records (right), both by join key, and
applies the DBSP rule ``d(A ⋈ B) = dA ⋈ B + A ⋈ dB + dA ⋈ dB`` as two
lookups: every row touching a change is enumerated once in the old state
(before the indexes are updated) and once in the new state (after).

A step whose right key is one plain field of the new source (``JOIN user u
ON u.id = m.author``) keeps no right index of its own: it reads the circuit's
shared index of that table by that field (:meth:`Tables.field_index`), which
the tables keep up to date as they apply each change, so it already holds the
new state when the step runs. The old state of a bucket is then the bucket
without the records changed in this round, plus those records as they were.

A level whose WHERE pins a plain field of its first source to a constant
(the plan's ``seed``: ``WHERE m.room = $room``) drops first-source records
without that value before the first step, so its left index holds the rows
of its own value only, not the whole table.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any

from ..sql.keys import hash_key
from ..sql.plan import JoinStep, LevelPlan
from ..tables import Tables
from ..tables import field_key as _field_key
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

    __slots__ = (
        "left",
        "left_key",
        "left_outer",
        "prefilter",
        "residual",
        "right",
        "right_key",
        "shared",
        "table",
    )

    def __init__(self, step: JoinStep, store: Tables | None):
        self.table = step.table
        self.prefilter = step.prefilter
        self.left_outer = step.left_outer
        self.residual = step.residual
        self.left_key = _join_key(step.left_keys)
        right_fn = _join_key(step.right_keys)
        self.right_key: KeyFn = lambda record: right_fn((record,))
        self.left: dict[Any, dict[RowKey, Row]] = {}
        # the right side: the tables' shared index by the key field, or a private one
        self.shared = store is not None and step.right_field is not None
        self.right: dict[Any, dict[str, dict[str, Any]]] = (
            store.field_index(step.table, step.right_field)  # type: ignore[arg-type]
            if store is not None and step.right_field is not None
            else {}
        )

    def size(self) -> int:
        """Rows this step alone holds (a shared right index belongs to the tables)."""
        left = sum(len(b) for b in self.left.values())
        return left if self.shared else left + sum(len(b) for b in self.right.values())


class JoinChain:
    """Source scan plus the level's join steps.

    ``store`` lets steps keyed by a plain field read the tables' shared index
    (see the module docstring); without it every step keeps its own.
    """

    def __init__(self, plan: LevelPlan, store: Tables | None = None):
        self.first_table = plan.sources[0][0]
        self.steps = [_JoinIndexes(step, store) for step in plan.joins]
        self.tables = {table for table, _ in plan.sources}
        self.seed = plan.seed if plan.joins else None
        self.first_filter = plan.first_filter

    def state_rows(self) -> int:
        return sum(step.size() for step in self.steps)

    def tables_to_load(self) -> set[str]:
        """The tables a build from scratch must feed in: the first source, and the
        right sources of steps with a private index (shared ones are read in place)."""
        return {self.first_table} | self.private_right_tables()

    def private_right_tables(self) -> set[str]:
        return {step.table for step in self.steps if not step.shared}

    def process(self, changes: TableChanges) -> Delta:
        delta: Delta = {}
        seed = self.seed
        first = changes.get(self.first_table, ())
        if self.first_filter is not None and first:
            first = _prefiltered(self.first_filter, first)
        if seed is None:
            for rid, old, new in first:
                delta[(rid,)] = (None if old is None else (old,), None if new is None else (new,))
        else:
            field, want = seed
            for rid, old, new in first:
                if old is not None and _field_key(old, field) != want:
                    old = None
                if new is not None and _field_key(new, field) != want:
                    new = None
                if old is not None or new is not None:
                    delta[(rid,)] = (
                        None if old is None else (old,),
                        None if new is None else (new,),
                    )
        for step in self.steps:
            right_changes = changes.get(step.table, ())
            if step.prefilter is not None and right_changes:
                right_changes = _prefiltered(step.prefilter, right_changes)
            if step.left_outer:
                delta = self._left_step(step, delta, right_changes)
            else:
                delta = self._step(step, delta, right_changes)
        return delta

    @staticmethod
    def _step(
        step: _JoinIndexes,
        delta: Delta,
        right_changes: Any,
    ) -> Delta:
        left, right = step.left, step.right
        lefts, rights = _keyed(step, delta, right_changes)
        old_out: dict[RowKey, Row] = {}
        new_out: dict[RowKey, Row] = {}
        changed, was = _right_before(step, rights)
        # old state: changed left rows against old right, old left against changed right
        for key, old, old_k, _new, _new_k in lefts:
            if old_k is not None:
                bucket = right.get(old_k)
                if bucket:
                    for rid, rec in bucket.items():
                        if rid not in changed:
                            old_out[(*key, rid)] = (*old, rec)  # type: ignore[misc]
                if was:
                    for rid, rec in was.get(old_k, ()):
                        old_out[(*key, rid)] = (*old, rec)  # type: ignore[misc]
        for rid, old_rec, old_k, _new_rec, _new_k in rights:
            if old_k is not None:
                lbucket = left.get(old_k)
                if lbucket:
                    for lkey, lrow in lbucket.items():
                        old_out[(*lkey, rid)] = (*lrow, old_rec)
        _integrate(step, lefts, rights)
        # new state
        for key, _old, _old_k, new, new_k in lefts:
            if new_k is not None:
                bucket = right.get(new_k)
                if bucket:
                    for rid, rec in bucket.items():
                        new_out[(*key, rid)] = (*new, rec)  # type: ignore[misc]
        for rid, _old_rec, _old_k, new_rec, new_k in rights:
            if new_k is not None:
                lbucket = left.get(new_k)
                if lbucket:
                    for lkey, lrow in lbucket.items():
                        new_out[(*lkey, rid)] = (*lrow, new_rec)
        return _pair(old_out, new_out)

    @staticmethod
    def _left_step(step: _JoinIndexes, delta: Delta, right_changes: Any) -> Delta:
        """LEFT JOIN: like the inner step, plus each left row's NULL-extended row
        while nothing matches it (retracted when the first match appears,
        restored when the last one goes). With extra ON conditions a left row's
        matches are re-enumerated; without, bucket emptiness decides."""
        left, right = step.left, step.right
        left_key, right_key, residual = step.left_key, step.right_key, step.residual
        changed: Collection[str] = ()
        was: dict[Any, list[tuple[str, dict[str, Any]]]] = {}

        def outputs(out: dict[RowKey, Row], key: RowKey, row: Row) -> None:
            """Every output row of one left row in the current state (the old state
            while ``changed`` and ``was`` describe the round's right changes)."""
            matched = False
            k = left_key(row)
            bucket = right.get(k)
            if bucket:
                for rid, rec in bucket.items():
                    if rid in changed:
                        continue
                    full = (*row, rec)
                    if residual is None or residual(full):
                        out[(*key, rid)] = full
                        matched = True
            if was and k is not None:
                for rid, rec in was.get(k, ()):
                    full = (*row, rec)
                    if residual is None or residual(full):
                        out[(*key, rid)] = full
                        matched = True
            if not matched:
                out[(*key, None)] = (*row, None)

        # left rows (not themselves changed) whose matches a right change touches
        touched: dict[RowKey, Row] = {}
        for _rid, old_rec, new_rec in right_changes:
            for rec in (old_rec, new_rec):
                if rec is not None:
                    lbucket = left.get(right_key(rec))
                    if lbucket:
                        for lkey, lrow in lbucket.items():
                            if lkey not in delta:
                                touched[lkey] = lrow
        old_out: dict[RowKey, Row] = {}
        new_out: dict[RowKey, Row] = {}
        lefts, rights = _keyed(step, delta, right_changes)
        changed, was = _right_before(step, rights)
        for key, (old, _new) in delta.items():
            if old is not None:
                outputs(old_out, key, old)
        for lkey, lrow in touched.items():
            outputs(old_out, lkey, lrow)
        _integrate(step, lefts, rights)
        changed, was = (), {}
        for key, (_old, new) in delta.items():
            if new is not None:
                outputs(new_out, key, new)
        for lkey, lrow in touched.items():
            outputs(new_out, lkey, lrow)
        return _pair(old_out, new_out)


def _right_before(
    step: _JoinIndexes, rights: Keyed
) -> tuple[Collection[str], dict[Any, list[tuple[str, dict[str, Any]]]]]:
    """How to read a shared right index in the old state: the ids changed in this round
    (to skip in the current buckets) and their old records by old key (to add back).

    A private index is still in its old state when the old state is read: nothing to
    skip or add."""
    if not step.shared or not rights:
        return (), {}
    changed = {rid for rid, *_ in rights}
    was: dict[Any, list[tuple[str, dict[str, Any]]]] = {}
    for rid, old_rec, old_k, _new_rec, _new_k in rights:
        if old_k is not None:
            was.setdefault(old_k, []).append((rid, old_rec))
    return changed, was


def _pair(old_out: dict[RowKey, Row], new_out: dict[RowKey, Row]) -> Delta:
    """Old-state and new-state rows of the touched keys as one delta (unchanged dropped)."""
    out: Delta = {}
    for key, row in old_out.items():
        new = new_out.pop(key, None)
        if new is None or not _same(row, new):
            out[key] = (row, new)
    for key, row in new_out.items():
        out[key] = (None, row)
    return out


def _same(a: Row, b: Row) -> bool:
    """Rows made of the very same record objects (nothing changed in them)."""
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


Keyed = list[tuple[Any, Any, Any, Any, Any]]
"""``(key or id, old, old join key, new, new join key)`` per change of one side."""


def _keyed(step: _JoinIndexes, delta: Delta, right_changes: Any) -> tuple[Keyed, Keyed]:
    """Each change of both sides with its join keys, computed once per step."""
    lefts = _with_keys(((key, old, new) for key, (old, new) in delta.items()), step.left_key)
    return lefts, _with_keys(right_changes, step.right_key)


def _with_keys(changes: Iterable[tuple[Any, Any, Any]], key_of: KeyFn) -> Keyed:
    return [
        (
            key,
            old,
            None if old is None else key_of(old),
            new,
            None if new is None else key_of(new),
        )
        for key, old, new in changes
    ]


def _integrate(step: _JoinIndexes, lefts: Keyed, rights: Keyed) -> None:
    """Apply a step's input changes to its indexes (a shared right index is the tables')."""
    _index(step.left, lefts)
    if not step.shared:
        _index(step.right, rights)


def _index(index: dict[Any, dict[Any, Any]], changes: Keyed) -> None:
    """Move each changed row (or record) between the buckets of its old and new key."""
    for key, _old, old_k, new, new_k in changes:
        if old_k is not None:
            bucket = index.get(old_k)
            if bucket is not None:
                bucket.pop(key, None)
                if not bucket:
                    del index[old_k]
        if new_k is not None:
            bucket = index.get(new_k)
            if bucket is None:
                index[new_k] = {key: new}
            else:
                bucket[key] = new


def _prefiltered(predicate: Callable[[Row], bool], changes: Iterable[Any]) -> list[Any]:
    """Record changes with the sides that fail ``predicate`` made absent (see
    :attr:`~circuit.sql.plan.JoinStep.prefilter`)."""
    out = []
    for rid, old, new in changes:
        if old is not None and not predicate((old,)):
            old = None
        if new is not None and not predicate((new,)):
            new = None
        if old is not None or new is not None:
            out.append((rid, old, new))
    return out
