"""``ssp record surrealdb`` against the embedded engine of the ``surrealdb`` SDK.

The end-to-end test writes a file-backed database from one process (a
subprocess running the SDK) and records it from another (this one), while the
writer goes on; the log then replays strictly, and its views' rows equal the
records read back from SurrealDB. The SDK is installed by ``make venv`` (the
``record`` extra): without it these tests fail under ``CI=true`` and skip
elsewhere. Expiry cannot be produced with the embedded engine (it runs no
changefeed garbage collection), so a stand-in feed shows how it is refused.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from circuit.errors import CircuitError
from circuit.record.changes import RecordError
from circuit.record.surrealdb import (
    SurrealRecording,
    duration_text,
    last_versionstamp,
    record_surrealdb,
    surreal_value,
)
from ssp_cli.main import app

try:
    import surrealdb
except ImportError:  # pragma: no cover - the record extra installs it
    if os.environ.get("CI") == "true":
        pytest.fail("the surrealdb SDK is needed in CI: pip install '.[record]'", pytrace=False)
    pytest.skip("the surrealdb SDK is not installed", allow_module_level=True)

WRITER = r"""
import sys, time, pathlib
import surrealdb
url, go = sys.argv[1], pathlib.Path(sys.argv[2])
PHASE1 = [
    "DEFINE TABLE person CHANGEFEED 1h INCLUDE ORIGINAL;"
    "DEFINE TABLE post CHANGEFEED 1h INCLUDE ORIGINAL;"
    "DEFINE TABLE scratch;",
    "CREATE person:ann SET name = 'ann', age = 30, score = 1.5, balance = 10.50dec,"
    " profile = {city: 'Oslo', tags: ['a', 'b'], deep: {n: [1, {x: 2.25}]}};",
    "CREATE person:bob SET name = 'bob', age = 41, score = -2, balance = 12345678901234567890.12dec,"
    " profile = {city: 'Rome', tags: []};",
    "BEGIN; CREATE post:p1 SET author = person:ann, title = 'hello', likes = 0,"
    " body = {text: 'hi', words: 1}; CREATE post:p2 SET author = person:bob, title = 'second',"
    " likes = 2, body = {text: 'yo', words: 1}; UPDATE person:ann SET age += 1; COMMIT;",
]
PHASE2 = [
    "UPDATE post:p1 SET likes += 1, body.words = 3;",
    # a record id "change": a delete and a create, and the link that followed it
    "BEGIN; LET $b = (SELECT * FROM ONLY person:bob); DELETE person:bob;"
    " CREATE person:robert CONTENT $b.{name, age, score, balance, profile};"
    " UPDATE post:p2 SET author = person:robert; COMMIT;",
    "BEGIN; CREATE person:tmp SET name = 'tmp'; UPDATE person:tmp SET name = 't2';"
    " DELETE person:tmp; COMMIT;",
    "BEGIN; CREATE person:ghost SET name = 'ghost'; THROW 'rolled back'; COMMIT;",
    "DELETE post:p1;",
    "CREATE person:[2, 'x'] SET name = 'composite', age = 5; CREATE person:7 SET name = 'seven';",
    "UPSERT person:ann SET name = 'Ann', age = 32, score = 1.5, balance = 0.1dec,"
    " profile = {city: 'Oslo', tags: ['a', 'b', 'c'], deep: {n: [1, {x: 2.25}]}};",
    "CREATE scratch:1 SET note = 'not recorded';",
    "CREATE post:p3 SET author = person:7, title = 'third', likes = 0, body = {text: '', words: 0};",
]
with surrealdb.Surreal(url) as db:
    db.use("app", "app")
    for statement in PHASE1:
        db.query(statement)
    print("phase1", flush=True)
    while not go.exists():
        time.sleep(0.05)
    for statement in PHASE2:
        try:
            db.query(statement)
        except Exception as err:  # the THROW transaction
            print("failed:", type(err).__name__, flush=True)
        time.sleep(0.15)
print("done", flush=True)
"""

VIEWS = """
CREATE VIEW people AS SELECT * FROM person;
CREATE VIEW posts AS SELECT * FROM post;
CREATE VIEW authored AS SELECT p.title, a.name FROM post p JOIN person a ON a.id = p.author;
CREATE VIEW per_author AS SELECT author, COUNT(*) AS n, SUM(likes) AS likes FROM post GROUP BY author;
"""


def entries(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def start_writer(tmp_path: Path) -> tuple[subprocess.Popen[str], str, Path]:
    url = f"surrealkv://{tmp_path / 'data.db'}"
    go = tmp_path / "go"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, url, str(go)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "phase1":
        proc.kill()
        raise AssertionError(f"the writer did not start: {line!r}")
    return proc, url, go


def read_back(url: str, table: str) -> list[dict[str, Any]]:
    with surrealdb.Surreal(url) as db:
        db.use("app", "app")
        rows = db.query(f"SELECT * FROM {table};")
    converted = [surreal_value(row, table, None) for row in rows]
    return sorted(converted, key=lambda r: r["id"])


def test_a_database_written_by_another_process_is_recorded_and_replays_to_its_records(
    tmp_path: Path,
) -> None:
    proc, url, go = start_writer(tmp_path)
    log = tmp_path / "log.jsonl"
    job = SurrealRecording(
        url=url, ns="app", db="app", tables=["person", "post"], log=str(log), follow=True,
        poll_interval=0.05,
    )  # fmt: skip
    polls_after_exit: list[int] = []
    stop = threading.Event()

    def progress(stats: Any) -> None:
        if proc.poll() is not None:
            polls_after_exit.append(1)
            if len(polls_after_exit) >= 2:
                stop.set()
        elif stats.transactions >= 4:  # phase 1 is in the log: let the writer go on
            go.touch()

    failure: list[BaseException] = []

    def run() -> None:
        try:
            record_surrealdb(job, should_stop=stop.is_set, progress=progress)
        except BaseException as err:
            failure.append(err)
            stop.set()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        out, _ = proc.communicate(timeout=60)
    finally:
        go.touch()
        thread.join(timeout=60)
    assert not failure, failure
    assert proc.returncode == 0 and "failed: " in out and out.strip().endswith("done")
    log_entries = entries(log)
    ops = [(e["op"], e.get("id")) for e in log_entries]
    # the two-table transaction is two FLUSHes, one per table, in the feed's order
    p1 = ops.index(("CREATE", "post:p1"))
    assert ops[p1 + 1] == ("CREATE", "post:p2")
    assert {ops[p1 + 2][0], ops[p1 + 3][0]} == {"FLUSH", "UPDATE"}
    assert ("UPDATE", "person:ann") in ops
    assert ops.count(("CREATE", "person:tmp")) == ops.count(("DELETE", "person:tmp")) == 1
    assert ("UPDATE", "person:tmp") in ops
    tmp_ops = [o for o in ops if o[1] == "person:tmp"]
    assert [o[0] for o in tmp_ops] == ["CREATE", "UPDATE", "DELETE"]  # statement order kept
    assert ("DELETE", "person:bob") in ops and ("CREATE", "person:robert") in ops
    assert ("CREATE", 'person:[2,"x"]') in ops and ("CREATE", "person:7") in ops
    assert not any(e.get("id") in ("person:ghost", "scratch:1") for e in log_entries)
    flushes = [e for e in log_entries if e["op"] == "FLUSH"]
    stamps = [f["versionstamp"] for f in flushes]
    assert stamps == sorted(set(stamps))
    assert not any("ts" in e for e in log_entries)  # the feed has no commit time
    ann = next(e for e in log_entries if e.get("id") == "person:ann")
    assert ann["data"] == {
        "id": "person:ann", "name": "ann", "age": 30, "score": 1.5, "balance": 10.5,
        "profile": {"city": "Oslo", "tags": ["a", "b"], "deep": {"n": [1, {"x": 2.25}]}},
    }  # fmt: skip
    bob = next(e for e in log_entries if e.get("id") == "person:bob")
    assert bob["data"]["balance"] == "12345678901234567890.12"
    assert next(e for e in log_entries if e.get("id") == "post:p1")["data"]["author"] == (
        "person:ann"
    )
    # a second recording of the finished database, through the command, writes the same log
    again = tmp_path / "again.jsonl"
    result = CliRunner().invoke(
        app,
        ["record", "surrealdb", "--url", url, "--ns", "app", "--db", "app",
         "--tables", "person,post", "-o", str(again)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"recorded {len(log_entries) - len(flushes)} changes" in result.output
    assert again.read_text() == log.read_text()
    # replayed strictly, the views hold what SurrealDB holds
    (tmp_path / "views.sql").write_text(VIEWS)
    dump = tmp_path / "dump.json"
    replay = CliRunner().invoke(
        app,
        ["replay", str(tmp_path / "views.sql"), str(log), "--strict", "--dump", str(dump),
         "--quiet"],
    )  # fmt: skip
    assert replay.exit_code == 0, replay.output
    views = json.loads(dump.read_text())["views"]
    people = read_back(url, "person")
    posts = read_back(url, "post")
    assert sorted(views["people"]["rows"], key=lambda r: r["id"]) == people
    assert sorted(views["posts"]["rows"], key=lambda r: r["id"]) == posts
    names = {p["id"]: p["name"] for p in people}
    assert sorted((r["title"], r["name"]) for r in views["authored"]["rows"]) == sorted(
        (p["title"], names[p["author"]]) for p in posts
    )
    assert sorted((r["author"], r["n"]) for r in views["per_author"]["rows"]) == sorted(
        (p["author"], 1) for p in posts
    )
    assert {p["id"] for p in people} == {
        "person:ann",
        "person:robert",
        'person:[2,"x"]',
        "person:7",
    }


def test_append_continues_after_the_last_versionstamp(tmp_path: Path) -> None:
    proc, url, go = start_writer(tmp_path)
    log = tmp_path / "log.jsonl"
    first = record_surrealdb(
        SurrealRecording(url=url, ns="app", db="app", tables=["person", "post"], log=str(log))
    )
    go.touch()
    proc.communicate(timeout=60)
    before = log.read_text()
    job = SurrealRecording(
        url=url, ns="app", db="app", tables=["person", "post"], log=str(log), append=True
    )
    record_surrealdb(job)
    record_surrealdb(job)  # nothing new: nothing written
    whole = tmp_path / "whole.jsonl"
    record_surrealdb(
        SurrealRecording(url=url, ns="app", db="app", tables=["person", "post"], log=str(whole))
    )
    assert log.read_text().startswith(before) and log.read_text() == whole.read_text()
    assert first.transactions == 4 and last_versionstamp(str(log)) == last_versionstamp(str(whole))


class StandIn:
    """A changefeed held in memory: what a server whose garbage collector ran would answer."""

    def __init__(self, changesets: list[dict[str, Any]], records: bool = False) -> None:
        self.changesets = changesets
        self.records = records

    def tables(self) -> dict[str, str]:
        return {"t": "DEFINE TABLE t TYPE ANY SCHEMALESS CHANGEFEED 1h INCLUDE ORIGINAL"}

    def changes(self, since: int, limit: int) -> list[dict[str, Any]]:
        return [c for c in self.changesets if c["versionstamp"] >> 16 >= since][:limit]

    def record_ids(self, table: str) -> list[str]:
        return ["t:9"] if self.records else []

    def close(self) -> None:
        pass


def rid(key: Any) -> Any:
    return surrealdb.RecordID("t", key)


def cs(n: int, *changes: dict[str, Any]) -> dict[str, Any]:
    return {"versionstamp": n << 16, "changes": list(changes)}


def test_expired_changes_are_refused_not_skipped(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    full = [
        cs(1, {"define_table": {"name": "t"}}),
        cs(2, {"update": {"id": rid(1), "v": 1}}),
        cs(3, {"current": {"id": rid(1), "v": 2}, "update": []}),
    ]
    job = SurrealRecording(url="mem://", ns="n", db="d", tables=["t"], log=str(log))
    record_surrealdb(job, feed=StandIn(full))
    assert [e["op"] for e in entries(log)] == ["CREATE", "FLUSH", "UPDATE", "FLUSH"]
    # the feed was collected past the log's last versionstamp: what came after may be lost
    later = [cs(5, {"update": {"id": rid(2), "v": 1}})]
    job = SurrealRecording(url="mem://", ns="n", db="d", tables=["t"], log=str(log), append=True)
    with pytest.raises(CircuitError, match="versionstamp 196608, the last one read, is no longer"):
        record_surrealdb(job, feed=StandIn(later))
    # still there: the recording goes on after it
    record_surrealdb(job, feed=StandIn([*full, *later]))
    assert [e.get("id") for e in entries(log)][-2:] == ["t:2", None]
    # a new recording whose feed no longer starts at the table's definition
    fresh = SurrealRecording(url="mem://", ns="n", db="d", tables=["t"], log=str(tmp_path / "n"))
    with pytest.raises(CircuitError, match="does not start at its DEFINE TABLE"):
        record_surrealdb(fresh, feed=StandIn(full[1:]))
    with pytest.raises(CircuitError, match="holds records but its changefeed has no DEFINE"):
        record_surrealdb(fresh, feed=StandIn([], records=True))
    record_surrealdb(fresh, feed=StandIn([], records=False))  # empty: nothing to miss


def test_records_from_before_the_changefeed_are_refused(tmp_path: Path) -> None:
    """A changefeed added to a table that held records: the feed starts at its DEFINE TABLE
    but lacks those records' creation (the engine, not a stand-in)."""
    url = f"surrealkv://{tmp_path / 'db'}"
    with surrealdb.Surreal(url) as db:
        db.use("app", "app")
        db.query("DEFINE TABLE t; CREATE t:old SET v = 1;")
        db.query("DEFINE TABLE OVERWRITE t CHANGEFEED 1h INCLUDE ORIGINAL; CREATE t:new SET v = 2;")
    job = SurrealRecording(url=url, ns="app", db="app", tables=["t"], log=str(tmp_path / "l"))
    with pytest.raises(CircuitError, match=r"1 record\(s\) of t \(t:old\) are not created in"):
        record_surrealdb(job)


def test_values_without_a_json_form_are_refused_or_skipped(tmp_path: Path) -> None:
    feed = StandIn(
        [
            cs(1, {"define_table": {"name": "t"}}),
            cs(2, {"update": {"id": rid(1), "v": float("nan")}}, {"update": {"id": rid(2)}}),
        ]
    )
    job = SurrealRecording(url="mem://", ns="n", db="d", tables=["t"], log=str(tmp_path / "l"))
    with pytest.raises(RecordError, match="column v holds nan") as err:
        record_surrealdb(job, feed=feed)
    assert err.value.location == "versionstamp 131072"
    job = SurrealRecording(
        url="mem://", ns="n", db="d", tables=["t"], log=str(tmp_path / "l"), on_error="skip",
        rejects=str(tmp_path / "rejects"),
    )  # fmt: skip
    stats = record_surrealdb(job, feed=feed)
    assert stats.rejected == 1 and [e.get("id") for e in entries(tmp_path / "l")] == ["t:2", None]
    assert (tmp_path / "rejects").read_text() == '{"update":{"id":"t:1","v":NaN}}\n'


def test_setup_errors_name_the_problem(tmp_path: Path) -> None:
    url = f"surrealkv://{tmp_path / 'db'}"
    with surrealdb.Surreal(url) as db:
        db.use("app", "app")
        db.query("DEFINE TABLE plain; DEFINE TABLE bare CHANGEFEED 1h;")

    def run(*args: str) -> Any:
        return CliRunner().invoke(
            app,
            ["record", "surrealdb", "--ns", "app", "--db", "app", "-o", str(tmp_path / "l"),
             *args],
        )  # fmt: skip

    result = run("--url", url, "--tables", "plain")
    assert result.exit_code == 1 and "table plain has no changefeed" in result.output
    result = run("--url", url, "--tables", "bare")
    assert "bare's changefeed lacks INCLUDE ORIGINAL" in result.output
    result = run("--url", url, "--tables", "nope")
    assert "no table 'nope' in the database" in result.output
    result = run("--url", f"surrealkv://{tmp_path / 'missing'}", "--tables", "plain")
    assert "no database at" in result.output and not (tmp_path / "missing").exists()
    (tmp_path / "l").write_text('{"op":"FLUSH"}\n')
    result = run("--url", url, "--tables", "plain", "--append")
    assert "does not end with a FLUSH carrying a versionstamp" in result.output


def test_values_and_durations_have_their_text() -> None:
    assert duration_text(5_400 * 10**9) == "1h30m" and duration_text(1_500_000) == "1ms500µs"
    assert surreal_value(surrealdb.RecordID("t", [1, "x"]), "c", None) == 't:[1,"x"]'
    assert surreal_value({"a": [surrealdb.RecordID("u", 5)]}, "c", None) == {"a": ["u:5"]}
    with pytest.raises(RecordError, match="has no JSON form"):
        surreal_value(b"\x00", "c", None)
