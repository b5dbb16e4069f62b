"""Reading view definitions: views files and single SELECTs, via sqlglot.

A views file holds ``CREATE VIEW name AS SELECT ...;`` statements with ``--``
and ``/* */`` comments; a comment line ``-- format: flat`` directly above a
statement sets that view's output format. Everything else in a views file is
an error. Line and column numbers in every error point into the file.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlglot
from sqlglot import Token, TokenType, exp
from sqlglot.errors import ParseError, TokenError

from ..errors import SqlError, UnsupportedSqlError
from ..updates import FLAT, STREAMING

_FORMAT_COMMENT = re.compile(r"^\s*--\s*format\s*:\s*(\w+)\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ViewDefinition:
    """One ``CREATE VIEW`` of a views file."""

    name: str
    sql: str
    format: str = STREAMING
    line: int = 1
    path: str | None = None


def load_views(path: str | Path, dialect: str | None = None) -> list[ViewDefinition]:
    """Read every ``CREATE VIEW`` of a views file, in file order.

    The file must be UTF-8: a byte that is not is a :class:`SqlError` at its line and column.
    """
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        before = data[: err.start]
        line = before.count(b"\n") + 1
        col = len(before[before.rfind(b"\n") + 1 :].decode("utf-8")) + 1
        raise SqlError(
            f"the views file is not valid UTF-8: byte 0x{data[err.start]:02x} ({err.reason})",
            path=str(path),
            line=line,
            col=col,
            hint="save the file as UTF-8",
        ) from None
    return parse_views(text, path=str(path), dialect=dialect)


def parse_views(
    text: str, *, path: str | None = None, dialect: str | None = None
) -> list[ViewDefinition]:
    """Split a views file into :class:`ViewDefinition` values.

    Each statement keeps the file's line numbers (the text before it is
    blanked, newlines kept), so later planning errors point into the file.
    """
    try:
        tokens = sqlglot.Dialect.get_or_raise(dialect).tokenize(text)
    except (TokenError, ValueError) as err:
        raise SqlError(f"cannot tokenize SQL: {err}", path=path, line=1, col=1) from err
    lines = text.splitlines()
    views: list[ViewDefinition] = []
    seen: set[str] = set()
    for chunk in _statements(tokens):
        first, last = chunk[0], chunk[-1]
        statement_text = _blank_prefix(text, first.start) + text[first.start : last.end + 1]
        tree = parse_statement(statement_text, path=path, dialect=dialect)
        if not isinstance(tree, exp.Create) or str(tree.args.get("kind", "")).upper() != "VIEW":
            kind = tree.key.upper() if isinstance(tree, exp.Expression) else "statement"
            raise SqlError(
                f"a views file holds only CREATE VIEW statements, found {kind}",
                path=path,
                line=first.line,
                col=max(1, first.col - len(first.text) + 1),
            )
        target = tree.this
        name = target.name if isinstance(target, exp.Table) else str(target)
        if name in seen:
            raise SqlError(f"view {name!r} is defined twice", path=path, line=first.line, view=name)
        seen.add(name)
        body = tree.expression
        if not isinstance(body, exp.Query):
            raise SqlError("CREATE VIEW needs AS SELECT ...", path=path, line=first.line, view=name)
        view_format = _format_above(lines, first.line, path, name)
        select_start = _first_token_at_or_after(chunk, TokenType.ALIAS)
        sql = _blank_prefix(text, select_start) + text[select_start : last.end + 1]
        views.append(ViewDefinition(name, sql, view_format, first.line, path))
    return views


def parse_statement(
    sql: str, *, path: str | None = None, dialect: str | None = None, view: str | None = None
) -> exp.Expr:
    """Parse one statement, turning sqlglot's errors into :class:`SqlError`."""
    try:
        with deep_recursion():
            trees = sqlglot.parse(sql, read=dialect)
    except ParseError as err:
        info = err.errors[0] if err.errors else {}
        message = str(info.get("description") or err).split("\n")[0]
        raise SqlError(
            f"syntax error: {message}",
            path=path,
            line=int(info.get("line") or 0),
            col=int(info.get("col") or 0),
            view=view,
        ) from err
    except TokenError as err:
        raise SqlError(f"cannot tokenize SQL: {err}", path=path, view=view) from err
    except RecursionError as err:
        raise UnsupportedSqlError(
            "the query nests deeper than the SQL parser supports", path=path, view=view
        ) from err
    except ValueError as err:  # sqlglot builds some nodes with asserts of its own
        line = sql[: len(sql) - len(sql.lstrip())].count("\n") + 1
        raise SqlError(f"syntax error: {err}", path=path, line=line, col=1, view=view) from err
    statements = [t for t in trees if t is not None and not isinstance(t, exp.Semicolon)]
    if len(statements) != 1:
        raise SqlError(
            f"expected one statement, found {len(statements)}", path=path, line=1, view=view
        )
    return statements[0]


def parse_select(
    sql: str, *, view: str, path: str | None = None, dialect: str | None = None
) -> exp.Select:
    """The SELECT of a view: a bare SELECT or the body of ``CREATE VIEW``."""
    tree: exp.Expr = parse_statement(sql, path=path, dialect=dialect, view=view)
    if isinstance(tree, exp.Create) and isinstance(tree.expression, exp.Query):
        tree = tree.expression
    if isinstance(tree, exp.Subquery):
        tree = tree.unnest()
    if isinstance(tree, (exp.Select, exp.SetOperation)):
        with deep_recursion():
            tree = tree.transform(_explicit_not, copy=False)
    if isinstance(tree, exp.SetOperation):
        return tree  # type: ignore[return-value]  # planned by circuit.sql.setops
    if not isinstance(tree, exp.Select):
        line, col = position(tree)
        raise UnsupportedSqlError(
            f"a view must be a single SELECT, found {tree.key.upper()}",
            path=path,
            line=line,
            col=col,
            view=view,
        )
    return tree


@contextmanager
def deep_recursion(limit: int = 12_000) -> Iterator[None]:
    """Let sqlglot's recursive descent handle realistically deep SQL.

    sqlglot spends about 20 Python frames per parenthesis, so CPython's
    default limit of 1000 stops at ~50 nested parentheses. Python-to-Python
    calls in 3.11 do not grow the C stack, so a higher limit is safe; deeper
    input still ends in a clean :class:`UnsupportedSqlError`.
    """
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(max(previous, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


def _explicit_not(node: exp.Expr) -> exp.Expr:
    """``x NOT LIKE y`` parses as ``Like(negate=True)``: spell it ``NOT (x LIKE y)``."""
    if isinstance(node, exp.Escape) and node.this is not None and node.this.args.get("negate"):
        node.this.set("negate", None)
        return exp.Not(this=node)
    if not isinstance(node, exp.Escape) and node.args.get("negate"):
        node.set("negate", None)
        return exp.Not(this=node)
    return node


def position(node: exp.Expr) -> tuple[int, int]:
    """Line and column of a node: the earliest position among its tokens."""
    best: tuple[int, int] | None = None
    for sub in node.walk():
        meta = sub.meta if hasattr(sub, "_meta") and sub._meta else None
        if meta and "line" in meta:
            start = meta.get("col", 1) - (meta.get("end", 0) - meta.get("start", 0))
            here = (int(meta["line"]), max(1, int(start)))
            if best is None or here < best:
                best = here
    return best or (0, 0)


def _statements(tokens: list[Token]) -> list[list[Token]]:
    chunks: list[list[Token]] = []
    current: list[Token] = []
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            if current:
                chunks.append(current)
            current = []
        else:
            current.append(token)
    if current:
        chunks.append(current)
    return chunks


def _first_token_at_or_after(chunk: list[Token], kind: TokenType) -> int:
    for index, token in enumerate(chunk):
        if token.token_type == kind and index + 1 < len(chunk):
            return chunk[index + 1].start
    return chunk[0].start


def _blank_prefix(text: str, end: int) -> str:
    """The text before ``end`` with everything but newlines blanked."""
    prefix = text[:end]
    return "".join("\n" if ch == "\n" else " " for ch in prefix)


def _format_above(lines: list[str], line: int, path: str | None, view: str) -> str:
    index = line - 2
    while index >= 0:
        stripped = lines[index].strip()
        if not stripped:
            return STREAMING
        match = _FORMAT_COMMENT.match(stripped)
        if match:
            value = match.group(1).lower()
            if value not in (STREAMING, FLAT):
                raise SqlError(
                    f"unknown format {value!r} (streaming or flat)",
                    path=path,
                    line=index + 1,
                    col=1,
                    view=view,
                )
            return value
        if not stripped.startswith("--"):
            return STREAMING
        index -= 1
    return STREAMING
