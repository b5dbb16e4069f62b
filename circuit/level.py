"""One query level at run time: table changes in, changes of its visible rows out.

Every level of a view's plan becomes a :class:`Level`: its sources joined
with hash indexes on both sides, its static and semi-join filters, and its
grouping by correlation key with an optional window (top-k). A level reports
the change of its *visible* rows per call; the view (:mod:`circuit.view`)
turns those into members.

A nested level grouped by one plain field is *lazy*: it keeps only the groups
some shown parent references, building one from the tables' shared field index
when it becomes referenced (a subquery cache miss) and dropping it when the
last reference goes, so a page view costs what its page holds. The circuit
routes a table's changes to a view by those groups when the view reads the
table only through lazy levels (``routed_views``, ``router``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .metrics import OperatorMetrics
from .operators import Delta, Row, RowKey, TableChanges
from .operators.aggregate import AggregateCore, GroupChange
from .operators.filter import SemiJoinFilter, static_filter
from .operators.join import JoinChain
from .operators.scalar import ScalarStage
from .operators.semijoin import update_atom
from .operators.window import GroupWindow, Visible, make_sort_key
from .sql.keys import canonical_json, row_key_order
from .sql.plan import (
    CONSTANT_TABLE,
    EXPR,
    NESTED,
    STAR,
    STAR_OF,
    LevelPlan,
    SelectItem,
    key_function,
)
from .tables import Tables

if TYPE_CHECKING:
    from .view import View

Clock = Callable[[], int]


class Level:
    """One query level at run time (see module docstring)."""

    def __init__(
        self,
        plan: LevelPlan,
        view: str,
        path: str,
        metrics: dict[str, OperatorMetrics],
        store: Tables,
    ):
        self.plan = plan
        self.store = store
        # a lazy nested level keeps only the groups some shown parent references
        self.lazy = plan.lazy_field is not None
        self.active: set[Any] = set()
        self.cache_hits = 0
        self.cache_misses = 0
        self.path = path
        self.tables = plan.tables
        self.own_tables = {table for table, _ in plan.sources}
        self.join = JoinChain(plan, store)
        self.semijoin = SemiJoinFilter(plan) if plan.dynamic_filter is not None else None
        self.window = GroupWindow(plan)
        self.atoms = [
            (atom, Level(atom.level, view, f"{path};{atom.kind}#{i}", metrics, store))
            for i, atom in enumerate(plan.atoms)
        ]
        # scalar subqueries: each a level of its own and the stage appending its value
        self.scalars = [
            (
                Level(scalar.level, view, f"{path};scalar#{i}", metrics, store),
                ScalarStage(scalar, view),
                metrics.setdefault(
                    f"{path};scalar#{i}", OperatorMetrics(view, f"{path};scalar#{i}")
                ),
            )
            for i, scalar in enumerate(plan.scalars)
        ]
        self.children: list[tuple[SelectItem, Level, Callable[[Row], Any]]] = []
        for item in plan.nested():
            assert item.child is not None and item.name is not None
            child = Level(item.child, view, f"{path};nested:{item.name}", metrics, store)
            self.children.append((item, child, key_function(item.child.outer_keys)))
        # a lazy level's groups route changes of its table to these views (the circuit's
        # index of active groups, told of every group built or dropped through ``router``)
        self.routed_views: list[View] = []
        self.router: Callable[[Level, Any, int], None] | None = None
        # nested-group references (only meaningful for nested levels)
        self.refs: dict[Any, int] = {}
        self.refs_before: dict[Any, int] = {}
        self.visible: Visible = []
        self.aggregate = AggregateCore(plan.aggregate) if plan.aggregate is not None else None
        # this round's touched groups (an aggregate level): what every sharing view reads
        self.core_changes: list[GroupChange] = []
        # a single-table level without a window or subqueries runs one fused loop
        self.simple = not (
            plan.joins or plan.atoms or plan.windowed or self.children or plan.scalars
        )
        # where a top level without window or subqueries hands its row changes, if not
        # to its window (the view places them and counts their members in one pass)
        self.sink: Callable[[Delta], None] | None = None
        self.first_table = plan.sources[0][0]

        def operator(name: str) -> OperatorMetrics:
            return metrics.setdefault(f"{path};{name}", OperatorMetrics(view, f"{path};{name}"))

        self.op_join = operator("join" if plan.joins else "scan")
        self.op_filter = operator("filter")
        self.op_semijoin = operator("semijoin")
        self.op_window = operator("top-k" if plan.windowed else "group")
        self.op_aggregate = operator(
            "distinct" if plan.aggregate and plan.aggregate.distinct else "aggregate"
        )

    def state_rows(self) -> int:
        total = self.join.state_rows() + self.window.state_rows()
        if self.semijoin is not None:
            total += self.semijoin.state_rows()
        total += sum(level.state_rows() for _, level in self.atoms)
        total += sum(level.state_rows() + stage.state_rows() for level, stage, _ in self.scalars)
        total += sum(level.state_rows() for _, level, _ in self.children)
        if self.aggregate is not None:
            total += self.aggregate.state_rows()
        return total

    def process(self, changes: TableChanges, clock: Clock) -> None:
        """Propagate table changes; leaves this call's visible changes in ``visible``
        (and, for an aggregate level, the changes of its output rows in ``output``)."""
        if self.tables.isdisjoint(changes):
            self.clear()
            return
        if self.window.extra:
            self.window.extra_visible = {}
        self._propagate(changes, clock)
        for _, child, _ in self.children:
            child.process(changes, clock)
        if self.aggregate is not None:
            t0 = clock()
            self.core_changes = (
                self.aggregate.process(self.visible)
                if self.visible or not self.aggregate.started
                else []
            )
            count_op(self.op_aggregate, clock() - t0, self.visible, self.core_changes)

    def _propagate(self, changes: TableChanges, clock: Clock) -> None:
        """This level's own pipeline (its WHERE subqueries included, children not)."""
        if self.simple:
            rows = changes.get(self.first_table)
            if not rows:
                self.visible = []
                return
            t0 = clock()
            self.visible = self.window.apply_records(
                rows, self.plan.static_filter, self.active if self.lazy else None
            )
            op = self.op_filter
            op.self_ns += clock() - t0
            op.rows_in += len(rows)
            op.rows_out += len(self.visible)
            return
        self.visible = []
        affected: set[RowKey] = set()
        semijoin = self.semijoin
        for index, (atom, level) in enumerate(self.atoms):
            level.process(changes, clock)
            if level.visible and semijoin is not None:
                values, groups = update_atom(atom, level.visible)
                if values or groups:
                    affected |= semijoin.affected(index, values, groups)
        scalar_changed = False
        for level, _, _ in self.scalars:
            level.process(changes, clock)
            scalar_changed = scalar_changed or bool(level.visible)
        if affected or scalar_changed or not self.own_tables.isdisjoint(changes):
            t0 = clock()
            delta: Delta = self.join.process(changes)
            if self.lazy:
                delta = self._only_active(delta)
            t1 = clock()
            count_op(self.op_join, t1 - t0, delta, delta)
            for level, stage, op in self.scalars:
                evaluations = stage.evaluations
                staged = stage.process(delta, level.visible)
                t2 = clock()
                op.self_ns += t2 - t1
                op.rows_in += len(level.visible) + stage.evaluations - evaluations
                op.rows_out += len(staged)
                delta, t1 = staged, t2
            predicate = self.plan.static_filter
            if predicate is not None and delta:
                filtered = static_filter(predicate, delta)
                t2 = clock()
                count_op(self.op_filter, t2 - t1, delta, filtered)
                delta, t1 = filtered, t2
            if semijoin is not None:
                filtered = semijoin.process(delta, affected)
                t2 = clock()
                count_op(self.op_semijoin, t2 - t1, delta, filtered)
                delta, t1 = filtered, t2
            if delta:
                if self.sink is not None:
                    self.sink(delta)
                    count_op(self.op_window, clock() - t1, delta, delta)
                else:
                    self.visible = self.window.process(delta)
                    count_op(self.op_window, clock() - t1, delta, self.visible)

    def clear(self) -> None:
        """No change reached this level or any below it in this call."""
        self.visible = []
        self.core_changes = []
        self.window.extra_visible = {}
        for _, level in self.atoms:
            level.clear()
        for level, _, _ in self.scalars:
            level.clear()
        for _, child, _ in self.children:
            child.clear()

    def initial(self, clock: Clock) -> None:
        """Build the level's state from the current tables (registration).

        A lazy level starts with no group; a level whose WHERE pins a column
        to a constant reads only the matching records through the field index;
        join steps that read a shared index need no rows of their table fed in.
        """
        records = self.store.records
        if not self.lazy:
            own: TableChanges = {}
            seed = self.plan.seed
            atom_tables = {t for _, level in self.atoms for t in level.tables}
            atom_tables |= {t for level, _, _ in self.scalars for t in level.tables}
            if self.first_table in atom_tables | self.join.private_right_tables():
                seed = None  # the first table feeds another side too: every row is needed
            tables = self.join.tables_to_load() | atom_tables
            for table in tables:
                rows = records.get(table, {})
                if seed is not None and table == self.first_table:
                    rows = self.store.field_index(table, seed[0]).get(seed[1], {})
                own[table] = [(rid, None, rec) for rid, rec in rows.items()]
            if CONSTANT_TABLE in own:
                # a SELECT without FROM (here or in a WHERE subquery): its one row
                own[CONSTANT_TABLE] = [(None, None, {})]  # type: ignore[list-item]
            self._propagate(own, clock)
        for _, child, _ in self.children:
            child.initial(clock)
        if self.aggregate is not None:
            self.core_changes = self.aggregate.process(self.visible)

    # lazy groups ------------------------------------------------------------------
    def _only_active(self, delta: Delta) -> Delta:
        """The parts of a delta that fall in groups some shown parent references."""
        group_of, active = self.window.group_of, self.active
        out: Delta = {}
        for key, (old, new) in delta.items():
            if old is not None and group_of(old) not in active:
                old = None
            if new is not None and group_of(new) not in active:
                new = None
            if old is not None or new is not None:
                out[key] = (old, new)
        return out

    def activate(self, ck: Any) -> None:
        """Materialise a group from the shared field index (a subquery cache miss)."""
        assert self.plan.lazy_field is not None
        self.active.add(ck)
        if self.router is not None:
            self.router(self, ck[0], 1)
        rows = self.store.field_index(self.first_table, self.plan.lazy_field).get(ck[0])
        if rows:
            self.window.process(
                {(rid,): (None, (rec,)) for rid, rec in rows.items()}
                if self.plan.static_filter is None
                else static_filter(
                    self.plan.static_filter,
                    {(rid,): (None, (rec,)) for rid, rec in rows.items()},
                )
            )

    def deactivate(self, ck: Any) -> None:
        """Forget a group no shown parent references any more."""
        self.active.discard(ck)
        self.window.drop_group(ck)
        if self.router is not None:
            self.router(self, ck[0], -1)

    def walk(self) -> Iterator[Level]:
        """This level and every level below it."""
        yield self
        for _, level in self.atoms:
            yield from level.walk()
        for level, _, _ in self.scalars:
            yield from level.walk()
        for _, child, _ in self.children:
            yield from child.walk()

    # output -------------------------------------------------------------------
    def materialize(self, ck: Any, top: bool, window: int | None = None) -> list[dict[str, Any]]:
        """The projected rows of one group (through one of its windows), in output order."""
        plan = self.plan
        visible = self.window.visible_rows(ck, window)
        if not plan.windowed:
            if plan.order:
                sort_key = make_sort_key(plan)
                visible.sort(key=lambda kr: sort_key(kr[1], kr[0]))
            elif not top:
                visible.sort(key=lambda kr: row_key_order(kr[0]))
        rows = [self.project(row) for _, row in visible]
        if top and not plan.order and not plan.windowed:
            rows.sort(key=canonical_json)
        return rows

    def project(self, row: Row) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for item in self.plan.items:
            kind = item.kind
            if kind == STAR:
                out.update(row[0])
            elif kind == STAR_OF:
                record = row[item.position or 0]
                if record is not None:
                    out.update(record)
        for item in self.plan.items:
            kind = item.kind
            if kind == EXPR:
                assert item.fn is not None and item.name is not None
                out[item.name] = item.fn(row)
            elif kind == NESTED:
                assert item.name is not None
                out[item.name] = self._nested_value(item, row)
        return out

    def _nested_value(self, item: SelectItem, row: Row) -> Any:
        for candidate, child, group_of in self.children:
            if candidate is item:
                ck = group_of(row)
                rows = [] if ck is None else child.materialize(ck, top=False)
                if item.single:
                    return rows[0] if rows else None
                return rows
        raise AssertionError("nested item without a level")


def count_op(op: OperatorMetrics, ns: int, rows_in: Any, rows_out: Any) -> None:
    op.self_ns += ns
    op.rows_in += len(rows_in)
    op.rows_out += len(rows_out)
