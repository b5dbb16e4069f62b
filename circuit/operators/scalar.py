"""Scalar subqueries in expressions: a stage that appends the subquery's value to rows.

A level's rows pass, after its joins, through one :class:`ScalarStage` per scalar
subquery of its expressions; the stage appends the value the subquery has for that
row, so every later operator (filters, window, projection) reads it like a field. It
is a join of the level's rows with the subquery's contents, one value per row:

- uncorrelated (``c > (SELECT avg(c) FROM t1)``): one group, a one-row join; a change
  of the value re-evaluates every row (each one's answer changes);
- correlated by equalities (``WHERE t2.x = t1.x``): the subquery's rows are grouped by
  the inner side and a row reads the group its outer side names, so a change of the
  subquery touches only the rows of that group (a grouped join);
- correlated by inequalities (``WHERE x.b < t1.b``): the rows of a group are also kept
  in an ordered index by each outer bound, and a change of a subquery row with value
  ``v`` re-evaluates only the rows whose range holds ``v`` (``t1.b > v``), not the
  others, whose answer cannot change.

A row's value is the aggregate over the subquery rows that match it (NULL over none,
``COUNT`` 0), or the one matching row's value (NULL for none; more than one is an
error naming the view, as SPEC 2 says). ``evaluations`` counts the rows evaluated,
which the level reports as the stage's input rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sortedcontainers import SortedKeyList

from ..errors import ReplayError
from ..sql.plan import ScalarAtom, key_function
from ..sql.values import sort_key
from . import Delta, Row, RowKey
from .aggregate import AggregateCore
from .window import Visible


def _first(entry: tuple[Any, ...]) -> Any:
    return entry[0]


def _same(a: Any, b: Any) -> bool:
    return a == b and type(a) is type(b)


class ScalarStage:
    """One scalar subquery of a level (see the module docstring)."""

    def __init__(self, atom: ScalarAtom, view: str):
        self.atom = atom
        self.view = view
        self.keyed = bool(atom.outer_keys)
        self.outer_key = key_function(atom.outer_keys)
        self.width = atom.width
        # outer rows by group, their current values, the subquery's rows by group
        self.parents: dict[Any, dict[RowKey, Row]] = {}
        self.values: dict[RowKey, Any] = {}
        self.inner: dict[Any, dict[RowKey, Row]] = {}
        # inequality bounds: per group, the outer rows ordered by the bound's outer value
        self.bounds = atom.bounds[:1]
        self.ordered: dict[Any, SortedKeyList] = {}
        self.evaluations = 0
        # without a residual every row of a group has the group's value: an aggregate is
        # folded incrementally per group, and the value kept per group
        self.grouped = atom.residual is None
        self.cores: dict[Any, AggregateCore] = {}
        self.group_values: dict[Any, Any] = {}
        self.empty = self._fold(()) if atom.aggregate is not None else None

    def state_rows(self) -> int:
        return sum(len(b) for b in self.parents.values()) + sum(len(b) for b in self.inner.values())

    # values ---------------------------------------------------------------------------
    def _matching(self, ck: Any, row: Row) -> Iterable[Row]:
        if self.keyed and ck is None:
            return ()
        rows: Iterable[Row] = (self.inner.get(ck) or {}).values()
        residual = self.atom.residual
        if residual is not None:
            width = self.width
            rows = [r for r in rows if residual((*r[:width], *row))]
        return rows

    def _fold(self, rows: Iterable[Row]) -> Any:
        aggregate = self.atom.aggregate
        assert aggregate is not None
        core = AggregateCore(aggregate)
        return self._result(core.process([((), (), None, r) for r in rows])[0][2])

    def _result(self, raw: tuple[Any, ...] | None) -> Any:
        aggregate = self.atom.aggregate
        assert aggregate is not None
        if raw is None or (aggregate.having is not None and not aggregate.having(raw)):
            return None
        return aggregate.items[0][1](raw)

    def value(self, ck: Any, row: Row) -> Any:
        """The subquery's value for one outer row."""
        if self.grouped:
            if self.keyed and ck is None:
                return self.empty
            return self.group_values.get(ck, self.empty)
        self.evaluations += 1
        atom = self.atom
        rows = self._matching(ck, row)
        if atom.aggregate is not None:
            return self._fold(rows)
        return self._one(rows)

    def _one(self, rows: Iterable[Row]) -> Any:
        atom = self.atom
        found = list(rows)
        if not found:
            return None
        if len(found) > 1:
            raise ReplayError(
                f"view {self.view}: the scalar subquery {atom.sql} has more than one row"
            )
        assert atom.value_fn is not None
        return atom.value_fn(found[0])

    # ordered index of outer rows --------------------------------------------------------
    def _order_key(self, row: Row) -> Any:
        value = self.bounds[0][2](row)
        return (0,) if value is None else (1, sort_key(value))

    def _index(self, ck: Any, key: RowKey, row: Row, add: bool) -> None:
        bucket = self.parents.get(ck)
        if add:
            if bucket is None:
                bucket = self.parents[ck] = {}
            bucket[key] = row
        elif bucket is not None:
            del bucket[key]
            if not bucket:
                del self.parents[ck]
        if self.bounds:
            ordered = self.ordered.get(ck)
            entry = (self._order_key(row), key)
            if add:
                if ordered is None:
                    ordered = self.ordered[ck] = SortedKeyList(key=_first)
                ordered.add(entry)
            elif ordered is not None:
                ordered.remove(entry)
                if not ordered:
                    del self.ordered[ck]

    def _affected(self, ck: Any, changed: list[Row]) -> Iterable[RowKey]:
        """Outer rows of group ``ck`` whose answer a change of ``changed`` rows can move."""
        bucket = self.parents.get(ck)
        if not bucket:
            return ()
        if not self.bounds:
            return list(bucket)
        inner_fn, op, _ = self.bounds[0]
        ordered = self.ordered.get(ck)
        if ordered is None:
            return ()
        out: dict[RowKey, None] = {}
        for row in changed:
            value = inner_fn(row)
            if value is None:
                continue  # inner NULL: the bound is never true, no answer moves
            bound = (1, sort_key(value))
            # inner OP outer: '<' holds for outer > value, and so on (NULL outers never)
            if op == "<":
                part = ordered.irange_key(bound, None, inclusive=(False, True))
            elif op == "<=":
                part = ordered.irange_key(bound, None)
            elif op == ">":
                part = ordered.irange_key((1,), bound, inclusive=(True, False))
            else:
                part = ordered.irange_key((1,), bound)
            for _, key in part:
                out[key] = None
        return list(out)

    # the stage ----------------------------------------------------------------------------
    def _regroup(self, changed: dict[Any, list[Row]], visible: Visible) -> dict[Any, list[Row]]:
        """Fold the changes into each group's value; the groups whose value moved."""
        moved: dict[Any, list[Row]] = {}
        aggregate = self.atom.aggregate
        if aggregate is not None:
            by_group: dict[Any, Visible] = {}
            for change in visible:
                by_group.setdefault(change[0], []).append(change)
            for ck, changes in by_group.items():
                core = self.cores.get(ck)
                if core is None:
                    core = self.cores[ck] = AggregateCore(aggregate)
                    core.process([])
                self.evaluations += len(changes)
                raw = core.process([((), k, o, n) for _, k, o, n in changes])[0][2]
                if ck not in self.inner:
                    del self.cores[ck]
                self._set_group(ck, self._result(raw), moved)
        else:
            for ck in changed:
                self.evaluations += 1
                rows = (self.inner.get(ck) or {}).values()
                self._set_group(ck, self._one(rows) if rows else None, moved)
        return moved

    def _set_group(self, ck: Any, value: Any, moved: dict[Any, list[Row]]) -> None:
        before = self.group_values.get(ck, self.empty)
        if ck in self.inner:
            self.group_values[ck] = value
        else:
            self.group_values.pop(ck, None)
            value = self.empty
        if not _same(before, value):
            moved[ck] = []

    def process(self, delta: Delta, visible: Visible) -> Delta:
        """Apply the subquery's visible changes and the rows' delta; the rows' delta with
        values appended, including rows whose value changed."""
        changed: dict[Any, list[Row]] = {}
        inner = self.inner
        for ck, key, old, new in visible:
            group = inner.get(ck)
            if group is None:
                group = inner[ck] = {}
            if old is not None:
                group.pop(key, None)
                changed.setdefault(ck, []).append(old)
            if new is not None:
                group[key] = new
                changed.setdefault(ck, []).append(new)
            if not group:
                del inner[ck]
        if self.grouped:
            changed = self._regroup(changed, visible)
        out: Delta = {}
        values, outer_key = self.values, self.outer_key
        for key, (old, new) in delta.items():
            before = after = None
            if old is not None:
                self._index(outer_key(old), key, old, add=False)
                before = (*old, values.pop(key))
            if new is not None:
                ck = outer_key(new)
                self._index(ck, key, new, add=True)
                value = values[key] = self.value(ck, new)
                after = (*new, value)
            out[key] = (before, after)
        for ck, rows in changed.items():
            if self.keyed and ck is None:
                continue
            bucket = self.parents.get(ck)
            for key in self._affected(ck, rows):
                if key in delta:
                    continue
                row = bucket[key]  # type: ignore[index]
                value = self.value(ck, row)
                old_value = values[key]
                if _same(old_value, value):
                    continue
                values[key] = value
                out[key] = ((*row, old_value), (*row, value))
        return out
