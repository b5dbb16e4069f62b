"""The run-time top of a set-operation view (``UNION [ALL]``, ``INTERSECT``, ``EXCEPT``).

Each member SELECT is a :class:`~circuit.level.Level`; its visible row changes become
changes of the multiplicity of output tuples in that member. For every tuple whose
multiplicity changed, the set operation's tree gives the result's multiplicity
(:meth:`~circuit.sql.setops.SetNode.count`, pointwise: only touched tuples are
evaluated), and the change of the result is handed to the view as the change of
aggregate groups (one group per copy of a tuple), so the view's aggregate output stage
orders, windows and names the rows as for any aggregate view. Work per change is the
member's own work plus the touched tuples.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..metrics import OperatorMetrics
from ..sql.keys import hash_key
from ..sql.plan import LevelPlan
from ..sql.setops import SetOpPlan
from ..tables import Tables
from . import TableChanges
from .aggregate import GroupChange, _Group

if TYPE_CHECKING:
    from ..level import Level

Clock = Callable[[], int]


class _Current:
    """What a view sharing this one's result reads (``aggregate.current()``)."""

    def __init__(self, owner: SetOpLevel):
        self.owner = owner
        self.started = True

    def current(self) -> list[GroupChange]:
        return [(g, None, g.raw) for g in self.owner.groups.values()]

    def state_rows(self) -> int:
        return len(self.owner.groups)


class SetOpLevel:
    """Duck-typed like a :class:`~circuit.level.Level` for the view (see module docstring)."""

    def __init__(
        self,
        plan: LevelPlan,
        view: str,
        path: str,
        metrics: dict[str, OperatorMetrics],
        store: Tables,
    ):
        from ..level import Level

        self.plan = plan
        setop: SetOpPlan = plan.setop
        self.setop = setop
        self.members: list[Level] = [
            Level(member, view, f"{path};member#{i}", metrics, store)
            for i, member in enumerate(setop.members)
        ]
        self.tables = plan.tables
        self.counts: dict[Any, list[int]] = {}  # tuple key -> multiplicity per member
        self.values: dict[Any, tuple[Any, ...]] = {}
        self.result: dict[Any, int] = {}  # tuple key -> multiplicity in the result
        self.groups: dict[Any, _Group] = {}
        self.core_changes: list[GroupChange] = []
        self.aggregate = _Current(self)
        self.visible: list[Any] = []
        self.children: list[Any] = []
        self.atoms: list[Any] = []
        self.scalars: list[Any] = []
        self.simple = False
        self.lazy = False
        self.sink: Any = None
        self.window: Any = None
        self.first_table = ""
        self.op = metrics.setdefault(f"{path};setop", OperatorMetrics(view, f"{path};setop"))

    def state_rows(self) -> int:
        return len(self.counts) + sum(level.state_rows() for level in self.members)

    def walk(self) -> Iterator[Level]:
        for level in self.members:
            yield from level.walk()

    def clear(self) -> None:
        self.core_changes = []
        for level in self.members:
            level.clear()

    def process(self, changes: TableChanges, clock: Clock) -> None:
        for level in self.members:
            level.process(changes, clock)
        self._combine(clock)

    def initial(self, clock: Clock) -> None:
        for level in self.members:
            level.initial(clock)
        self._combine(clock)

    def _combine(self, clock: Clock) -> None:
        t0 = clock()
        width = len(self.members)
        touched: set[Any] = set()
        rows_in = 0
        for index, (level, fns) in enumerate(zip(self.members, self.setop.member_fns, strict=True)):
            for _ck, _key, old, new in level.visible:
                rows_in += 1
                for row, sign in ((old, -1), (new, 1)):
                    if row is None:
                        continue
                    values = tuple(fn(row) for fn in fns)
                    tkey = tuple(None if v is None else hash_key(v) for v in values)
                    counts = self.counts.get(tkey)
                    if counts is None:
                        counts = self.counts[tkey] = [0] * width
                        self.values[tkey] = values
                    counts[index] += sign
                    touched.add(tkey)
        out: list[GroupChange] = []
        tree = self.setop.tree
        for tkey in touched:
            counts = self.counts[tkey]
            values = self.values[tkey]
            before = self.result.get(tkey, 0)
            after = tree.count(counts)
            if not any(counts):
                del self.counts[tkey]
                del self.values[tkey]
            if after:
                self.result[tkey] = after
            else:
                self.result.pop(tkey, None)
            for copy in range(min(before, after), max(before, after)):
                gkey = (tkey, copy)
                if copy < after:  # a new copy
                    group = self.groups[gkey] = _Group(
                        gkey, [*values, copy] if copy else list(values), []
                    )
                    group.raw = values
                    out.append((group, None, values))
                else:
                    group = self.groups.pop(gkey)
                    out.append((group, group.raw, None))
        self.core_changes = out
        op = self.op
        op.self_ns += clock() - t0
        op.rows_in += rows_in
        op.rows_out += len(out)
