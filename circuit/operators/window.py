"""Grouping by correlation key, ordering, and the LIMIT/OFFSET window (top-k).

Rows are grouped by their correlation key (``()`` at the top of a view). A
group without a window keeps a plain dict; a windowed group keeps a sorted
list of ``(order key, row key)`` so that when a row leaves the window the next
one from below the boundary enters, at a cost of O(log n + k) per changed
group. The output is the change of the *visible* rows per group.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from sortedcontainers import SortedList

from ..sql.keys import row_key_order
from ..sql.plan import LevelPlan, key_function
from ..sql.values import make_order_key
from . import Delta, Row, RowKey

Visible = list[tuple[Any, RowKey, Row | None, Row | None]]


def make_sort_key(plan: LevelPlan) -> Callable[[Row, RowKey], tuple[Any, ...]]:
    """ORDER BY key of a row, ties broken by the row key ascending.

    The terms are compiled once by :func:`~circuit.sql.values.make_order_key`
    (SQLite's ORDER BY, tested against sqlite3).
    """
    fns = [o.fn for o in plan.order]
    key_of = make_order_key([o.desc for o in plan.order], [o.nulls_first for o in plan.order])
    inner: Callable[[Row, RowKey], tuple[Any, ...]]
    if not fns:
        inner = lambda row, key: ((), key)  # noqa: E731
    elif len(fns) == 1:
        only = fns[0]
        inner = lambda row, key: (key_of((only(row),)), key)  # noqa: E731
    else:
        inner = lambda row, key: (key_of([fn(row) for fn in fns]), key)  # noqa: E731
    if plan.has_left_join:
        # keys may hold None for a missing side: tie-break on a comparable stand-in,
        # which is unique per key, so the raw key after it is never compared
        return lambda row, key: ((inner(row, row_key_order(key)),), key)
    return inner


class GroupWindow:
    """Visible rows per correlation group; see the module docstring."""

    def __init__(self, plan: LevelPlan):
        self.group_of = key_function(plan.inner_keys)
        self.windowed = plan.windowed
        self.start = plan.offset
        self.stop = None if plan.limit is None else plan.offset + plan.limit
        self.sort_key = make_sort_key(plan)
        self.groups: dict[Any, dict[RowKey, Row]] = {}
        self.ordered: dict[Any, SortedList] = {}
        self.sort_keys: dict[RowKey, Any] = {}
        # other windows over the same ordered rows (views differing only in LIMIT/OFFSET):
        # id -> (start, stop), and each one's visible changes of the last round
        self.extra: dict[int, tuple[int, int | None]] = {}
        self.extra_visible: dict[int, Visible] = {}
        self._next_extra = 0

    def add_window(self, limit: int | None, offset: int) -> int:
        """Keep one more window over these ordered rows; its id for :attr:`extra_visible`.

        Its rows enter and leave by the same rank arithmetic as this window's,
        so another view that differs only in LIMIT/OFFSET pays O(d log n) per
        round for its edges instead of a sorted copy of every row.
        """
        assert self.windowed
        self._next_extra += 1
        self.extra[self._next_extra] = (offset, None if limit is None else offset + limit)
        return self._next_extra

    def drop_window(self, window: int) -> None:
        self.extra.pop(window, None)
        self.extra_visible.pop(window, None)

    def bounds(self, window: int | None) -> tuple[int, int | None]:
        return (self.start, self.stop) if window is None else self.extra[window]

    def state_rows(self) -> int:
        return len(self.sort_keys) if self.windowed else sum(len(g) for g in self.groups.values())

    def visible_rows(self, ck: Any, window: int | None = None) -> list[tuple[RowKey, Row]]:
        """The visible rows of one group, in window order when windowed."""
        rows = self.groups.get(ck)
        if not rows:
            return []
        if not self.windowed:
            return list(rows.items())
        ordered = self.ordered[ck]
        start, stop = self.bounds(window)
        return [(key, rows[key]) for _, key in ordered.islice(start, stop)]

    def _positions(self, ck: Any, keys: set[RowKey]) -> dict[RowKey, int]:
        """Ranks of the group's changed keys that are present, in the current state."""
        sl = self.ordered.get(ck)
        rows = self.groups.get(ck)
        if not sl or not rows:
            return {}
        sort_keys = self.sort_keys
        return {key: sl.bisect_left(sort_keys[key]) for key in keys if key in rows}

    def _near_boundaries(
        self,
        ck: Any,
        positions: dict[RowKey, int],
        start: int,
        stop: int | None,
        reach: int,
    ) -> dict[RowKey, Row | None]:
        """Visibility of every row whose visibility a change of the group can flip.

        Each changed key (``reach`` of them) moves any other row's rank by at
        most one (its removal and its insertion cancel below both), so an
        unchanged row can only cross an edge from within ``reach`` of it, in
        the state before as in the state after: O(reach log n) instead of
        listing the whole window. Maps each such key, and each changed key
        (``positions``: their ranks, shared by every window), to its row when
        visible, else None.
        """
        sl = self.ordered.get(ck)
        rows = self.groups.get(ck)
        if not sl or not rows:
            return {}
        size = len(sl)
        if stop is None:
            stop = size
        out: dict[RowKey, Row | None] = {}
        for edge in (start, stop) if start else (stop,):
            low, high = max(0, edge - reach), min(size, edge + reach)
            for position, (_, key) in enumerate(sl.islice(low, high), low):
                out[key] = rows[key] if start <= position < stop else None
        for key, position in positions.items():
            if key not in out:
                out[key] = rows[key] if start <= position < stop else None
        return out

    def drop_group(self, ck: Any) -> None:
        """Forget one group's rows (its parents no longer show it)."""
        rows = self.groups.pop(ck, None)
        ordered = self.ordered.pop(ck, None)
        if rows and ordered is not None:
            for key in rows:
                self.sort_keys.pop(key, None)

    def process(self, delta: Delta) -> Visible:
        if not self.windowed:
            return self._plain(delta)
        return self._windowed(delta)

    def apply_records(
        self,
        changes: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]],
        predicate: Callable[[Row], bool] | None,
        active: set[Any] | None = None,
    ) -> Visible:
        """Scan, filter and group in one pass, for a single-table level without a window.

        With ``active``, only those groups are kept (a lazy nested level).
        """

        def rows() -> Iterator[tuple[RowKey, Row | None, Row | None]]:
            for rid, old_record, new_record in changes:
                old = None if old_record is None else (old_record,)
                if old is not None and predicate is not None and not predicate(old):
                    old = None
                new = None if new_record is None else (new_record,)
                if new is not None and predicate is not None and not predicate(new):
                    new = None
                if old is not None or new is not None:
                    yield (rid,), old, new

        return self._place(rows(), active)

    def _plain(self, delta: Delta) -> Visible:
        return self._place(((key, old, new) for key, (old, new) in delta.items()), None)

    def _place(
        self,
        changes: Iterable[tuple[RowKey, Row | None, Row | None]],
        active: set[Any] | None,
    ) -> Visible:
        """Move changed rows between their groups; every row of a group is visible."""
        group_of, groups = self.group_of, self.groups
        out: Visible = []
        for key, old, new in changes:
            old_ck = None if old is None else group_of(old)
            new_ck = None if new is None else group_of(new)
            if active is not None:
                if old_ck not in active:
                    old, old_ck = None, None
                if new_ck not in active:
                    new, new_ck = None, None
            if old_ck is not None and old_ck == new_ck:
                groups[old_ck][key] = new  # type: ignore[assignment]
                out.append((old_ck, key, old, new))
                continue
            if old_ck is not None:
                bucket = groups[old_ck]
                del bucket[key]
                if not bucket:
                    del groups[old_ck]
                out.append((old_ck, key, old, None))
            if new_ck is not None:
                groups.setdefault(new_ck, {})[key] = new  # type: ignore[assignment]
                out.append((new_ck, key, None, new))
        return out

    def _windowed(self, delta: Delta) -> Visible:
        group_of, groups, ordered, sort_keys = (
            self.group_of,
            self.groups,
            self.ordered,
            self.sort_keys,
        )
        by_group: dict[Any, list[tuple[RowKey, Row | None, Row | None]]] = {}
        for key, (old, new) in delta.items():
            old_ck = None if old is None else group_of(old)
            new_ck = None if new is None else group_of(new)
            if old_ck is not None:
                by_group.setdefault(old_ck, []).append((key, old, None))
            if new_ck is not None:
                by_group.setdefault(new_ck, []).append((key, None, new))
        windows: list[tuple[int, int, int | None]] = [(0, self.start, self.stop)]
        windows += [(window, start, stop) for window, (start, stop) in self.extra.items()]
        near = self._near_boundaries
        keys = {ck: {key for key, _, _ in changes} for ck, changes in by_group.items()}
        reach = {ck: len(group_keys) for ck, group_keys in keys.items()}
        positions = {ck: self._positions(ck, group_keys) for ck, group_keys in keys.items()}
        befores = [
            {ck: near(ck, positions[ck], start, stop, reach[ck]) for ck in by_group}
            for _, start, stop in windows
        ]
        for ck, changes in by_group.items():
            for key, old, _new in changes:
                if old is not None:
                    ordered[ck].remove(sort_keys.pop(key))
                    del groups[ck][key]
        for ck, changes in by_group.items():
            for key, _old, new in changes:
                if new is not None:
                    rows = groups.get(ck)
                    if rows is None:
                        rows = groups[ck] = {}
                        ordered[ck] = SortedList()
                    sk = self.sort_key(new, key)
                    sort_keys[key] = sk
                    ordered[ck].add(sk)
                    rows[key] = new
        positions = {ck: self._positions(ck, group_keys) for ck, group_keys in keys.items()}
        outs: list[Visible] = []
        for (_, start, stop), before in zip(windows, befores, strict=True):
            out: Visible = []
            for ck in by_group:
                old_visible = before[ck]
                new_visible = near(ck, positions[ck], start, stop, reach[ck])
                changed = keys[ck]
                for key in old_visible.keys() | new_visible.keys():
                    # a key seen on one side only did not cross an edge: same on both
                    # sides (unless it changed, and so was absent there)
                    if key in old_visible:
                        was = old_visible[key]
                        now = new_visible.get(key, None if key in changed else was)
                    else:
                        now = new_visible[key]
                        was = None if key in changed else now
                    if was is not now:
                        out.append((ck, key, was, now))
            outs.append(out)
        for ck in by_group:
            if ck in groups and not groups[ck]:
                del groups[ck]
                del ordered[ck]
        self.extra_visible = {
            window: out for (window, _, _), out in zip(windows[1:], outs[1:], strict=True)
        }
        return outs[0]
