"""Worker processes of the process executor: the transport and the worker loop.

A worker holds a *replica* circuit: a :class:`~circuit.circuit.Circuit` with
only the views placed on it and only the tables those views read. It never
decides anything about the data: the primary (the main process) applies every
entry, decides anomalies, coalescing and versions, and ships the *net changes*
of each ingest call, ``(table, id, record or None, version)`` per round, which
the replica stores as they are (:meth:`Circuit.apply_changes`) and propagates
with the primary's ``seq``.

Every call that changes a table a worker holds reaches that worker, in order.
Calls the main process ran itself arrive as *catch-up* (no updates are built,
no metrics are counted: they were counted where the call ran); the call the
worker runs for real is the last of a ``calls`` message with ``emit`` set, and
only that one is answered. So each call is counted exactly once over all the
replicas, and the sums equal sequential execution.

The transport is deliberately tiny (:class:`Transport`: send bytes, receive
bytes, close) and every message is one orjson document, so that another
transport (sockets, a distributed engine's actors) can replace the pipe
without touching the circuit or the executor's logic. Messages (``op``):

- ``reset`` ``{dialect}``: start over with an empty replica;
- ``register`` ``{name, sql, params, format, seq, emit, tables, row_versions, cache, moved}``:
  load the tables the worker lacks (``{table: [[id, record, version], ...]}``),
  then register the view as call ``seq`` (an aggregate view moved from another
  replica takes that replica's ``row_versions`` and subquery ``cache`` counts); answered
  with ``{update}``
  when ``emit``;
- ``unregister`` ``{name}``;
- ``retire`` ``{name}``: unregister a view moving to another worker; answered
  with its ``row_versions`` (null unless aggregate), ``operators`` (their
  counts, which the main process keeps) and ``cache`` (``[hits, misses]``);
- ``calls`` ``{emit, calls: [[seq, line, rounds], ...]}``: apply and propagate
  each call in order (a call ``[seq, line, rounds, true]`` was interrupted by
  an entry's error on the primary: it stops where the primary's did); with
  ``emit`` the last one answers ``{updates, impacted, events, costs, busy_ns,
  moved_ns}``, ``costs`` being each of the worker's views' counted ``time_ns``
  so far (what placement by measured cost balances), ``busy_ns`` the time this
  message took (with decoding the ``calls`` messages and encoding their
  answers since the last answer), ``moved_ns`` the time spent building views
  ``moved`` here since the last answer;
- ``state`` and ``cache`` ``{names}``, ``rows``, ``members``, ``row_versions`` ``{name}``,
  ``metrics``: read the replica (answered);
- ``shutdown``.

A failure answers ``{error, kind, views, seq, line}`` and ends the worker: its
replica can no longer be trusted.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import os
import queue
import signal
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from multiprocessing.connection import Connection
from typing import Any, Protocol

import orjson

from .circuit import Circuit
from .metrics import BatchStats, ViewMetrics
from .operators import TableChanges
from .updates import ViewUpdate
from .view import View

Change = list[Any]
"""``[table, id, record or None, version]``: one record's state after a round."""
Round = list[Change]
Call = list[Any]
"""``[seq, line, rounds]`` (``[..., true]`` when interrupted): one ingest call as the
primary applied it."""

GC_THRESHOLDS = (50_000, 50, 1_000)
"""Young collections rarely, as the main process does during a replay (``steady_gc``)."""

POLL_S = 0.05
"""How often a waiting side checks that the other process is still alive."""

SOCKET_BUFFER = 8 << 20
"""Bytes a channel may hold unread: several calls of a thousand records each."""


class TransportClosed(Exception):
    """The other side is gone (it exited, crashed or closed the channel)."""


class Transport(Protocol):
    """A bidirectional channel of whole messages (bytes)."""

    def send(self, data: bytes) -> None: ...

    def recv(self, timeout: float | None = None) -> bytes:
        """The next message; :class:`TransportClosed` when the peer is gone or
        ``timeout`` seconds pass without one."""
        ...

    def close(self) -> None: ...


class PipeTransport:
    """A :class:`Transport` over a ``multiprocessing`` connection.

    ``alive`` (when given) is asked every :data:`POLL_S` seconds while
    waiting, so that a peer that died never makes :meth:`recv` hang.

    Sending never blocks the caller. A message the socket's buffer takes
    whole is written at once, without blocking (no other thread is involved,
    so it leaves without waiting for the GIL to change hands: a background
    writer would wait up to the 5 ms switch interval while this process's
    views run); what does not fit goes, in order, to a background thread that
    writes it as the other side reads. Both sides may so have messages in
    flight at once (the main process sends call N + 1 while the worker answers
    call N) with neither blocked on the other. A write that fails is reported
    by the next :meth:`send` or :meth:`recv`.
    """

    def __init__(self, conn: Connection, alive: Any = None) -> None:
        self._conn = conn
        self._alive = alive
        self._sock = _socket_of(conn)  # None: not a socket, every message goes to the thread
        self._outgoing: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._queued = 0  # messages handed to the writer thread and not yet written
        self._lock = threading.Lock()
        self._broken: str | None = None
        self._writer = threading.Thread(target=self._write, name="ssp-transport", daemon=True)
        self._writer.start()

    def send(self, data: bytes) -> None:
        if self._broken is not None:
            raise TransportClosed(self._broken)
        sock = self._sock
        with self._lock:
            if sock is not None:
                data = _frame(data)
                if not self._queued:  # nothing before it still to write
                    try:
                        sent = sock.send(data, socket.MSG_DONTWAIT)
                    except BlockingIOError:
                        sent = 0
                    except OSError as err:
                        raise TransportClosed(str(err) or type(err).__name__) from err
                    if sent == len(data):
                        return
                    data = data[sent:]
            self._queued += 1
            self._outgoing.put(data)

    def recv(self, timeout: float | None = None) -> bytes:
        conn, alive = self._conn, self._alive
        waited = 0.0
        try:
            if alive is not None or timeout is not None:
                while not conn.poll(POLL_S):
                    waited += POLL_S
                    if self._broken is not None:
                        raise TransportClosed(self._broken)
                    if alive is not None and not alive():
                        raise TransportClosed("the worker process exited")
                    if timeout is not None and waited >= timeout:
                        raise TransportClosed(f"no answer within {timeout:g} s")
            return conn.recv_bytes()
        except (OSError, EOFError, ValueError) as err:
            raise TransportClosed(str(err) or type(err).__name__) from err

    def close(self) -> None:
        """Write what is queued (for a second at most), then close the channel."""
        self._outgoing.put(None)
        self._writer.join(1.0)
        if self._sock is not None:
            self._sock.close()
        self._conn.close()

    def _write(self) -> None:
        conn, sock, outgoing = self._conn, self._sock, self._outgoing
        while True:
            data = outgoing.get()
            if data is None:
                return
            try:
                if sock is not None:
                    sock.sendall(data)  # framed already, maybe the rest of a partial send
                else:
                    conn.send_bytes(data)
            except (OSError, ValueError) as err:
                self._broken = str(err) or type(err).__name__
                return
            with self._lock:
                self._queued -= 1


def _frame(data: bytes) -> bytes:
    """``data`` framed as :meth:`Connection.send_bytes` frames it, for ``recv_bytes``."""
    size = len(data)
    if size > 0x7FFFFFFF:
        return struct.pack("!iQ", -1, size) + data
    return struct.pack("!i", size) + data


def _socket_of(conn: Connection) -> socket.socket | None:
    """The connection's socket (a duplicate of its descriptor), its buffer widened so
    that a whole call (or answer) fits (the kernel caps the size); None when the
    connection is not a socket."""
    fd = os.dup(conn.fileno())
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        os.close(fd)
        return None
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
    return sock


def worker_main(conn: Connection) -> None:
    """The worker process: serve messages until ``shutdown`` or a failure.

    Ctrl-C reaches every process of the terminal's group; the worker ignores
    it so that the main process decides how the replay ends (and can still
    collect the metrics for the report). The replica's state is millions of
    small objects without cycles: as in the main process, the collector runs
    rarely and never rescans the state built at registration.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.set_threshold(*GC_THRESHOLDS)
    transport = PipeTransport(conn)
    replica = Replica(None)
    while True:
        try:
            data = transport.recv()
        except TransportClosed:
            return
        decoding = time.perf_counter_ns()
        message = orjson.loads(data)
        calls = message["op"] == "calls"  # what a call costs this worker besides its views
        if calls:
            replica.io_ns += time.perf_counter_ns() - decoding
        if message["op"] == "shutdown":
            transport.close()
            return
        if message["op"] == "reset":
            replica = Replica(message.get("dialect"))
            continue
        try:
            reply = replica.handle(message)
        except Exception as err:  # a bug or a broken replica: report it, then stop
            transport.send(orjson.dumps(replica.failure(err)))
            transport.close()  # the answer is written before the process ends
            return
        if reply is not None:
            encoding = time.perf_counter_ns()
            transport.send(orjson.dumps(reply))
            if calls:
                replica.io_ns += time.perf_counter_ns() - encoding
        if message["op"] == "register":
            gc.freeze()  # the state built so far is never rescanned (see replay.steady_gc)


class Replica:
    """A worker's replica circuit and the tables it holds (see the module docstring)."""

    def __init__(self, dialect: str | None) -> None:
        self.circuit = Circuit(dialect=dialect)
        self.tables: set[str] = set()
        self.seq = 0
        self.line = 0
        self.touched: set[str] = set()
        self.moved_ns = 0  # time spent building views moved here, since the last answer
        self.io_ns = 0  # time spent decoding messages and encoding answers, since the last

    def handle(self, message: dict[str, Any]) -> dict[str, Any] | None:
        op = message["op"]
        circuit = self.circuit
        if op == "calls":
            return self._calls(message["calls"], message["emit"])
        if op == "register":
            return self._register(message)
        if op == "unregister":
            circuit.unregister_view(message["name"])
            return None
        if op == "retire":
            view = circuit._view(message["name"])
            reply = {
                "row_versions": view.row_versions if view.synthetic else None,
                "operators": [op.to_json() for op in view.operator_metrics.values()],
                "cache": cache_counts(view),
            }
            circuit.unregister_view(message["name"])
            return reply
        if op == "state":
            return {
                name: {"rows": circuit.rows(name), "members": circuit.members(name)}
                for name in message["names"]
            }
        if op == "rows":
            return {"rows": circuit.rows(message["name"])}
        if op == "members":
            return {"members": circuit.members(message["name"])}
        if op == "cache":
            return {name: cache_counts(circuit._view(name)) for name in message["names"]}
        if op == "row_versions":
            return {"row_versions": circuit._view(message["name"]).row_versions}
        if op == "ping":
            return {"seq": self.seq}
        if op == "metrics":
            return metrics_message(circuit)
        raise ValueError(f"unknown message {op!r}")

    def failure(self, err: BaseException) -> dict[str, Any]:
        """The error answer: what failed, in which of this worker's views, at which call."""
        views = [
            name
            for name, view in self.circuit._views.items()
            if not self.touched or not view.tables.isdisjoint(self.touched)
        ]
        return {
            "error": str(err) or type(err).__name__,
            "kind": type(err).__name__,
            "views": views,
            "seq": self.seq,
            "line": self.line,
        }

    def _register(self, message: dict[str, Any]) -> dict[str, Any] | None:
        start = time.perf_counter_ns()
        try:
            return self._build(message)
        finally:
            if message.get("moved"):
                self.moved_ns += time.perf_counter_ns() - start

    def _build(self, message: dict[str, Any]) -> dict[str, Any] | None:
        circuit = self.circuit
        snapshot: Round = []
        for table, rows in message["tables"].items():
            self.tables.add(table)
            snapshot.extend([table, rid, record, version] for rid, record, version in rows)
        if snapshot:
            circuit.apply_changes(snapshot)  # type: ignore[arg-type]
        circuit.advance_seq(message["seq"] - 1)
        self.seq, self.line, self.touched = message["seq"], 0, set()
        name = message["name"]
        args = (name, message["sql"], message["params"], message["format"])
        if message["emit"]:
            update = circuit.register_view(*args)
            return {"update": None if update is None else update.to_json()}
        register_uncounted(circuit, *args)
        if message.get("row_versions") is not None:
            circuit._view(name).row_versions = message["row_versions"]
        if message.get("cache") is not None:
            carry_cache(circuit._view(name), message["cache"])
        return None

    def _calls(self, calls: list[Call], emit: bool) -> dict[str, Any] | None:
        """Catch up on every call but (with ``emit``) the last, which is answered."""
        start = time.perf_counter_ns()
        last = calls.pop() if emit else None
        if calls:
            with uncounted(self.circuit):
                for call in calls:
                    self._run(call, emit=False)
        if last is None:
            return None
        stats, updates = self._run(last, emit=True)
        moved, self.moved_ns = self.moved_ns, 0
        io, self.io_ns = self.io_ns, 0
        return {
            "busy_ns": time.perf_counter_ns() - start + io,
            "moved_ns": moved,
            "updates": [update.to_json() for update in updates],
            "impacted": stats.views_impacted,
            "events": stats.events,
            "costs": {name: view.metrics.time_ns for name, view in self.circuit._views.items()},
        }

    def _run(self, call: Call, *, emit: bool) -> tuple[BatchStats, list[Any]]:
        seq, line, rounds, *interrupted = call
        self.seq, self.line = seq, line
        held = self.tables
        self.touched = {change[0] for changes in rounds for change in changes}
        table_rounds, versions_before = apply_rounds(
            self.circuit,
            [[c for c in changes if c[0] in held] for changes in rounds],
            interrupted=bool(interrupted),
        )
        self.circuit.advance_seq(seq)
        stats = BatchStats()
        updates = propagate_call(self.circuit, table_rounds, versions_before, stats, emit=emit)
        return stats, updates


class CallInterrupted(Exception):
    """A recorded call ends here: on the primary an entry's error stopped it (``--strict``)."""


def propagate_call(
    circuit: Circuit,
    rounds: Iterator[TableChanges],
    versions_before: dict[str, int],
    stats: BatchStats,
    *,
    emit: bool,
) -> list[ViewUpdate]:
    """:meth:`Circuit.propagate` of a recorded call; one that was interrupted on the
    primary stops at the same point, before the call's updates and versions are made."""
    try:
        return circuit.propagate(rounds, versions_before, stats, emit=emit)
    except CallInterrupted:
        return []


def apply_rounds(
    circuit: Circuit, rounds: list[Round], *, interrupted: bool = False
) -> tuple[Iterator[TableChanges], dict[str, int]]:
    """A call's rounds of net changes for :meth:`Circuit.propagate`, stored as consumed.

    Each round is stored only when the previous one has been propagated, as on
    the primary, so the views (and the field indexes they read) see the state
    of their round. Versions (and records) before the call are those before
    its first round: a record written in several rounds of one call
    (``--no-coalesce``) is compared with its state before the whole call.
    ``versions_before`` fills as the rounds are consumed. An ``interrupted``
    call raises :class:`CallInterrupted` when asked for the round after its
    last, where the primary's entry raised its error.
    """
    versions_before: dict[str, int] = {}

    def stored() -> Iterator[TableChanges]:
        continued = False
        for changes in rounds:
            if not changes:
                continue
            by_table, before = circuit.apply_changes(changes, continued=continued)  # type: ignore[arg-type]
            continued = True
            for rid, version in before.items():
                versions_before.setdefault(rid, version)
            yield by_table
        if interrupted:
            raise CallInterrupted

    return stored(), versions_before


# metrics ---------------------------------------------------------------------------------


@contextmanager
def uncounted(circuit: Circuit) -> Iterator[None]:
    """Propagate without counting: per-view and per-operator metrics are left as they were.

    Catch-up work repeats calls another replica ran and counted; counting
    them twice would break the sums. View metrics are swapped for scratch
    objects (no copy of the latency samples); operator counters are saved and
    restored.
    """
    views = list(circuit._views.values())
    saved = [
        (
            view,
            view.metrics,
            [(op, op.self_ns, op.rows_in, op.rows_out) for op in view.operator_metrics.values()],
        )
        for view in views
    ]
    for view in views:
        view.metrics = ViewMetrics()
    try:
        yield
    finally:
        for view, metrics, ops in saved:
            view.metrics = metrics
            for op, self_ns, rows_in, rows_out in ops:
                op.self_ns, op.rows_in, op.rows_out = self_ns, rows_in, rows_out


def register_uncounted(
    circuit: Circuit, name: str, sql: str, params: dict[str, Any] | None, format: str
) -> None:
    """Register a view on a replica without counting it: another replica reported it."""
    previous = circuit._view_metrics.get(name)
    kept = ViewMetrics() if previous is None else _copy(previous)
    circuit.register_view(name, sql, params, format)
    view = circuit._view(name)
    _assign(view.metrics, kept)
    for op in view.operator_metrics.values():
        op.self_ns = op.rows_in = op.rows_out = 0


def cache_counts(view: View) -> list[int]:
    """``[hits, misses]`` of the view's subquery caches (those of the state it reads)."""
    levels = list(view.source.top.walk())
    return [sum(level.cache_hits for level in levels), sum(level.cache_misses for level in levels)]


def carry_cache(view: View, counts: list[int]) -> None:
    """Continue the cache counts of the replica a view moved from: the report shows what
    one circuit that ran every call would (its build here is not counted)."""
    levels = list(view.source.top.walk())
    for level in levels:
        level.cache_hits = level.cache_misses = 0
    levels[0].cache_hits, levels[0].cache_misses = counts


def _copy(metrics: ViewMetrics) -> ViewMetrics:
    out = ViewMetrics()
    _assign(out, metrics)
    return out


def _assign(target: ViewMetrics, source: ViewMetrics) -> None:
    for f in fields(ViewMetrics):
        value = getattr(source, f.name)
        setattr(target, f.name, dict(value) if isinstance(value, dict) else value)


def metrics_message(circuit: Circuit) -> dict[str, Any]:
    """A replica's own counts, with raw latency samples so that percentiles merge exactly."""
    snapshot = circuit.metrics()
    views: dict[str, Any] = {}
    for name, data in snapshot.views.items():
        samples = circuit._view_metrics[name].samples
        views[name] = {**data, "samples": base64.b64encode(samples._data.tobytes()).decode()}
    return {"views": views, "operators": snapshot.operators}
