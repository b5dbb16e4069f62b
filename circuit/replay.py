"""Drive a circuit over a mutation log in one of three modes, and record a :class:`Run`.

The driver reads the log in chunks (so the clock is read once per chunk, not
once per entry, and ``read_s`` stays apart from the ingest calls' own
durations), then feeds the circuit entry by entry in the chosen mode:

- ``single``: one ``ingest_single`` per data entry;
- ``batch``: ``ingest_batch`` every ``batch_size`` data entries, and at a
  ``FLUSH`` entry;
- ``deferred``: ``ingest_deferred`` per data entry and ``flush()`` at every
  trigger of SPEC section 3.2 (``flush_every`` entries, a ``FLUSH`` entry, a
  ``frame_ms`` boundary of the entries' ``ts``, the pending limit, which the
  circuit applies itself, and the end of the log).

``REGISTER`` and ``UNREGISTER`` entries first propagate whatever is pending,
so a view registered in the log sees exactly the entries before it.

Per ingest call only its :class:`~circuit.metrics.BatchStats` is summed and its
duration kept as an 8-byte latency sample: memory does not grow with the log.

With the process executor, batch and deferred calls are *pipelined*
(:meth:`Circuit.submit_batch`): the main process applies the next call while
the workers finish the last one, and results are recorded in call order as
they complete (always before a control entry, and at the end). A call's
latency then runs from its start to its completion, and the ingest time is
the time the driver spent in the circuit's ingest methods (the calls overlap,
so their latencies do not add up to it).

A run that stops early still yields its :class:`Run`: :class:`RunFailed`
(a :class:`~circuit.errors.ReplayError` whose ``cause`` is the original error)
and :class:`ReplayInterrupted` (a ``KeyboardInterrupt``) carry it, so the CLI
writes the report of a failed or interrupted replay too.
"""

from __future__ import annotations

import gc
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

import orjson

from .circuit import Circuit
from .errors import CircuitError, MutationLogError, ReplayError
from .executors import PIPELINE_DEPTH, ProcessExecutor, WorkerPool, default_workers
from .metrics import BatchStats, Clock, Samples, default_clock
from .mutations import (
    DATA_OPS,
    FLUSH,
    REGISTER,
    UNREGISTER,
    LogReader,
    Mutation,
    OnError,
    read_initial,
    read_log,
)
from .report.run import (
    MAX_REJECTED_LINES,
    Errors,
    InitialLoad,
    Latency,
    Run,
    RunError,
    RunInfo,
    StoppedAt,
    Totals,
)
from .sql import load_views
from .timeline import Timeline
from .updates import FORMATS, BatchResult, ViewUpdate

Mode = Literal["single", "batch", "deferred"]
Executor = Literal["sequential", "processes"]
Format = Literal["streaming", "flat"]

MODES: tuple[Mode, ...] = get_args(Mode)
EXECUTORS: tuple[Executor, ...] = get_args(Executor)
AVAILABLE_EXECUTORS: tuple[Executor, ...] = EXECUTORS
ON_ERROR: tuple[OnError, ...] = get_args(OnError)

READ_CHUNK = 512
"""Entries read (and timed) per clock reading; also how often progress is reported."""

INITIAL_BATCH = 10_000
"""Records per ingest call when loading ``--initial`` (no view is registered yet)."""

GIT_TIMEOUT_S = 2.0

UpdateSink = Callable[[ViewUpdate], None]
ProgressSink = Callable[[int, int | None], None]
"""Called with ``(bytes_read, total_bytes)``; ``total_bytes`` is None for a pipe."""


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    """Every replay option of SPEC section 5 (the CLI builds one from its flags).

    ``flush_every`` and ``frame_ms`` apply to deferred mode only; ``workers``,
    ``parallel_threshold`` and ``pipeline_depth`` to the process executor. Invalid values raise
    :class:`~circuit.errors.ReplayError` naming the option.
    """

    mode: Mode = "batch"
    batch_size: int = 100
    flush_every: int | None = None
    frame_ms: float | None = None
    pending_limit: int = 10_000
    coalesce: bool = True
    executor: Executor = "sequential"
    workers: int | None = None
    parallel_threshold: int = 4
    pipeline_depth: int = PIPELINE_DEPTH
    params: Mapping[str, Any] = field(default_factory=dict)
    initial: str | None = None
    format: Format | None = None
    on_error: OnError = "fail"
    rejects: str | None = None
    strict: bool = False
    max_entries: int | None = None
    dialect: str | None = None

    def __post_init__(self) -> None:
        _choice("--mode", self.mode, MODES)
        _choice("--executor", self.executor, EXECUTORS)
        _choice("--on-error", self.on_error, ON_ERROR)
        if self.format is not None:
            _choice("--format", self.format, FORMATS)
        for flag, value, least in (
            ("--batch-size", self.batch_size, 1),
            ("--flush-every", self.flush_every, 1),
            ("--pending-limit", self.pending_limit, 1),
            ("--workers", self.workers, 1),
            ("--parallel-threshold", self.parallel_threshold, 0),
            ("--pipeline-depth", self.pipeline_depth, 0),
            ("--max-entries", self.max_entries, 0),
        ):
            if value is not None and value < least:
                raise ReplayError(f"must be at least {least}, got {value}", location=flag)
        if self.frame_ms is not None and not self.frame_ms > 0:
            raise ReplayError(f"must be positive, got {self.frame_ms}", location="--frame-ms")
        if self.executor not in AVAILABLE_EXECUTORS:
            raise ReplayError(
                f"the {self.executor!r} executor is not available yet",
                location="--executor",
                hint="use --executor sequential",
            )

    def to_json(self) -> dict[str, Any]:
        """Every option with its value, as the report's ``run.options``."""
        return {
            "mode": self.mode,
            "batch_size": self.batch_size,
            "flush_every": self.flush_every,
            "frame_ms": self.frame_ms,
            "pending_limit": self.pending_limit,
            "coalesce": self.coalesce,
            "executor": self.executor,
            "workers": self.workers,
            "parallel_threshold": self.parallel_threshold,
            "pipeline_depth": self.pipeline_depth,
            "params": dict(self.params),
            "initial": self.initial,
            "format": self.format,
            "on_error": self.on_error,
            "rejects": self.rejects,
            "strict": self.strict,
            "max_entries": self.max_entries,
            "dialect": self.dialect,
        }


def _choice(flag: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ReplayError(f"{value!r} is not one of {', '.join(allowed)}", location=flag)


class RunFailed(ReplayError):
    """A replay stopped by an error; ``run`` is its (partial) record, ``cause`` the error.

    Location, message and hint are the cause's, so it prints like the cause.
    """

    def __init__(self, run: Run, cause: CircuitError):
        super().__init__(cause.message, location=cause.location, hint=cause.hint)
        self.run = run
        self.cause = cause


class ReplayInterrupted(KeyboardInterrupt):
    """Ctrl-C during a replay; ``run`` is the record of what was done until then."""

    def __init__(self, run: Run):
        super().__init__()
        self.run = run


class Replayer:
    """One replay of one log through one circuit; :meth:`run` does it once.

    ``circuit`` stays available afterwards (``ssp replay --dump`` reads the
    final state from it). ``clock`` is shared with the circuit so that a
    :class:`~circuit.metrics.FakeClock` makes every number of the run
    deterministic.
    """

    def __init__(
        self,
        views_path: str | os.PathLike[str],
        log_path: str | os.PathLike[str],
        options: ReplayOptions,
        *,
        on_update: UpdateSink | None = None,
        progress: ProgressSink | None = None,
        clock: Clock | None = None,
        command: str = "replay",
        argv: Sequence[str] | None = None,
        circuit: Circuit | None = None,
    ) -> None:
        self.views_path = os.fspath(views_path)
        self.log_path = os.fspath(log_path)
        self.options = options
        self.clock: Clock = clock or default_clock()
        self.executor: ProcessExecutor | None = None
        if circuit is None and options.executor == "processes":
            pool = WorkerPool(options.workers or default_workers())
            self.executor = ProcessExecutor(
                pool,
                threshold=options.parallel_threshold,
                depth=options.pipeline_depth,
                owns_pool=True,
            )
        self.circuit = circuit or Circuit(
            clock=self.clock,
            strict=options.strict,
            coalesce=options.coalesce,
            pending_limit=options.pending_limit,
            executor=self.executor,
        )
        self.info = run_info(command, argv, options, self.views_path, self.log_path)
        self._on_update = on_update
        self._progress = progress
        self._propagate = {
            "single": self._nothing_pending,
            "batch": self._ingest_pending,
            "deferred": self._flush_deferred,
        }[options.mode]
        self._handle = {
            "single": self._single,
            "batch": self._batch,
            "deferred": self._deferred,
        }[options.mode]
        self.stats = BatchStats()
        self.latency = Samples()
        self.timeline = Timeline()
        # calls overlap (see the module docstring): the ingest time is then timed apart
        self._pipelined = (
            self.executor is not None and options.mode != "single" and options.pipeline_depth > 0
        )
        self.ingest_ns = 0
        self.entries = 0
        self.line = 0
        self.read_ns = 0
        self.initial: InitialLoad | None = None
        self._initial_anomalies: dict[str, int] = {}
        self._read_count = 0
        self._read_error: CircuitError | None = None
        self._pending: list[Mutation] = []
        self._queued = 0
        self._frame: float | None = None
        self._log: Iterable[Mutation] = ()
        self._used = False

    # -- the run ---------------------------------------------------------

    def run(self, views: Iterable[Any] | None = None, log: Iterable[Mutation] | None = None) -> Run:
        """Load, register, replay; return the :class:`Run` or raise one carrying it.

        ``views`` (objects with ``.name .sql .format``) and ``log`` (mutations,
        optionally with the :class:`~circuit.mutations.LogReader` attributes)
        replace reading the files, for callers that already hold them.
        """
        if self._used:
            raise ReplayError("a Replayer runs once; make a new one", location=self.log_path)
        self._used = True
        started = self.clock()
        failure: CircuitError | None = None
        stop_reason: str | None = None
        opened: LogReader | None = None
        try:
            if views is None:
                views = load_views(self.views_path, dialect=self.options.dialect)
            self._start(views)
            if self.executor is not None:
                self.executor.sync()  # worker start-up is not an ingest call
            if log is None:
                log = opened = read_log(
                    self.log_path, on_error=self.options.on_error, rejects=self.options.rejects
                )
            self._log = log
            with steady_gc():
                stop_reason = self._drive(log)
            if self.executor is not None:
                self.executor.finish()  # keeps final state and metrics, stops the workers
        except CircuitError as err:
            failure, stop_reason = err, "error"
            self._salvage()
        except OSError as err:
            where = str(err.filename) if err.filename is not None else self.log_path
            failure = ReplayError(err.strerror or str(err), location=where)
            stop_reason = "error"
            self._salvage()
        except KeyboardInterrupt:
            stop_reason = "interrupted"
            self._salvage()
        finally:
            if opened is not None:
                opened.close()
            self._stop_executor()
        run = self._record(started, stop_reason, failure)
        if failure is not None:
            raise RunFailed(run, failure) from failure
        if stop_reason == "interrupted":
            raise ReplayInterrupted(run)
        return run

    def _salvage(self) -> None:
        """After a failure: the calls before it that were still in flight complete and
        are recorded, as sequential execution would have; when they cannot (a worker
        failed), those that did complete are."""
        if not self._pipelined:
            return
        try:
            self._collect()
        except (CircuitError, KeyboardInterrupt):
            for result in self.circuit.collect(wait=False):
                self._record_result(result)

    def _stop_executor(self) -> None:
        """After a failure or Ctrl-C: keep what the live workers counted, stop them all."""
        if self.executor is None:
            return
        try:
            self.executor.finish(state=False)
        except (CircuitError, KeyboardInterrupt):
            self.executor.close()

    def _start(self, views: Iterable[Any]) -> None:
        """Load ``--initial`` (in big batches, not ingest calls), then register the views."""
        t0 = self.clock()
        records = 0
        if self.options.initial is not None:
            batch: list[Mutation] = []
            for m in read_initial(self.options.initial):
                batch.append(m)
                if len(batch) >= INITIAL_BATCH:
                    records += self._load(batch)
                    batch = []
            records += self._load(batch)
        t1 = self.clock()
        for view in views:
            self._register(view.name, view.sql, None, view.format, getattr(view, "path", None))
        t2 = self.clock()
        if self.options.initial is not None:
            self.initial = InitialLoad(records, _seconds(t1 - t0), _seconds(t2 - t1))

    def _load(self, batch: list[Mutation]) -> int:
        if batch:
            anomalies = self.circuit.load(batch).anomalies
            for kind, count in anomalies.items():
                self._initial_anomalies[kind] = self._initial_anomalies.get(kind, 0) + count
        return len(batch)

    def _drive(self, log: Iterable[Mutation]) -> str | None:
        """Feed every entry to the mode's handler; the stop reason (or None at the end)."""
        handle = self._handle
        stop_reason: str | None = None
        for chunk in self._chunks(log):
            for m in chunk:
                self.line = m.line
                self.entries += 1
                handle(m)
        if self._read_error is not None:
            self._propagate()
            if self._pipelined:
                self._collect()
            raise self._read_error
        if self.options.max_entries is not None and self._read_count >= self.options.max_entries:
            stop_reason = "max_entries"
        self._propagate()
        if self._pipelined:
            self._collect()
        return stop_reason

    def _chunks(self, log: Iterable[Mutation]) -> Iterator[list[Mutation]]:
        """The log in lists of up to :data:`READ_CHUNK` entries, reading timed apart.

        A bad line ends the stream: the entries before it are still yielded
        (and propagated) and the error is kept for :meth:`_drive` to raise.
        """
        it = iter(log)
        limit = self.options.max_entries
        clock = self.clock
        while True:
            size = READ_CHUNK if limit is None else min(READ_CHUNK, limit - self._read_count)
            if size <= 0:
                return
            chunk: list[Mutation] = []
            append = chunk.append
            done = False
            t0 = clock()
            try:
                for _ in range(size):
                    append(next(it))
            except StopIteration:
                done = True
            except CircuitError as err:
                self._read_error, done = err, True
            self.read_ns += clock() - t0
            self._read_count += len(chunk)
            if self._progress is not None:
                self._progress(getattr(log, "bytes_read", 0), getattr(log, "total_bytes", None))
            if chunk:
                yield chunk
            if done:
                return

    # -- the modes ---------------------------------------------------------

    def _single(self, m: Mutation) -> None:
        if m.op in DATA_OPS:
            updates = self.circuit.ingest_single(m)
            self._emit(updates)
            self._account(self.circuit.last_stats)
        else:
            self._control(m)

    def _batch(self, m: Mutation) -> None:
        if m.op in DATA_OPS:
            self._pending.append(m)
            if len(self._pending) >= self.options.batch_size:
                self._ingest_pending()
        else:
            self._control(m)

    def _deferred(self, m: Mutation) -> None:
        frame_ms = self.options.frame_ms
        if frame_ms is not None and m.ts is not None:
            frame = m.ts // frame_ms
            if frame != self._frame:
                if self._frame is not None:
                    self._flush_deferred()
                self._frame = frame
        if m.op not in DATA_OPS:
            self._control(m)
            return
        if self._pipelined:
            start = self.clock()
            result = self.circuit.ingest_deferred((m,))
            self.ingest_ns += self.clock() - start
            if result is not None:  # the pending limit flushed: calls before it come first
                self._collect()
        else:
            result = self.circuit.ingest_deferred((m,))
        self._queued += 1
        if result is not None:
            self._queued = 0
            self._record_result(result)
        flush_every = self.options.flush_every
        if flush_every is not None and self._queued >= flush_every:
            self._flush_deferred()

    def _control(self, m: Mutation) -> None:
        """FLUSH, REGISTER, UNREGISTER: each first propagates what is pending."""
        self._propagate()
        if self._pipelined:
            self._collect()
        if m.op == REGISTER:
            assert m.view is not None and m.sql is not None
            where = f"{m.source or self.log_path}:{m.line}" if m.line else None
            self._register(m.view, m.sql, m.params, m.format, where)
        elif m.op == UNREGISTER:
            assert m.view is not None
            self.circuit.unregister_view(m.view)
        elif m.op != FLUSH:
            raise ReplayError(f"unexpected op {m.op!r}", location=f"{self.log_path}:{m.line}")

    def _register(
        self,
        name: str,
        sql: str,
        params: Mapping[str, Any] | None,
        fmt: str | None,
        path: str | None = None,
    ) -> None:
        """Register a view: its params over ``--param``, ``--format`` over its own format.

        ``path`` names where the SQL came from (the views file, or ``log:LINE`` for a
        REGISTER entry), so that SQL errors point there.
        """
        merged = {**self.options.params, **(params or {})}
        update = self.circuit.register_view(
            name, sql, params=merged, format=self.options.format or fmt or "streaming", path=path
        )
        if update is not None and self._on_update is not None:
            self._on_update(update)

    def _nothing_pending(self) -> None:
        """Single mode propagates every entry at once: nothing is ever pending."""

    def _ingest_pending(self) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
            if self._pipelined:
                self._record_timed(self.circuit.submit_batch, batch)
            else:
                self._record_result(self.circuit.ingest_batch(batch))

    def _flush_deferred(self) -> None:
        if self._queued:
            self._queued = 0
            if self._pipelined:
                self._record_timed(self.circuit.submit_flush)
            else:
                self._record_result(self.circuit.flush())

    def _collect(self) -> None:
        """Pipelined: wait for the call in flight and record every result not yet recorded."""
        self._record_timed(self.circuit.collect)

    def _record_timed(self, ingest: Callable[..., list[BatchResult]], *args: Any) -> None:
        """Pipelined: run ``ingest``, timed as ingest time, and record the results it
        returns (the calls it completed, in order)."""
        start = self.clock()
        results = ingest(*args)
        self.ingest_ns += self.clock() - start
        for result in results:
            self._record_result(result)

    # -- accounting --------------------------------------------------------

    def _record_result(self, result: BatchResult) -> None:
        self._emit(result.updates)
        self._account(result.stats)

    def _emit(self, updates: list[ViewUpdate]) -> None:
        sink = self._on_update
        if sink is not None:
            for update in updates:
                sink(update)

    def _account(self, stats: BatchStats) -> None:
        self.stats += stats
        self.latency.add(stats.duration_ns)
        self.timeline.add(self.entries, stats)

    def _record(self, started: int, stop_reason: str | None, failure: CircuitError | None) -> Run:
        wall_ns = self.clock() - started
        ingest_ns = self.ingest_ns if self._pipelined else self.latency.total()
        p50, p90, p99 = self.latency.percentiles((50, 90, 99))
        ingest_s = _seconds(ingest_ns)
        anomalies = dict(self.stats.anomalies)
        for kind, count in self._initial_anomalies.items():
            anomalies[kind] = anomalies.get(kind, 0) + count
        metrics = self.circuit.metrics()
        stopped_at = None
        if stop_reason is not None:
            line = failure.line if isinstance(failure, MutationLogError) else self.line
            stopped_at = StoppedAt(line=line, entries=self.entries)
        return Run(
            run=self.info,
            initial=self.initial,
            totals=Totals(
                entries=self.entries,
                ingest_calls=len(self.latency),
                wall_s=_seconds(wall_ns),
                read_s=_seconds(self.read_ns),
                ingest_s=ingest_s,
                entries_per_s=round(self.entries / ingest_s, 3) if ingest_ns else 0.0,
                latency_us=Latency(
                    p50=_micros(p50),
                    p90=_micros(p90),
                    p99=_micros(p99),
                    max=_micros(self.latency.max()),
                ),
            ),
            batch_stats=self.stats,
            views=metrics.views,
            operators=metrics.operators,
            errors=Errors(
                rejected=int(getattr(self._log, "rejected", 0)),
                rejected_lines=list(getattr(self._log, "rejected_lines", ()))[:MAX_REJECTED_LINES],
                anomalies=anomalies,
            ),
            completed=stop_reason is None,
            stop_reason=stop_reason,
            stopped_at=stopped_at,
            error=None
            if failure is None
            else RunError(failure.message, failure.location, failure.hint),
            extra={
                "timeline": self.timeline.to_json(),
                **({} if self.executor is None else {"executor": self.executor.report()}),
            },
        )


@contextmanager
def steady_gc() -> Iterator[None]:
    """Keep the cyclic garbage collector from pausing the replay for tens of ms.

    The engine's state is millions of small dicts and tuples without cycles;
    CPython's collector would rescan them all on every full collection, which
    shows up as p99 latency spikes. The state built so far is frozen (never
    scanned) and young collections run less often; both are undone after.
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, 50, 1_000)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def replay(
    views_path: str | os.PathLike[str],
    log_path: str | os.PathLike[str],
    options: ReplayOptions | None = None,
    *,
    on_update: UpdateSink | None = None,
    progress: ProgressSink | None = None,
    clock: Clock | None = None,
    command: str = "replay",
    argv: Sequence[str] | None = None,
) -> Run:
    """Replay ``log_path`` through the views of ``views_path``; see :class:`Replayer`."""
    return Replayer(
        views_path,
        log_path,
        options or ReplayOptions(),
        on_update=on_update,
        progress=progress,
        clock=clock,
        command=command,
        argv=argv,
    ).run()


def dump_state(circuit: Circuit) -> bytes:
    """The final state of every view as canonical JSON (SPEC section 5, ``--dump``).

    Rows come from the engine in their defined order; sorting keys makes row
    objects canonical, so equal states give equal bytes.
    """
    views = {
        name: {
            "rows": circuit.rows(name),
            "members": [[member, version] for member, version in circuit.members(name)],
        }
        for name in circuit.view_names()
    }
    return orjson.dumps({"views": views}, option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE)


def run_info(
    command: str,
    argv: Sequence[str] | None,
    options: ReplayOptions,
    views_path: str | None,
    log_path: str | None,
) -> RunInfo:
    """The report's ``run`` section, taken when the run starts."""
    return RunInfo(
        command=command,
        argv=list(sys.argv if argv is None else argv),
        options=options.to_json(),
        views_path=views_path,
        log_path=log_path,
        python=f"{platform.python_implementation()} {platform.python_version()}",
        platform=platform.platform(),
        started_at=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        git_revision=git_revision(),
    )


def git_revision(where: str | os.PathLike[str] | None = None) -> str | None:
    """``git rev-parse HEAD`` of the code being run, or None (no git, no repo, too slow)."""
    cwd = Path(where) if where is not None else Path(__file__).resolve().parent
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    revision = done.stdout.strip()
    return revision if done.returncode == 0 and revision else None


def _seconds(ns: int) -> float:
    return round(ns / 1e9, 9)


def _micros(ns: int) -> float:
    return round(ns / 1e3, 3)
