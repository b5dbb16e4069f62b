"""The replay driver: modes, triggers, accounting, stop reasons, the Run it records.

The driver is tested against :class:`FakeCircuit`, a small stand-in that
follows ``circuit.Circuit``'s API (every view is ``SELECT * FROM <table>``)
and logs every ingest call, so the tests see exactly what the driver asked
for. The CLI tests import it from here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from circuit.errors import MutationLogError, ReplayError, SqlError
from circuit.metrics import BatchStats, CircuitMetrics, Clock, FakeClock, ViewMetrics
from circuit.mutations import Mutation
from circuit.replay import (
    Replayer,
    ReplayInterrupted,
    ReplayOptions,
    RunFailed,
    dump_state,
    git_revision,
)
from circuit.report.run import Run
from circuit.updates import BatchResult, ViewUpdate, result_hash


class FakeCircuit:
    """``circuit.Circuit``'s API over a dict of records; every view shows one whole table.

    A view's table is the last word of its SQL; a ``$name`` in the SQL must be
    bound by the params. ``calls`` logs ``(kind, entries)`` per ingest call.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        strict: bool = False,
        coalesce: bool = True,
        pending_limit: int = 10_000,
    ) -> None:
        self.clock = clock or FakeClock()
        self.strict = strict
        self.coalesce = coalesce
        self.pending_limit = pending_limit
        self.records: dict[str, tuple[int, dict[str, Any]]] = {}
        self.views: dict[str, tuple[str, str]] = {}
        self.params: dict[str, dict[str, Any]] = {}
        self.view_metrics: dict[str, ViewMetrics] = {}
        self.calls: list[tuple[str, int]] = []
        self.queue: list[Mutation] = []
        self._seq = 0
        self.last_stats = BatchStats()

    def register_view(
        self,
        name: str,
        sql: str,
        params: Mapping[str, Any] | None = None,
        format: str = "streaming",
        *,
        path: str | None = None,
    ) -> ViewUpdate | None:
        for needed in re.findall(r"\$(\w+)", sql):
            if needed not in (params or {}):
                raise SqlError(f"unbound parameter ${needed}", view=name, line=1, col=1)
        self._seq += 1
        self.views[name] = (sql.split()[-1].rstrip(";"), format)
        self.params[name] = dict(params or {})
        self.view_metrics[name] = ViewMetrics()
        members = self.members(name)
        if format == "flat":
            ids = [i for i, _ in members]
            data = [[i, v] for i, v in members]
            return ViewUpdate(
                name, self._seq, "flat", result_hash=result_hash(ids), result_data=data
            )
        if not members:
            return None
        records = [{"id": i, "event": "created", "version": v} for i, v in members]
        return ViewUpdate(name, self._seq, "streaming", records=records)

    def unregister_view(self, name: str) -> None:
        del self.views[name]

    def load(self, records: Iterable[Mutation]) -> BatchStats:
        """Like ``Circuit.load``: apply without an ingest call (no seq)."""
        self.calls.append(("load", 0))
        seq = self._seq
        stats = self._apply(list(records)).stats
        self._seq = seq
        return stats

    def view_names(self) -> list[str]:
        return list(self.views)

    def ingest_single(self, m: Mutation) -> list[ViewUpdate]:
        self.calls.append(("single", 1))
        result = self._apply([m])
        self.last_stats = result.stats
        return result.updates

    def ingest_batch(self, ms: Iterable[Mutation]) -> BatchResult:
        batch = list(ms)
        self.calls.append(("batch", len(batch)))
        return self._apply(batch)

    def ingest_deferred(self, ms: Iterable[Mutation]) -> BatchResult | None:
        self.queue.extend(ms)
        return self.flush() if len(self.queue) >= self.pending_limit else None

    def flush(self) -> BatchResult:
        batch, self.queue = self.queue, []
        self.calls.append(("flush", len(batch)))
        return self._apply(batch)

    @property
    def pending(self) -> int:
        return len(self.queue)

    @property
    def seq(self) -> int:
        return self._seq

    def _apply(self, batch: list[Mutation]) -> BatchResult:
        start = self.clock()
        self._seq += 1
        stats = BatchStats(entries_received=len(batch), entries_after_coalesce=len(batch))
        events: dict[str, list[dict[str, Any]]] = {}
        for m in batch:
            assert m.id is not None and m.table is not None
            old = self.records.get(m.id)
            if m.op == "DELETE":
                if old is None:
                    self._anomaly(stats, "delete_missing", m)
                    continue
                del self.records[m.id]
                event, version = "deleted", old[0]
            else:
                if m.op == "CREATE" and old is not None:
                    self._anomaly(stats, "create_existing", m)
                version = m.version or (old[0] + 1 if old else 1)
                self.records[m.id] = (version, dict(m.data or {}, id=m.id))
                event = "updated" if old else "created"
            stats.events[event] += 1
            for name, (table, _) in self.views.items():
                if table == m.table:
                    events.setdefault(name, []).append(
                        {"id": m.id, "event": event, "version": version}
                    )
        updates = [
            ViewUpdate(name, self._seq, "streaming", records=records)
            for name, records in events.items()
        ]
        stats.views_updated = len(updates)
        stats.duration_ns = self.clock() - start
        return BatchResult(updates, stats)

    def _anomaly(self, stats: BatchStats, kind: str, m: Mutation) -> None:
        if self.strict:
            raise MutationLogError(kind.replace("_", " "), path=m.source, line=m.line)
        stats.anomalies[kind] = stats.anomalies.get(kind, 0) + 1

    def rows(self, view: str) -> list[dict[str, Any]]:
        table = self.views[view][0]
        rows = [data for i, (_, data) in self.records.items() if i.startswith(table + ":")]
        return sorted(rows, key=lambda r: orjson.dumps(r, option=orjson.OPT_SORT_KEYS))

    def members(self, view: str) -> list[tuple[str, int]]:
        table = self.views[view][0]
        return sorted((i, v) for i, (v, _) in self.records.items() if i.startswith(table + ":"))

    def metrics(self) -> CircuitMetrics:
        views = {name: m.to_json() for name, m in self.view_metrics.items() if name in self.views}
        operators = [
            {"view": name, "path": "scan", "self_ns": 0, "rows_in": 0, "rows_out": 0}
            for name in self.views
        ]
        return CircuitMetrics(views=views, operators=operators)

    def explain(self, view: str) -> str:
        return f"Project *\n  Scan {self.views[view][0]}"

    def dependency_index(self) -> dict[str, list[str]]:
        index: dict[str, list[str]] = {}
        for name, (table, _) in self.views.items():
            index.setdefault(table, []).append(name)
        return index


class View:
    """What ``load_views`` returns, as far as the driver reads it."""

    def __init__(self, name: str, sql: str, format: str = "streaming"):
        self.name, self.sql, self.format, self.line = name, sql, format, 1


def create(key: int, ts: float | None = None, line: int = 0) -> Mutation:
    return Mutation("CREATE", "user", f"user:{key}", {"n": key}, ts=ts, line=line)


def control(op: str, line: int = 0, **fields: Any) -> Mutation:
    return Mutation(op, line=line, **fields)


def numbered(entries: list[Mutation]) -> list[Mutation]:
    """The entries with their 1-based log line numbers set."""
    return [replace(m, line=n) for n, m in enumerate(entries, 1)]


def run_fake(
    entries: list[Mutation],
    views: list[View] | None = None,
    **options: Any,
) -> tuple[Run, FakeCircuit, list[ViewUpdate]]:
    opts = ReplayOptions(**options)
    circuit = FakeCircuit(clock=FakeClock(), strict=opts.strict, pending_limit=opts.pending_limit)
    updates: list[ViewUpdate] = []
    replayer = Replayer(
        "views.sql",
        "log.jsonl",
        opts,
        on_update=updates.append,
        clock=circuit.clock,
        circuit=circuit,  # type: ignore[arg-type]
    )
    run = replayer.run(views=views or [View("users", "SELECT * FROM user")], log=numbered(entries))
    return run, circuit, updates


def test_single_mode_is_one_ingest_call_per_data_entry() -> None:
    run, circuit, updates = run_fake([create(1), control("FLUSH"), create(2)], mode="single")
    assert circuit.calls == [("single", 1), ("single", 1)]
    assert run.totals.entries == 3
    assert run.totals.ingest_calls == 2
    assert [u.seq for u in updates] == [2, 3]  # the registration took seq 1


def test_batch_mode_cuts_batches_by_size_and_at_flush_entries() -> None:
    entries = [create(i) for i in range(5)] + [control("FLUSH")] + [create(i) for i in range(5, 8)]
    run, circuit, _ = run_fake(entries, mode="batch", batch_size=2)
    assert circuit.calls == [("batch", 2), ("batch", 2), ("batch", 1), ("batch", 2), ("batch", 1)]
    assert run.batch_stats.entries_received == 8
    assert run.totals.ingest_calls == 5


def test_register_sees_exactly_the_entries_before_it() -> None:
    entries = [
        create(1),
        create(2),
        control("REGISTER", view="late", sql="SELECT * FROM user"),
        create(3),
    ]
    _, circuit, updates = run_fake(entries, views=[], batch_size=100)
    assert circuit.calls == [("batch", 2), ("batch", 1)]
    initial = next(u for u in updates if u.view == "late")
    assert [r["id"] for r in initial.records or []] == ["user:1", "user:2"]


def test_unregister_propagates_pending_first() -> None:
    entries = [create(1), control("UNREGISTER", view="users"), create(2)]
    _, circuit, updates = run_fake(entries, batch_size=10)
    assert circuit.calls == [("batch", 1), ("batch", 1)]
    assert [u.view for u in updates] == ["users"]
    assert circuit.view_names() == []


def test_register_params_come_over_the_options_and_format_overrides() -> None:
    entries = [
        control("REGISTER", view="v", sql="SELECT * FROM user", params={"a": 2}, format="flat")
    ]
    _, circuit, _updates = run_fake(entries, views=[], params={"a": 1, "b": 1})
    assert circuit.params["v"] == {"a": 2, "b": 1}
    assert circuit.views["v"][1] == "flat"
    _, circuit, _ = run_fake(entries, views=[], format="streaming")
    assert circuit.views["v"][1] == "streaming"


def test_deferred_flushes_every_n_entries_and_at_the_end() -> None:
    _, circuit, _ = run_fake([create(i) for i in range(7)], mode="deferred", flush_every=3)
    assert circuit.calls == [("flush", 3), ("flush", 3), ("flush", 1)]


def test_deferred_flushes_when_ts_crosses_a_frame_boundary() -> None:
    stamps = [0, 5, 9, 10, 31, 32]
    entries = [create(i, ts=ts) for i, ts in enumerate(stamps)]
    _, circuit, _ = run_fake(entries, mode="deferred", frame_ms=10)
    assert circuit.calls == [("flush", 3), ("flush", 1), ("flush", 2)]


def test_deferred_records_the_flushes_the_pending_limit_triggers() -> None:
    run, circuit, _ = run_fake(
        [create(i) for i in range(5)] + [control("FLUSH"), create(9)],
        mode="deferred",
        pending_limit=2,
    )
    assert circuit.calls == [("flush", 2), ("flush", 2), ("flush", 1), ("flush", 1)]
    assert run.totals.ingest_calls == 4
    assert run.batch_stats.entries_received == 6


def test_totals_split_read_and_ingest_time_deterministically() -> None:
    run, _, _ = run_fake([create(i) for i in range(4)], mode="single")
    # FakeClock advances 1 µs per reading; each fake ingest call reads it twice.
    assert run.totals.ingest_s == pytest.approx(4e-6)
    assert run.totals.latency_us.p50 == run.totals.latency_us.max == 1.0
    assert run.totals.entries_per_s == pytest.approx(4 / 4e-6)
    assert run.totals.read_s > 0
    assert run.totals.wall_s >= run.totals.read_s + run.totals.ingest_s
    assert run.completed and run.stop_reason is None and run.stopped_at is None


def test_anomalies_are_summed_and_reported() -> None:
    run, _, _ = run_fake([create(1), create(1), Mutation.delete("user", "7")], mode="single")
    assert run.batch_stats.anomalies == {"create_existing": 1, "delete_missing": 1}
    assert run.errors.anomalies == {"create_existing": 1, "delete_missing": 1}


def test_max_entries_stops_early_and_says_where() -> None:
    run, circuit, _ = run_fake([create(i) for i in range(10)], max_entries=4, batch_size=3)
    assert circuit.calls == [("batch", 3), ("batch", 1)]
    assert not run.completed
    assert run.stop_reason == "max_entries"
    assert run.stopped_at is not None
    assert (run.stopped_at.line, run.stopped_at.entries) == (4, 4)


def test_an_error_in_the_circuit_raises_with_the_partial_run() -> None:
    with pytest.raises(RunFailed) as caught:
        run_fake([create(1), create(2), create(1), create(3)], mode="single", strict=True)
    run = caught.value.run
    assert isinstance(caught.value.cause, MutationLogError)
    assert run.stop_reason == "error" and not run.completed
    assert run.stopped_at is not None and run.stopped_at.line == 3
    assert run.totals.ingest_calls == 2


def test_ctrl_c_raises_with_the_partial_run() -> None:
    seen: list[ViewUpdate] = []

    def sink(update: ViewUpdate) -> None:
        seen.append(update)
        if len(seen) == 3:
            raise KeyboardInterrupt

    circuit = FakeCircuit()
    replayer = Replayer(
        "v.sql",
        "log.jsonl",
        ReplayOptions(mode="single"),
        on_update=sink,
        circuit=circuit,  # type: ignore[arg-type]
    )
    with pytest.raises(ReplayInterrupted) as caught:
        replayer.run(
            views=[View("u", "SELECT * FROM user")], log=numbered([create(i) for i in range(9)])
        )
    run = caught.value.run
    assert isinstance(caught.value, KeyboardInterrupt)
    assert run.stop_reason == "interrupted" and not run.completed
    assert run.stopped_at is not None and run.stopped_at.line == 3


def write_log(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def user_line(key: int) -> str:
    return orjson.dumps(
        {"op": "CREATE", "table": "user", "id": str(key), "data": {"n": key}}
    ).decode()


def replay_files(tmp_path: Path, lines: list[str], **options: Any) -> tuple[Replayer, FakeCircuit]:
    views = tmp_path / "views.sql"
    views.write_text("CREATE VIEW users AS SELECT * FROM user;\n", encoding="utf-8")
    log = write_log(tmp_path / "log.jsonl", lines)
    circuit = FakeCircuit()
    replayer = Replayer(views, log, ReplayOptions(**options), circuit=circuit)  # type: ignore[arg-type]
    return replayer, circuit


def test_a_bad_line_stops_the_replay_after_propagating_what_came_before(tmp_path: Path) -> None:
    replayer, circuit = replay_files(tmp_path, [user_line(1), user_line(2), "{not json"])
    with pytest.raises(RunFailed) as caught:
        replayer.run()
    assert caught.value.location == f"{tmp_path / 'log.jsonl'}:3"
    assert circuit.calls == [("batch", 2)]
    run = caught.value.run
    assert run.stopped_at is not None
    assert (run.stopped_at.line, run.stopped_at.entries) == (3, 2)


def test_skipped_lines_go_to_the_rejects_file_and_the_report(tmp_path: Path) -> None:
    rejects = tmp_path / "rejects.jsonl"
    replayer, _ = replay_files(
        tmp_path,
        [user_line(1), "[1]", user_line(2), "{"],
        on_error="skip",
        rejects=str(rejects),
    )
    run = replayer.run()
    assert run.completed
    assert run.totals.entries == 2
    assert (run.errors.rejected, run.errors.rejected_lines) == (2, [2, 4])
    assert rejects.read_text() == "[1]\n{\n"


def test_initial_records_load_apart_from_the_replay(tmp_path: Path) -> None:
    initial = write_log(
        tmp_path / "seed.jsonl",
        [orjson.dumps({"table": "user", "id": str(k), "data": {"n": k}}).decode() for k in (7, 8)],
    )
    replayer, circuit = replay_files(tmp_path, [user_line(1)], initial=str(initial))
    updates: list[ViewUpdate] = []
    replayer._on_update = updates.append
    run = replayer.run()
    assert run.initial is not None and run.initial.records == 2
    assert run.totals.ingest_calls == 1 and run.totals.entries == 1
    assert [r["id"] for r in updates[0].records or []] == ["user:7", "user:8"]
    assert circuit.members("users") == [("user:1", 1), ("user:7", 1), ("user:8", 1)]


def test_a_missing_log_is_an_error_with_a_run(tmp_path: Path) -> None:
    replayer, _ = replay_files(tmp_path, [])
    replayer.log_path = str(tmp_path / "missing.jsonl")
    with pytest.raises(RunFailed) as caught:
        replayer.run()
    assert caught.value.run.stop_reason == "error"


def test_a_replayer_runs_once(tmp_path: Path) -> None:
    replayer, _ = replay_files(tmp_path, [user_line(1)])
    replayer.run()
    with pytest.raises(ReplayError):
        replayer.run()


def test_batch_stats_sum_every_field() -> None:
    def sample(k: int) -> BatchStats:
        stats = BatchStats()
        for n, f in enumerate(fields(BatchStats), 1):
            value = getattr(stats, f.name)
            if isinstance(value, dict):
                setattr(stats, f.name, {**value, "created": k, f"kind{k}": n})
            else:
                setattr(stats, f.name, n * k)
        return stats

    total = sample(1)
    total += sample(2)
    for n, f in enumerate(fields(BatchStats), 1):
        value = getattr(total, f.name)
        if isinstance(value, dict):
            assert value["created"] == 3 and value["kind1"] == n and value["kind2"] == n
        else:
            assert value == 3 * n


def test_dump_state_is_canonical() -> None:
    a, b = FakeCircuit(), FakeCircuit()
    for circuit, order in ((a, [1, 2]), (b, [2, 1])):
        circuit.register_view("users", "SELECT * FROM user")
        circuit.ingest_batch(
            [Mutation.create("user", str(k), {"z": k, "a": [k, {"y": 1, "b": 2}]}) for k in order]
        )
    dumped = dump_state(a)  # type: ignore[arg-type]
    assert dumped == dump_state(b)  # type: ignore[arg-type]
    doc = orjson.loads(dumped)
    assert list(doc["views"]["users"]) == ["members", "rows"]
    assert doc["views"]["users"]["members"] == [["user:1", 1], ["user:2", 1]]
    assert b'{"b":2,"y":1}' in dumped


def test_options_are_validated_with_the_flag_in_the_location() -> None:
    with pytest.raises(ReplayError) as caught:
        ReplayOptions(batch_size=0)
    assert caught.value.location == "--batch-size"
    with pytest.raises(ReplayError, match="at least 1"):
        ReplayOptions(batch_size=0)
    with pytest.raises(ReplayError):
        ReplayOptions(mode="stream")  # type: ignore[arg-type]
    with pytest.raises(ReplayError):
        ReplayOptions(frame_ms=0)


def test_options_record_every_option() -> None:
    recorded = ReplayOptions(params={"a": 1}).to_json()
    assert set(recorded) == {
        "mode",
        "batch_size",
        "flush_every",
        "frame_ms",
        "pending_limit",
        "coalesce",
        "executor",
        "workers",
        "parallel_threshold",
        "pipeline_depth",
        "params",
        "initial",
        "format",
        "on_error",
        "rejects",
        "strict",
        "max_entries",
        "dialect",
    }
    assert recorded["params"] == {"a": 1}


def test_git_revision_is_none_outside_a_repository(tmp_path: Path) -> None:
    assert git_revision(tmp_path) is None
    here = git_revision(Path(__file__).parent)
    assert here is None or re.fullmatch(r"[0-9a-f]{40}", here)


def test_the_run_records_where_it_ran() -> None:
    run, _, _ = run_fake([create(1)])
    assert run.run.command == "replay"
    assert run.run.views_path == "views.sql" and run.run.log_path == "log.jsonl"
    assert run.run.started_at.endswith("Z")
    assert run.run.options["mode"] == "batch"
