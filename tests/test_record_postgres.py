"""``ssp record postgres`` against a real server (the ``pg`` fixture of ``pgcluster``).

Each test writes a workload into a fresh database, records it, and checks the
log: the entries and FLUSHes, and that ``ssp replay --strict`` of the log
(after ``--initial`` where given) ends in the state PostgreSQL holds.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pgcluster import Database, pg_db_fixture, pg_fixture  # noqa: F401  (fixtures)
from typer.testing import CliRunner

from circuit.errors import CircuitError
from circuit.record.changes import RecordError
from circuit.record.postgres import PostgresRecording, record_postgres
from ssp_cli.main import app

try:
    import psycopg  # noqa: F401  (the tests need it)
except ImportError:  # pragma: no cover - the record extra installs it
    if os.environ.get("CI") == "true":
        pytest.fail("psycopg is needed in CI: pip install '.[record]'", pytrace=False)
    pytest.skip("psycopg is not installed", allow_module_level=True)


def entries(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def record(db: Database, tmp_path: Path, tables: str, *args: str, name: str = "log.jsonl") -> Any:
    out = tmp_path / name
    return CliRunner().invoke(
        app, ["record", "postgres", "--dsn", db.dsn, "--tables", tables, "-o", str(out), *args]
    )


SCHEMA = """
CREATE TABLE account (k int PRIMARY KEY, name text NOT NULL, balance numeric(30,2),
                      meta jsonb, score double precision);
CREATE TABLE item (owner int, seq int, label text, doc json, PRIMARY KEY (owner, seq));
"""


def workload(conn: Any) -> None:
    """Several transactions: inserts, updates, deletes, a rollback, a key change, json, numerics."""
    conn.execute(
        'INSERT INTO account VALUES (1, \'ann\', 10.50, \'{"tier": "gold", "tags": [1, 2]}\', 1.5),'
        " (2, 'bob', 12345678901234567890.12, null, null), (3, 'cy', 0, '[]', -2.25)"
    )
    with conn.transaction():
        conn.execute(
            "INSERT INTO item VALUES (1, 1, 'first', '{\"a\": 1}'), (1, 2, 'second', null)"
        )
        conn.execute("UPDATE account SET balance = balance - 1 WHERE k = 1")
    with conn.transaction():
        conn.execute("UPDATE account SET k = 4 WHERE k = 3")  # a primary key change
        conn.execute("UPDATE item SET seq = 3 WHERE owner = 1 AND seq = 2")
    try:
        with conn.transaction():
            conn.execute("INSERT INTO account VALUES (9, 'ghost', 1, null, 1)")
            conn.execute("DELETE FROM account WHERE k = 1")
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    conn.execute("DELETE FROM item WHERE owner = 1 AND seq = 1")
    conn.execute("UPDATE account SET meta = jsonb_set(meta, '{tier}', '\"silver\"') WHERE k = 1")


VIEWS = """
CREATE VIEW rich AS SELECT name, balance FROM account WHERE score > 0;
CREATE VIEW labels AS SELECT a.name AS owner_name, i.label FROM item i JOIN account a ON a.k = i.owner;
CREATE VIEW everything AS SELECT * FROM account;
CREATE VIEW per_owner AS SELECT owner, COUNT(*) AS n, SUM(seq) AS total FROM item GROUP BY owner;
CREATE VIEW top AS SELECT name, score FROM account ORDER BY score DESC LIMIT 2;
CREATE VIEW tiers AS SELECT name, meta FROM account WHERE balance < $limit;
"""


def verify_with_postgres(db: Database, tmp_path: Path, *extra: str) -> Any:
    return CliRunner().invoke(
        app,
        ["verify", str(tmp_path / "views.sql"), str(tmp_path / "log.jsonl"), "--oracle",
         "postgres", "--dsn", db.dsn, "--param", "limit=100", *extra],
    )  # fmt: skip


def test_a_recorded_workload_replays_strictly_to_the_servers_state(
    pg_db: Database, tmp_path: Path
) -> None:
    with pg_db.connect() as conn:  # type: ignore[attr-defined]
        conn.execute(SCHEMA)
        result = record(pg_db, tmp_path, "account,item", "--quiet")  # creates the slot
        assert result.exit_code == 0, result.output
        workload(conn)
        result = record(pg_db, tmp_path, "account,item")
        assert result.exit_code == 0, result.output
        assert "recorded 10 changes, 5 transactions" in result.output
        log = entries(tmp_path / "log.jsonl")
        ops = [(e["op"], e.get("id")) for e in log]
        assert ops == [
            ("CREATE", "account:1"), ("CREATE", "account:2"), ("CREATE", "account:3"), ("FLUSH", None),
            ("CREATE", "item:[1,1]"), ("CREATE", "item:[1,2]"), ("UPDATE", "account:1"), ("FLUSH", None),
            ("DELETE", "account:3"), ("CREATE", "account:4"),
            ("DELETE", "item:[1,2]"), ("CREATE", "item:[1,3]"), ("FLUSH", None),
            ("DELETE", "item:[1,1]"), ("FLUSH", None),
            ("UPDATE", "account:1"), ("FLUSH", None),
        ]  # fmt: skip
        first = log[0]
        assert first["data"] == {
            "k": 1, "name": "ann", "balance": 10.5, "meta": {"tier": "gold", "tags": [1, 2]},
            "score": 1.5,
        }  # fmt: skip
        assert log[1]["data"]["balance"] == "12345678901234567890.12"  # not exact as a float
        assert log[4]["data"]["doc"] == {"a": 1}
        assert log[-2]["data"]["meta"] == {"tier": "silver", "tags": [1, 2]}
        assert all(isinstance(e["ts"], int) for e in log)
        assert [e["ts"] for e in log if e["op"] == "FLUSH"] == sorted(
            e["ts"] for e in log if e["op"] == "FLUSH"
        )
        now = time.time() * 1000
        assert all(now - 600_000 < e["ts"] <= now + 1000 for e in log)
        # the rolled-back transaction left nothing
        assert not any(e.get("id") == "account:9" for e in log)
        (tmp_path / "views.sql").write_text(VIEWS)
        dump = tmp_path / "dump.json"
        replay = CliRunner().invoke(
            app,
            ["replay", str(tmp_path / "views.sql"), str(tmp_path / "log.jsonl"), "--strict",
             "--dump", str(dump), "--quiet", "--param", "limit=100"],
        )  # fmt: skip
        assert replay.exit_code == 0, replay.output
        views = json.loads(dump.read_text())["views"]
        rich = conn.execute(
            "SELECT name, balance::float8 FROM account WHERE score > 0 ORDER BY name"
        ).fetchall()
        assert sorted((r["name"], r["balance"]) for r in views["rich"]["rows"]) == rich
        labels = conn.execute(
            "SELECT a.name, i.label FROM item i JOIN account a ON a.k = i.owner ORDER BY 1, 2"
        ).fetchall()
        assert sorted((r["owner_name"], r["label"]) for r in views["labels"]["rows"]) == labels
        keys = [r[0] for r in conn.execute("SELECT k FROM account ORDER BY k").fetchall()]
        assert [m[0] for m in views["everything"]["members"]] == [f"account:{k}" for k in keys]
        # PostgreSQL as the third oracle: the same SQL over the recorded tables
        result = verify_with_postgres(pg_db, tmp_path)
        assert result.exit_code == 0, result.output
        assert "ok: 5 checks passed, 1 skipped" in result.output
        assert "engine's records carry their canonical id" in result.output
        # a database that moved on without the log is caught
        conn.execute("UPDATE item SET label = 'changed'")
        result = verify_with_postgres(pg_db, tmp_path)
        assert result.exit_code == 1
        assert "view labels: rows differ from the postgres oracle" in result.output


def test_a_second_run_continues_where_the_slot_stopped(pg_db: Database, tmp_path: Path) -> None:
    with pg_db.connect() as conn:  # type: ignore[attr-defined]
        conn.execute("CREATE TABLE t (k int PRIMARY KEY, v int)")
        assert record(pg_db, tmp_path, "t", "-q").exit_code == 0
        conn.execute("INSERT INTO t VALUES (1, 1)")
        assert record(pg_db, tmp_path, "t", "-q").exit_code == 0
        conn.execute("UPDATE t SET v = 2")
        conn.execute("INSERT INTO t VALUES (2, 2)")
        assert record(pg_db, tmp_path, "t", "-q", "--append").exit_code == 0
        assert record(pg_db, tmp_path, "t", "-q", "--append").exit_code == 0  # nothing new
    ops = [(e["op"], e.get("id"), e.get("data")) for e in entries(tmp_path / "log.jsonl")]
    assert ops == [
        ("CREATE", "t:1", {"k": 1, "v": 1}), ("FLUSH", None, None),
        ("UPDATE", "t:1", {"k": 1, "v": 2}), ("FLUSH", None, None),
        ("CREATE", "t:2", {"k": 2, "v": 2}), ("FLUSH", None, None),
    ]  # fmt: skip


def test_nan_and_infinity_are_refused_not_written_as_null(pg_db: Database, tmp_path: Path) -> None:
    with pg_db.connect() as conn:  # type: ignore[attr-defined]
        conn.execute("CREATE TABLE t (k int PRIMARY KEY, n numeric, f float8, g float8 NOT NULL)")
        assert record(pg_db, tmp_path, "t", "-q").exit_code == 0
        conn.execute("INSERT INTO t VALUES (1, null, null, 1)")  # a real NULL is fine
        conn.execute("INSERT INTO t VALUES (2, 'NaN', 1, 1)")
        result = record(pg_db, tmp_path, "t", "-q")
        assert result.exit_code == 1
        assert "error: slot ssp_record at LSN" in result.output
        assert "column n of t:2 arrived as null and the row holds NaN now" in result.output
        assert "hint:" in result.output
        log = entries(tmp_path / "log.jsonl")
        assert log[0]["data"] == {"k": 1, "n": None, "f": None, "g": 1.0}
        assert not any(e.get("id") == "t:2" for e in log)  # nothing half-written
        # skipped: the source line goes to the rejects file, the rest is recorded
        conn.execute("INSERT INTO t VALUES (3, 1, 2, 'Infinity')")  # NOT NULL: no lookup needed
        conn.execute("INSERT INTO t VALUES (4, 1, 2, 3)")
        result = record(
            pg_db, tmp_path, "t", "-q", "--on-error", "skip", "--rejects", str(tmp_path / "rej"),
            name="skip.jsonl",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        ids = [e.get("id") for e in entries(tmp_path / "skip.jsonl")]
        assert ids == ["t:1", None, "t:4", None]
        rejected = (tmp_path / "rej").read_text().splitlines()
        assert len(rejected) == 2  # the commit lines of the transactions refused


def test_an_unsent_toasted_value_is_filled_or_the_change_is_refused(
    pg_db: Database, tmp_path: Path
) -> None:
    big = "".join(chr(65 + (i * 7919) % 26) + str(i) for i in range(4000))  # not compressible
    with pg_db.connect() as conn:  # type: ignore[attr-defined]
        conn.execute("CREATE TABLE d (k int PRIMARY KEY, body text, n int)")
        conn.execute("ALTER TABLE d ALTER COLUMN body SET STORAGE EXTERNAL")
        conn.execute("INSERT INTO d VALUES (1, %s, 0)", (big,))
        assert record(pg_db, tmp_path, "d", "-q").exit_code == 0  # the slot starts after it
        conn.execute("UPDATE d SET n = 1")  # body is left out of the change
        result = record(pg_db, tmp_path, "d", "-q")
        assert result.exit_code == 1
        assert "lacks column(s) body" in result.output
        assert "REPLICA IDENTITY FULL" in result.output
        conn.execute("ALTER TABLE d REPLICA IDENTITY FULL")
        conn.execute("SELECT pg_drop_replication_slot('ssp_record')")
        assert record(pg_db, tmp_path, "d", "-q").exit_code == 0
        conn.execute("UPDATE d SET n = 2")
        result = record(pg_db, tmp_path, "d", "-q")
        assert result.exit_code == 0, result.output
        (update, _flush) = entries(tmp_path / "log.jsonl")
        assert update["data"] == {"k": 1, "body": big, "n": 2}


def test_a_toasted_value_seen_earlier_fills_the_update(pg_db: Database, tmp_path: Path) -> None:
    big = "".join(chr(65 + (i * 7919) % 26) + str(i) for i in range(4000))
    with pg_db.connect() as conn:  # type: ignore[attr-defined]
        conn.execute("CREATE TABLE d (k int PRIMARY KEY, body text, n int)")
        conn.execute("ALTER TABLE d ALTER COLUMN body SET STORAGE EXTERNAL")
        conn.execute("INSERT INTO d VALUES (1, 'short', 0)")
        result = record(pg_db, tmp_path, "d", "-q", "--initial", str(tmp_path / "init.jsonl"))
        assert result.exit_code == 0, result.output
        conn.execute("UPDATE d SET body = %s", (big,))
        conn.execute("UPDATE d SET n = 1")
        assert record(pg_db, tmp_path, "d", "-q", "--append").exit_code == 0
        assert [e.get("data", {}).get("body") for e in entries(tmp_path / "log.jsonl")] == [
            big, None, big, None,
        ]  # fmt: skip


def test_initial_rows_and_the_log_join_exactly_while_writers_run(
    pg_db: Database, tmp_path: Path
) -> None:
    """Writes go on while the slot and its snapshot are taken: nothing lost, nothing twice."""
    with pg_db.connect() as conn:  # type: ignore[attr-defined]
        conn.execute("CREATE TABLE c (k int PRIMARY KEY, v int NOT NULL)")
        conn.execute("INSERT INTO c SELECT g, 0 FROM generate_series(1, 200) g")
    stop = threading.Event()
    writes = [0]

    def writer() -> None:
        with pg_db.connect() as conn:  # type: ignore[attr-defined]
            n = 200
            while not stop.is_set():
                n += 1
                with conn.transaction():
                    conn.execute("INSERT INTO c VALUES (%s, 0)", (n,))
                    conn.execute("UPDATE c SET v = v + 1 WHERE k = %s", (n % 150 + 1,))
                    conn.execute("DELETE FROM c WHERE k = %s", (n - 100,))
                writes[0] += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while writes[0] < 20:
            time.sleep(0.01)
        job = PostgresRecording(
            dsn=pg_db.dsn, tables=["c"], log=str(tmp_path / "log.jsonl"),
            initial=str(tmp_path / "init.jsonl"),
        )  # fmt: skip
        record_postgres(job)
        before = writes[0]
        while writes[0] < before + 20:
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join()
    job = PostgresRecording(
        dsn=pg_db.dsn, tables=["c"], log=str(tmp_path / "log.jsonl"), append=True
    )
    record_postgres(job)
    init = entries(tmp_path / "init.jsonl")
    assert init and all(set(e) == {"table", "id", "data"} for e in init)
    (tmp_path / "views.sql").write_text("CREATE VIEW everything AS SELECT * FROM c;\n")
    dump = tmp_path / "dump.json"
    replay = CliRunner().invoke(
        app,
        ["replay", str(tmp_path / "views.sql"), str(tmp_path / "log.jsonl"), "--strict",
         "--initial", str(tmp_path / "init.jsonl"), "--dump", str(dump), "--quiet"],
    )  # fmt: skip
    assert replay.exit_code == 0, replay.output  # --strict: no change applied twice or missing
    rows = json.loads(dump.read_text())["views"]["everything"]["rows"]
    with pg_db.connect() as conn:  # type: ignore[attr-defined]
        server = conn.execute("SELECT k, v FROM c ORDER BY k").fetchall()
    assert sorted((r["k"], r["v"]) for r in rows) == server
    assert writes[0] > 40


def test_transactions_open_while_the_slot_is_made_land_once_in_the_snapshot_or_the_log(
    pg_db: Database, tmp_path: Path
) -> None:
    """The slot waits for the transactions running when it is created: they and the commits
    made meanwhile are in the --initial rows or in the log, never in both, never lost."""
    with pg_db.connect() as conn:  # type: ignore[attr-defined]
        conn.execute("CREATE TABLE c (k int PRIMARY KEY, v int NOT NULL)")
        conn.execute("INSERT INTO c SELECT g, 0 FROM generate_series(1, 10) g")
    blocker: Any = pg_db.connect()  # type: ignore[attr-defined]
    blocker.execute("BEGIN")
    blocker.execute("INSERT INTO c VALUES (100, 1)")
    blocker.execute("UPDATE c SET v = 5 WHERE k = 1")
    job = PostgresRecording(
        dsn=pg_db.dsn, tables=["c"], log=str(tmp_path / "log.jsonl"),
        initial=str(tmp_path / "init.jsonl"),
    )  # fmt: skip
    failure: list[BaseException] = []

    def run() -> None:
        try:
            record_postgres(job)
        except BaseException as err:
            failure.append(err)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        with pg_db.connect() as conn:  # type: ignore[attr-defined]
            for _ in range(50):  # the recorder is waiting for the open transaction
                if conn.execute(
                    "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'ssp_record'"
                ).fetchone()[0]:
                    break
                time.sleep(0.1)
            assert thread.is_alive()
            conn.execute("UPDATE c SET v = 7 WHERE k = 2")  # committed while the slot is made
            conn.execute("DELETE FROM c WHERE k = 3")
        blocker.execute("COMMIT")
    finally:
        blocker.close()
        thread.join(timeout=60)
    assert not failure, failure
    with pg_db.connect() as conn:  # type: ignore[attr-defined]
        conn.execute("UPDATE c SET v = v + 1 WHERE k IN (1, 2, 100)")
        conn.execute("INSERT INTO c VALUES (101, 0)")
    record_postgres(
        PostgresRecording(dsn=pg_db.dsn, tables=["c"], log=str(tmp_path / "log.jsonl"), append=True)
    )
    (tmp_path / "views.sql").write_text("CREATE VIEW everything AS SELECT * FROM c;\n")
    dump = tmp_path / "dump.json"
    replay = CliRunner().invoke(
        app,
        ["replay", str(tmp_path / "views.sql"), str(tmp_path / "log.jsonl"), "--strict",
         "--initial", str(tmp_path / "init.jsonl"), "--dump", str(dump), "--quiet"],
    )  # fmt: skip
    assert replay.exit_code == 0, replay.output  # --strict: nothing applied twice or missing
    rows = json.loads(dump.read_text())["views"]["everything"]["rows"]
    with pg_db.connect() as conn:  # type: ignore[attr-defined]
        server = conn.execute("SELECT k, v FROM c ORDER BY k").fetchall()
    assert sorted((r["k"], r["v"]) for r in rows) == server
    logged = {e.get("id") for e in entries(tmp_path / "log.jsonl")}
    initial = {e["id"] for e in entries(tmp_path / "init.jsonl")}
    assert "c:101" in logged and "c:101" not in initial
    # what committed before the slot's consistent point is in the snapshot, not in the log
    assert "c:100" in initial and "c:3" not in initial and "c:3" not in logged


def test_follow_stops_on_request_and_until_idle_stops_by_itself(
    pg_db: Database, tmp_path: Path
) -> None:
    with pg_db.connect() as conn:  # type: ignore[attr-defined]
        conn.execute("CREATE TABLE t (k int PRIMARY KEY)")
    stop = threading.Event()
    job = PostgresRecording(
        dsn=pg_db.dsn, tables=["t"], log=str(tmp_path / "log.jsonl"), follow=True,
        poll_interval=0.05,
    )  # fmt: skip
    seen: list[int] = []
    thread = threading.Thread(
        target=record_postgres,
        args=(job,),
        kwargs={"should_stop": stop.is_set, "progress": lambda s: seen.append(s.changes)},
    )
    thread.start()
    deadline = time.monotonic() + 20
    while not seen and time.monotonic() < deadline:  # the slot exists after the first poll
        time.sleep(0.02)
    with pg_db.connect() as conn:  # type: ignore[attr-defined]
        for k in range(5):
            conn.execute("INSERT INTO t VALUES (%s)", (k,))
        deadline = time.monotonic() + 20
        while job.stats.changes < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        thread.join(timeout=20)
        assert not thread.is_alive()
        assert job.stats.changes == 5 and job.stats.transactions == 5
        assert seen and seen[-1] == 5
        assert job.stats.lag is not None
        started = time.monotonic()
        result = record(pg_db, tmp_path, "t", "-q", "--until-idle", "0.3", name="idle.jsonl")
        assert result.exit_code == 0
        assert 0.3 <= time.monotonic() - started < 15
    assert len(entries(tmp_path / "log.jsonl")) == 10


def test_the_lag_is_the_age_of_the_last_commit_read_and_zero_once_caught_up(
    pg_db: Database, tmp_path: Path
) -> None:
    with pg_db.connect() as conn:  # type: ignore[attr-defined]
        conn.execute("CREATE TABLE t (k int PRIMARY KEY)")
        assert record(pg_db, tmp_path, "t", "-q").exit_code == 0  # the slot
        conn.execute("INSERT INTO t VALUES (1)")
        time.sleep(1.2)  # the commit is 1.2 s old when the recorder reads it
    lags: list[tuple[float | None, str | None, int]] = []
    job = PostgresRecording(
        dsn=pg_db.dsn, tables=["t"], log=str(tmp_path / "log.jsonl"), until_idle=0.2,
        poll_interval=0.05,
    )  # fmt: skip
    record_postgres(job, progress=lambda s: lags.append((s.lag_seconds, s.lag, s.changes)))
    first, *rest = lags
    assert first[2] == 1 and first[0] is not None and 1.2 <= first[0] < 60
    assert first[1] is not None and first[1].endswith(" WAL bytes behind)")
    assert rest and all(lag == 0.0 for lag, _, _ in rest)  # nothing pending: caught up


def test_setup_errors_name_the_problem(pg_db: Database, tmp_path: Path) -> None:
    with pg_db.connect() as conn:  # type: ignore[attr-defined]
        conn.execute("CREATE TABLE nokey (v int)")
        conn.execute("CREATE TABLE t (k int PRIMARY KEY)")
    result = record(pg_db, tmp_path, "nokey", "-q")
    assert (
        result.exit_code == 1 and "error: --tables: table nokey has no primary key" in result.output
    )
    result = record(pg_db, tmp_path, "missing", "-q")
    assert result.exit_code == 1 and "no table 'missing'" in result.output
    assert record(pg_db, tmp_path, "t", "-q").exit_code == 0
    result = record(pg_db, tmp_path, "t", "-q", "--initial", str(tmp_path / "i.jsonl"))
    assert result.exit_code == 1 and "slot ssp_record exists" in result.output
    with pytest.raises(CircuitError, match="cannot connect"):
        record_postgres(
            PostgresRecording(
                dsn="host=127.0.0.1 port=1 dbname=x", tables=["t"], log=str(tmp_path / "x")
            )
        )
    assert issubclass(RecordError, CircuitError)
