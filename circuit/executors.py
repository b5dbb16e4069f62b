"""The process executor: views spread over the main process and worker processes.

CPython threads do not run Python code in parallel, so views run in worker
processes (:mod:`circuit.workers`) *and in the main process*. The main
:class:`~circuit.circuit.Circuit` stays the *primary*: it applies every entry
(anomalies, coalescing and versions are decided in one place), then hands the
call's net changes to the executor attached to it, which decides where the
views run. Views are placed on *slots*: slot 0 is the main process, slots 1...
the workers (``--workers N`` is N slots, so N - 1 worker processes: the main
process would otherwise idle while the workers run a call).

- *The home replica.* The main process's views live in a circuit that shares
  the primary's tables: it runs a call's rounds as they are applied, exactly
  as sequential execution would, with nothing copied, encoded or replayed.
  Until the workers are built it holds every view.
- *Gating.* A call that impacts fewer views than ``threshold`` or changes
  fewer than ``min_changes`` records is not worth a round trip: it runs in the
  main process only. Other calls go, as one orjson message each, to the
  workers whose tables changed; the home replica runs its share meanwhile;
  then the workers' updates are merged with its own in view registration
  order, so the stream equals sequential execution byte for byte. With
  ``cost_gate`` (the default) the views' measured cost gates too: workers are
  built only when the views of the calls run so far took
  :data:`VIEWS_OVER_APPLY` times what applying their entries took, and once
  :data:`PROBE_CALLS` parallel calls are measured, calls stay in the main
  process while the time the workers' views saved it is less than what
  encoding, sending, waiting for and merging their answers cost it (the
  workers are then dropped; the measure starts over when views register or
  unregister). ``threshold`` 0 sends every call regardless.
- *Lazy workers.* The workers hold nothing until parallel-worthy calls have
  run in the main process for as long as the workers' last build took (at
  once the first time). They are then *built*, after the call: the views are
  placed, and those placed on a worker leave the home replica and are
  registered there, with the tables they read (and aggregate views with their
  row versions).
- *Placement by measured cost.* Every replica times its views (``time_ns``);
  workers report their views' times with each answer. Views are placed by
  these measured costs (longest first on the least loaded slot; by plan size
  when nothing is measured yet), and after each parallel call
  :func:`rebalance` moves or swaps views between the most and least loaded
  slots when that lowers the heaviest load by :data:`REBALANCE_GAIN` or more.
  A view moves by ``retire`` on its worker (which returns its aggregate row
  versions and operator counts) or unregistering at home, then ``register``
  on the other slot, with the tables a worker lacks.
- *Gated calls once the workers are built.* The home views run as always; the
  workers' views run on a *local replica* of them (with its own copy of the
  tables), which keeps a backlog of the calls the workers ran and replays it
  before its next call. It is built only when the gated calls sent to the
  workers instead have cost as much as its last build, and dropped past
  ``backlog_limit`` calls behind. The workers likewise queue the calls the
  main process ran in their *outbox*; it goes with their next message (or
  once :data:`OUTBOX_LIMIT` calls are queued) and they replay it without
  counting. Past ``worker_backlog_limit`` gated calls in a row the workers are
  dropped (reset, their counts kept) and their views come home. Both follow
  the ski-rental rule: the waste stays within twice the best choice.
- *Pipelining.* A call submitted with :meth:`Circuit.submit_batch` (the
  replay does, in batch and deferred modes) stays *in flight* once sent: the
  main process goes on to the next call (reading, applying, encoding it and
  running its home views) while the workers finish, and merges their answers
  then. Up to ``depth`` calls (``--pipeline-depth``, default
  :data:`PIPELINE_DEPTH`) are in flight, so a worker always has the next call
  queued and neither side waits on the other's slow calls; each settles in
  call order, and every other path (a gated call, a registration, reading a
  view, the metrics) completes them first. A call's latency then counts until
  its answers are merged. The pipe's writer is a background thread (see
  :class:`~circuit.workers.PipeTransport`), so both sides can have messages
  in flight without blocking on each other.
- *Several rounds* (``--no-coalesce``): the primary applies each entry only
  when the previous round has run, so the home replica runs the whole call
  first, recording the rounds, and the workers get them afterwards: such calls
  are correct but not overlapped.
- *Counting.* Each view's work on a call is counted once, by the replica that
  ran it with updates; :meth:`ProcessExecutor.metrics` sums the replicas, so
  the report equals sequential execution except for timings.

The executor talks to workers only through :class:`~circuit.workers.Transport`,
so a distributed transport could replace the pipes without touching this logic.
"""

from __future__ import annotations

import base64
import contextlib
import multiprocessing
import os
from array import array
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from .errors import CircuitError, ReplayError, log_location
from .metrics import BatchStats, CircuitMetrics, Samples, ViewMetrics
from .mutations import Mutation
from .operators import TableChanges
from .sql.plan import LevelPlan, plan_view
from .updates import BatchResult, ViewUpdate
from .workers import (
    POLL_S,
    PipeTransport,
    Round,
    Transport,
    TransportClosed,
    apply_rounds,
    cache_counts,
    carry_cache,
    metrics_message,
    propagate_call,
    register_uncounted,
    uncounted,
    worker_main,
)

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from .circuit import Circuit

MIN_CHANGES = 16
"""Fewest changed records worth a round trip to the workers (a "tiny batch" runs locally)."""

BACKLOG_LIMIT = 64
"""Calls the local replica may lag behind before it is dropped (memory stays bounded)."""

OUTBOX_LIMIT = 64
"""Missed calls queued for a worker before they are sent without waiting for its next turn."""

WORKER_BACKLOG_LIMIT = 256
"""Calls in a row run in the main process before the workers are dropped."""

REBALANCE_GAIN = 0.08
"""Views move between workers only when that lowers the heaviest load by this fraction."""

PIPELINE_DEPTH = 2
"""Submitted calls that may be in flight at once (see "Pipelining")."""

PROBE_CALLS = 8
"""Parallel calls measured before gating may judge that the workers do not pay."""

VIEWS_OVER_APPLY = 2
"""How many times the time spent applying their entries the views of the calls run in the
main process must take before workers are built: the main process still applies every entry
and also encodes and merges, so cheaper views cannot repay that (chat in batches of 100:
views 0.48 s of a 1.2 s ingest, and the workers made it run at 0.5x)."""

HOME = 0
"""The main process's slot in placement: its views run on the home replica."""

RECV_TIMEOUT_S = 5.0
"""How long a best-effort read (metrics after a failure or Ctrl-C) waits for a worker."""

# counters summed over the replicas; the others describe the view's state and come from
# the replica that holds the view (every call reaches it, counted or not)
SUMMED = ("invocations", "updates_emitted", "incremental_updates", "full_recomputes", "time_ns")


class Executor(Protocol):
    """What a :class:`~circuit.circuit.Circuit` delegates its views to."""

    def attach(self, circuit: Circuit) -> None: ...

    def register_view(
        self,
        name: str,
        sql: str,
        params: Mapping[str, Any] | None,
        format: str,
        *,
        path: str | None = None,
    ) -> ViewUpdate | None: ...

    def unregister_view(self, name: str) -> None: ...

    def view_names(self) -> list[str]: ...

    completed: list[BatchResult]
    """Calls kept in flight that have completed since the circuit last took them."""

    def propagate(
        self,
        rounds: Iterable[TableChanges],
        versions_before: dict[str, int],
        stats: BatchStats,
        entries: list[Mutation],
        *,
        pipelined: bool = False,
    ) -> list[ViewUpdate] | None:
        """The call's updates, or ``None`` when ``pipelined`` let it stay in flight."""
        ...

    def settle(self) -> None:
        """Complete the calls in flight (their results go to ``completed``)."""
        ...

    @property
    def in_flight(self) -> bool:
        """Whether any call is in flight."""
        ...

    def rows(self, name: str) -> list[dict[str, Any]]: ...

    def members(self, name: str) -> list[tuple[str, int]]: ...

    def metrics(self) -> CircuitMetrics: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class Worker:
    """The main process's handle on one worker: its channel, tables and outbox.

    ``index`` is the worker's slot in placement (1, 2, ...; slot 0 is the main process).
    """

    index: int
    transport: Transport
    process: BaseProcess | None = None
    tables: set[str] = field(default_factory=set)
    outbox: list[bytes] = field(default_factory=list)
    unanswered: int = 0
    failed: bool = False

    def describe(self, views: list[str]) -> str:
        names = ", ".join(views) if views else "no views"
        return f"worker {self.index} ({names})"


class WorkerPool:
    """Views run on ``count`` processes: the main one and ``count - 1`` workers.

    The workers are started with ``spawn`` (safe with threads) by default. The
    main process is one of the ``count`` because it would otherwise idle while
    the workers run a call: on a 2-core machine ``--workers 2`` is the main
    process plus one worker. A pool can serve several executors one after the
    other (each attach resets the workers), which is how the tests avoid
    paying process start-up for every case.
    """

    def __init__(self, count: int, *, context: str = "spawn") -> None:
        ctx: Any = multiprocessing.get_context(context)
        self.size = max(count, 1)
        self.workers: list[Worker] = []
        for index in range(1, self.size):
            parent, child = ctx.Pipe()
            process = ctx.Process(
                target=worker_main, args=(child,), name=f"ssp-worker-{index}", daemon=True
            )
            process.start()
            child.close()
            transport = PipeTransport(parent, alive=process.is_alive)
            self.workers.append(Worker(index, transport, process))

    def close(self) -> None:
        """Ask every worker to stop; kill those that do not within a second."""
        for worker in self.workers:
            with contextlib.suppress(TransportClosed):
                worker.transport.send(b'{"op":"shutdown"}')
        for worker in self.workers:
            process = worker.process
            if process is not None:
                process.join(1.0)
                if process.is_alive():
                    process.kill()
                    process.join(1.0)
            worker.transport.close()


def default_workers() -> int:
    """One process per CPU the process may use (the main one included), at least two."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 2
    return max(2, cpus)


@dataclass(slots=True)
class _View:
    name: str
    sql: str
    params: dict[str, Any] | None
    format: str
    order: int
    tables: frozenset[str]
    cost: int
    slot: int = HOME  # where it runs: HOME (the main process) or a worker's index


@dataclass(slots=True)
class _Flight:
    """A parallel call whose workers have not answered yet (see "Pipelining")."""

    stats: BatchStats
    touched: set[str]
    home: list[ViewUpdate]
    involved: list[Worker]
    started: int  # the clock at the start of the call (its latency counts from here)
    main_ns: int  # the main process's own time on the call so far
    views_ns: int  # of which in its home views (the rest counts as its base load)
    sent_ns: int  # of which encoding and sending it


class ProcessExecutor:
    """Runs a circuit's views on the main process and a :class:`WorkerPool` (see the
    module docstring).

    ``threshold`` is ``--parallel-threshold`` (0: every call goes to the
    workers, even a tiny one); the limits and ``rebalance_gain`` are those of
    the module docstring (tests set them low to exercise every path);
    ``depth`` is ``--pipeline-depth``; ``cost_gate`` gates by measured cost
    ("Gating"; tests turn it off so that cheap views still reach the
    workers); ``owns_pool`` makes :meth:`close` stop the pool's processes.
    """

    def __init__(
        self,
        pool: WorkerPool,
        *,
        threshold: int = 4,
        min_changes: int = MIN_CHANGES,
        backlog_limit: int = BACKLOG_LIMIT,
        worker_backlog_limit: int = WORKER_BACKLOG_LIMIT,
        rebalance_gain: float = REBALANCE_GAIN,
        depth: int = PIPELINE_DEPTH,
        cost_gate: bool = True,
        owns_pool: bool = False,
    ) -> None:
        self.pool = pool
        self.workers = pool.workers
        self.slots = len(pool.workers) + 1
        self.threshold = threshold
        self.min_changes = min_changes
        self.backlog_limit = backlog_limit
        self.worker_backlog_limit = worker_backlog_limit
        self.rebalance_gain = rebalance_gain
        self.depth = depth
        self.cost_gate = cost_gate and threshold > 0
        self.owns_pool = owns_pool
        self._calls = {"main": 0, "workers": 0}  # and the circuit's tiny calls (see calls)
        self.local_rebuilds = 0
        self.local_drops = 0
        self.worker_builds = 0
        self.worker_drops = 0
        self.moves = 0
        self._built = False  # views run on the workers too (see "Lazy workers")
        self._worker_backlog = 0  # calls run in the main process since the workers last ran one
        # ski rental for the workers; with no worker process nothing is ever worth building
        self._workers_build_ns = 0 if self.workers else 1 << 62
        self._eligible_ns = 0  # parallel-worthy calls run on the main process since the drop
        # parallel calls measured since the views last changed: how many, the time their
        # views took the workers, what sending, waiting for and merging them took the
        # main process (see _pays)
        self._probe = [0, 0, 0]
        self._applied_ns = 0  # what applying their entries cost the main process
        self._rebalance_at = 1  # the parallel call from which views may move again
        self._rebalance_gap = 1  # doubles with every round of moves
        self._worker_costs: dict[tuple[int, str], int] = {}
        self._groups: dict[str, str] = {}  # view -> the first view of its sharing group
        self._imbalance_ns = 0  # what uneven slots wasted since views last moved
        # per slot, the time parallel calls cost it beyond its views: the main process
        # applies, encodes and merges; a worker decodes, applies and encodes its answer
        self._overhead_ns: list[int] = []
        self._moves_ns = 0  # what building the views moved last cost
        self._circuit: Circuit | None = None
        self._home: Circuit | None = None
        self._home_ordered = True  # the home replica holds its views in registration order
        self._views: dict[str, _View] = {}
        self._dependents: dict[str, list[str]] = {}
        self._names: dict[str, None] = {}  # every name ever registered, first registration order
        self._order = 0
        self._local: Circuit | None = None
        # calls the workers ran (or that an error interrupted) for the local replica
        self._backlog: list[tuple[int, int, list[Round], bool]] = []
        self._build_ns = 0
        self._missed_ns = 0
        self._retired_views: dict[str, dict[str, Any]] = {}
        self._retired_ops: dict[tuple[str, int], dict[str, list[int]]] = {}
        self._shapes: dict[str, dict[str, Any]] = {}
        self._source: str | None = None
        self._line = 0
        self._closed = False
        self._final_metrics: CircuitMetrics | None = None
        self._final_state: dict[str, dict[str, Any]] | None = None
        self._flights: deque[_Flight] = deque()  # parallel calls in flight, oldest first
        self._home_spent = 0  # the home views' time at the start of the current call
        self._encode_ns = 0  # what encoding the current call took
        self.completed: list[BatchResult] = []

    # the circuit's hook -------------------------------------------------------------------
    def attach(self, circuit: Circuit) -> None:
        if self._circuit is not None:
            raise CircuitError("this executor already serves a circuit")
        from .circuit import Circuit

        self._circuit = circuit
        home = Circuit(clock=circuit._clock, dialect=circuit.dialect)
        home._tables = circuit._tables
        home._records_before = circuit._records_before
        self._home = home
        self._set_fast_path()
        reset = orjson.dumps({"op": "reset", "dialect": circuit.dialect})
        for worker in self.workers:  # a pool may have served another executor before
            worker.tables, worker.outbox = set(), []
            self._send(worker, reset)

    @property
    def circuit(self) -> Circuit:
        if self._circuit is None:
            raise CircuitError("the executor is not attached to a circuit")
        return self._circuit

    @property
    def home(self) -> Circuit:
        """The home replica: the main process's views, on the primary's own tables."""
        if self._home is None:
            raise CircuitError("the executor is not attached to a circuit")
        return self._home

    def view_names(self) -> list[str]:
        return list(self._views)

    def placement(self) -> dict[str, int]:
        """view -> the slot it runs on: 0 is the main process, 1... the workers."""
        return {name: view.slot for name, view in self._views.items()}

    def register_view(
        self,
        name: str,
        sql: str,
        params: Mapping[str, Any] | None,
        format: str,
        *,
        path: str | None = None,
    ) -> ViewUpdate | None:
        """Plan (errors come from here, as sequentially), place, and register.

        Once the workers are built a new view goes to the least loaded slot. A
        view on a worker gets its initial update from the local replica when
        there is one (the worker builds its copy meanwhile), else from the worker.
        """
        self._check_open()
        self._settle()  # the call in flight ran with the views of before
        circuit = self.circuit
        plan = plan_view(name, sql, params, path=path, dialect=circuit.dialect)
        if name in self._views:
            self.unregister_view(name)
        self._order += 1
        kept = dict(params) if params else None
        view = _View(
            name, sql, kept, format, self._order, frozenset(plan.tables), plan_cost(plan.top)
        )
        self._views[name] = view
        self._names.setdefault(name, None)
        for table in view.tables:
            self._dependents.setdefault(table, []).append(name)
        self._probe = [0, 0, 0]  # measured for other views
        circuit.advance_seq(circuit.seq + 1)
        seq = circuit.seq
        if self._built:  # rebalance() moves it once measured
            loads = self._loads()
            view.slot = min(range(self.slots), key=lambda i: (loads[i], i))
        if view.slot == HOME:
            home = self.home
            home.advance_seq(seq - 1)
            return home.register_view(name, sql, kept, format)
        worker = self._worker(view.slot)
        local = self._local
        if local is not None:
            self._catch_up(local)
            self._register_on(worker, view, seq)
            start = circuit._clock()
            local.advance_seq(seq - 1)
            update = local.register_view(name, sql, kept, format)
            self._build_ns += circuit._clock() - start
            return update
        self._register_on(worker, view, seq, emit=True)
        data = self._recv(worker)["update"]
        return None if data is None else _update(data)

    def unregister_view(self, name: str) -> None:
        self._check_open()
        self._settle()
        view = self._views.pop(name, None)
        if view is None:
            raise CircuitError(f"no view named {name!r}")
        for table in view.tables:
            readers = self._dependents[table]
            readers.remove(name)
            if not readers:
                del self._dependents[table]
        self._probe = [0, 0, 0]
        if view.slot == HOME:
            self.home.unregister_view(name)
            return
        self._send(self._worker(view.slot), orjson.dumps({"op": "unregister", "name": name}))
        if self._local is not None:
            self._local.unregister_view(name)

    def propagate(
        self,
        rounds: Iterable[TableChanges],
        versions_before: dict[str, int],
        stats: BatchStats,
        entries: list[Mutation],
        *,
        pipelined: bool = False,
    ) -> list[ViewUpdate] | None:
        """Run one applied call where it pays; its updates in registration order.

        With ``pipelined`` a call sent to the workers stays in flight: ``None``
        is returned, and the call completes (into :attr:`completed`) during a
        later call, once more than ``depth`` calls are in flight (after that
        call's home views have run), or at :meth:`settle`. Every other path
        settles first, so results complete in call order.
        """
        self._check_open()
        if entries:
            self._source, self._line = entries[-1].source, entries[-1].line
        circuit = self.circuit
        seq, line, version = circuit.seq, self._line, circuit.version
        clock = circuit._clock
        several = not isinstance(rounds, list)  # --no-coalesce: applied as they are consumed
        if not self._built:
            self._settle()
            if several:  # decided before applying, on what the entries may change
                gated = self._gated([{m.table: () for m in entries if m.table}], len(entries))
            else:
                gated = self._gated(rounds, stats.entries_after_coalesce)  # type: ignore[arg-type]
            self._calls["main"] += 1
            if gated:
                return self._run_home(rounds, versions_before, stats)
            start = clock()
            self._applied_ns += start - circuit.call_started
            updates = self._run_home(rounds, versions_before, stats)
            eligible = self._eligible_ns
            # worth it from the next call on once these calls have cost as much as the
            # last build, and their views outweigh applying their entries enough to pay
            # for encoding and merging (VIEWS_OVER_APPLY)
            if eligible >= self._workers_build_ns and (
                not self.cost_gate or eligible >= VIEWS_OVER_APPLY * self._applied_ns
            ):
                self._build_workers(seq)
            else:
                self._eligible_ns += clock() - start
            return updates
        self._home_spent, self._encode_ns = self._home_views_ns(), 0
        if not several and not rounds:  # nothing changed: nothing to run anywhere
            self._settle()
            self._calls["main"] += 1
            stats.tables_touched = stats.views_impacted = stats.views_updated = 0
            return []
        call: list[Round] = []
        touched: set[str] = set()
        home: list[ViewUpdate] | None = None
        if several:  # the home replica runs first, recording each round as it is applied
            recorded = _recorded(rounds, call, touched, version)
            try:
                home = self._run_home(recorded, versions_before, stats)
            except CircuitError:
                # an entry stopped the call (--strict): the rounds before it reached every
                # view sequentially, so the other replicas get them too before the error
                if call:
                    self._queue(seq, line, call, touched, interrupted=True)
                    if self._local is not None:
                        self._backlog.append((seq, line, call, True))
                raise
        else:
            encoding = clock()
            for by_table in rounds:
                touched.update(by_table)
                call.append(_encode_round(by_table, version))
            self._encode_ns = clock() - encoding
        if self._gated([dict.fromkeys(touched)], stats.entries_after_coalesce):
            self._settle()
            if self._local is None and self._missed_ns >= self._build_ns:
                self._rebuild_local(_before_call(circuit, versions_before))
            local = self._local
            if local is not None:
                return self._run_local(
                    local, seq, line, call, touched, stats, rounds, versions_before, home
                )
            start = clock()  # no local replica: the workers run the call
            self._send_call(seq, line, call, touched, stats, rounds, versions_before, home)
            self._settle()
            self._missed_ns += clock() - start
            return self._take_own(stats)
        self._send_call(seq, line, call, touched, stats, rounds, versions_before, home)
        if not pipelined:
            self._settle()
            self._rebalance(seq)
            return self._take_own(stats)
        self._rebalance(seq)
        return None

    @property
    def calls(self) -> dict[str, int]:
        """Ingest calls run in the main process only (``main``) and sent to the workers."""
        tiny = self._circuit.tiny_calls if self._circuit is not None else 0
        return {"main": self._calls["main"] + tiny, "workers": self._calls["workers"]}

    def settle(self) -> None:
        """Complete the calls in flight, oldest first: their results go to :attr:`completed`."""
        self._settle()

    @property
    def in_flight(self) -> bool:
        return bool(self._flights)

    def _gated(self, rounds: Sequence[Mapping[str, Any]], changed: int) -> bool:
        """Whether a call is too small to be worth the workers (``--parallel-threshold``).

        ``rounds`` are keyed by the tables the call changed.
        """
        if self.threshold <= 0:
            return False
        if changed < self.min_changes or not self._pays():
            return True
        dependents = self._dependents
        impacted = {
            n for by_table in rounds for table in by_table for n in dependents.get(table, ())
        }
        return len(impacted) < self.threshold

    def _pays(self) -> bool:
        """Whether sending calls to the workers has saved the main process more than it
        costs it: the workers' views' time against what encoding, sending, waiting for
        and merging their answers took the main process, over the parallel calls
        measured since the workers were built (see "Gating")."""
        calls, saved, spent = self._probe
        return not self.cost_gate or calls < PROBE_CALLS or saved >= spent

    def rows(self, name: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self._read(name, "rows")
        return rows

    def members(self, name: str) -> list[tuple[str, int]]:
        return [(rid, version) for rid, version in self._read(name, "members")]

    def metrics(self, *, best_effort: bool = False) -> CircuitMetrics:
        """Every replica's counts summed (SPEC section 4), state from the view's slot.

        ``best_effort`` (after a failure or Ctrl-C) skips workers that do not
        answer within :data:`RECV_TIMEOUT_S` instead of raising.
        """
        if self._final_metrics is not None:
            return self._final_metrics
        if best_effort:
            self._flights.clear()  # given up on: their answers are skipped
        else:
            self._settle()
        home = metrics_message(self.home)
        sources: list[dict[str, Any]] = [
            {"views": self._retired_views, "operators": [], "retired": True},
            home,
        ]
        current: dict[str, Any] | None = None
        if self._local is not None:
            sources.append(metrics_message(self._local))
            if not self._backlog:
                current = sources[-1]
        owners: dict[int, dict[str, Any]] = {}
        for worker in self.workers:
            if self._closed or worker.failed or not self._built:
                continue
            try:
                self._send(worker, b'{"op":"metrics"}', answered=True)
                owners[worker.index] = self._recv(
                    worker, timeout=RECV_TIMEOUT_S if best_effort else None
                )
            except CircuitError:
                if not best_effort:
                    raise
        sources.extend(owners.values())
        owners[HOME] = home
        return self._merge_metrics(sources, owners, current)

    def sync(self) -> None:
        """Wait until every worker has caught up (e.g. built the views registered so far).

        Registration on workers does not wait for them; a replay calls this
        before its first ingest call so that start-up is not timed as ingest.
        """
        for worker in self.workers:
            self._ask(worker, {"op": "ping"})

    def finish(self, *, state: bool = True) -> None:
        """End of a replay: keep the final metrics (and state) and stop the workers.

        With ``state``, every view's rows and members are read first, so that
        ``rows()``/``members()`` (``--dump``) still answer afterwards. After a
        failure (``state=False``) whatever the live workers report is kept.
        """
        if self._closed:
            return
        try:
            if state:
                self._final_state = self._final_views()
            self._final_metrics = self.metrics(best_effort=not state)
        finally:
            self.close()

    def close(self) -> None:
        """Stop using the workers (and stop them when the executor owns the pool)."""
        if self._closed:
            return
        self._closed = True
        self._set_fast_path()
        if self.owns_pool:
            self.pool.close()

    def report(self) -> dict[str, Any]:
        """The report's ``executor`` section: where calls ran and where views live."""
        return {
            "name": "processes",
            "workers": self.slots,
            "parallel_threshold": self.threshold,
            "pipeline_depth": self.depth,
            "min_changes": self.min_changes,
            "calls_main": self.calls["main"],
            "calls_workers": self.calls["workers"],
            "local_replica_drops": self.local_drops,
            "local_replica_rebuilds": self.local_rebuilds,
            "worker_builds": self.worker_builds,
            "worker_drops": self.worker_drops,
            "views_moved": self.moves,
            "placement": self.placement(),
        }

    # running calls ------------------------------------------------------------------------
    def _run_home(
        self, rounds: Iterable[TableChanges], versions_before: dict[str, int], stats: BatchStats
    ) -> list[ViewUpdate]:
        """The home views' share of the call, on the primary's tables as they are applied."""
        home = self.home
        home.advance_seq(self.circuit.seq)
        updates = home.propagate(rounds, versions_before, stats)
        if not self._home_ordered and len(updates) > 1:
            order = self._views
            updates.sort(key=lambda u: order[u.view].order)
        return updates

    def _run_local(
        self,
        local: Circuit,
        seq: int,
        line: int,
        call: list[Round],
        touched: set[str],
        stats: BatchStats,
        rounds: Iterable[TableChanges],
        versions_before: dict[str, int],
        home: list[ViewUpdate] | None,
    ) -> list[ViewUpdate]:
        """A gated call while the workers are built: the home views, then the others on the
        local replica; the workers see the call later, with their next message."""
        self._calls["main"] += 1
        if home is None:
            home = self._run_home(rounds, versions_before, stats)
        self._catch_up(local)
        table_rounds, local_before = apply_rounds(local, call)
        local.advance_seq(seq)
        theirs = BatchStats()
        updates = home + local.propagate(table_rounds, local_before, theirs)
        _add_stats(stats, theirs.views_impacted, theirs.events)
        _finish_stats(stats, touched, updates, self._views)
        # queued even when the workers are dropped now: they catch up on it before
        # reporting the subquery cache counts their views come home with
        self._queue(seq, line, call, touched)
        self._worker_backlog += 1
        if self._worker_backlog > self.worker_backlog_limit or not self._pays():
            self._drop_workers()
        return updates

    def _catch_up(self, local: Circuit) -> None:
        """Replay the calls the workers ran, in order, without updates or counting."""
        if not self._backlog:
            return
        with uncounted(local):
            for seq, _line, call, interrupted in self._backlog:
                table_rounds, versions_before = apply_rounds(local, call, interrupted=interrupted)
                local.advance_seq(seq)
                propagate_call(local, table_rounds, versions_before, BatchStats(), emit=False)
        self._backlog = []

    def _queue(
        self,
        seq: int,
        line: int,
        call: list[Round],
        touched: set[str],
        *,
        interrupted: bool = False,
    ) -> None:
        """A call the main process ran: every worker holding a changed table must see it."""
        data = b""
        for worker in self.workers:
            if worker.tables.isdisjoint(touched):
                continue
            if not data:
                data = orjson.dumps([seq, line, call, True] if interrupted else [seq, line, call])
            worker.outbox.append(data)
            if len(worker.outbox) >= OUTBOX_LIMIT:
                self._flush(worker)

    def _send_call(
        self,
        seq: int,
        line: int,
        call: list[Round],
        touched: set[str],
        stats: BatchStats,
        rounds: Iterable[TableChanges],
        versions_before: dict[str, int],
        home: list[ViewUpdate] | None,
    ) -> None:
        """Send the call to the workers and run the home views meanwhile; the call
        stays in flight, and the oldest ones complete while more than ``depth`` are
        (their answers came while these views ran)."""
        sending = self.circuit._clock()
        self._calls["workers"] += 1
        self._worker_backlog = 0
        involved = [w for w in self.workers if not w.tables.isdisjoint(touched)]
        if involved:
            data = orjson.dumps([seq, line, call])
            for worker in involved:
                worker.outbox.append(data)
                self._flush(worker, emit=True)
        if self._local is not None:
            self._backlog.append((seq, line, call, False))
            if len(self._backlog) > self.backlog_limit:
                self._drop_local()
        sent_ns = self.circuit._clock() - sending + self._encode_ns
        if home is None:
            home = self._run_home(rounds, versions_before, stats)
        started = self.circuit.call_started
        main_ns = self.circuit._clock() - started
        views_ns = self._home_views_ns() - self._home_spent
        flight = _Flight(stats, touched, home, involved, started, main_ns, views_ns, sent_ns)
        flights = self._flights
        flights.append(flight)
        while len(flights) > self.depth:
            self._settle_oldest()

    def _home_views_ns(self) -> int:
        """The time the home views have spent so far (their ``time_ns``)."""
        return sum(metrics.time_ns for metrics in self.home._view_metrics.values())

    def _settle(self) -> None:
        """Complete every call in flight, oldest first."""
        while self._flights:
            self._settle_oldest()

    def _settle_oldest(self) -> None:
        """Merge the answers of the oldest call in flight with its home updates."""
        flight = self._flights.popleft()
        clock = self.circuit._clock
        start = clock()
        costs = self._worker_costs
        found: list[dict[str, Any]] = []
        impacted = 0
        events: dict[str, int] = {}
        overhead = self._overhead_ns
        if len(overhead) != self.slots:
            overhead[:] = [0] * self.slots
        busy = [0]  # the time each slot spent on this call
        waited = saved = 0
        for worker in flight.involved:
            wait_start = clock()
            reply = self._reply(worker)
            waited += clock() - wait_start
            self._moves_ns += reply["moved_ns"]
            found.extend(reply["updates"])
            impacted += reply["impacted"]
            for kind, count in reply["events"].items():
                events[kind] = events.get(kind, 0) + count
            spent_now = 0
            for name, spent in reply["costs"].items():
                spent_now += spent - costs.get((worker.index, name), 0)
                costs[worker.index, name] = spent
            overhead[worker.index] += max(0, reply["busy_ns"] - spent_now)
            busy.append(reply["busy_ns"])
            saved += spent_now
        stats = flight.stats
        _add_stats(stats, impacted, events)
        home = flight.home
        updates = home + [_update(u) for u in found] if found else home
        _finish_stats(stats, flight.touched, updates, self._views)
        end = clock()
        merged_ns = (end - start) - waited
        main_ns = flight.main_ns + merged_ns
        probe = self._probe
        probe[0] += 1
        probe[1] += saved
        probe[2] += flight.sent_ns + merged_ns + waited
        overhead[HOME] += max(0, main_ns - flight.views_ns)
        busy[0] = main_ns
        self._imbalance_ns += max(busy) - sum(busy) // self.slots
        stats.duration_ns = end - flight.started
        self.completed.append(BatchResult(updates, stats))

    def _take_own(self, stats: BatchStats) -> list[ViewUpdate]:
        """The updates of the call just settled (the last completed), taken back from
        :attr:`completed`: a call that was not pipelined returns them itself."""
        result = self.completed.pop()
        assert result.stats is stats
        return result.updates

    # the local replica ----------------------------------------------------------------------
    def _new_local(self, before: dict[str, list[Any]]) -> Circuit:
        """A replica of the workers' views, from the primary's tables as of before this call.

        ``before`` holds the states before the call being run (whose entries
        the primary has already applied) of the records it wrote.
        """
        from .circuit import Circuit

        primary = self.circuit
        start = primary._clock()
        local = Circuit(clock=primary._clock, dialect=primary.dialect)
        version = primary.version
        snapshot = [
            [table, rid, record, version(rid)]
            for table, rows in primary.tables().items()
            for rid, record in rows.items()
            if rid not in before
        ]
        snapshot += [change for change in before.values() if change[2] is not None]
        if snapshot:
            local.apply_changes(snapshot)  # type: ignore[arg-type]
        local.advance_seq(primary.seq - 1)
        for view in self._views.values():
            if view.slot == HOME:
                continue
            register_uncounted(local, view.name, view.sql, view.params, view.format)
            built = local._view(view.name)
            if built.synthetic:
                reply = self._ask(
                    self._worker(view.slot), {"op": "row_versions", "name": view.name}
                )
                built.row_versions = reply["row_versions"]
        self._build_ns = primary._clock() - start
        return local

    def _drop_local(self) -> None:
        """Forget the local replica (keeping what it counted): catching up would cost too much."""
        local = self._local
        assert local is not None
        self._retire(metrics_message(local))
        self._local, self._backlog = None, []
        self._missed_ns = 0
        self.local_drops += 1

    def _set_fast_path(self) -> None:
        """While every view is home (in registration order), a call gated by
        ``min_changes`` needs no other test: the circuit runs it on the home replica
        directly (:meth:`Circuit.route_tiny_calls`), as sequential execution would."""
        fast = not self._built and not self._closed and self.threshold > 0 and self._home_ordered
        self.circuit.route_tiny_calls(self.home if fast else None, self.min_changes)

    def _rebuild_local(self, before: dict[str, list[Any]]) -> None:
        self._local = self._new_local(before)
        self.local_rebuilds += 1

    def _retire(self, message: dict[str, Any]) -> None:
        """Keep the counts of a replica about to be forgotten (a metrics message)."""
        _add_views(self._retired_views, message["views"])
        self._retire_ops(message["operators"])

    def _retire_ops(self, operators: list[dict[str, Any]]) -> None:
        for op in operators:
            view = self._views.get(op["view"])
            if view is not None:
                ops = self._retired_ops.setdefault((view.name, view.order), {})
                _add_op(ops, op["path"], op["self_ns"], op["rows_in"], op["rows_out"])

    # placement ------------------------------------------------------------------------------
    def _cost(self, name: str) -> int:
        """A view's measured time so far, over every replica that ran it."""
        spent = sum(self._worker_costs.get((worker.index, name), 0) for worker in self.workers)
        retired = self._retired_views.get(name)
        if retired is not None:
            spent += retired["time_ns"]
        for replica in (self._home, self._local):
            if replica is not None and name in replica._view_metrics:
                spent += replica._view_metrics[name].time_ns
        return spent

    def _costs(self) -> dict[str, float]:
        """Every view's measured cost, or its plan size when nothing is measured yet."""
        measured: dict[str, float] = {name: self._cost(name) for name in self._views}
        if any(measured.values()):
            return measured
        return {name: view.cost for name, view in self._views.items()}

    def _unit_costs(self) -> dict[str, float]:
        """The measured cost of each sharing group (see :func:`_sharing_groups`), keyed by
        its first view's name: views that share state are placed together."""
        units: dict[str, float] = {}
        groups = self._groups
        for name, cost in self._costs().items():
            unit = groups.get(name, name)
            units[unit] = units.get(unit, 0.0) + cost
        return units

    def _expand(self, placed: Mapping[str, int]) -> dict[str, int]:
        """A placement of sharing groups as one of views."""
        groups = self._groups
        return {name: placed[groups.get(name, name)] for name in self._views}

    def _loads(self) -> list[float]:
        costs = self._costs()
        loads = [0.0] * self.slots
        for name, view in self._views.items():
            loads[view.slot] += costs[name]
        return loads

    def _build_workers(self, seq: int) -> None:
        """Place the views over the main process and the workers, after call ``seq``: the
        views placed on workers move there (see "Lazy workers")."""
        start = self.circuit._clock()
        self._groups = _sharing_groups(self.home)
        # the slots' work besides their views, until measured: the main process applies
        # the entries; a worker decodes, stores and encodes, measured at about half that
        applied = self._applied_ns
        base = [applied, *[applied // 2] * len(self.workers)]
        placed = self._expand(place(self._unit_costs(), self.slots, base))
        self._built = True
        self._set_fast_path()
        leaving = [view for name, view in self._views.items() if placed[name] != HOME]
        # the views sharing another's state leave first: the home replica rebuilds none
        left = {view.name: self._leave_home(view) for view in reversed(leaving)}
        for view in leaving:
            view.slot = placed[view.name]
            versions, cache = left[view.name]
            self._register_on(
                self._worker(view.slot), view, seq + 1, row_versions=versions, cache=cache
            )
        self.sync()
        self._workers_build_ns = self.circuit._clock() - start
        self._build_ns = self._build_ns or self._workers_build_ns  # until one is measured
        # views move only once the imbalance has cost as much as placing them did
        self._moves_ns, self._imbalance_ns = self._workers_build_ns, 0
        self.worker_builds += 1

    def _drop_workers(self) -> None:
        """Bring every view home, keeping what the workers counted: the main process runs
        the calls. Called right after the local replica ran a call, so it is current."""
        local = self._local
        assert local is not None and not self._backlog
        cache: dict[str, list[int]] = {}
        for worker in self.workers:  # they catch up first: they saw every call of their views
            names = self._views_on(worker)
            if names:
                cache.update(self._ask(worker, {"op": "cache", "names": names}))
        for view in self._views.values():
            if view.slot != HOME:
                built = local._view(view.name)
                versions = built.row_versions if built.synthetic else None
                self._home_register(view, versions, cache[view.name])
        self._drop_local()
        for worker in self.workers:
            self._retire(self._ask(worker, {"op": "metrics"}))
            self._send(worker, orjson.dumps({"op": "reset", "dialect": self.circuit.dialect}))
            worker.tables = set()
        self._worker_costs = {}
        self._imbalance_ns = self._moves_ns = 0
        self._built, self._worker_backlog, self._eligible_ns = False, 0, 0
        self._applied_ns, self._rebalance_at, self._rebalance_gap = 0, 1, 1
        self._set_fast_path()
        self.worker_drops += 1

    def _rebalance(self, seq: int) -> None:
        """Move views between slots when their measured costs are out of balance.

        Moving costs the views' builds; views move again only once the
        imbalance since the last moves (the time the busiest slot spent beyond
        the average, per call) has cost as much as those builds (the
        ski-rental rule again), so that costs that keep shifting cannot make
        views bounce between slots for more than they save; and the parallel
        calls between two rounds of moves double (1, 2, 4, ...): measured costs
        settle as calls accumulate, so the rounds thin out with them.
        """
        parallel = self._calls["workers"]
        if parallel < self._rebalance_at or self._imbalance_ns < self._moves_ns:
            return
        placement = {self._groups.get(name, name): view.slot for name, view in self._views.items()}
        moved = rebalance(
            self._unit_costs(), placement, self.slots, self.rebalance_gain, self._overhead_ns
        )
        if moved is None:
            return
        clock = self.circuit._clock
        start = clock()
        moving = [(self._views[n], i) for n, i in self._expand(moved).items()]
        moving = [(view, index) for view, index in moving if index != view.slot]
        # views sharing another's state leave first, and arrive after it
        left = {view.name: self._leave(view) for view, _ in reversed(moving)}
        for view, index in moving:
            self._arrive(view, index, seq, *left[view.name])
            self.moves += 1
        # the main process's share of the moves' cost; the workers' comes with their answers
        self._imbalance_ns, self._moves_ns = 0, clock() - start
        self._rebalance_gap *= 2
        self._rebalance_at = parallel + self._rebalance_gap

    def _leave(self, view: _View) -> tuple[dict[str, int] | None, list[int]]:
        """Take a view off its slot, keeping the operator counts of the replica it leaves;
        its aggregate row versions and subquery cache counts go with it."""
        if view.slot == HOME:
            return self._leave_home(view)
        reply = self._ask(self._worker(view.slot), {"op": "retire", "name": view.name})
        self._retire_ops(reply["operators"])
        return reply["row_versions"], reply["cache"]

    def _arrive(
        self, view: _View, slot: int, seq: int, versions: dict[str, int] | None, cache: list[int]
    ) -> None:
        """Register a view that left its slot on ``slot``, after call ``seq``."""
        if slot == HOME:
            self._home_register(view, versions, cache)
            if self._local is not None:
                self._drop_local()
            return
        view.slot = slot
        self._register_on(
            self._worker(slot), view, seq + 1, row_versions=versions, cache=cache, moved=True
        )

    def _leave_home(self, view: _View) -> tuple[dict[str, int] | None, list[int]]:
        """Unregister a view from the home replica, keeping its operator counts; its
        aggregate row versions go with it."""
        home = self.home
        built = home._view(view.name)
        self._retire_ops([op.to_json() for op in built.operator_metrics.values()])
        cache = cache_counts(built)
        home.unregister_view(view.name)
        if self._local is not None:  # it lacks the view: built again when it pays
            self._drop_local()
        return (built.row_versions if built.synthetic else None), cache

    def _home_register(
        self, view: _View, row_versions: dict[str, int] | None, cache: list[int]
    ) -> None:
        """Register a view coming home, uncounted (its counts are where it ran)."""
        home = self.home
        home.advance_seq(self.circuit.seq)
        register_uncounted(home, view.name, view.sql, view.params, view.format)
        built = home._view(view.name)
        if row_versions is not None:
            built.row_versions = row_versions
        carry_cache(built, cache)
        view.slot = HOME
        self._home_ordered = False
        self._set_fast_path()

    def _register_on(
        self,
        worker: Worker,
        view: _View,
        seq: int,
        *,
        emit: bool = False,
        row_versions: dict[str, int] | None = None,
        cache: list[int] | None = None,
        moved: bool = False,
    ) -> None:
        """Register ``view`` on ``worker`` as of call ``seq``, shipping the tables it lacks."""
        message = {
            "op": "register",
            "name": view.name,
            "sql": view.sql,
            "params": view.params,
            "format": view.format,
            "seq": seq,
            "emit": emit,
            "tables": self._snapshots(worker, view.tables),
            "row_versions": row_versions,
            "cache": cache,
            "moved": moved,
        }
        self._send(worker, orjson.dumps(message), answered=emit)

    # reading state --------------------------------------------------------------------------
    def _read(self, name: str, what: str) -> Any:
        if name not in self._views:
            raise CircuitError(f"no view named {name!r}")
        if self._final_state is not None:
            return self._final_state[name][what]
        self._check_open()
        self._settle()
        slot = self._views[name].slot
        replica = self.home if slot == HOME else self._local
        if replica is not None and (slot == HOME or not self._backlog):
            return replica.rows(name) if what == "rows" else replica.members(name)
        return self._ask(self._worker(slot), {"op": what, "name": name})[what]

    def _final_views(self) -> dict[str, dict[str, Any]]:
        home = self.home
        local = self._local if not self._backlog else None
        state: dict[str, dict[str, Any]] = {}
        for name, view in self._views.items():
            replica = home if view.slot == HOME else local
            if replica is not None:
                state[name] = {"rows": replica.rows(name), "members": replica.members(name)}
        if local is None:
            for worker in self.workers:
                names = [n for n, v in self._views.items() if v.slot == worker.index]
                if names:
                    state.update(self._ask(worker, {"op": "state", "names": names}))
        return {name: state[name] for name in self._views}

    # metrics ---------------------------------------------------------------------------------
    def _merge_metrics(
        self,
        sources: list[dict[str, Any]],
        owners: dict[int, dict[str, Any]],
        current: dict[str, Any] | None,
    ) -> CircuitMetrics:
        """Sum the counts; take each view's state (rows, members, ...) and operator list
        from the replica on its slot, or from the local replica when it is current and
        the worker cannot answer (after a failure)."""
        merged: dict[str, dict[str, Any]] = {}
        for source in sources:
            _add_views(merged, source["views"])
        views: dict[str, dict[str, Any]] = {}
        operators: list[dict[str, Any]] = []
        for name in self._names:
            data = merged.get(name)
            if data is None:
                continue
            live = self._views.get(name)
            owner = None if live is None else owners.get(live.slot, current)
            if owner is not None and name in owner["views"]:
                own = owner["views"][name]
                self._shapes[name] = {k: v for k, v in own.items() if k not in _COUNTS}
            views[name] = _view_json(data, self._shapes.get(name, {}))
            if live is not None and owner is not None:
                operators.extend(self._operators(live, owner, sources))
        return CircuitMetrics(views, operators)

    def _operators(
        self, live: _View, owner: dict[str, Any], sources: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        sums: dict[str, list[int]] = {}
        for source in sources:
            if source.get("retired"):
                continue
            for op in source["operators"]:
                if op["view"] == live.name:
                    _add_op(sums, op["path"], op["self_ns"], op["rows_in"], op["rows_out"])
        for path, (self_ns, rows_in, rows_out) in self._retired_ops.get(
            (live.name, live.order), {}
        ).items():
            _add_op(sums, path, self_ns, rows_in, rows_out)
        return [
            {
                "view": live.name,
                "path": op["path"],
                "self_ns": sums[op["path"]][0],
                "rows_in": sums[op["path"]][1],
                "rows_out": sums[op["path"]][2],
            }
            for op in owner["operators"]
            if op["view"] == live.name
        ]

    # talking to workers ----------------------------------------------------------------------
    def _worker(self, slot: int) -> Worker:
        return self.workers[slot - 1]

    def _snapshots(self, worker: Worker, tables: frozenset[str]) -> dict[str, list[Any]]:
        """The records of the tables a worker lacks, for a view placed on it."""
        circuit = self.circuit
        version = circuit.version
        out: dict[str, list[Any]] = {}
        for table in sorted(tables - worker.tables):
            rows = circuit.tables().get(table, {})
            out[table] = [[rid, record, version(rid)] for rid, record in rows.items()]
            worker.tables.add(table)
        return out

    def _flush(self, worker: Worker, *, emit: bool = False) -> None:
        """Send the worker's queued calls (the last one answered when ``emit``)."""
        if not worker.outbox:
            return
        head = (
            b'{"op":"calls","emit":true,"calls":['
            if emit
            else b'{"op":"calls","emit":false,"calls":['
        )
        data = head + b",".join(worker.outbox) + b"]}"
        worker.outbox = []
        self._send(worker, data, answered=emit)

    def _send(self, worker: Worker, data: bytes, *, answered: bool = False) -> None:
        """Send a message after the worker's queued calls, which it must see first."""
        if worker.failed:
            raise self._failure(worker, "is gone after an earlier failure")
        if worker.outbox and not data.startswith(b'{"op":"calls"'):
            self._flush(worker)
        try:
            worker.transport.send(data)
        except TransportClosed:
            worker.failed = True
            raise self._died(worker) from None
        worker.unanswered += answered

    def _recv(self, worker: Worker, timeout: float | None = None) -> dict[str, Any]:
        """The answer to the last answered message sent to ``worker`` (earlier answers,
        of calls given up on after an error, are skipped). The calls in flight are
        completed first: their answers come before any other."""
        if self._flights:
            self._settle()
        while True:
            reply = self._reply(worker, timeout)
            if worker.unanswered <= 0:
                worker.unanswered = 0
                return reply

    def _reply(self, worker: Worker, timeout: float | None = None) -> dict[str, Any]:
        """The worker's next answer; a failure it reports is raised."""
        try:
            reply: dict[str, Any] = orjson.loads(worker.transport.recv(timeout))
        except TransportClosed:
            worker.failed = True
            raise self._died(worker) from None
        if "error" in reply:
            worker.failed = True
            raise self._worker_error(worker, reply)
        worker.unanswered -= 1
        return reply

    def _ask(self, worker: Worker, message: dict[str, Any]) -> dict[str, Any]:
        self._send(worker, orjson.dumps(message), answered=True)
        return self._recv(worker)

    def _views_on(self, worker: Worker) -> list[str]:
        return [name for name, view in self._views.items() if view.slot == worker.index]

    def _died(self, worker: Worker) -> ReplayError:
        process = worker.process
        if process is not None:
            process.join(POLL_S)
        code = None if process is None else process.exitcode
        how = "exited" if code is None else f"exited with code {code}"
        return self._failure(worker, f"{how} while the replay needed it")

    def _failure(self, worker: Worker, what: str) -> ReplayError:
        return ReplayError(
            f"{worker.describe(self._views_on(worker))} {what} (ingest call {self.circuit.seq})",
            location=log_location(self._source, self._line),
            hint="the other workers were stopped; rerun with --executor sequential to compare",
        )

    def _worker_error(self, worker: Worker, reply: dict[str, Any]) -> ReplayError:
        views = ", ".join(reply["views"]) or "no view"
        return ReplayError(
            f"worker {worker.index} failed in view {views} at ingest call {reply['seq']}: "
            f"{reply['kind']}: {reply['error']}",
            location=log_location(self._source, reply["line"] or self._line),
        )

    def _check_open(self) -> None:
        if self._closed:
            raise CircuitError("the process executor is closed")


def _encode_round(by_table: TableChanges, version: Any) -> Round:
    """One round of a call as the workers receive it: ``[table, id, record, version]``."""
    return [
        [table, rid, new, 0 if new is None else version(rid)]
        for table, changes in by_table.items()
        for rid, _old, new in changes
    ]


def _recorded(
    rounds: Iterable[TableChanges], call: list[Round], touched: set[str], version: Any
) -> Iterator[TableChanges]:
    """``rounds``, each encoded into ``call`` as it is applied (its versions of then)."""
    for by_table in rounds:
        touched.update(by_table)
        call.append(_encode_round(by_table, version))
        yield by_table


def _add_stats(stats: BatchStats, impacted: int, events: Mapping[str, int]) -> None:
    stats.views_impacted += impacted
    into = stats.events
    for kind, count in events.items():
        into[kind] = into.get(kind, 0) + count


def _finish_stats(
    stats: BatchStats, touched: set[str], updates: list[ViewUpdate], views: Mapping[str, _View]
) -> None:
    """Updates from several replicas in registration order; the counts of the whole call."""
    if len(updates) > 1:
        updates.sort(key=lambda u: views[u.view].order)
    stats.tables_touched = len(touched)
    stats.views_updated = len(updates)


def _before_call(circuit: Circuit, versions_before: dict[str, int]) -> dict[str, list[Any]]:
    """``id -> [table, id, record, version]`` before the call, for the records it wrote."""
    return {
        rid: [table, rid, old, versions_before.get(rid, 0)]
        for rid, (table, old) in circuit._records_before.items()
    }


def _sharing_groups(circuit: Circuit) -> dict[str, str]:
    """view -> the first view of its group: views sharing state (an identical view's, an
    aggregate's levels, a top-k window's ordered rows) with one another, transitively.

    Placed apart, each would compute that state again on its own replica.
    """
    parent: dict[str, str] = {}

    def root(name: str) -> str:
        while parent.get(name, name) != name:
            name = parent[name]
        return name

    for name, view in circuit._views.items():
        for owner in view.owners:
            if owner is not None:
                low, high = sorted((root(owner.plan.name), root(name)), key=_order_in(circuit))
                parent[high] = low
    return {name: root(name) for name in circuit._views}


def _order_in(circuit: Circuit) -> Any:
    views = circuit._views
    return lambda name: views[name].order


def plan_cost(level: LevelPlan) -> int:
    """A view's cost estimate: its levels, joins, subqueries, aggregate and top-k."""
    cost = 1 + len(level.joins) + (level.aggregate is not None) + level.windowed
    cost += sum(plan_cost(atom.level) for atom in level.atoms)
    cost += sum(plan_cost(item.child) for item in level.nested() if item.child is not None)
    return cost


_COUNTS = frozenset((*SUMMED, "events", "samples", "time_ns_p50", "time_ns_p99"))


def _add_views(into: dict[str, dict[str, Any]], views: dict[str, dict[str, Any]]) -> None:
    """Add one replica's per-view counts (with raw samples) into ``into``."""
    for name, data in views.items():
        acc = into.get(name)
        if acc is None:
            acc = into[name] = {key: 0 for key in SUMMED}
            acc["events"] = {}
            acc["samples"] = array("q")
        for key in SUMMED:
            acc[key] += data[key]
        for kind, count in data["events"].items():
            acc["events"][kind] = acc["events"].get(kind, 0) + count
        samples = data["samples"]
        if isinstance(samples, str):
            acc["samples"].frombytes(base64.b64decode(samples))
        else:
            acc["samples"].extend(samples)


def _view_json(data: dict[str, Any], shape: dict[str, Any]) -> dict[str, Any]:
    metrics = ViewMetrics(samples=Samples(data["samples"]))
    for key in SUMMED:
        setattr(metrics, key, data[key])
    metrics.events.update(data["events"])
    for key, value in shape.items():
        if hasattr(metrics, key):
            setattr(metrics, key, value)
    return metrics.to_json()


def _add_op(
    into: dict[str, list[int]], path: str, self_ns: int, rows_in: int, rows_out: int
) -> None:
    acc = into.setdefault(path, [0, 0, 0])
    acc[0] += self_ns
    acc[1] += rows_in
    acc[2] += rows_out


def _update(data: dict[str, Any]) -> ViewUpdate:
    return ViewUpdate(
        data["view"],
        data["seq"],
        data["format"],
        records=data.get("records"),
        result_hash=data.get("result_hash"),
        result_data=data.get("result_data"),
    )


def place(costs: Mapping[str, float], workers: int, base: Sequence[float] = ()) -> dict[str, int]:
    """Views to workers, costliest first on the least loaded (then the one with fewest views).

    ``base`` is what each slot spends besides its views (the main process
    applies every entry; a worker decodes and encodes), in the costs' unit.
    """
    loads = [float(load) for load in base] if base else [0.0] * workers
    counts = [0] * workers
    placed: dict[str, int] = {}
    for name in sorted(costs, key=lambda n: -costs[n]):
        index = min(range(workers), key=lambda i: (loads[i], counts[i], i))
        placed[name] = index
        loads[index] += costs[name]
        counts[index] += 1
    return {name: placed[name] for name in costs}


def rebalance(
    costs: Mapping[str, float],
    placement: Mapping[str, int],
    workers: int,
    min_gain: float = REBALANCE_GAIN,
    base: Sequence[float] = (),
) -> dict[str, int] | None:
    """A placement with a lighter heaviest worker, or None when the gain is below ``min_gain``.

    Starting from ``placement`` (so that few views move), repeatedly take the
    most and the least loaded workers and make the move of one view, or the
    swap of two, that best evens them out; stop when none lowers the heavier
    of the two. Deterministic: ties go to a move rather than a swap, then to
    the view registered first. ``base`` is each slot's load besides its views.
    """
    loads = [float(load) for load in base] if base else [0.0] * workers
    for name, index in placement.items():
        loads[index] += costs[name]
    heaviest = max(loads)
    moved = dict(placement)
    for _ in range(2 * len(moved)):
        high = max(range(workers), key=lambda i: (loads[i], -i))
        low = min(range(workers), key=lambda i: (loads[i], i))
        gap = loads[high] - loads[low]
        on_high = [n for n, i in moved.items() if i == high]
        on_low: list[str | None] = [None, *(n for n, i in moved.items() if i == low)]
        best: tuple[float, bool, str, str | None] | None = None
        for out in on_high:
            for back in on_low:
                shift = costs[out] - (0.0 if back is None else costs[back])
                if 0 < shift < gap:
                    key = (abs(gap - 2 * shift), back is not None)  # a move before a swap
                    if best is None or key < best[:2]:
                        best = (*key, out, back)
        if best is None:
            break
        _, _, out, back = best
        shift = costs[out] - (0.0 if back is None else costs[back])
        moved[out] = low
        if back is not None:
            moved[back] = high
        loads[high] -= shift
        loads[low] += shift
    if heaviest <= 0 or heaviest - max(loads) < min_gain * heaviest:
        return None
    return moved
