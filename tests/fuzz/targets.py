"""Fuzz targets: one function per front door of the engine, bytes in, verdict out.

Each target takes arbitrary bytes and passes when the engine ends in a result or in a
:class:`~circuit.errors.CircuitError` that carries a location; any other exception (or a
``CircuitError`` without a location, or two replay modes that disagree) propagates, which
atheris reports as a crash. The same functions replay the regression corpus in
``tests/fuzz/corpus/<target>/`` in the default test run (``tests/test_fuzz_corpus.py``), and
``tests/fuzz/run.py`` drives them under atheris (``make fuzz``).

- :func:`views_frontend`: bytes -> text -> :func:`~circuit.sql.parse_views` ->
  :func:`~circuit.sql.plan.plan_view` for every view.
- :func:`log_reader`: bytes -> a log file -> :class:`~circuit.mutations.LogReader` in both
  ``--on-error`` modes.
- :func:`small_replay`: a few views from a fixed grammar of shapes and a few entries, both
  chosen by the input, replayed in single, batch and deferred mode; the three dumps must be
  equal byte for byte.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

from circuit.errors import CircuitError, MutationLogError, SqlError
from circuit.mutations import read_log
from circuit.replay import Replayer, ReplayOptions, RunFailed, dump_state
from circuit.sql import parse_views
from circuit.sql.plan import plan_view

_TMP = "/dev/shm" if os.path.isdir("/dev/shm") else None


class FuzzFailure(AssertionError):
    """The engine broke its contract on a fuzz input."""


def _located(err: CircuitError) -> None:
    """A ``CircuitError`` must say where: every error the user sees has a location."""
    cause = err.cause if isinstance(err, RunFailed) else err
    if not err.location or not cause.location:
        raise FuzzFailure(f"{type(cause).__name__} without a location: {err}") from err


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="surrogateescape")


# --- (a) the views-file front end -------------------------------------------------------------


def views_frontend(data: bytes) -> None:
    """Bytes as a views file: every view plans, or a located ``SqlError``."""
    dialect = None
    if data[:1] == b"\x01":
        dialect, data = "sqlite", data[1:]
    path = "fuzz.sql"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        with tempfile.NamedTemporaryFile("wb", suffix=".sql", dir=_TMP, delete=False) as handle:
            handle.write(data)
        try:
            from circuit.sql import load_views

            load_views(handle.name, dialect=dialect)
        except SqlError as err:
            _located(err)
            return
        finally:
            os.unlink(handle.name)
        raise FuzzFailure("invalid UTF-8 was read as a views file") from None
    try:
        views = parse_views(text, path=path, dialect=dialect)
        for view in views:
            plan_view(view.name, view.sql, {"p": 1, "name": "x"}, path=path, dialect=dialect)
    except CircuitError as err:
        if not isinstance(err, SqlError):
            raise FuzzFailure(f"the front end raised {type(err).__name__}: {err}") from err
        _located(err)


# --- (b) the log reader -----------------------------------------------------------------------


def log_reader(data: bytes) -> None:
    """Bytes as a log: entries, or a located ``MutationLogError``; skip mode never raises."""
    with tempfile.NamedTemporaryFile("wb", suffix=".jsonl", dir=_TMP, delete=False) as handle:
        handle.write(data)
    try:
        failed_at: int | None = None
        read = 0
        try:
            with read_log(handle.name) as reader:
                for _ in reader:
                    read += 1
        except MutationLogError as err:
            _located(err)
            failed_at = err.line
        with read_log(handle.name, on_error="skip") as reader:
            skipped_read = sum(1 for _ in reader)
            rejected = reader.rejected
        if failed_at is None and rejected:
            raise FuzzFailure(f"skip mode rejected {rejected} lines that fail mode accepted")
        if failed_at is not None and not rejected:
            raise FuzzFailure("fail mode refused a line that skip mode accepted")
        if skipped_read < read:
            raise FuzzFailure("skip mode read fewer entries than fail mode before its error")
    finally:
        os.unlink(handle.name)


# --- (c) a small replay in all three modes ----------------------------------------------------


class _Draw:
    """Choices taken from the input bytes; the bytes running out gives zeros."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def left(self) -> bool:
        return self.pos < len(self.data)

    def pick(self, options: list[Any] | tuple[Any, ...]) -> Any:
        return options[self.byte() % len(options)]


_SHAPES: tuple[str, ...] = (
    "SELECT * FROM u WHERE a > {k}",
    "SELECT g, COUNT(*) AS n, SUM(a) AS s, MIN(b) AS lo, MAX(b) AS hi FROM u GROUP BY g",
    "SELECT g, AVG(a) AS m, COUNT(DISTINCT b) AS d FROM u GROUP BY g HAVING COUNT(*) > {k}",
    "SELECT SUM(a) AS s, MIN(a) AS lo, MAX(a) AS hi, COUNT(b) AS n FROM u",
    "SELECT u.id AS uid, v.c AS c FROM u JOIN v ON u.a = v.a",
    "SELECT u.id AS uid, v.c AS c FROM u LEFT JOIN v ON u.a = v.a AND v.c <> {k}",
    "SELECT * FROM u ORDER BY b DESC, a LIMIT {k}",
    "SELECT a, b FROM u ORDER BY a NULLS LAST LIMIT 2 OFFSET {k}",
    "SELECT DISTINCT g FROM u",
    "SELECT *, (SELECT * FROM v WHERE v.a = $parent.a) AS vs FROM u",
    "SELECT id, (SELECT c FROM v WHERE v.a = u.a ORDER BY c LIMIT 1)[0] AS first FROM u",
    "SELECT id FROM u WHERE a IN (SELECT a FROM v WHERE c > {k})",
    "SELECT id FROM u WHERE NOT EXISTS (SELECT 1 FROM v WHERE v.a = u.a)",
    "SELECT a + b AS x, a * {k} AS y, ABS(a) AS z, LOWER(g) AS w FROM u WHERE b IS NOT NULL",
    "SELECT id, CASE WHEN a > {k} THEN 'hi' ELSE g || 'lo' END AS t, LENGTH(g) AS l FROM u",
    "SELECT a AS x FROM u UNION SELECT c AS x FROM v",
    "SELECT a AS x FROM u EXCEPT SELECT c AS x FROM v",
    "SELECT g, g, SUM(a) AS s FROM u GROUP BY g, g",
    "SELECT v.a AS k, COUNT(*) AS n, SUM(u.b) AS s FROM u JOIN v ON u.a = v.a GROUP BY v.a",
    "SELECT id, a / {k} AS q, a % {k} AS r, CAST(b AS INTEGER) AS i FROM u",
    "SELECT id FROM u WHERE g LIKE '%{k}%' OR b BETWEEN {k} AND 10",
    "SELECT MIN(b) AS lo, MAX(b) AS hi FROM u WHERE a = {k}",
)

_INTS = (0, 1, -1, 2, 3, 7, 100, 2**31, 2**53 + 1, 2**62, 2**63 - 1, -(2**63), -(2**63) + 1)
_FLOATS = (0.0, -0.0, 0.5, 2.0, 1e300, -1e300, 1.5, 9.223372036854776e18, -9.223372036854776e18)
_STRINGS = ("", "a", "red", "Red", "%", "_", "z\u00e9", "2", "1.0", "\x00")


def _value(draw: _Draw, depth: int = 0) -> Any:
    kind = draw.byte() % 10
    if kind in (0, 1, 2):
        return draw.pick(_INTS)
    if kind == 3:
        return draw.pick(_FLOATS)
    if kind in (4, 5):
        return draw.pick(_STRINGS)
    if kind == 6:
        return None
    if kind == 7:
        return bool(draw.byte() & 1)
    if kind == 8 and depth < 3:
        return [_value(draw, depth + 1) for _ in range(draw.byte() % 3)]
    if kind == 9 and depth < 3:
        return {draw.pick(("a", "b", "k")): _value(draw, depth + 1) for _ in range(draw.byte() % 3)}
    return draw.byte() % 5


def _record(draw: _Draw, table: str) -> dict[str, Any]:
    fields = ("a", "b", "g") if table == "u" else ("a", "c")
    record: dict[str, Any] = {}
    for name in fields:
        if draw.byte() % 6:
            record[name] = _value(draw)
    return record


def _scenario(data: bytes) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    """Views ``(name, sql)`` and log entries (as JSON objects) drawn from ``data``."""
    draw = _Draw(data)
    views = []
    for index in range(1 + draw.byte() % 3):
        shape = draw.pick(_SHAPES)
        views.append((f"q{index}", shape.replace("{k}", str(draw.byte() % 4))))
    entries: list[dict[str, Any]] = []
    while draw.left() and len(entries) < 40:
        op = draw.byte() % 16
        table = "u" if op % 2 else "v"
        rid = str(draw.byte() % 4)
        if op < 6:
            entries.append(
                {"op": "CREATE", "table": table, "id": rid, "data": _record(draw, table)}
            )
        elif op < 11:
            entries.append(
                {"op": "UPDATE", "table": table, "id": rid, "data": _record(draw, table)}
            )
        elif op < 14:
            entries.append({"op": "DELETE", "table": table, "id": rid})
        elif op == 14:
            entries.append({"op": "FLUSH"})
        else:
            name, sql = views[draw.byte() % len(views)]
            entries.append({"op": "REGISTER", "view": name + "r", "sql": sql})
    return views, entries


def _replay(views_path: str, log_path: str, mode: str, batch_size: int) -> bytes | None:
    options = ReplayOptions(mode=mode, batch_size=batch_size, flush_every=batch_size)  # type: ignore[arg-type]
    replayer = Replayer(views_path, log_path, options, command="fuzz", argv=[])
    try:
        replayer.run()
    except RunFailed as err:
        _located(err)
        return None
    return _comparable(dump_state(replayer.circuit))


def _comparable(dump: bytes) -> bytes:
    """The dump without the versions of aggregate and DISTINCT rows (ids ``VIEW:...``).

    Those count the ingest calls that changed the row (SPEC 3.2), so they legitimately differ
    between modes; rows, member ids and record versions must not.
    """
    import orjson

    state = orjson.loads(dump)
    for name, view in state["views"].items():
        for member in view["members"]:
            if member[0].startswith(f"{name}:"):
                member[1] = None
    return orjson.dumps(state, option=orjson.OPT_SORT_KEYS)


def small_replay(data: bytes) -> None:
    """A few views and entries from ``data``: single, batch and deferred dump the same state."""
    import orjson

    views, entries = _scenario(data)
    batch_size = 1 + (data[-1] % 5 if data else 0)
    with tempfile.TemporaryDirectory(dir=_TMP) as tmp:
        views_path = os.path.join(tmp, "views.sql")
        log_path = os.path.join(tmp, "log.jsonl")
        with open(views_path, "w", encoding="utf-8") as handle:
            handle.writelines(f"CREATE VIEW {name} AS {sql};\n" for name, sql in views)
        with open(log_path, "wb") as handle:
            handle.writelines(orjson.dumps(entry) + b"\n" for entry in entries)
        dumps = {mode: _replay(views_path, log_path, mode, batch_size) for mode in _MODES}
    done = {mode: dump for mode, dump in dumps.items() if dump is not None}
    if len(set(done.values())) > 1:
        lines = "\n".join(f"{mode}: {dump!r}" for mode, dump in done.items())
        raise FuzzFailure(f"the modes disagree for views {views}:\n{lines}")


_MODES = ("single", "batch", "deferred")

TARGETS: dict[str, Callable[[bytes], None]] = {
    "views_frontend": views_frontend,
    "log_reader": log_reader,
    "small_replay": small_replay,
}
