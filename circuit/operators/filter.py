"""Filters: the static WHERE (stateless) and the semi-join filter (stateful).

The static filter evaluates the compiled predicate on the old row and on the
new row of each change: a DELETE is judged on its pre-image, an UPDATE can
move a row in or out.

The semi-join filter handles the WHERE conjuncts that read subqueries
(``IN (SELECT ...)``, ``EXISTS``). It keeps every row that passed the static
filter, indexed by what each subquery probe reads (correlation key and probed
value), so that when a subquery's contents change only the rows whose answer
can change are evaluated again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..sql.compile import TruthFn
from ..sql.keys import hash_key
from ..sql.plan import LevelPlan, key_function
from . import Delta, Row, RowKey


def static_filter(predicate: TruthFn, delta: Delta) -> Delta:
    """Keep the sides of each change that pass ``predicate``."""
    out: Delta = {}
    for key, (old, new) in delta.items():
        old_pass = old if old is not None and predicate(old) else None
        new_pass = new if new is not None and predicate(new) else None
        if old_pass is not None or new_pass is not None:
            out[key] = (old_pass, new_pass)
    return out


class SemiJoinFilter:
    """Rows filtered by conjuncts over subquery contents; see the module docstring."""

    def __init__(self, plan: LevelPlan):
        assert plan.dynamic_filter is not None
        self.predicate = plan.dynamic_filter
        self.stored: dict[RowKey, Row] = {}
        self.passed: dict[RowKey, Row] = {}
        self.probes: list[tuple[Callable[[Row], Any], Callable[[Row], Any] | None]] = [
            (key_function(atom.outer_keys), atom.probe) for atom in plan.atoms
        ]
        # per atom: (ck, value key) -> row keys, and ck -> row keys
        self.by_value: list[dict[Any, set[RowKey]]] = [{} for _ in plan.atoms]
        self.by_group: list[dict[Any, set[RowKey]]] = [{} for _ in plan.atoms]

    def state_rows(self) -> int:
        return len(self.stored)

    def _index(self, key: RowKey, row: Row, add: bool) -> None:
        for index, (group_of, probe) in enumerate(self.probes):
            ck = group_of(row)
            targets = [(self.by_group[index], ck)]
            if probe is not None:
                value = probe(row)
                targets.append(
                    (self.by_value[index], (ck, None if value is None else hash_key(value)))
                )
            for table, slot in targets:
                if add:
                    table.setdefault(slot, set()).add(key)
                else:
                    bucket = table.get(slot)
                    if bucket is not None:
                        bucket.discard(key)
                        if not bucket:
                            del table[slot]

    def affected(self, index: int, values: Iterable[Any], groups: Iterable[Any]) -> set[RowKey]:
        """Row keys whose answer may change: probed (ck, value) pairs and whole groups."""
        out: set[RowKey] = set()
        by_value = self.by_value[index]
        by_group = self.by_group[index]
        for slot in values:
            bucket = by_value.get(slot)
            if bucket:
                out |= bucket
        for ck in groups:
            bucket = by_group.get(ck)
            if bucket:
                out |= bucket
        return out

    def process(self, delta: Delta, affected: set[RowKey]) -> Delta:
        """Apply the input delta, then judge changed and affected rows in the new state."""
        stored, passed, predicate = self.stored, self.passed, self.predicate
        for key, (old, new) in delta.items():
            if old is not None:
                del stored[key]
                self._index(key, old, add=False)
            if new is not None:
                stored[key] = new
                self._index(key, new, add=True)
        out: Delta = {}
        for key in affected.union(delta) if affected else delta:
            before = passed.get(key)
            row = stored.get(key)
            after = row if row is not None and predicate(row) else None
            if before is None and after is None:
                continue
            if before is after:
                continue
            if after is None:
                del passed[key]
            else:
                passed[key] = after
            out[key] = (before, after)
        return out
