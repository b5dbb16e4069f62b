"""GROUP BY aggregates and DISTINCT, maintained in place per group.

Each group keeps a running state per aggregate: counts; exact sums (integers
as Python ints, floats as a :class:`fractions.Fraction`, so that retracting a
value never leaves rounding drift and the result equals a fresh sum);
value counters for ``COUNT(DISTINCT x)``; and a sorted multiset for
``MIN``/``MAX``, so that deleting the current extreme finds the next one in
O(log n) without rescanning the group. A group's output is the tuple
``(group values..., aggregate values...)``; the stage emits the change of
output rows (after HAVING) keyed by the row's member id, then orders and
windows them like any level.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from sortedcontainers import SortedDict

from ..errors import ReplayError
from ..sql.keys import hash_key
from ..sql.plan import AggregatePlan, AggregateSpec, LevelPlan, OrderItem
from ..sql.values import add, canonical_json, sort_key
from . import Delta, Row
from .window import GroupWindow, Visible


class _Sum:
    """SUM/AVG state: SQLite's rules (integer sum of integers, else real)."""

    __slots__ = ("count", "exact", "int_sum", "reals")

    def __init__(self) -> None:
        self.count = 0
        self.int_sum = 0
        self.exact = Fraction(0)
        self.reals = 0

    def add(self, value: Any, sign: int) -> None:
        if value is None:
            return
        self.count += sign
        if not isinstance(value, (int, float)):
            value = _numeric(value)
        if isinstance(value, int):  # bool included: 1/0
            self.int_sum += sign * int(value)
            return
        self.reals += sign
        self.exact += sign * Fraction(value)

    def total(self, sql: str = "SUM") -> Any:
        """The sum: an integer when every input is one, else the exact sum as a real.

        An integer sum beyond 64 bits is SQLite's "integer overflow" error. SQLite also
        raises when a partial sum overflows in its scan order; the engine has no scan
        order and judges the exact total, the same whatever the order of the rows. A
        real sum beyond the range of a double is an infinity, as SQLite's.
        """
        if self.count == 0:
            return None
        if self.reals == 0:
            if not _MIN_INT <= self.int_sum <= _MAX_INT:
                raise ReplayError(f"integer overflow in {sql}")
            return self.int_sum
        return _real(self.exact + self.int_sum)

    def average(self) -> Any:
        if self.count == 0:
            return None
        return _real((self.exact + self.int_sum) / self.count)


_MAX_INT = 2**63 - 1
_MIN_INT = -(2**63)


def _real(exact: Fraction) -> float:
    """``exact`` rounded to the nearest double; beyond the largest, an infinity."""
    try:
        return float(exact)
    except OverflowError:
        return math.inf if exact > 0 else -math.inf


_INTEGER_TEXT = re.compile(r"[ \t\n\f\r]*[+-]?[0-9]+[ \t\n\f\r]*")
_REAL_TEXT = re.compile(
    r"[ \t\n\f\r]*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?[ \t\n\f\r]*"
)


def _numeric(value: Any) -> int | float:
    """A non-number SUM input as SQLite sees it: text that is wholly an integer counts
    as one (``'10'``), wholly a real as a real, anything else by its numeric prefix,
    as a real (``'10x'`` is 10.0); arrays and objects are their JSON text."""
    text = value if isinstance(value, str) else canonical_json(value)
    if _INTEGER_TEXT.fullmatch(text):
        number = int(text)
        if -(2**63) <= number < 2**63:
            return number
        return float(number)
    if _REAL_TEXT.fullmatch(text):
        return float(text)
    converted = add(0.0, text)
    return float(converted) if converted is not None else 0.0


class _Extremes:
    """MIN/MAX state: a sorted multiset of non-NULL values."""

    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values: SortedDict = SortedDict()

    def add(self, value: Any, sign: int) -> None:
        if value is None:
            return
        key = sort_key(value)
        slot = self.values.get(key)
        if sign > 0:
            if slot is None:
                self.values[key] = [1, value]
            else:
                slot[0] += 1
        elif slot is not None:
            slot[0] -= 1
            if not slot[0]:
                del self.values[key]

    def least(self) -> Any:
        return self.values.peekitem(0)[1][1] if self.values else None

    def greatest(self) -> Any:
        return self.values.peekitem(-1)[1][1] if self.values else None


class _Distinct:
    """COUNT(DISTINCT x) state: how often each non-NULL value occurs."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[Any, int] = {}

    def add(self, value: Any, sign: int) -> None:
        if value is None:
            return
        key = hash_key(value)
        count = self.counts.get(key, 0) + sign
        if count:
            self.counts[key] = count
        else:
            del self.counts[key]


class _Count:
    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def add(self, value: Any, sign: int) -> None:
        if value is not None:
            self.count += sign


class _DistinctSum(_Sum):
    """SUM/AVG(DISTINCT x): a value counts once while any row carries it."""

    __slots__ = ("seen",)

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[Any, int] = {}

    def add(self, value: Any, sign: int) -> None:
        if value is None:
            return
        key = hash_key(value)
        count = self.seen.get(key, 0) + sign
        if count:
            self.seen[key] = count
        else:
            del self.seen[key]
        if (count == 1 and sign > 0) or count == 0:
            super().add(value, sign)


def _new_state(spec: AggregateSpec) -> Any:
    if spec.kind == "count":
        return _Distinct() if spec.distinct else _Count()
    if spec.kind in ("sum", "avg") and spec.distinct:
        return _DistinctSum()
    if spec.kind in ("sum", "avg"):
        return _Sum()
    return _Extremes()


def _result(spec: AggregateSpec, state: Any, rows: int) -> Any:
    kind = spec.kind
    if kind == "count":
        if spec.arg is None:
            return rows
        return len(state.counts) if spec.distinct else state.count
    if kind == "sum":
        return state.total(spec.sql)
    if kind == "avg":
        return state.average()
    if kind == "min":
        return state.least()
    return state.greatest()


class _Group:
    __slots__ = ("key", "raw", "rows", "states", "suffix", "values")

    def __init__(self, key: Any, values: list[Any], specs: list[AggregateSpec]):
        self.key = key
        self.values = values
        self.suffix = canonical_json(values)
        self.rows = 0
        self.states = [_new_state(spec) for spec in specs]
        self.raw: tuple[Any, ...] | None = None


GroupChange = tuple[_Group, tuple[Any, ...] | None, tuple[Any, ...] | None]
"""A touched group with its output tuple before and after the round (None: no row)."""


class AggregateCore:
    """Groups a level's visible rows and keeps each group's aggregate state.

    The core is what views computing the same aggregates over the same rows
    have in common (their HAVING, ORDER BY, LIMIT and select list aside), so
    such views share one core: each round folds the changes once, and every
    view's :class:`AggregateOutput` reads the touched groups' output tuples.
    """

    def __init__(self, plan: AggregatePlan):
        self.plan = plan
        self.specs = plan.aggregates
        self.groups: dict[Any, _Group] = {}
        self.started = False

    def state_rows(self) -> int:
        return len(self.groups)

    def _group(self, row: Row) -> _Group:
        values = [fn(row) for fn in self.plan.group_fns]
        key = tuple(None if v is None else hash_key(v) for v in values)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = _Group(key, values, self.specs)
        return group

    def process(self, visible: Visible) -> list[GroupChange]:
        """Fold the level's visible changes into the groups; the touched groups' outputs."""
        touched: dict[Any, _Group] = {}
        specs = self.specs
        for _ck, _key, old, new in visible:
            for row, sign in ((old, -1), (new, 1)):
                if row is None:
                    continue
                group = self._group(row)
                touched[group.key] = group
                group.rows += sign
                for spec, state in zip(specs, group.states, strict=True):
                    if spec.arg is not None:
                        state.add(spec.arg(row), sign)
        plan = self.plan
        if not self.started:
            self.started = True
            if not plan.grouped:
                group = self._group(())
                touched[group.key] = group
        out: list[GroupChange] = []
        for gkey, group in touched.items():
            raw: tuple[Any, ...] | None = None
            if group.rows > 0 or not plan.grouped:
                raw = tuple(group.values) + tuple(
                    _result(spec, state, group.rows)
                    for spec, state in zip(specs, group.states, strict=True)
                )
            else:
                del self.groups[gkey]
            out.append((group, group.raw, raw))
            group.raw = raw
        return out

    def current(self) -> list[GroupChange]:
        """Every group with a row, as changes from nothing (a new output's initial build)."""
        return [(g, None, g.raw) for g in self.groups.values() if g.raw is not None]


class AggregateOutput:
    """An aggregate view's output stage: HAVING, then ORDER BY and the window.

    Rows are keyed by the group's values as canonical JSON; the view names its
    members ``view:[group values]``. Views that differ only in LIMIT/OFFSET
    share one stage, each reading its own window of it
    (:meth:`~circuit.operators.window.GroupWindow.add_window`).
    """

    def __init__(self, plan: AggregatePlan):
        self.plan = plan
        self.having = plan.having
        # group key -> its current output tuple (after HAVING)
        self.rows_by_group: dict[Any, tuple[Any, ...]] = {}
        # ties (and LIMIT without ORDER BY) go by the row key: the group values, compared
        # with SQL's ordering (numbers before text), not as the member id's JSON text
        by_key = [
            OrderItem(_value_at(i), False, True, f"group value {i}")
            for i in range(len(plan.group_fns))
        ]
        self.window = GroupWindow(_output_level(plan.order + by_key, plan.limit, plan.offset))

    def state_rows(self) -> int:
        return len(self.rows_by_group) + self.window.state_rows()

    def process(self, changes: list[GroupChange]) -> Visible:
        """The change of the output rows for the core's touched groups."""
        having, rows_by_group = self.having, self.rows_by_group
        delta: Delta = {}
        for group, _raw_before, raw in changes:
            output = raw if raw is None or having is None or having(raw) else None
            before = rows_by_group.get(group.key)
            if before == output and (before is None or _same_types(before, output)):
                continue
            if output is None:
                del rows_by_group[group.key]
            else:
                rows_by_group[group.key] = output
            delta[(group.suffix,)] = (
                None if before is None else (before,),
                None if output is None else (output,),
            )
        if delta:
            return self.window.process(delta)
        self.window.extra_visible = {}
        return []

    def project(self, output: tuple[Any, ...]) -> tuple[Any, ...]:
        """The values a client sees of an output tuple (its select items), in order."""
        return tuple(fn(output) for _, fn in self.plan.items)

    def rows(self, window: int | None = None) -> list[dict[str, Any]]:
        """Output rows: ORDER BY order (window), else sorted by canonical JSON."""
        visible = self.window.visible_rows((), window)
        items = self.plan.items
        if self.plan.order and not self.plan.windowed:
            sort = self.window.sort_key
            visible.sort(key=lambda kr: sort(kr[1], kr[0]))
        rows = [{name: fn(row[0]) for name, fn in items} for _, row in visible]
        if not self.plan.order:
            rows.sort(key=canonical_json)
        return rows


def _same_types(a: tuple[Any, ...] | None, b: tuple[Any, ...] | None) -> bool:
    assert a is not None and b is not None
    return all(type(x) is type(y) for x, y in zip(a, b, strict=True))


def _value_at(index: int) -> Callable[[Any], Any]:
    return lambda output: output[index]


def _on_output(fn: Callable[[Any], Any]) -> Callable[[Row], Any]:
    return lambda row: fn(row[0])


def _output_level(order: list[OrderItem], limit: int | None, offset: int) -> LevelPlan:
    """A level plan whose window orders aggregate output tuples (rows are ``(tuple,)``)."""
    wrapped = [
        OrderItem(_on_output(item.fn), item.desc, item.nulls_first, item.sql) for item in order
    ]
    return LevelPlan(sources=[("", "")], order=wrapped, limit=limit, offset=offset)
