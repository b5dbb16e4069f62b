"""Log entries: the :class:`Mutation` value, and reading a JSONL log as a stream.

The reader sits on the hot path of every replay, so the common case (a valid
line) costs one ``orjson.loads``, a handful of ``type(...) is`` checks and the
construction of the :class:`Mutation`. Everything unusual (blank lines, bad
UTF-8, numbers out of range, deep nesting, lone surrogates) is sorted out only
after orjson has refused a line, in :func:`_decode_fallback`.

Choices where SPEC section 1 is silent:

- An optional field given as ``null`` counts as absent (producers often write
  ``"version": null`` for "no version").
- ``table``, ``id`` and ``view`` must be non-empty, and an id needs a non-empty
  key (``"user:"`` is bad input): an empty name is always a producer's bug.
- ``data`` and its alias ``record`` together are bad input, even when equal:
  one of them would be ignored silently.
- A UTF-8 byte order mark at the start of the file is skipped.
- "Beyond 64 bits" means outside both int64 and uint64: below ``-2**63`` or
  above ``2**64 - 1`` an integer is read as a float, whatever the orjson
  release. ``2**63 .. 2**64 - 1`` stay ints (orjson's reading; SQLite would
  make them REAL): finding them on the fast path would cost every line more
  than the rest of the validation.
- JSON nesting is counted in containers: the entry object itself is level 1.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from math import isfinite
from types import TracebackType
from typing import IO, Any, Literal, NoReturn

import orjson

from .errors import MutationLogError

CREATE = "CREATE"
UPDATE = "UPDATE"
DELETE = "DELETE"
REGISTER = "REGISTER"
UNREGISTER = "UNREGISTER"
FLUSH = "FLUSH"

DATA_OPS = frozenset({CREATE, UPDATE, DELETE})
ALL_OPS = (CREATE, UPDATE, DELETE, REGISTER, UNREGISTER, FLUSH)
VIEW_FORMATS = ("streaming", "flat")

MAX_DEPTH = 1000
"""Deepest JSON nesting accepted in a log line (SPEC section 1)."""

MAX_REJECTED_LINES = 1000
"""How many rejected line numbers a :class:`LogReader` remembers (the report's cap)."""

STDIN = "-"
"""The path that means standard input."""

OnError = Literal["fail", "skip"]


@dataclass(frozen=True, slots=True)
class Mutation:
    """One log entry.

    ``op`` is upper-case. For data ops ``table`` and the canonical ``id``
    (``table:key``) are set and ``data`` holds the record (``None`` for a
    DELETE). ``line`` is the 1-based line of the log the entry came from, or 0
    when it was built in code; ``source`` names the file.
    """

    op: str
    table: str | None = None
    id: str | None = None
    data: dict[str, Any] | None = None
    version: int | None = None
    ts: float | None = None
    view: str | None = None
    sql: str | None = None
    params: dict[str, Any] | None = None
    format: str | None = None
    line: int = 0
    source: str | None = None

    @staticmethod
    def create(table: str, id: str, data: dict[str, Any], version: int | None = None) -> Mutation:
        return Mutation(CREATE, table, canonical_id(table, id), data, version)

    @staticmethod
    def update(table: str, id: str, data: dict[str, Any], version: int | None = None) -> Mutation:
        return Mutation(UPDATE, table, canonical_id(table, id), data, version)

    @staticmethod
    def delete(table: str, id: str, version: int | None = None) -> Mutation:
        return Mutation(DELETE, table, canonical_id(table, id), None, version)


def canonical_id(table: str, raw_id: str) -> str:
    """``table:key``; an id without ``:`` gets the table prefixed.

    An id whose prefix names another table raises ``ValueError`` (the reader
    turns it into a :class:`~circuit.errors.MutationLogError`). A table name
    may itself contain ``:``; an id that starts with ``table:`` is then kept.
    """
    if ":" not in raw_id:
        return f"{table}:{raw_id}"
    if raw_id.startswith(table) and raw_id[len(table) : len(table) + 1] == ":":
        return raw_id
    prefix = raw_id.partition(":")[0]
    raise ValueError(f"id {raw_id!r} names table {prefix!r}, not {table!r}")


# ---------------------------------------------------------------------------
# Constructing Mutations fast
# ---------------------------------------------------------------------------

_SLOT_SETTERS = tuple(Mutation.__dict__[name].__set__ for name in Mutation.__slots__)
(
    _set_op,
    _set_table,
    _set_id,
    _set_data,
    _set_version,
    _set_ts,
    _set_view,
    _set_sql,
    _set_params,
    _set_format,
    _set_line,
    _set_source,
) = _SLOT_SETTERS
_new_object = object.__new__
"""``_parse_data`` builds Mutations without the dataclass ``__init__``: a frozen
dataclass assigns each field through ``object.__setattr__``, which costs more
than decoding the JSON line, while writing the slots through their descriptors
costs half as much. The result is equal to, and indistinguishable from, one
built by ``Mutation(...)`` (a test checks it)."""


# ---------------------------------------------------------------------------
# Validating one decoded entry
# ---------------------------------------------------------------------------

_OPS: dict[str, str] = {op: op for op in ALL_OPS} | {op.lower(): op for op in ALL_OPS}
_NO_VALUE: Any = object()


def parse_entry(obj: object, *, path: str | None, line: int) -> Mutation:
    """Check one decoded JSON value against SPEC section 1 and build its Mutation.

    Fields the spec lists are checked strictly, other fields are ignored.
    ``data`` is passed through untouched (the engine stores the canonical id
    in it), so the Mutation shares the decoded dict rather than copying it.
    Raises :class:`MutationLogError` at ``path:line`` naming the problem.
    """
    return _parse_entry(obj, path, line)


def _parse_entry(obj: object, path: str | None, line: int) -> Mutation:
    """:func:`parse_entry` with positional arguments, for the reader's loop."""
    if type(obj) is not dict:
        raise MutationLogError(
            f"expected a JSON object, got {_describe(obj)}", path=path, line=line
        )
    raw_op = obj.get("op", _NO_VALUE)
    op = _OPS.get(raw_op) if type(raw_op) is str else None
    if op is None:
        op = _normalize_op(raw_op, path, line)
    if op in DATA_OPS:
        return _parse_data(obj, op, path, line)
    return _parse_control(obj, op, path, line)


def _parse_data(obj: dict[str, Any], op: str, path: str | None, line: int) -> Mutation:
    """CREATE, UPDATE or DELETE: the hot path, kept to plain type checks."""
    table = obj.get("table")
    if type(table) is not str or not table:
        _bad_field(obj, "table", "a non-empty string", path, line)
    raw_id = obj.get("id")
    if type(raw_id) is not str or not raw_id:
        _bad_field(obj, "id", "a non-empty string", path, line)
    if ":" in raw_id:
        try:
            id = canonical_id(table, raw_id)
        except ValueError:
            other = raw_id.partition(":")[0]
            raise MutationLogError(
                f"id {_describe(raw_id)} names table {_describe(other)}, not {_describe(table)}",
                path=path,
                line=line,
                hint=f'an id is "{table}:KEY", or just "KEY"',
            ) from None
        if len(id) == len(table) + 1:
            raise MutationLogError(f"id {_describe(raw_id)} has an empty key", path=path, line=line)
    else:
        id = f"{table}:{raw_id}"
    version = obj.get("version")
    if version is not None and (type(version) is not int or version < 0):
        _bad_field(obj, "version", "an integer >= 0", path, line)
    ts = obj.get("ts")
    if ts is not None and type(ts) is not int and (type(ts) is not float or not isfinite(ts)):
        _bad_field(obj, "ts", "a finite number", path, line)
    if op == DELETE:
        data = None
    else:
        data = obj.get("data")
        if type(data) is not dict or "record" in obj:
            data = _record_data(obj, path, line)
    m: Mutation = _new_object(Mutation)
    _set_op(m, op)
    _set_table(m, table)
    _set_id(m, id)
    _set_data(m, data)
    _set_version(m, version)
    _set_ts(m, ts)
    _set_view(m, None)
    _set_sql(m, None)
    _set_params(m, None)
    _set_format(m, None)
    _set_line(m, line)
    _set_source(m, path)
    return m


def _record_data(obj: dict[str, Any], path: str | None, line: int) -> dict[str, Any]:
    """``data`` or its alias ``record``, when the fast check did not settle it."""
    if "data" in obj and "record" in obj:
        raise MutationLogError('give "data" or its alias "record", not both', path=path, line=line)
    key = "data" if "data" in obj else "record"
    if key not in obj:
        raise MutationLogError('missing key "data" (or its alias "record")', path=path, line=line)
    data = obj[key]
    if type(data) is not dict:
        _bad_field(obj, key, "an object", path, line)
    return data


def _parse_control(obj: dict[str, Any], op: str, path: str | None, line: int) -> Mutation:
    """REGISTER, UNREGISTER and FLUSH: rare, so readability wins over speed."""
    ts = obj.get("ts")
    if ts is not None and type(ts) is not int and (type(ts) is not float or not isfinite(ts)):
        _bad_field(obj, "ts", "a finite number", path, line)
    if op == FLUSH:
        return Mutation(FLUSH, ts=ts, line=line, source=path)
    view = obj.get("view")
    if type(view) is not str or not view:
        _bad_field(obj, "view", "a non-empty string", path, line)
    if op == UNREGISTER:
        return Mutation(UNREGISTER, ts=ts, view=view, line=line, source=path)
    sql = obj.get("sql")
    if type(sql) is not str:
        _bad_field(obj, "sql", "a string", path, line)
    params = obj.get("params")
    if params is not None and type(params) is not dict:
        _bad_field(obj, "params", "an object", path, line)
    fmt = obj.get("format")
    if fmt is not None and fmt not in VIEW_FORMATS:
        _bad_field(obj, "format", '"streaming" or "flat"', path, line)
    return Mutation(
        REGISTER, ts=ts, view=view, sql=sql, params=params, format=fmt, line=line, source=path
    )


def _normalize_op(raw_op: object, path: str | None, line: int) -> str:
    """The upper-case op for any spelling, or the error for a missing or unknown op.

    Only ASCII letters fold, so that ``"ﬂush"`` (a ligature whose ``upper()``
    is ``"FLUSH"``) is not taken for an op.
    """
    if raw_op is _NO_VALUE:
        raise MutationLogError('missing key "op"', path=path, line=line)
    if type(raw_op) is not str:
        raise MutationLogError(
            f'"op" must be a string, got {_describe(raw_op)}', path=path, line=line
        )
    op = _OPS.get(raw_op.upper()) if raw_op.isascii() else None
    if op is not None:
        return op
    raise MutationLogError(
        f"unknown op {_describe(raw_op)}",
        path=path,
        line=line,
        hint=f"op is one of {', '.join(ALL_OPS)} (any case)",
    )


def _bad_field(
    obj: dict[str, Any], key: str, expected: str, path: str | None, line: int
) -> NoReturn:
    """Raise the error for a required field that is missing or mistyped."""
    if key not in obj:
        raise MutationLogError(f"missing key {_describe(key)}", path=path, line=line)
    raise MutationLogError(
        f"{_describe(key)} must be {expected}, got {_describe(obj[key])}", path=path, line=line
    )


def _describe(value: object) -> str:
    """A short JSON rendering of a value for an error message.

    Containers are named, not printed: they may be huge or 1 000 levels deep.
    """
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, float) and not isfinite(value):
        return repr(value)
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------------------
# Decoding one line
# ---------------------------------------------------------------------------

_I64_MIN = -(2**63)
_U64_MAX = 2**64 - 1
_JSON_SPACE = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"
# The shortest line that can nest deeper than MAX_DEPTH: one bracket pair per level.
_DEEP_LINE_BYTES = 2 * (MAX_DEPTH + 1)
_TOKEN = re.compile(
    r"""
    (?P<string> "(?:[^"\\]|\\.)*" )
  | (?P<open_string> " )
  | (?P<number> -?(?:0|[1-9][0-9]*)(?P<fraction>\.[0-9]+)?(?P<exponent>[eE][+-]?[0-9]+)? )
  | (?P<constant> -?(?:NaN|Infinity) )
  | (?P<open> [\[{] )
  | (?P<close> [\]}] )
    """,
    re.VERBOSE,
)


def decode_line(raw: bytes, *, path: str | None, line: int) -> dict[str, Any] | None:
    """Decode one log line to a JSON object, or ``None`` for a blank line.

    Raises :class:`MutationLogError` for bad input (SPEC section 1),
    including JSON that is not an object (``null`` is not a blank line).
    """
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if not raw.strip(_JSON_SPACE):
            return None
        obj = _decode_fallback(raw, exc, path=path, line=line)
    if type(obj) is not dict:
        raise MutationLogError(
            f"expected a JSON object, got {_describe(obj)}", path=path, line=line
        )
    if len(raw) >= _DEEP_LINE_BYTES and raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:
        _check_depth(obj, path, line)
    return obj


def _decode_fallback(
    raw: bytes, exc: orjson.JSONDecodeError, *, path: str | None, line: int
) -> Any:
    """A non-blank line orjson refused: bad input, or JSON it cannot represent.

    Older orjson releases refuse integers beyond 64 bits; they are rewritten
    as float literals (``N`` becomes ``N.0``) and the line is decoded again,
    by orjson, so no recursive decoder ever sees the line. Otherwise the line
    is scanned token by token (iteratively, whatever the nesting) to name the
    first problem precisely.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise MutationLogError(
            f"invalid UTF-8: byte 0x{raw[err.start]:02x} at offset {err.start}",
            path=path,
            line=line,
        ) from None
    rewritten = _scan_for_problems(text, path, line)
    if rewritten is not None:
        try:
            obj = orjson.loads(rewritten)
        except orjson.JSONDecodeError as again:
            exc = again
        else:
            return obj  # type: ignore[no-any-return]
    raise MutationLogError(f"not valid JSON: {exc.msg} (column {exc.colno})", path=path, line=line)


def _scan_for_problems(text: str, path: str | None, line: int) -> str | None:
    """Raise for the first non-finite number, lone surrogate or too-deep nesting.

    Returns ``text`` with integers beyond 64 bits written as floats when it
    had any, else ``None``. Scanning stops at an unterminated string, since
    what follows is not JSON structure.
    """
    depth = 0
    pieces: list[str] = []
    copied = 0
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        token = match.group()
        if kind == "open":
            depth += 1
            if depth > MAX_DEPTH:
                raise MutationLogError(
                    f"JSON nested deeper than {MAX_DEPTH} levels", path=path, line=line
                )
        elif kind == "close":
            depth -= 1
        elif kind == "constant":
            raise MutationLogError(f"non-finite number {token}", path=path, line=line)
        elif kind == "number":
            if match.group("fraction") or match.group("exponent"):
                if not isfinite(float(token)):
                    raise MutationLogError(
                        f"non-finite number {_shorten(token)} (beyond the float range)",
                        path=path,
                        line=line,
                    )
            elif len(token) > 20 or not _I64_MIN <= int(token) <= _U64_MAX:
                pieces += (text[copied : match.end()], ".0")
                copied = match.end()
        elif kind == "string":
            if "\\u" in token and _has_lone_surrogate(token):
                raise MutationLogError(
                    f"string with a lone surrogate: {_shorten(token)}", path=path, line=line
                )
        else:  # open_string
            break
    if not pieces:
        return None
    pieces.append(text[copied:])
    return "".join(pieces)


def _has_lone_surrogate(token: str) -> bool:
    """Whether a JSON string token decodes to text with an unpaired surrogate.

    The stdlib decoder keeps lone surrogates (orjson refuses them); one flat
    string cannot make it recurse.
    """
    try:
        value = json.loads(token)
    except ValueError:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _shorten(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _children(value: object) -> list[Any]:
    if type(value) is dict:
        return list(value.values())
    if type(value) is list:
        return value
    return []


def _check_depth(obj: object, path: str | None, line: int) -> None:
    """Raise when a decoded value nests deeper than :data:`MAX_DEPTH` (iteratively)."""
    stack = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise MutationLogError(
                f"JSON nested deeper than {MAX_DEPTH} levels", path=path, line=line
            )
        stack.extend(
            (child, depth + 1) for child in _children(value) if type(child) in (dict, list)
        )


# ---------------------------------------------------------------------------
# Reading a log as a stream
# ---------------------------------------------------------------------------


class LogReader:
    """Mutations from a JSONL log, one line at a time.

    Memory is bounded by the longest line, never by the log's length: the
    file is read in binary line by line and nothing is kept per line but the
    first :data:`MAX_REJECTED_LINES` rejected line numbers. ``bytes_read``
    against ``total_bytes`` (``None`` when the input is not a regular file)
    drives a progress bar; ``line`` is the last line read, so after an error
    or an interruption it says how far the replay got.

    ``on_error="fail"`` raises :class:`MutationLogError` at the first bad
    line. ``"skip"`` counts it and, when ``rejects`` names a file, writes the
    line there byte for byte (a newline is added only if the log's last line
    had none); the file is created at the first rejected line, so a clean run
    writes nothing. Iterating a second time continues where the first
    stopped.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        on_error: OnError = "fail",
        rejects: str | None = None,
        _parse: Callable[[object, str | None, int], Mutation] | None = None,
    ) -> None:
        if on_error not in ("fail", "skip"):
            raise ValueError(f'on_error must be "fail" or "skip", got {on_error!r}')
        path = os.fspath(path)
        self.source = "<stdin>" if path == STDIN else path
        self.on_error = on_error
        self.rejects_path = rejects
        self.bytes_read = 0
        self.line = 0
        self.rejected = 0
        self.rejected_lines: list[int] = []
        self._parse = _parse or _parse_entry
        self._rejects_file: IO[bytes] | None = None
        self._file, self._owns_file = self._open(path)
        self.total_bytes = self._regular_file_size()
        if rejects is not None:
            self._refuse_rejects_over_input(path, rejects)

    def _open(self, path: str) -> tuple[IO[bytes], bool]:
        if path == STDIN:
            return sys.stdin.buffer, False
        try:
            return open(path, "rb"), True
        except OSError as err:
            raise MutationLogError(
                f"cannot read the log: {err.strerror or err}", path=path, line=0
            ) from None

    def _regular_file_size(self) -> int | None:
        try:
            info = os.fstat(self._file.fileno())
        except (OSError, ValueError):
            return None
        return info.st_size if stat.S_ISREG(info.st_mode) else None

    def _refuse_rejects_over_input(self, path: str, rejects: str) -> None:
        """Writing the rejects over the log being read would destroy the input."""
        if path != STDIN and os.path.realpath(rejects) == os.path.realpath(path):
            self.close()
            raise MutationLogError(
                "the rejects file is the log itself", path=path, line=0, hint="name another file"
            )

    def __iter__(self) -> Iterator[Mutation]:
        source = self.source
        parse = self._parse
        skip = self.on_error == "skip"
        line = self.line
        for raw in self._lines():
            line += 1
            self.line = line
            self.bytes_read += len(raw)
            try:
                obj = decode_line(raw, path=source, line=line)
                if obj is None:
                    continue
                mutation = parse(obj, source, line)
            except MutationLogError:
                if not skip:
                    raise
                self._reject(raw, line)
                continue
            yield mutation

    def _lines(self) -> Iterable[bytes]:
        """The input's lines, less a UTF-8 byte order mark opening the file.

        Some Windows tools start a UTF-8 file with one; it is not part of the
        first entry. It counts in ``bytes_read`` all the same.
        """
        if self.line:
            return self._file
        first = self._file.readline()
        if not first:
            return self._file
        if first.startswith(_BOM):
            self.bytes_read += len(_BOM)
            first = first[len(_BOM) :]
        return chain((first,), self._file)

    def _reject(self, raw: bytes, line: int) -> None:
        self.rejected += 1
        if len(self.rejected_lines) < MAX_REJECTED_LINES:
            self.rejected_lines.append(line)
        if self.rejects_path is None:
            return
        if self._rejects_file is None:
            try:
                self._rejects_file = open(self.rejects_path, "wb")  # noqa: SIM115 - closed by close()
            except OSError as err:
                raise MutationLogError(
                    f"cannot write the rejects file {self.rejects_path}: {err.strerror or err}",
                    path=self.source,
                    line=line,
                ) from None
        self._rejects_file.write(raw if raw.endswith(b"\n") else raw + b"\n")

    def close(self) -> None:
        """Close the log (not stdin) and the rejects file; safe to call twice."""
        if self._owns_file:
            self._file.close()
        if self._rejects_file is not None:
            self._rejects_file.close()
            self._rejects_file = None

    def __enter__(self) -> LogReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _parse_initial_entry(obj: object, path: str | None, line: int) -> Mutation:
    """An ``--initial`` line: a record ``{"table", "id", "data"}`` or a CREATE entry."""
    if type(obj) is dict and "op" not in obj:
        return _parse_data(obj, CREATE, path, line)
    mutation = parse_entry(obj, path=path, line=line)
    if mutation.op != CREATE:
        raise MutationLogError(
            f"an initial file holds records or CREATE entries, got {mutation.op}",
            path=path,
            line=line,
        )
    return mutation


def read_log(
    path: str | os.PathLike[str], *, on_error: OnError = "fail", rejects: str | None = None
) -> LogReader:
    """Open a mutation log (``"-"`` for stdin) for streaming; see :class:`LogReader`."""
    return LogReader(path, on_error=on_error, rejects=rejects)


def read_initial(path: str | os.PathLike[str]) -> Iterator[Mutation]:
    """The ``--initial`` file as CREATE mutations, validated like the log.

    Each line is a record ``{"table", "id", "data"}`` (``record`` and an
    optional ``version`` accepted as in the log) or a CREATE entry; any
    other op is bad input. The first bad line raises.
    """
    with LogReader(path, _parse=_parse_initial_entry) as reader:
        yield from reader
