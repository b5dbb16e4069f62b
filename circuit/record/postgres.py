"""``ssp record postgres``: a logical replication slot (wal2json) read into an ssp log.

The recorder asks the server for wal2json format version 2 with commit
timestamps and primary keys, and parses numbers from their text (no float
rounding of ``numeric``). wal2json (2.5, Debian's) writes ``NaN`` and
infinities as ``null``: a float or numeric column that arrives as ``null`` is
refused when the column is ``NOT NULL``, and otherwise checked against the
row as it is now (by its key): a non-finite value there is refused. A ``NaN``
that has since been overwritten cannot be told from a ``NULL`` (README). It
reads with
``pg_logical_slot_peek_changes`` and, once a batch of whole transactions is in
the log file, moves the slot past them with ``pg_replication_slot_advance``:
a recorder stopped at any point neither loses a transaction nor writes one
twice when it runs again on the same slot and log (``append``).

``--initial``: the slot is created over a replication connection with
``EXPORT_SNAPSHOT``, and the tables are read in a REPEATABLE READ transaction
set to that snapshot (``SET TRANSACTION SNAPSHOT``), so the rows are exactly
the state the slot's first change applies to. The slot must be new for that.

Decoding reads flushed WAL only: with ``synchronous_commit=off`` a commit may
reach the slot a moment later (at most ``wal_writer_delay``). psycopg (3) is
an optional dependency (``pip install 'ssp[postgres]'``), imported when used.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..errors import CircuitError
from .changes import (
    NON_FINITE,
    ChangeConverter,
    RecordError,
    TableInfo,
    Transaction,
    convert_value,
    loads_exact,
)
from .wal2json import V2Decoder
from .writer import LogWriter, OnError, RecordStats, write_initial

PLUGIN = "wal2json"
DEFAULT_SLOT = "ssp_record"
BATCH_CHANGES = 20_000


def connect(dsn: str, **kwargs: Any) -> Any:
    """A psycopg connection (autocommit), with a readable error when psycopg or the server is missing."""
    try:
        import psycopg
    except ImportError:
        raise CircuitError(
            "psycopg is not installed", location="postgres", hint="pip install 'ssp[postgres]'"
        ) from None
    try:
        return psycopg.connect(dsn, autocommit=True, **kwargs)
    except psycopg.Error as err:
        raise CircuitError(f"cannot connect: {str(err).strip()}", location="postgres") from None


@dataclass(frozen=True, slots=True)
class PgTable:
    """One recorded table as the catalog describes it."""

    schema: str
    name: str
    key: tuple[str, ...]
    columns: tuple[str, ...]
    types: tuple[str, ...]
    replica_full: bool
    not_null: frozenset[str] = frozenset()

    @property
    def qualified(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def inspect_tables(conn: Any, names: list[str]) -> list[PgTable]:
    """The catalog's view of ``names``; a missing table or one without a primary key is an error."""
    tables = []
    for name in names:
        row = conn.execute(
            "SELECT c.oid, n.nspname, c.relname, c.relreplident FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)",
            (name,),
        ).fetchone()
        if row is None:
            raise CircuitError(f"no table {name!r} in the database", location="--tables")
        oid, schema, relname, replident = row
        cols = conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute "
            "WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            (oid,),
        ).fetchall()
        key = conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s AND i.indisprimary "
            "ORDER BY array_position(i.indkey::int2[], a.attnum)",
            (oid,),
        ).fetchall()
        if not key:
            raise CircuitError(
                f"table {name} has no primary key: its rows have no record id",
                location="--tables",
                hint=f"ALTER TABLE {name} ADD PRIMARY KEY (...)",
            )
        tables.append(
            PgTable(
                schema,
                relname,
                tuple(k[0] for k in key),
                tuple(c[0] for c in cols),
                tuple(c[1] for c in cols),
                replident == "f",
                frozenset(c[0] for c in cols if c[2]),
            )
        )
    seen: dict[str, str] = {}
    for table in tables:
        if table.name in seen and seen[table.name] != table.schema:
            raise CircuitError(
                f"tables {seen[table.name]}.{table.name} and {table.schema}.{table.name} "
                "would share one table name in the log",
                location="--tables",
            )
        seen[table.name] = table.schema
    return tables


def _escape_filter(name: str) -> str:
    return "".join("\\" + ch if ch in ",. *\\" else ch for ch in name)


def wal2json_options(tables: list[PgTable]) -> list[str]:
    """The plugin options, as the flat name/value list the SQL functions take."""
    add = ",".join(f"{_escape_filter(t.schema)}.{_escape_filter(t.name)}" for t in tables)
    return [
        "format-version", "2",
        "include-timestamp", "1",
        "include-pk", "1",
        "include-types", "1",
        "include-transaction", "1",
        "add-tables", add,
    ]  # fmt: skip


@dataclass
class PostgresRecording:
    """What ``ssp record postgres`` was asked to do (SPEC 9)."""

    dsn: str
    tables: list[str]
    log: str
    slot: str = DEFAULT_SLOT
    initial: str | None = None
    follow: bool = False
    until_idle: float | None = None
    poll_interval: float = 0.2
    on_error: OnError = "fail"
    rejects: str | None = None
    append: bool = False
    batch_changes: int = BATCH_CHANGES
    stats: RecordStats = field(default_factory=RecordStats)


def _converter(tables: list[PgTable]) -> ChangeConverter:
    return ChangeConverter(
        {t.name: TableInfo(t.key, t.columns, cache=not t.replica_full) for t in tables},
        missing_hint="set REPLICA IDENTITY FULL on the table, or record from a new slot with "
        "--initial so every row is known",
    )


def _check_server(conn: Any) -> None:
    level = conn.execute("SHOW wal_level").fetchone()[0]
    if level != "logical":
        raise CircuitError(
            f"wal_level is {level}, logical decoding needs 'logical'",
            location="postgres",
            hint="ALTER SYSTEM SET wal_level = logical; then restart the server",
        )


def _slot_plugin(conn: Any, slot: str) -> str | None:
    row = conn.execute(
        "SELECT plugin FROM pg_replication_slots WHERE slot_name = %s", (slot,)
    ).fetchone()
    return None if row is None else str(row[0])


def create_slot_with_snapshot(dsn: str, slot: str) -> tuple[Any, str]:
    """Create ``slot`` over a replication connection; returns (connection, snapshot name).

    The snapshot stays usable while that connection stays open and idle.
    """
    repl = connect(dsn, replication="database")
    try:
        row = repl.execute(
            f"CREATE_REPLICATION_SLOT {quote_ident(slot)} LOGICAL {PLUGIN} EXPORT_SNAPSHOT"
        ).fetchone()
    except Exception as err:
        repl.close()
        raise CircuitError(f"cannot create slot {slot}: {err}", location="postgres") from None
    return repl, str(row[2])


def read_initial(
    conn: Any,
    snapshot: str | None,
    tables: list[PgTable],
    converter: ChangeConverter,
    path: str,
) -> int:
    """Write every row of ``tables`` as of ``snapshot`` to ``path``; returns the row count."""
    count = 0
    with open(path, "wb") as out, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        if snapshot is not None:
            conn.execute(f"SET TRANSACTION SNAPSHOT {_literal(snapshot)}")
        for table in tables:
            select = ", ".join(f"{quote_ident(c)}::text" for c in table.columns)
            order = ", ".join(quote_ident(c) for c in table.key)
            cursor = conn.cursor(name=f"ssp_initial_{count}")
            cursor.execute(f"SELECT {select} FROM {table.qualified} ORDER BY {order}")
            while rows := cursor.fetchmany(5000):
                for values in rows:
                    location = f"initial {table.name}"
                    row = {
                        c: convert_value(t, v, c, location)
                        for c, t, v in zip(table.columns, table.types, values, strict=True)
                    }
                    rid = converter.seed(table.name, row, location)
                    write_initial(out, table.name, rid, row)
                    count += 1
            cursor.close()
    return count


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@contextmanager
def _closing(conn: Any) -> Iterator[Any]:
    try:
        yield conn
    finally:
        conn.close()


def record_postgres(
    job: PostgresRecording,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[RecordStats], None] | None = None,
) -> RecordStats:
    """Run a recording (module docstring); returns its counts (also in ``job.stats``)."""
    if job.initial is not None and os.path.abspath(job.initial) == os.path.abspath(job.log):
        raise CircuitError("--initial and the log must be different files", location="--initial")
    with _closing(connect(job.dsn)) as conn:
        _check_server(conn)
        tables = inspect_tables(conn, job.tables)
        converter = _converter(tables)
        plugin = _slot_plugin(conn, job.slot)
        if plugin is not None and plugin != PLUGIN:
            raise CircuitError(
                f"slot {job.slot} uses plugin {plugin}, not {PLUGIN}", location="--slot"
            )
        if job.initial is not None:
            if plugin is not None:
                raise CircuitError(
                    f"slot {job.slot} exists: --initial needs the slot to be created now, "
                    "so the rows are those of its start",
                    location="--initial",
                    hint=f"SELECT pg_drop_replication_slot('{job.slot}'), or give a new --slot",
                )
            repl, snapshot = create_slot_with_snapshot(job.dsn, job.slot)
            with _closing(repl):
                job.stats.initial_rows = read_initial(
                    conn, snapshot, tables, converter, job.initial
                )
        elif plugin is None:
            try:
                conn.execute(
                    "SELECT pg_create_logical_replication_slot(%s, %s)", (job.slot, PLUGIN)
                )
            except Exception as err:
                raise CircuitError(
                    f"cannot create slot {job.slot}: {str(err).strip()}", location="postgres"
                ) from None
        with LogWriter(
            job.log, on_error=job.on_error, rejects=job.rejects, append=job.append
        ) as writer:
            writer.stats = job.stats
            _read_slot(conn, job, tables, converter, writer, should_stop, progress)
    return job.stats


def _read_slot(
    conn: Any,
    job: PostgresRecording,
    tables: list[PgTable],
    converter: ChangeConverter,
    writer: LogWriter,
    should_stop: Callable[[], bool],
    progress: Callable[[RecordStats], None] | None,
) -> None:
    options = wal2json_options(tables)
    placeholders = ", ".join(["%s"] * len(options))
    peek = f"SELECT lsn::text, data FROM pg_logical_slot_peek_changes(%s, NULL, %s, {placeholders})"
    names = {t.name for t in tables}
    by_name = {t.name: t for t in tables}
    idle_since = time.monotonic()
    last_commit_ms: int | None = None
    while not should_stop():
        rows = conn.execute(peek, (job.slot, job.batch_changes, *options)).fetchall()
        decoder = V2Decoder(converter, names)
        done_lsn = None
        for lsn, data in rows:
            location = f"slot {job.slot} at LSN {lsn}"
            try:
                message = loads_exact(data)
            except ValueError as err:
                writer.reject(
                    data, RecordError(f"wal2json sent invalid JSON: {err}", location=location)
                )
                continue
            try:
                txn = decoder.feed(message, location)
            except RecordError as err:
                writer.reject(data, err)
                decoder.current = None if message.get("action") == "C" else decoder.current
                continue
            if txn is not None:
                try:
                    _check_suspects(conn, txn, by_name)
                except RecordError as err:
                    writer.reject(data, err)
                    txn.entries = [e for e in txn.entries if e["id"] not in err.ids]  # type: ignore[attr-defined]
                writer.write(txn)
                done_lsn = lsn
                if txn.ts is not None:
                    last_commit_ms = txn.ts
        if done_lsn is not None:
            conn.execute("SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", (job.slot, done_lsn))
            idle_since = time.monotonic()
        if progress is not None:
            _measure_lag(conn, job, last_commit_ms if rows else None)
            progress(job.stats)
        if done_lsn is not None and len(rows) >= job.batch_changes:
            continue  # more is waiting: no pause
        if not job.follow and job.until_idle is None:
            if done_lsn is None:
                return
            continue
        if job.until_idle is not None and time.monotonic() - idle_since >= job.until_idle:
            return
        time.sleep(job.poll_interval)


def _measure_lag(conn: Any, job: PostgresRecording, last_commit_ms: int | None) -> None:
    """The progress line's lag: the server's clock minus the last commit read, and WAL bytes.

    ``last_commit_ms`` is None when this poll found the slot empty: the
    recorder has caught up, and the lag is 0 s however old the last commit is.
    """
    row = conn.execute(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint, "
        "(extract(epoch FROM clock_timestamp()) * 1000)::bigint "
        "FROM pg_replication_slots WHERE slot_name = %s",
        (job.slot,),
    ).fetchone()
    if row is None:
        job.stats.lag = job.stats.lag_seconds = None
        return
    wal, now_ms = int(row[0] or 0), int(row[1])
    seconds = 0.0 if last_commit_ms is None else max(0.0, (now_ms - last_commit_ms) / 1000)
    job.stats.lag_seconds = seconds
    job.stats.lag = f"{seconds:.1f} s ({wal} WAL bytes behind)"


def _check_suspects(conn: Any, txn: Transaction, tables: dict[str, PgTable]) -> None:
    """Refuse the float/numeric ``null`` values of ``txn`` that were NaN or an infinity."""
    if not txn.suspects:
        return
    rows = {e["id"]: e.get("data") for e in txn.entries}
    bad: list[str] = []
    first: tuple[str, str, str | None] | None = None
    for table_name, rid, column, location in txn.suspects:
        table = tables[table_name]
        reason = None
        if column in table.not_null:
            reason = f"column {column} of {rid} arrived as null but is NOT NULL"
        else:
            data = rows.get(rid)
            if data is None:
                continue
            where = " AND ".join(f"{quote_ident(k)} = %s" for k in table.key)
            now = conn.execute(
                f"SELECT {quote_ident(column)}::text FROM {table.qualified} WHERE {where}",
                [data[k] for k in table.key],
            ).fetchone()
            if now is not None and now[0] is not None and now[0].lower() in NON_FINITE:
                reason = f"column {column} of {rid} arrived as null and the row holds {now[0]} now"
        if reason is not None:
            bad.append(rid)
            if first is None:
                first = (reason, rid, location)
    if first is not None:
        err = RecordError(
            f"{first[0]}: wal2json writes NaN and infinities as null",
            location=first[2],
            hint="a JSON log cannot carry NaN or infinities; store NULL or a finite number",
        )
        err.ids = set(bad)  # type: ignore[attr-defined]
        raise err
