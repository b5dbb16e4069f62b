"""``ssp record surrealdb``: SurrealDB changefeeds read into an ssp log (SPEC section 9).

The recorded tables must be defined with ``CHANGEFEED <duration> INCLUDE
ORIGINAL``: without ``INCLUDE ORIGINAL`` a create and an update look the same
in the feed. The recorder polls ``SHOW CHANGES FOR DATABASE SINCE n LIMIT k``
and keeps the changes of its tables. (``SHOW CHANGES FOR TABLE`` counts its
``LIMIT`` in changesets of the whole database, so a page of one table can be
empty while its changes wait further on: the database form pages reliably.)

Mapping (engine 2.3, the ``surrealdb`` 2.0 SDK):

- ``{"update": record}`` (no ``current``) is a ``CREATE`` of the record;
  ``{"current": record, "update": patch}`` an ``UPDATE`` with the whole
  current record; ``{"delete": {"id": ...}}`` a ``DELETE``;
  ``{"define_table": ...}`` marks where the table's feed starts (no entry).
  A record id is immutable in SurrealDB: "changing" one is a delete and a
  create, and the feed carries exactly that.
- The entry id is ``table:key``: a string key as it is, any other key (a
  number, an array, an object) as its canonical JSON, as for PostgreSQL keys.
  Record links in values become the same id text; datetimes ISO 8601 text
  (``Z``), durations SurrealQL text (``1h30m``), UUIDs their text, decimals
  numbers where a float holds them exactly and strings otherwise. NaN,
  infinities, bytes, geometries and ranges are refused (no JSON form).
- One ``FLUSH`` per versionstamp, in versionstamp order, carrying
  ``"versionstamp"`` (other fields of a log entry are ignored by replay): a
  later run with ``append`` continues after the last one. There is no commit
  time in the feed, so entries carry no ``ts``, and the lag is unknown.

Transactions: SurrealDB 2.3 gives each table's share of a transaction its own
versionstamp, and orders the tables of one transaction differently from one
transaction to the next (not by statement). ssp writes what the feed says: a
transaction that writes two recorded tables becomes two consecutive FLUSHes,
so a view over both tables can show, for one frame, the state between them.
Within one table the changes keep their statements' order.

Expired changes: the engine deletes a database's changesets older than the
longest changefeed duration, oldest first. Each poll asks again from the last
versionstamp it read and must find it (or an earlier one) still there; if it
is gone, changes after it may have expired unread and the recording stops
with an error. A new recording must find each table's ``define_table`` before
its first change (and a table never seen in the feed must be empty), and once
caught up it checks that every record the tables hold was created in the feed:
else the start of its history has expired, or the changefeed was added to a
table that already held records (those are not in the feed).

An embedded database on disk (``surrealkv://``, ``file://``) written by
another process is opened afresh for every poll: an open engine reads the
files once and does not see later writes by others. The recorder only reads.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import orjson

from ..errors import CircuitError
from .changes import RecordError, Transaction, key_text, number_from_text
from .writer import LogWriter, OnError, RecordStats

PAGE = 1000
ON_DISK = ("file", "surrealkv", "surrealkv+versioned")
VS_MARK = "versionstamp"
_DURATION_UNITS = (
    ("y", 365 * 86_400 * 10**9),
    ("w", 7 * 86_400 * 10**9),
    ("d", 86_400 * 10**9),
    ("h", 3_600 * 10**9),
    ("m", 60 * 10**9),
    ("s", 10**9),
    ("ms", 10**6),
    ("µs", 10**3),
    ("ns", 1),
)
_CHANGEFEED = re.compile(r"\bCHANGEFEED\s+([0-9a-zµ]+)(\s+INCLUDE\s+ORIGINAL)?", re.IGNORECASE)


class ChangeFeed(Protocol):
    """What the recorder needs of a SurrealDB database (the SDK, or a test's stand-in)."""

    def tables(self) -> dict[str, str]:
        """Table name -> its ``DEFINE TABLE`` text (``INFO FOR DB``)."""
        ...

    def changes(self, since: int, limit: int) -> list[dict[str, Any]]:
        """``SHOW CHANGES FOR DATABASE SINCE since LIMIT limit``."""
        ...

    def record_ids(self, table: str) -> list[str]:
        """The ids (``table:key``) of the records ``table`` holds now."""
        ...

    def close(self) -> None: ...


@dataclass
class SurrealRecording:
    """What ``ssp record surrealdb`` was asked to do (SPEC 9)."""

    url: str
    ns: str
    db: str
    tables: list[str]
    log: str
    follow: bool = False
    until_idle: float | None = None
    poll_interval: float = 0.2
    on_error: OnError = "fail"
    rejects: str | None = None
    append: bool = False
    page: int = PAGE
    username: str | None = None
    password: str | None = None
    stats: RecordStats = field(default_factory=RecordStats)


class SdkFeed:
    """A :class:`ChangeFeed` over the ``surrealdb`` SDK: embedded (``mem://``, on disk) or a server.

    On-disk embedded databases are reopened for every call (module docstring).
    """

    def __init__(self, job: SurrealRecording) -> None:
        try:
            import surrealdb
        except ImportError:
            raise CircuitError(
                "the surrealdb SDK is not installed",
                location="surrealdb",
                hint="pip install 'ssp[surrealdb]'",
            ) from None
        self._sdk = surrealdb
        self.job = job
        scheme, _, rest = job.url.partition("://")
        self.scheme = scheme.lower()
        if not rest and self.scheme not in ("mem", "memory"):
            raise CircuitError(f"not a SurrealDB URL: {job.url!r}", location="--url")
        if self.scheme in ON_DISK and not os.path.exists(rest):
            raise CircuitError(
                f"no database at {rest!r}",
                location="--url",
                hint="the recorder opens an existing database and never creates one",
            )
        self.reopen = self.scheme in ON_DISK
        self._conn: Any = None if self.reopen else self._open()

    def _open(self) -> Any:
        try:
            conn: Any = self._sdk.Surreal(self.job.url).__enter__()  # connects, any engine
            if self.job.username is not None:
                conn.signin({"username": self.job.username, "password": self.job.password or ""})
            conn.use(self.job.ns, self.job.db)
        except CircuitError:
            raise
        except Exception as err:  # the SDK raises ValueError, RuntimeError, its own errors
            raise CircuitError(f"cannot open {self.job.url}: {err}", location="surrealdb") from None
        return conn

    def _query(self, sql: str, variables: dict[str, Any] | None = None) -> Any:
        conn = self._open() if self.reopen else self._conn
        try:
            return conn.query(sql, variables or {})
        except Exception as err:
            raise CircuitError(f"{sql.split()[0]} failed: {err}", location="surrealdb") from None
        finally:
            if self.reopen:
                conn.close()

    def tables(self) -> dict[str, str]:
        info = self._query("INFO FOR DB;")
        return dict(info.get("tables", {})) if isinstance(info, dict) else {}

    def changes(self, since: int, limit: int) -> list[dict[str, Any]]:
        rows = self._query(f"SHOW CHANGES FOR DATABASE SINCE {int(since)} LIMIT {int(limit)};")
        return list(rows or [])

    def record_ids(self, table: str) -> list[str]:
        rows = self._query("SELECT VALUE id FROM type::table($t);", {"t": table})
        return [record_id_text(rid, table)[1] for rid in rows or ()]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def retention_seconds(text: str) -> float:
    """A SurrealQL duration (``1h30m``) in seconds."""
    total = 0
    for number, unit in re.findall(r"(\d+)(ns|µs|us|ms|[smhdwy])", text.lower()):
        unit = "µs" if unit == "us" else unit
        total += int(number) * dict(_DURATION_UNITS)[unit]
    return total / 1e9


def check_tables(definitions: Mapping[str, str], names: list[str]) -> dict[str, float]:
    """Each recorded table's changefeed duration (s); a table unfit for recording is an error."""
    retention = {}
    for name in names:
        text = definitions.get(name)
        if text is None:
            raise CircuitError(f"no table {name!r} in the database", location="--tables")
        match = _CHANGEFEED.search(text)
        hint = (
            f"DEFINE TABLE OVERWRITE {name} ... CHANGEFEED 1h INCLUDE ORIGINAL (keep its other "
            "clauses); without INCLUDE ORIGINAL a create cannot be told from an update"
        )
        if match is None:
            raise CircuitError(f"table {name} has no changefeed", location="--tables", hint=hint)
        if not match.group(2):
            raise CircuitError(
                f"table {name}'s changefeed lacks INCLUDE ORIGINAL", location="--tables", hint=hint
            )
        retention[name] = retention_seconds(match.group(1))
    return retention


def duration_text(nanoseconds: int) -> str:
    """SurrealQL's text of a duration: ``1h30m``, ``1s500ms``, ``0ns``."""
    if nanoseconds == 0:
        return "0ns"
    parts = []
    rest = nanoseconds
    for unit, size in _DURATION_UNITS:
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _is_sdk(value: object, name: str) -> bool:
    return any(cls.__name__ == name for cls in type(value).__mro__)


def record_id_text(value: Any, location: str | None) -> tuple[str, str]:
    """``(table, "table:key")`` of an SDK ``RecordID`` (the key as :func:`key_text` writes it)."""
    table = str(value.table_name)
    key = surreal_value(value.id, "id", location)
    return table, f"{table}:{key_text([key])}"


def surreal_value(value: Any, column: str, location: str | None) -> Any:
    """One SurrealDB value as the log writes it (module docstring)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RecordError(
                f"column {column} holds {value}, which a JSON log cannot carry",
                location=location,
                hint="ssp refuses it rather than writing null; store NONE or a finite number",
            )
        return value
    if isinstance(value, Decimal):
        return number_from_text(str(value), "decimal", column, location)
    if isinstance(value, dict):
        return {str(k): surreal_value(v, f"{column}.{k}", location) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [surreal_value(v, f"{column}[{i}]", location) for i, v in enumerate(value)]
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.UTC).replace(tzinfo=None)
        return value.isoformat() + "Z"
    if isinstance(value, uuid.UUID):
        return str(value)
    if _is_sdk(value, "RecordID"):
        return record_id_text(value, location)[1]
    if _is_sdk(value, "Duration"):
        return duration_text(int(value.elapsed))
    if _is_sdk(value, "Table"):
        return str(value.table_name)
    if _is_sdk(value, "Datetime"):
        return str(value.dt)
    raise RecordError(
        f"column {column} holds a {type(value).__name__}, which has no JSON form in the log",
        location=location,
    )


def _raw(change: Any) -> str:
    """A change as its rejects line (NaN written as ``NaN``: the line shows what was refused)."""
    return json.dumps(change, default=str, ensure_ascii=False, separators=(",", ":"))


class FeedConverter:
    """Changesets of the feed to :class:`Transaction` s, one per versionstamp."""

    def __init__(
        self, tables: list[str], *, fresh: bool, reject: Callable[[Any, RecordError], None]
    ):
        self.tables = set(tables)
        self.started: set[str] = set() if fresh else set(self.tables)
        self.reject = reject
        # a new recording keeps the ids it saw created until it has checked that every
        # record the tables held at its start came through the feed
        self.created: dict[str, set[str]] | None = {t: set() for t in tables} if fresh else None

    def changeset(self, changeset: Mapping[str, Any]) -> Transaction:
        vs = int(changeset["versionstamp"])
        location = f"versionstamp {vs}"
        txn = Transaction(location=location, marks={VS_MARK: vs})
        for change in changeset.get("changes") or ():
            try:
                entry = self.change(change, location)
            except RecordError as err:
                self.reject(_raw(change), err)
                continue
            if entry is not None:
                txn.entries.append(entry)
                txn.changes += 1
        return txn

    def change(self, change: Mapping[str, Any], location: str) -> dict[str, Any] | None:
        """One change as a log entry (``None``: not one of ours, or a table's start)."""
        if "define_table" in change:
            name = str((change["define_table"] or {}).get("name"))
            if name in self.tables:
                self.started.add(name)
            return None
        if "current" in change:
            op, record = "UPDATE", change["current"]
        elif "update" in change:
            op, record = "CREATE", change["update"]
        elif "delete" in change:
            op, record = "DELETE", change["delete"]
        else:
            raise RecordError(
                f"a change of an unknown kind ({', '.join(map(str, change))})", location=location
            )
        if not isinstance(record, Mapping) or not _is_sdk(record.get("id"), "RecordID"):
            raise RecordError("a change without a record id", location=location)
        table, rid = record_id_text(record["id"], location)
        if table not in self.tables:
            return None
        if table not in self.started:
            raise expired_error(
                f"the changefeed of {table} does not start at its DEFINE TABLE: its first change "
                f"here is at {location}",
                location,
            )
        if op == "CREATE" and self.created is not None:
            self.created[table].add(rid)
        if op == "DELETE":
            return {"op": op, "table": table, "id": rid}
        data = {str(k): surreal_value(v, str(k), location) for k, v in record.items()}
        data["id"] = rid
        return {"op": op, "table": table, "id": rid, "data": data}


def expired_error(message: str, location: str | None) -> CircuitError:
    return CircuitError(
        f"{message}: earlier changes have expired from the changefeed (or were made before it "
        "was defined), so the log would miss them",
        location=location,
        hint="record sooner than the CHANGEFEED duration, or lengthen it (DEFINE TABLE OVERWRITE "
        "... CHANGEFEED 7d INCLUDE ORIGINAL); a new recording must see each table from its start",
    )


def last_versionstamp(path: str) -> int | None:
    """The ``versionstamp`` of the last FLUSH of a log written by this recorder (None: empty)."""
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        return None
    if size == 0:
        return None
    with open(path, "rb") as src:
        block = 4096
        tail = b""
        while True:
            start = max(0, size - len(tail) - block)
            src.seek(start)
            tail = src.read(size - start)
            lines = tail.rstrip(b"\n").split(b"\n")
            if len(lines) > 1 or start == 0:
                break
            block *= 2
    if not tail.endswith(b"\n"):
        raise CircuitError(
            "the log ends inside a line (a recording stopped while writing)",
            location=path,
            hint="cut the log after its last FLUSH line, then record again with --append",
        )
    last = lines[-1]
    try:
        entry = orjson.loads(last)
        return int(entry[VS_MARK])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise CircuitError(
            "the log does not end with a FLUSH carrying a versionstamp: it was not written by "
            "ssp record surrealdb, or was cut",
            location=path,
            hint="record into a new log instead of --append",
        ) from None


def record_surrealdb(
    job: SurrealRecording,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[RecordStats], None] | None = None,
    feed: ChangeFeed | None = None,
) -> RecordStats:
    """Run a recording (module docstring); returns its counts (also in ``job.stats``)."""
    if job.page < 2:
        raise CircuitError("the page size must be at least 2", location="surrealdb")
    last = last_versionstamp(job.log) if job.append else None
    source = feed if feed is not None else SdkFeed(job)
    try:
        check_tables(source.tables(), job.tables)
        job.stats.lag = "unknown"
        with LogWriter(
            job.log, on_error=job.on_error, rejects=job.rejects, append=job.append
        ) as writer:
            writer.stats = job.stats
            converter = FeedConverter(job.tables, fresh=last is None, reject=writer.reject)
            _poll(job, source, converter, writer, last, should_stop, progress)
    finally:
        if feed is None:
            source.close()
    return job.stats


def _poll(
    job: SurrealRecording,
    feed: ChangeFeed,
    converter: FeedConverter,
    writer: LogWriter,
    last: int | None,
    should_stop: Callable[[], bool],
    progress: Callable[[RecordStats], None] | None,
) -> None:
    idle_since = time.monotonic()
    present: dict[str, list[str]] | None = None
    while not should_stop():
        # SINCE takes the versionstamp's high 64 bits (its printed value is that << 16);
        # asking from the last one read proves that nothing after it has expired.
        since = 0 if last is None else last >> 16
        page = feed.changes(since, job.page)
        if last is not None and not any(int(c["versionstamp"]) <= last for c in page):
            raise expired_error(
                f"versionstamp {last}, the last one read, is no longer in the changefeed",
                f"versionstamp {last}",
            )
        wrote = False
        for changeset in page:
            vs = int(changeset["versionstamp"])
            if last is not None and vs <= last:
                continue
            txn = converter.changeset(changeset)
            if txn.entries:
                writer.write(txn)
                wrote = True
            last = vs
        full = len(page) >= job.page
        if full and last is not None and since == last >> 16:
            raise CircuitError(
                f"more than {job.page} changesets share versionstamp {last >> 16} << 16",
                location="surrealdb",
                hint="record with a larger page",
            )
        if wrote:
            idle_since = time.monotonic()
        if not full and converter.created is not None:
            if present is None:
                # caught up once: every record held now must have come, or come next poll,
                # through a CREATE in the feed (else it predates the changefeed or expired)
                present = {t: feed.record_ids(t) for t in sorted(converter.tables)}
                for table in sorted(converter.tables - converter.started):
                    if present[table]:
                        raise expired_error(
                            f"table {table} holds records but its changefeed has no DEFINE TABLE",
                            "surrealdb",
                        )
                    converter.started.add(table)  # empty: its whole history is still to come
                continue  # one more poll: what was created meanwhile
            for table, ids in present.items():
                unseen = [rid for rid in ids if rid not in converter.created[table]]
                if unseen:
                    raise expired_error(
                        f"{len(unseen)} record(s) of {table} ({', '.join(unseen[:3])}) are not "
                        "created in the changefeed",
                        "surrealdb",
                    )
            converter.created = None
        if progress is not None:
            progress(job.stats)
        if full:
            continue
        if not job.follow and job.until_idle is None:
            return
        if job.until_idle is not None and time.monotonic() - idle_since >= job.until_idle:
            return
        time.sleep(job.poll_interval)
