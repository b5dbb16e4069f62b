"""The circuit: tables, registered views, the dependency index, ingest calls.

An *ingest call* applies mutations to the tables, propagates the net changes
through the views that read a changed table (and only those), and turns each
view's member changes into one view update. ``ingest_single`` is a call per
mutation, ``ingest_batch`` a call per batch (coalesced per record unless
``coalesce=False``), and ``ingest_deferred`` queues mutations until
``flush()`` (or the pending limit) makes one call of them.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .errors import CircuitError, SqlError
from .level import Level
from .metrics import EVENT_KINDS, BatchStats, CircuitMetrics, Clock, ViewMetrics
from .mutations import DATA_OPS, FLUSH, REGISTER, UNREGISTER, Mutation
from .operators import TableChanges
from .sql.keys import hash_key
from .sql.plan import ViewPlan, plan_view
from .sql.values import json_equal
from .tables import Applied, Tables, field_key
from .updates import (
    FLAT,
    FORMATS,
    STREAMING,
    BatchResult,
    MemberVersions,
    ViewUpdate,
)
from .view import View, ViewLinks

if TYPE_CHECKING:
    from .executors import Executor


class Circuit:
    """Tables (Z-sets of records) and incrementally maintained views.

    ``clock`` returns nanoseconds (inject a :class:`~circuit.metrics.FakeClock`
    in tests); ``strict`` turns anomalies into :class:`MutationLogError`;
    ``coalesce`` (batch and deferred) nets out entries of one record within
    a call; ``pending_limit`` flushes deferred entries automatically.
    ``executor`` (e.g. :class:`~circuit.executors.ProcessExecutor`) takes over
    the views: this circuit keeps applying entries to its tables and hands
    each call's net changes to it. ``share=False`` builds every view's state on
    its own (no view reads another's state; the tables' field indexes stay
    shared), so that tests can compare sharing with its absence byte for byte.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        strict: bool = False,
        coalesce: bool = True,
        pending_limit: int = 10_000,
        dialect: str | None = None,
        executor: Executor | None = None,
        share: bool = True,
    ) -> None:
        self._clock: Clock = clock if clock is not None else time.perf_counter_ns
        self.strict = strict
        self.coalesce = coalesce
        self.pending_limit = pending_limit
        self.dialect = dialect
        self._tables = Tables()
        self._views: dict[str, View] = {}
        self._dependents: dict[str, list[View]] = {}
        self._routed: dict[str, dict[str, dict[Any, list[View]]]] = {}
        self._lazy_routed: dict[str, dict[str, dict[Any, dict[View, int]]]] = {}
        # joined table -> (right field, first source, left field, route field) -> route
        # value -> views (see ViewPlan.join_route)
        self._through: dict[str, dict[tuple[str, str, str, str], dict[Any, list[View]]]] = {}
        # sharing key -> the live views offering it, in registration order (see _build)
        self._offers: dict[tuple[Any, ...], list[View]] = {}
        self.share = share
        self.call_started = 0  # clock reading at the start of the current ingest call
        self._view_metrics: dict[str, ViewMetrics] = {}
        self._pending: list[Mutation] = []
        self._records_before: dict[str, tuple[str, dict[str, Any] | None]] = {}
        self._seq = 0
        self._registered = 0
        self.last_stats = BatchStats()
        self._completed: list[BatchResult] = []  # submitted calls done, not yet collected
        self._tiny_home: Circuit | None = None  # see route_tiny_calls
        self._tiny_below = 0
        self.tiny_calls = 0
        self._executor = executor
        if executor is not None:
            executor.attach(self)

    def load(self, records: Iterable[Mutation]) -> BatchStats:
        """Load records into the tables without propagating or counting an ingest call.

        For the state a recording starts from (``--initial``): views
        registered afterwards build from it. Views already registered are not
        told, so load before registering. The stats count entries, the records
        applied (``entries_after_coalesce``), no-ops and anomalies.
        """
        if self._views or (self._executor is not None and self._executor.view_names()):
            raise CircuitError("load() is for the initial state: call it before registering views")
        stats = BatchStats()
        entries = list(records)
        for m in entries:
            if m.op not in DATA_OPS or m.table is None or m.id is None:
                raise CircuitError(f"load() takes data entries, got {m.op}")
        applied, noops = self._tables.apply_many(entries, self.strict, stats.anomalies, {}, {})
        stats.entries_received = len(entries)
        stats.entries_after_coalesce = len(applied)
        stats.noop_updates = noops
        return stats

    # views ---------------------------------------------------------------------
    def register_view(
        self,
        name: str,
        sql: str,
        params: Mapping[str, Any] | None = None,
        format: str = STREAMING,
        *,
        path: str | None = None,
    ) -> ViewUpdate | None:
        """Plan ``sql`` as view ``name`` and build its state from the tables.

        Returns the initial update: every member as ``created`` (None when
        the view is empty and streaming); a flat view always emits.
        Registering an existing name replaces that view without events.
        """
        if format not in FORMATS:
            raise SqlError(f"unknown format {format!r} (streaming or flat)", view=name, path=path)
        if self._executor is not None:
            return self._executor.register_view(name, sql, params, format, path=path)
        plan = plan_view(name, sql, params, path=path, dialect=self.dialect, bind=self.share)
        if name in self._views:
            self.unregister_view(name)
        self._registered += 1
        view = self._build(plan, format, dict(params) if params else None, self._registered)
        view.order = self._registered
        self._views[name] = view
        self._link(view)
        self._seq += 1
        if format == FLAT:
            view.metrics.updates_emitted += 1
            return self._flat_update(view)
        members = view.sorted_members()
        if not members:
            return None
        versions = self._tables.versions
        records = [
            {"id": rid, "event": "created", "version": view.member_version(rid, versions)}
            for rid in members
        ]
        view.metrics.updates_emitted += 1
        view.metrics.events["created"] += len(records)
        return ViewUpdate(name, self._seq, STREAMING, records=records)

    def _build(
        self,
        plan: ViewPlan,
        format: str,
        params: dict[str, Any] | None,
        order: int,
        skip: Iterable[View] = (),
    ) -> View:
        """A view with its state built from the tables, or sharing an earlier view's.

        Sharing needs the other view registered earlier (``order``), since views
        run in registration order and the owner of shared state runs first;
        ``skip`` are views that cannot share (being rebuilt themselves).
        """
        primary = owner = window_owner = None
        if self.share:
            excluded = set(skip)
            aggregate = plan.top.aggregate
            family = plan.window_family
            primary = self._offer(("identity", plan.identity, format), order, excluded)
            if primary is None:
                if family is not None:
                    window_owner = self._offer(("family", family), order, excluded)
                if window_owner is not None:
                    owner = window_owner.level_owner or window_owner
                elif aggregate is not None:
                    owner = self._offer(("core", aggregate.core), order, excluded)
        view = View(
            plan,
            format,
            params,
            self._tables,
            primary=primary,
            level_owner=owner,
            window_owner=window_owner,
        )
        metrics = self._view_metrics.get(plan.name)
        if metrics is not None:
            view.metrics = metrics
        self._view_metrics[plan.name] = view.metrics
        if primary is None:
            view.initial(self._clock)
        return view

    def unregister_view(self, name: str) -> None:
        """Drop a view without events.

        Views that shared its state are rebuilt (from the tables, or sharing
        with one another): their members do not change, so no events.
        """
        if self._executor is not None:
            return self._executor.unregister_view(name)
        view = self._views.pop(name, None)
        if view is None:
            raise CircuitError(f"no view named {name!r}")
        view.release()
        self._unlink(view)
        # views sharing its state, and views sharing theirs: rebuilt in registration order
        found: dict[View, None] = {}
        stack = list(view.sharers)
        while stack:
            other = stack.pop()
            if other not in found:
                found[other] = None
                stack.extend(other.sharers)
        orphans = sorted(found, key=_registration_order)
        for other in orphans:
            other.leave_owners()
            self._unlink(other)
        for index, other in enumerate(orphans):
            rebuilt = self._build(
                other.plan, other.format, other.params, other.order, skip=orphans[index:]
            )
            rebuilt.order = other.order
            # the same output rows: they keep their versions
            rebuilt.row_versions = other.row_versions
            self._views[other.name] = rebuilt
            self._link(rebuilt)

    def view_names(self) -> list[str]:
        """Registered views in registration order."""
        if self._executor is not None:
            return self._executor.view_names()
        return list(self._views)

    def _offer(self, key: tuple[Any, ...], order: int, excluded: set[View]) -> View | None:
        """The earliest live view registered before ``order`` offering this sharing."""
        for live in self._offers.get(key, ()):
            if live.order < order and live not in excluded:
                return live
        return None

    def _link(self, view: View) -> None:
        """Enter a new view in the dependency, routing and sharing indexes.

        Each index is changed in place, in time proportional to what the view
        itself reads: per table, the views that see every change of it; the
        routed views, which see only changes whose old or new record has their
        pinned value (``WHERE room = $room``: thousands of parametrized views);
        and the views routed by the groups their lazy levels hold.
        """
        view.links = links = _links_of(view)
        for key in links.offers:
            _insort(self._offers.setdefault(key, []), view)
        route = view.route
        for table in links.eager:
            if route is not None and route[0] == table:
                by_value = self._routed.setdefault(table, {}).setdefault(route[1], {})
                _insort(by_value.setdefault(route[2], []), view)
            else:
                _insort(self._dependents.setdefault(table, []), view)
        if links.through is not None:
            assert route is not None
            table, key = links.through
            self._tables.field_index(key[1], key[2])  # read on every change of the table
            by_route = self._through.setdefault(table, {}).setdefault(key, {})
            _insort(by_route.setdefault(route[2], []), view)
        for table, levels in links.lazy.items():
            for level in levels:
                level.routed_views.append(view)
                level.router = self._route_group
                lazy_field = level.plan.lazy_field
                assert lazy_field is not None
                groups = self._lazy_routed.setdefault(table, {}).setdefault(lazy_field, {})
                for ck in level.active:
                    counts = groups.setdefault(ck[0], {})
                    counts[view] = counts.get(view, 0) + 1

    def _unlink(self, view: View) -> None:
        """Take a view out of the indexes :meth:`_link` entered it in."""
        links = view.links
        if links is None:
            return
        view.links = None
        for key in links.offers:
            _drop(self._offers, key, view)
        route = view.route
        for table in links.eager:
            if route is not None and route[0] == table:
                by_field = self._routed[table]
                by_value = by_field[route[1]]
                _drop(by_value, route[2], view)
                if not by_value:
                    del by_field[route[1]]
                    if not by_field:
                        del self._routed[table]
            else:
                _drop(self._dependents, table, view)
        if links.through is not None:
            assert route is not None
            table, key = links.through
            by_key = self._through[table]
            _drop(by_key[key], route[2], view)
            if not by_key[key]:
                del by_key[key]
                if not by_key:
                    del self._through[table]
        for table, levels in links.lazy.items():
            for level in levels:
                level.routed_views.remove(view)
                lazy_field = level.plan.lazy_field
                assert lazy_field is not None
                # the table's and field's dicts stay: other views' levels may route by them
                groups = self._lazy_routed[table][lazy_field]
                for ck in level.active:
                    counts = groups[ck[0]]
                    count = counts[view] - 1
                    if count:
                        counts[view] = count
                    else:
                        del counts[view]
                        if not counts:
                            del groups[ck[0]]

    def _route_group(self, level: Level, value: Any, sign: int) -> None:
        """A lazy level built (+1) or dropped (-1) the group of ``value``: its views now
        do (or no longer) need the changes of records with that value."""
        assert level.plan.lazy_field is not None
        by_value = self._lazy_routed[level.first_table][level.plan.lazy_field]
        counts = by_value.get(value)
        if counts is None:
            counts = by_value[value] = {}
        for view in level.routed_views:
            count = counts.get(view, 0) + sign
            if count:
                counts[view] = count
            else:
                del counts[view]
        if not counts:
            del by_value[value]

    def _view(self, name: str) -> View:
        view = self._views.get(name)
        if view is None:
            raise CircuitError(f"no view named {name!r}")
        return view

    # ingestion ----------------------------------------------------------------------
    def ingest_single(self, m: Mutation) -> list[ViewUpdate]:
        """Apply and propagate one mutation; ``last_stats`` holds its BatchStats.

        ``REGISTER``/``UNREGISTER``/``FLUSH`` entries are carried out too.
        """
        if m.op not in DATA_OPS:
            return self._control(m).updates
        result = self._call([m], coalesce=True)
        assert result is not None
        return result.updates

    def ingest_batch(self, ms: Iterable[Mutation]) -> BatchResult:
        """Coalesce, apply and propagate a batch as one ingest call.

        Control entries inside the batch split it: what comes before them is
        propagated first, as SPEC section 3.3 requires.
        """
        result = BatchResult()
        for part in _split(ms):
            if isinstance(part, list):
                _merge(result, self._sync_call(part))
            else:
                _merge(result, self._control(part))
        return result

    # pipelined ingestion ------------------------------------------------------------
    def submit_batch(self, ms: Iterable[Mutation]) -> list[BatchResult]:
        """:meth:`ingest_batch`, pipelined: the call may still be running when this returns.

        With an executor that runs views on other processes, a call sent to
        them stays *in flight*: the main process goes on with the next calls
        (applying their entries and running its own views) while they work,
        and the call completes during a later one (the executor bounds how
        many are in flight) or at :meth:`collect`. Returns the results of the
        calls (and control entries) completed since the last
        :meth:`submit_batch`, :meth:`submit_flush` or :meth:`collect`, oldest
        first, one per call: exactly what :meth:`ingest_batch` would have
        returned call by call. A result's ``duration_ns`` runs from the start
        of its call to its completion. Without such an executor every call
        completes at once. Calls not submitted (``ingest_*``, :meth:`flush`)
        return their own results as always; whatever else they complete waits
        here for :meth:`collect`.
        """
        for part in _split(ms):
            if isinstance(part, list):
                self._submit(part)
            else:
                result = self._control(part)
                self._take_completed()
                self._completed.append(result)
        return self._collected()

    def submit_flush(self) -> list[BatchResult]:
        """:meth:`flush`, pipelined as :meth:`submit_batch` is."""
        if self._pending:
            pending, self._pending = self._pending, []
            self._submit(pending)
        return self._collected()

    def collect(self, *, wait: bool = True) -> list[BatchResult]:
        """Complete the calls in flight; every result not yet returned, oldest first.

        With ``wait=False`` only the results already complete (e.g. after a
        failure, when the calls in flight cannot complete)."""
        self._take_completed()  # older than any call still in flight
        if wait and self._executor is not None:
            self._executor.settle()
        return self._collected()

    def route_tiny_calls(self, replica: Circuit | None, below: int) -> None:
        """For an executor: run calls that change fewer than ``below`` records on
        ``replica`` (which shares these tables and holds every view, in registration
        order) directly, counted in ``tiny_calls``; ``None`` stops it. Single mode pays
        whatever stands between a call and its views once per entry (the executor's
        own dispatch cost 4-7% of a light replay)."""
        self._tiny_home, self._tiny_below = replica, below

    @property
    def in_flight(self) -> bool:
        """Whether a submitted call has not completed yet."""
        return self._executor is not None and self._executor.in_flight

    def _submit(self, entries: list[Mutation]) -> None:
        result = self._call(entries, coalesce=self.coalesce, pipelined=True)
        if result is not None:
            self._completed.append(result)

    def _take_completed(self) -> None:
        """Move the results the executor completed (earlier calls) to the queue."""
        executor = self._executor
        if executor is not None and executor.completed:
            self._completed.extend(executor.completed)
            executor.completed.clear()

    def _collected(self) -> list[BatchResult]:
        self._take_completed()
        results, self._completed = self._completed, []
        return results

    def _sync_call(self, entries: list[Mutation]) -> BatchResult:
        result = self._call(entries, coalesce=self.coalesce)
        assert result is not None
        return result

    def ingest_deferred(self, ms: Iterable[Mutation]) -> BatchResult | None:
        """Queue mutations; returns the result of any flush this triggered."""
        result: BatchResult | None = None
        for m in ms:
            if m.op in DATA_OPS:
                self._pending.append(m)
                if len(self._pending) >= self.pending_limit:
                    result = _merge(result or BatchResult(), self.flush())
                continue
            result = _merge(result or BatchResult(), self._control(m))
        return result

    def flush(self) -> BatchResult:
        """Propagate everything queued as one ingest call."""
        if not self._pending:
            return BatchResult()
        pending, self._pending = self._pending, []
        return self._sync_call(pending)

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def seq(self) -> int:
        return self._seq

    def _control(self, m: Mutation) -> BatchResult:
        result = self.flush() if self._pending else BatchResult()
        if m.op == REGISTER:
            assert m.view is not None and m.sql is not None
            update = self.register_view(m.view, m.sql, m.params, m.format or STREAMING)
            if update is not None:
                result.updates.append(update)
        elif m.op == UNREGISTER:
            assert m.view is not None
            self.unregister_view(m.view)
        elif m.op != FLUSH:
            raise CircuitError(f"unknown op {m.op!r}")
        return result

    def _call(
        self, entries: list[Mutation], coalesce: bool, pipelined: bool = False
    ) -> BatchResult | None:
        """One ingest call: apply, propagate, emit (``None``: the call is in flight).

        Results of earlier calls that complete meanwhile are queued for
        :meth:`collect`; they come before this call's.
        """
        clock = self._clock
        start = self.call_started = clock()
        stats = BatchStats(entries_received=len(entries))
        rounds, versions_before = self._apply(entries, coalesce, stats)
        self._seq += 1
        executor = self._executor
        tiny = self._tiny_home
        updates: list[ViewUpdate] | None
        if (
            tiny is not None
            and stats.entries_after_coalesce < self._tiny_below
            and rounds.__class__ is list
        ):
            tiny._seq = self._seq
            updates = tiny.propagate(rounds, versions_before, stats)
            self.tiny_calls += 1
        elif executor is not None:
            updates = executor.propagate(
                rounds, versions_before, stats, entries, pipelined=pipelined
            )
            if executor.completed:
                self._take_completed()
            if updates is None:
                return None
        else:
            updates = self.propagate(rounds, versions_before, stats)
        stats.duration_ns = clock() - start
        self.last_stats = stats
        return BatchResult(updates, stats)

    def propagate(
        self,
        rounds: Iterable[TableChanges],
        versions_before: dict[str, int],
        stats: BatchStats,
        *,
        emit: bool = True,
    ) -> list[ViewUpdate]:
        """Run applied table changes through the views that read them; one call's updates.

        ``rounds`` are the call's changes (one round when coalesced) as
        ``table -> [(id, old record, new record)]``; ``versions_before`` holds
        each written record's version before the call. With ``emit=False`` the
        views only catch up (a replica replaying a call it already reported):
        state and row versions advance, no update is built. Fills the
        propagation counters of ``stats``.
        """
        clock = self._clock
        updates: list[ViewUpdate] = []
        if isinstance(rounds, list) and len(rounds) == 1:
            # one round (coalesced, single, replica): events right after each view runs
            by_table = rounds[0]
            views = self._views_reading(by_table)
            for view in views:
                t0 = clock()
                if view.primary is not None:
                    update = self._shared_update(view, stats)
                elif view.fused:
                    fused = view.run_fused(by_table, clock)
                    update = (
                        None
                        if fused is None
                        else self._fused_events(view, *fused, stats, versions_before)
                    )
                else:
                    view.process(by_table, clock)
                    view.account()
                    update = self._events(view, versions_before, stats)
                view.last_update = update
                view.metrics.record_invocation(clock() - t0)
                if update is not None and emit:
                    updates.append(update)
            stats.tables_touched = len(by_table)
            stats.views_impacted = len(views)
            stats.views_updated = len(updates)
            return updates
        touched_tables: set[str] = set()
        impacted: dict[View, int] = {}
        count = 0
        for by_table in rounds:
            count += 1
            touched_tables.update(by_table)
            for view in self._views_reading(by_table):
                t0 = clock()
                if view.primary is None:
                    view.process(by_table, clock)
                    view.account()
                impacted[view] = impacted.get(view, 0) + clock() - t0
        ordered = list(impacted)
        if count > 1:
            ordered.sort(key=_registration_order)
        for view in ordered:
            t0 = clock()
            if view.primary is not None:
                update = self._shared_update(view, stats)
            else:
                update = view.last_update = self._events(view, versions_before, stats)
            view.metrics.record_invocation(clock() - t0 + impacted[view])
            if update is not None and emit:
                updates.append(update)
        stats.tables_touched = len(touched_tables)
        stats.views_impacted = len(impacted)
        stats.views_updated = len(updates)
        return updates

    def apply_changes(
        self, changes: list[tuple[str, str, dict[str, Any] | None, int]], *, continued: bool = False
    ) -> tuple[TableChanges, dict[str, int]]:
        """Set records to given states: ``(table, id, record or None, version)``.

        For a replica of another circuit's tables (a worker process): the
        changes are net changes the primary already decided (anomalies,
        coalescing), so they are stored as they are. Returns the round to
        :meth:`propagate` and the versions before. ``continued`` marks a later
        round of the same call (``--no-coalesce``): the records before the call
        stay those before its first round.
        """
        store = self._tables
        records, versions = store.records, store.versions
        records_before = self._records_before
        if not continued:
            records_before.clear()
        by_table: TableChanges = {}
        versions_before: dict[str, int] = {}
        for table, rid, record, version in changes:
            rows = records.get(table)
            if rows is None:
                rows = records[table] = {}
            old = rows.get(rid)
            versions_before[rid] = versions.get(rid, 0)
            records_before.setdefault(rid, (table, old))
            if record is None:
                rows.pop(rid, None)
                versions.pop(rid, None)
            else:
                rows[rid] = record
                versions[rid] = version
            if table in store.indexes:
                store.reindex(table, rid, old, record)
            by_table.setdefault(table, []).append((rid, old, record))
        return by_table, versions_before

    def advance_seq(self, seq: int) -> None:
        """Follow the primary's numbering of ingest calls (a replica skips calls)."""
        self._seq = seq

    def _views_reading(self, by_table: TableChanges) -> list[View]:
        """The views a round of changes can affect, each once, in registration order."""
        dependents, routed, lazy = self._dependents, self._routed, self._lazy_routed
        through = self._through
        if len(by_table) == 1 and not routed and not lazy and not through:
            for table in by_table:
                return dependents.get(table, [])
        found: dict[View, None] = {}
        for table, changes in by_table.items():
            for view in dependents.get(table, ()):
                found[view] = None
            for by_field in (routed.get(table), lazy.get(table)):
                if by_field:
                    _route(changes, by_field, found)
            by_key = through.get(table)
            if by_key:
                self._route_through(changes, by_key, found)
        return sorted(found, key=_registration_order)

    def _route_through(
        self,
        changes: list[Any],
        by_key: Mapping[tuple[str, str, str, str], Mapping[Any, Iterable[View]]],
        found: dict[View, None],
    ) -> None:
        """Add the views whose first source has a record joined to a changed one.

        The changed record's key (old or new) names, through the first source's
        field index by the join's left field, the records it joins; their route
        values name the views. A first-source record changed in the same call
        reaches the views of its old and new route values by its own route.
        """
        index_of = self._tables.field_index
        for (right_field, source, left_field, route_field), by_value in by_key.items():
            joined = index_of(source, left_field)
            for _rid, old, new in changes:
                before = field_key(old, right_field)
                after = field_key(new, right_field)
                for key in (before,) if after == before else (before, after):
                    if key is None:
                        continue
                    for left in joined.get(key, {}).values():
                        pinned = left.get(route_field)
                        if pinned is not None:
                            for view in by_value.get(hash_key(pinned), ()):
                                found[view] = None

    def _apply(
        self, entries: list[Mutation], coalesce: bool, stats: BatchStats
    ) -> tuple[Iterable[TableChanges], dict[str, int]]:
        """Apply entries to the tables; return the rounds of changes to propagate.

        Coalesced, a call is one round holding each record's net change (first
        old state to last new state). Without coalescing every applied entry
        is a round of its own, and the rounds are a generator: each entry is
        applied only when the previous round has been propagated, so views
        (and the field indexes they read) always see the state of their round.
        ``versions_before`` fills as the rounds are consumed.
        """
        versions_before: dict[str, int] = {}
        self._records_before.clear()
        if not coalesce and len(entries) > 1:
            return self._one_by_one(entries, stats, versions_before), versions_before
        applied = self._applied(entries, stats, versions_before)
        if len(entries) == 1:
            # one entry is one round whether coalesced or not: no net-change pass
            for m, old, new in applied:
                stats.entries_after_coalesce = 1
                return [{m.table: [(m.id, old, new)]}], versions_before  # type: ignore[dict-item, list-item]
            return [], versions_before
        net: dict[str, list[Any]] = {}
        for m, old, new in applied:
            change = net.get(m.id)  # type: ignore[arg-type]
            if change is None:
                net[m.id] = [m.table, old, new]  # type: ignore[index]
            else:
                change[2] = new
        by_table: TableChanges = {}
        versions = self._tables.versions
        for rid, (table, old, new) in net.items():
            if old is new and versions.get(rid, 0) == versions_before[rid]:
                continue  # created and deleted within the call
            by_table.setdefault(table, []).append((rid, old, new))
        stats.entries_after_coalesce = sum(len(c) for c in by_table.values())
        return ([by_table] if by_table else []), versions_before

    def _one_by_one(
        self, entries: list[Mutation], stats: BatchStats, versions_before: dict[str, int]
    ) -> Iterator[TableChanges]:
        """Without coalescing, each entry is applied when the previous one has propagated."""
        for entry in entries:
            for m, old, new in self._applied([entry], stats, versions_before):
                stats.entries_after_coalesce += 1
                yield {m.table: [(m.id, old, new)]}  # type: ignore[dict-item, list-item]

    def _applied(
        self, entries: list[Mutation], stats: BatchStats, versions_before: dict[str, int]
    ) -> list[Applied]:
        """Apply entries; those that changed a record, counting the rest in ``stats``."""
        applied, noops = self._tables.apply_many(
            entries, self.strict, stats.anomalies, versions_before, self._records_before
        )
        stats.noop_updates += noops
        return applied

    def _events(
        self, view: View, versions_before: dict[str, int], stats: BatchStats
    ) -> ViewUpdate | None:
        """Compare members (ids with versions) before and after the call."""
        refs, before = view.member_refs, view.member_before
        version = self._tables.versions
        if view.synthetic:
            if not view.rows_before:
                return None
            return self._emit(view, *view.synthetic_events(), stats)
        written = [rid for rid in versions_before if rid in refs]
        if not before:
            if not written:
                return None
            candidates: Iterable[str] = written
        else:
            candidates = set(before).union(written)
        created: list[str] = []
        updated: list[str] = []
        deleted: list[tuple[str, int]] = []
        for rid in candidates:
            was = before.get(rid, refs.get(rid, 0)) > 0
            now = rid in refs
            old_version = versions_before.get(rid)
            if old_version is None:
                old_version = version.get(rid, 0)
            if now and not was:
                created.append(rid)
            elif was and not now:
                deleted.append((rid, old_version))
            elif now and rid in versions_before and self._record_changed(rid, old_version):
                updated.append(rid)
        before.clear()
        return self._emit(view, created, updated, deleted, stats)

    def _fused_events(
        self,
        view: View,
        entered: list[str],
        stayed: list[str],
        left: list[str],
        stats: BatchStats,
        versions_before: dict[str, int],
    ) -> ViewUpdate | None:
        """Events of a fused view (:meth:`View.run_fused`): its members moved as returned."""
        changed = self._record_changed
        updated = [rid for rid in stayed if changed(rid, versions_before[rid])]
        deleted = [(rid, versions_before[rid]) for rid in left]
        return self._emit(view, entered, updated, deleted, stats)

    def _shared_update(self, view: View, stats: BatchStats) -> ViewUpdate | None:
        """A view sharing its primary's state: the primary's update (it ran earlier in
        this round, being registered earlier) under this view's name, counted here too."""
        primary = view.source
        update = primary.last_update
        view.last_update = update
        if update is None:
            return None
        metrics = view.metrics
        metrics.updates_emitted += 1
        counted, events = metrics.events, stats.events
        for kind, count in zip(EVENT_KINDS, primary.last_events, strict=True):
            if count:
                counted[kind] += count
                events[kind] += count
        return replace(update, view=view.name)

    def _emit(
        self,
        view: View,
        created: list[str],
        updated: list[str],
        deleted: list[tuple[str, int]],
        stats: BatchStats,
    ) -> ViewUpdate | None:
        """The view update for this call's events (None when there are none)."""
        n_created, n_updated, n_deleted = len(created), len(updated), len(deleted)
        if not (n_created or n_updated or n_deleted):
            return None
        metrics = view.metrics
        metrics.updates_emitted += 1
        view.last_events = (n_created, n_updated, n_deleted)
        counted, events = metrics.events, stats.events
        if n_created:
            counted["created"] += n_created
            events["created"] += n_created
        if n_updated:
            counted["updated"] += n_updated
            events["updated"] += n_updated
        if n_deleted:
            counted["deleted"] += n_deleted
            events["deleted"] += n_deleted
        if view.format == FLAT:
            return self._flat_update(view)
        versions = view.row_versions if view.synthetic else self._tables.versions
        records = []
        if n_created:
            if n_created > 1:
                created.sort()
            records = [{"id": rid, "event": "created", "version": versions[rid]} for rid in created]
        if n_updated:
            if n_updated > 1:
                updated.sort()
            records += [
                {"id": rid, "event": "updated", "version": versions[rid]} for rid in updated
            ]
        if n_deleted:
            if n_deleted > 1:
                deleted.sort()
            records += [{"id": rid, "event": "deleted", "version": v} for rid, v in deleted]
        return ViewUpdate(view.name, self._seq, STREAMING, records=records)

    def _record_changed(self, rid: str, old_version: int) -> bool:
        """Whether a record written in this call differs from before it: version or data."""
        if self._tables.versions.get(rid, 0) != old_version:
            return True
        table, old = self._records_before[rid]
        new = self._tables.get(table, rid)
        return old is not new and not json_equal(old, new)

    def _flat_update(self, view: View) -> ViewUpdate:
        """Every member with its version: O(members) by definition of the format."""
        versions = view.row_versions if view.synthetic else self._tables.versions
        members, digest = view.flat_members()
        return ViewUpdate(
            view.name,
            self._seq,
            FLAT,
            result_hash=digest,
            result_data=MemberVersions(members, list(map(versions.__getitem__, members))),
        )

    # state ---------------------------------------------------------------------------
    def rows(self, view: str) -> list[dict[str, Any]]:
        """The view's rows: ORDER BY order, else sorted by canonical JSON."""
        if self._executor is not None:
            return self._executor.rows(view)
        return self._view(view).rows()

    def members(self, view: str) -> list[tuple[str, int]]:
        """``(id, version)`` of every member, sorted by id."""
        if self._executor is not None:
            return self._executor.members(view)
        versions = self._tables.versions
        found = self._view(view)
        return [(rid, found.member_version(rid, versions)) for rid in sorted(found.member_refs)]

    def tables(self) -> Mapping[str, Mapping[str, dict[str, Any]]]:
        """Current records: table name -> {canonical id -> record}."""
        return self._tables.records

    def version(self, rid: str) -> int:
        """A record's current version (0 when it does not exist)."""
        return self._tables.versions.get(rid, 0)

    def metrics(self) -> CircuitMetrics:
        if self._executor is not None:
            return self._executor.metrics()
        views: dict[str, dict[str, Any]] = {}
        operators: list[dict[str, Any]] = []
        for name, metrics in self._view_metrics.items():
            live = self._views.get(name)
            if live is not None:
                state = live.source
                metrics.rows = state.row_count
                metrics.members = len(state.member_refs)
                metrics.state_rows = state.state_rows()
                levels = list(state.top.walk())
                metrics.subquery_cache_hits = sum(level.cache_hits for level in levels)
                metrics.subquery_cache_misses = sum(level.cache_misses for level in levels)
            views[name] = metrics.to_json()
            if live is not None:
                operators.extend(op.to_json() for op in live.operator_metrics.values())
        return CircuitMetrics(views, operators)

    @property
    def executor(self) -> Executor | None:
        return self._executor

    def close(self) -> None:
        """Release the executor's resources (worker processes); a no-op without one."""
        if self._executor is not None:
            self._executor.close()

    def explain(self, view: str) -> str:
        """The view's plan as an indented tree of operators, and what state it shares."""
        found = self._view(view)
        lines = found.plan.describe().split("\n")
        if found.primary is not None:
            shared = f"defined as {found.primary.name}: takes its updates, runs nothing itself"
        elif found.window_owner is not None:
            shared = f"a window (its LIMIT/OFFSET) of {found.window_owner.name}'s ordered rows"
        elif found.level_owner is not None:
            shared = f"the rows, groups and aggregates of {found.level_owner.name}"
        else:
            shared = ""
        if shared:
            lines.insert(1, f"  shares state: {shared}")
        lazy = found.lazy_tables()
        if lazy:
            tables = ", ".join(sorted(lazy))
            lines.insert(1, f"  routed by shown groups: changes of {tables}")
        return "\n".join(lines)

    def dependency_index(self) -> dict[str, list[str]]:
        """table -> the views that read it (registration order)."""
        return {
            table: [name for name in self._views if table in self._views[name].tables]
            for table in sorted({t for view in self._views.values() for t in view.tables})
        }


def _route(
    changes: list[Any],
    by_field: Mapping[str, Mapping[Any, Iterable[View]]],
    found: dict[View, None],
) -> None:
    """Add the views routed on a value that a changed record has (or had)."""
    for field, by_value in by_field.items():
        for _rid, old, new in changes:
            for record in (old, new):
                if record is not None:
                    value = record.get(field)
                    if value is not None:
                        for view in by_value.get(hash_key(value), ()):
                            found[view] = None


def _registration_order(view: View) -> int:
    return view.order


def _links_of(view: View) -> ViewLinks:
    """Where a view goes in the circuit's indexes (computed once, at registration)."""
    offers: list[tuple[Any, ...]] = []
    if view.shareable:
        offers.append(("identity", view.plan.identity, view.format))
    family = view.window_family
    if family is not None:
        offers.append(("family", family))
    core = view.core
    if core is not None:
        offers.append(("core", core))
    lazy = view.lazy_tables()
    join_route = view.plan.join_route
    through = None
    if join_route is not None and join_route[0] not in lazy:
        assert view.route is not None
        table, right_field, left_field = join_route
        through = (table, (right_field, view.route[0], left_field, view.route[1]))
    eager = tuple(
        sorted(
            table
            for table in view.tables
            if table not in lazy and (through is None or table != through[0])
        )
    )
    return ViewLinks(tuple(offers), eager, lazy, through)


def _insort(views: list[View], view: View) -> None:
    """Insert in registration order (a rebuilt view keeps its place among later ones)."""
    if not views or views[-1].order < view.order:
        views.append(view)
    else:
        bisect.insort(views, view, key=_registration_order)


def _drop(index: dict[Any, list[View]], key: Any, view: View) -> None:
    views = index[key]
    views.remove(view)
    if not views:
        del index[key]


def _split(ms: Iterable[Mutation]) -> Iterator[list[Mutation] | Mutation]:
    """A batch in order: its runs of data entries (one ingest call each) and the control
    entries between them (SPEC section 3.3: what comes before one propagates first)."""
    chunk: list[Mutation] = []
    for m in ms:
        if m.op in DATA_OPS:
            chunk.append(m)
            continue
        if chunk:
            yield chunk
            chunk = []
        yield m
    if chunk:
        yield chunk


def _merge(into: BatchResult, other: BatchResult) -> BatchResult:
    into.updates.extend(other.updates)
    into.stats += other.stats
    return into
