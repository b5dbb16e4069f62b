"""A registered view at run time: its levels, members and rows, and what it shares.

Every query level of the plan is a :class:`~circuit.level.Level` that turns
table changes into changes of its *visible* rows. The view accounts members
top-down: a visible row of the top level contributes its record ids, and a
reference to each nested group it shows; a nested group's visible rows
contribute only while some shown row references the group. Reference counts
make a record shared by several rows one member, which leaves with its last
reference.

A view may share the state of one registered before it (see :class:`View`):
the same definition, the same aggregate core, or the same top-k rows under
another LIMIT/OFFSET.

Rows are not stored projected: the output of a view is derived from the
visible rows on demand (``rows()``), so maintaining a view costs only what
its members need.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sortedcontainers import SortedList

from .level import Clock, Level, count_op
from .metrics import OperatorMetrics, ViewMetrics
from .operators import Delta, Row, RowKey, TableChanges
from .operators.aggregate import AggregateOutput
from .operators.union import SetOpLevel
from .operators.window import GroupWindow, Visible
from .sql.plan import ViewPlan
from .tables import Tables
from .updates import FLAT, ViewUpdate, result_hash


class MemberList(SortedList):  # type: ignore[misc]
    """A flat view's member ids, kept sorted, counting the changes to its membership."""

    def __init__(self) -> None:
        super().__init__()
        self.changes = 0

    def add(self, value: str) -> None:
        self.changes += 1
        super().add(value)

    def remove(self, value: str) -> None:
        self.changes += 1
        super().remove(value)


def plan_limit(plan: ViewPlan) -> int | None:
    """The LIMIT of a view's top-k: its aggregate's, or its top level's."""
    aggregate = plan.top.aggregate
    return aggregate.limit if aggregate is not None else plan.top.limit


def plan_offset(plan: ViewPlan) -> int:
    aggregate = plan.top.aggregate
    return aggregate.offset if aggregate is not None else plan.top.offset


@dataclass(frozen=True)
class ViewLinks:
    """Where a registered view sits in the circuit's indexes, kept to leave them.

    ``offers``: the sharing keys later views may match (identity, top-k family,
    aggregate core); ``eager``: the tables whose changes reach it directly (or by
    its route); ``lazy``: the tables it reads only through lazy nested levels;
    ``through``: the table it reads through a routed join.
    """

    offers: tuple[tuple[Any, ...], ...]
    eager: tuple[str, ...]
    lazy: dict[str, list[Level]]
    through: tuple[str, tuple[str, str, str, str]] | None = None
    """A joined table whose changes reach the view through its first source (the
    plan's ``join_route``): the table, and (right field, first source, left field,
    route field)."""


class View:
    """A registered view: plan, levels, member reference counts, metrics."""

    def __init__(
        self,
        plan: ViewPlan,
        format: str,
        params: dict[str, Any] | None,
        store: Tables,
        *,
        primary: View | None = None,
        level_owner: View | None = None,
        window_owner: View | None = None,
    ):
        self.name = plan.name
        self.plan = plan
        self.format = format
        self.params = params
        self.operator_metrics: dict[str, OperatorMetrics] = {}
        # Sharing with views registered earlier (which therefore run first in a round):
        # - primary: the same query, parameters and format; only the primary runs, this
        #   view re-labels its update;
        # - level_owner: the levels (and an aggregate's groups) are that view's, and this
        #   view keeps its own members; an aggregate view with the same rows, groups and
        #   aggregates (HAVING, ORDER BY, LIMIT aside), or a top-k view differing only
        #   in LIMIT/OFFSET;
        # - window_owner: a top-k view differing only in LIMIT/OFFSET; this view reads
        #   its own window (``window``) of the owner's ordered rows.
        self.primary = primary
        self.level_owner = level_owner
        self.window_owner = window_owner
        # the live views sharing this one's state (unregistering rebuilds only them)
        self.sharers: dict[View, None] = {}
        for owner in (primary, level_owner, window_owner):
            if owner is not None:
                owner.sharers[self] = None
        self.window: int | None = None
        self.last_update: ViewUpdate | None = None
        self._flat_cache: tuple[int, list[str], str] | None = None
        self.last_events = (0, 0, 0)
        self.top: Level
        self.member_refs: dict[str, int]
        self.member_before: dict[str, int]
        self.ordered_members: SortedList | None
        if primary is not None:
            self.top = primary.top
            self.member_refs = primary.member_refs
            self.member_before = primary.member_before
            self.ordered_members = primary.ordered_members
        else:
            if level_owner is not None:
                self.top = level_owner.top
            else:
                top_class = Level if plan.top.setop is None else SetOpLevel
                self.top = top_class(  # type: ignore[assignment]
                    plan.top, plan.name, plan.name, self.operator_metrics, store
                )
            self.member_refs = {}
            self.member_before = {}
            # a flat update lists every member in order: keep them sorted as they change
            self.ordered_members = MemberList() if format == FLAT else None
        aggregate = plan.top.aggregate
        self.aggregate_output: AggregateOutput | None = None
        if primary is not None:
            self.aggregate_output = primary.aggregate_output
        elif window_owner is not None and aggregate is not None:
            self.aggregate_output = window_owner.aggregate_output
        elif aggregate is not None:
            self.aggregate_output = AggregateOutput(aggregate)
        if window_owner is not None:
            self.window = self.ordered_rows().add_window(plan_limit(plan), plan_offset(plan))
        self.member_prefix = f"{plan.name}:"
        self.output: Visible = []
        self.op_output = OperatorMetrics(plan.name, f"{plan.name};aggregate;output")
        if aggregate is not None and primary is None and window_owner is None:
            self.operator_metrics[self.op_output.path] = self.op_output
        self.tables = set(plan.tables)
        self.route = plan.route
        self.links: ViewLinks | None = None  # set by the circuit while registered
        self.metrics = ViewMetrics()
        self.row_count = 0
        self.order = 0  # registration number, for deterministic update order
        # aggregate and DISTINCT views: members are output rows with their own versions
        self.synthetic = self.aggregate_output is not None
        self.row_versions: dict[str, int] = {}
        self.rows_before: dict[str, tuple[Any, ...] | None] = {}
        self.rows_after: dict[str, tuple[Any, ...] | None] = {}
        # one table, no join, window, subquery or aggregate: members are the visible ids
        top = self.top
        self.fused = top.simple and top.aggregate is None and not top.lazy

    @property
    def source(self) -> View:
        """The view whose state this one reads: its primary, or itself."""
        return self.primary if self.primary is not None else self

    @property
    def owners(self) -> tuple[View | None, View | None, View | None]:
        return self.primary, self.level_owner, self.window_owner

    @property
    def shareable(self) -> bool:
        """Whether a later identical view may share this one's state: aggregate rows are
        named after their view, so only views whose members are records qualify."""
        return self.primary is None and not self.synthetic

    @property
    def core(self) -> str | None:
        """What a later aggregate view must compute alike to share this one's levels."""
        aggregate = self.plan.top.aggregate
        if aggregate is None or self.level_owner is not None or self.primary is not None:
            return None
        return aggregate.core

    @property
    def window_family(self) -> str | None:
        """What a later top-k view must compute alike to read a window of this one's rows."""
        if self.primary is not None or self.window_owner is not None:
            return None
        if not self.synthetic and self.level_owner is not None:
            return None
        return self.plan.window_family

    def lazy_tables(self) -> dict[str, list[Level]]:
        """Tables this view reads only through lazy nested levels, with those levels.

        A change of such a table can only matter if its record is (or was) in
        a group some shown row references, so the circuit routes it by the
        groups' values instead of sending every change of the table here.
        """
        if self.level_owner is not None or self.window_owner is not None:
            return {}
        lazy: dict[str, list[Level]] = {}
        eager: set[str] = set()
        for level in self.top.walk():
            for table, _ in level.plan.sources:
                if level.lazy:
                    lazy.setdefault(table, []).append(level)
                else:
                    eager.add(table)
        return {table: levels for table, levels in lazy.items() if table not in eager}

    def ordered_rows(self) -> GroupWindow:
        """The ordered rows a top-k view windows: its aggregate's, or its top level's."""
        if self.aggregate_output is not None:
            return self.aggregate_output.window
        return self.top.window

    def release(self) -> None:
        """Unregistering: stop the owner from keeping this view's window."""
        if self.window is not None:
            self.ordered_rows().drop_window(self.window)
        self.leave_owners()

    def leave_owners(self) -> None:
        """No longer counted among its owners' sharers (unregistered or rebuilt)."""
        for owner in self.owners:
            if owner is not None:
                owner.sharers.pop(self, None)

    def process(self, changes: TableChanges, clock: Clock) -> None:
        """Propagate a round through the levels (unless shared: their owner, registered
        earlier, ran them this round) and, for an aggregate view, its own output stage."""
        if self.level_owner is None:
            self.top.process(changes, clock)
        stage = self.aggregate_output
        if stage is None:
            return
        if self.window_owner is not None:
            shared = stage.window.extra_visible.get(self.window or 0, [])  # the owner ran
            self.output = self._named(shared) if shared else []
            return
        changes_of_groups = self.top.core_changes
        if changes_of_groups:
            t0 = clock()
            self.output = self._named(stage.process(changes_of_groups))
            count_op(self.op_output, clock() - t0, changes_of_groups, self.output)
        else:
            stage.window.extra_visible = {}
            self.output = []

    def _named(self, visible: Visible) -> Visible:
        """Output rows keyed by this view's member ids (``view:`` + the group values)."""
        prefix = self.member_prefix
        return [(ck, (prefix + key[0],), old, new) for ck, key, old, new in visible]

    def initial(self, clock: Clock) -> None:
        """Build the view's state from the tables (or from what it shares)."""
        stage = self.aggregate_output
        if self.window_owner is not None:
            rows: Visible = [
                ((), key, None, row)
                for key, row in self.ordered_rows().visible_rows((), self.window)
            ]
            if stage is not None:
                self.output = self._named(rows)
                self.account()
            else:
                self.account(rows)
        else:
            if self.level_owner is None:
                self.top.initial(clock)
                if stage is not None:
                    self.output = self._named(stage.process(self.top.core_changes))
            elif stage is not None:
                assert self.top.aggregate is not None
                self.output = self._named(stage.process(self.top.aggregate.current()))
            self.account()
        self.member_before.clear()
        if self.synthetic:
            self.synthetic_events()
        top = self.top
        if (
            self.owners == (None, None, None)
            and not (self.synthetic or top.simple or top.plan.windowed or top.children)
            and not top.lazy
        ):
            top.sink = self._place_members

    def _place_members(self, delta: Delta) -> None:
        """A top level's row changes straight into its rows and member counts.

        For a view whose visible rows are its level's rows (no window, no
        select-list subquery), this is what placing them in the window and
        accounting the visible changes would do, without building either.
        """
        groups = self.top.window.groups
        bucket = groups.get(())
        if bucket is None:
            bucket = groups[()] = {}
        refs, before, ordered = self.member_refs, self.member_before, self.ordered_members
        rows = 0
        for key, (old, new) in delta.items():
            if old is not None and new is not None:
                bucket[key] = new  # the same ids: members do not move
                continue
            if new is not None:
                bucket[key] = new
                rows += 1
                for rid in key:
                    if rid is None:
                        continue
                    count = refs.get(rid, 0)
                    if rid not in before:
                        before[rid] = count
                    refs[rid] = count + 1
                    if not count and ordered is not None:
                        ordered.add(rid)
            else:
                del bucket[key]
                rows -= 1
                for rid in key:
                    if rid is None:
                        continue
                    count = refs[rid]
                    if rid not in before:
                        before[rid] = count
                    if count > 1:
                        refs[rid] = count - 1
                    else:
                        del refs[rid]
                        if ordered is not None:
                            ordered.remove(rid)
        self.row_count += rows

    def run_fused(
        self, changes: TableChanges, clock: Clock
    ) -> tuple[list[str], list[str], list[str]] | None:
        """Filter, group, account and classify a fused view's changes in one pass.

        For a view that reads one table through a filter, a row is visible
        exactly when its record is a member, so the member set answers whether
        a changed record was visible before the call and the predicate answers
        whether it is now: no intermediate delta, visible list or reference
        count is built. Returns the ids that entered, stayed (candidates for
        ``updated``) and left, or None when no change reached the view. Only
        for a call with one round (each id at most once).
        """
        top = self.top
        rows = changes.get(top.first_table)
        if not rows:
            top.visible = []
            return None
        t0 = clock()
        predicate = top.plan.static_filter
        refs = self.member_refs
        groups = top.window.groups
        bucket = groups.get(())
        if bucket is None:
            bucket = groups[()] = {}
        ordered = self.ordered_members
        entered: list[str] = []
        stayed: list[str] = []
        left: list[str] = []
        for rid, _old, new in rows:
            now = new is not None and (predicate is None or predicate((new,)))
            if rid in refs:
                if now:
                    stayed.append(rid)
                    bucket[(rid,)] = (new,)
                else:
                    left.append(rid)
                    del refs[rid]
                    del bucket[(rid,)]
                    if ordered is not None:
                        ordered.remove(rid)
            elif now:
                entered.append(rid)
                refs[rid] = 1
                bucket[(rid,)] = (new,)
                if ordered is not None:
                    ordered.add(rid)
        changed = len(entered) + len(stayed) + len(left)
        self.row_count += len(entered) - len(left)
        op = top.op_filter
        op.self_ns += clock() - t0
        op.rows_in += len(rows)
        op.rows_out += changed
        top.visible = []
        return (entered, stayed, left) if changed else None

    # members ------------------------------------------------------------------
    def _member(self, rid: str, sign: int) -> None:
        refs = self.member_refs
        count = refs.get(rid, 0)
        if rid not in self.member_before:
            self.member_before[rid] = count
        count += sign
        if count:
            refs[rid] = count
            if count == 1 and sign > 0 and self.ordered_members is not None:
                self.ordered_members.add(rid)
        else:
            del refs[rid]
            if self.ordered_members is not None:
                self.ordered_members.remove(rid)

    def flat_members(self) -> tuple[list[str], str]:
        """A flat view's members in order and their ``result_hash``, recomputed only when
        membership changed since the last flat update (versions alone do not move them)."""
        ordered = self.ordered_members
        assert isinstance(ordered, MemberList)
        cached = self._flat_cache
        if cached is not None and cached[0] == ordered.changes:
            return cached[1], cached[2]
        members = list(ordered)
        digest = result_hash(members)
        self._flat_cache = (ordered.changes, members, digest)
        return members, digest

    def sorted_members(self) -> list[str]:
        """Member ids in order: kept sorted as they change for a flat view, else sorted now."""
        if self.ordered_members is not None:
            return list(self.ordered_members)
        return sorted(self.member_refs)

    def _row_contribution(self, level: Level, key: RowKey, row: Row, sign: int) -> None:
        member = self._member
        for rid in key:
            if rid is not None:
                member(rid, sign)
        for _, child, group_of in level.children:
            ck = group_of(row)
            if ck is not None:
                child_ref(child, ck, sign)

    def account(self, visible: Visible | None = None) -> None:
        """Turn this call's visible changes into member reference changes, top-down.

        ``visible`` overrides the top level's (a view reading another's window).
        """
        top = self.top
        if self.synthetic:
            refs, before, after = self.member_refs, self.rows_before, self.rows_after
            for _ck, key, old, new in self.output:
                member = key[0]
                if member not in before:
                    before[member] = None if old is None else old[0]
                after[member] = None if new is None else new[0]
                if old is None and new is not None:
                    refs[member] = 1
                    self.row_count += 1
                    if self.ordered_members is not None:
                        self.ordered_members.add(member)
                elif new is None and old is not None:
                    del refs[member]
                    self.row_count -= 1
                    if self.ordered_members is not None:
                        self.ordered_members.remove(member)
            return
        if visible is None:
            visible = top.visible
            if self.window is not None:
                visible = top.window.extra_visible.get(self.window, [])
        for _ck, key, old, new in visible:
            self._account_change(top, key, old, new)
            self.row_count += (new is not None) - (old is not None)
        for _, child, _ in top.children:
            self._account_level(child)

    def _account_change(self, level: Level, key: RowKey, old: Row | None, new: Row | None) -> None:
        if old is not None and new is not None:
            # same ids; only references to nested groups can move
            for _, child, group_of in level.children:
                old_ck, new_ck = group_of(old), group_of(new)
                if old_ck != new_ck:
                    if old_ck is not None:
                        child_ref(child, old_ck, -1)
                    if new_ck is not None:
                        child_ref(child, new_ck, 1)
            return
        if old is not None:
            self._row_contribution(level, key, old, -1)
        if new is not None:
            self._row_contribution(level, key, new, 1)

    def _account_level(self, level: Level) -> None:
        refs, before = level.refs, level.refs_before
        # (a) row changes inside groups that were referenced before this call
        for ck, key, old, new in level.visible:
            if before.get(ck, refs.get(ck, 0)) > 0:
                self._account_change(level, key, old, new)
        # (b) groups that became referenced or unreferenced: their current rows
        for ck, count_before in before.items():
            count_now = refs.get(ck, 0)
            if (count_before > 0) != (count_now > 0):
                sign = 1 if count_now > 0 else -1
                if sign > 0 and level.lazy:
                    level.activate(ck)
                for key, row in level.window.visible_rows(ck):
                    self._row_contribution(level, key, row, sign)
                if sign < 0 and level.lazy:
                    level.deactivate(ck)
        before.clear()
        for _, child, _ in level.children:
            self._account_level(child)

    # events ---------------------------------------------------------------------
    def member_version(self, rid: str, versions: dict[str, int]) -> int:
        """A member's version: its record's, or the aggregate row's own."""
        if self.synthetic:
            return self.row_versions.get(rid, 0)
        return versions.get(rid, 0)

    def synthetic_events(self) -> tuple[list[str], list[str], list[tuple[str, int]]]:
        """Created, updated and deleted output rows of this call, bumping row versions."""
        created: list[str] = []
        updated: list[str] = []
        deleted: list[tuple[str, int]] = []
        versions, after = self.row_versions, self.rows_after
        assert self.aggregate_output is not None
        project = self.aggregate_output.project
        for member, before in self.rows_before.items():
            now = after[member]
            if before is None and now is not None:
                versions[member] = 1
                created.append(member)
            elif before is not None and now is None:
                deleted.append((member, versions.pop(member)))
            elif (
                before is not None
                and now is not None
                and not _same_row(project(before), project(now))
            ):
                versions[member] += 1
                updated.append(member)
        self.rows_before.clear()
        after.clear()
        return created, updated, deleted

    # output ---------------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        if self.aggregate_output is not None:
            return self.aggregate_output.rows(self.window)
        return self.top.materialize((), top=True, window=self.window)

    def state_rows(self) -> int:
        """Rows of state this view keeps (shared state counted by its owner)."""
        total = 0 if self.level_owner is not None else self.top.state_rows()
        if self.aggregate_output is not None and self.window_owner is None:
            total += self.aggregate_output.state_rows()
        return total


def _same_row(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return a == b and all(type(x) is type(y) for x, y in zip(a, b, strict=True))


def child_ref(level: Level, ck: Any, sign: int) -> None:
    """Add or drop one reference from a shown parent row to a nested group."""
    refs = level.refs
    count = refs.get(ck, 0)
    if ck not in level.refs_before:
        level.refs_before[ck] = count
    if sign > 0:
        if count:
            level.cache_hits += 1
        else:
            level.cache_misses += 1
    count += sign
    if count:
        refs[ck] = count
    else:
        del refs[ck]
