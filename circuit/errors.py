"""One error hierarchy for the whole engine.

Every error carries a *location* (``log.jsonl:17`` for the mutation log,
``views.sql:3:12: view NAME`` for SQL) and a *message*; ``str(err)`` is
``LOCATION: message``. An optional *hint* says what to do about it. The CLI
catches :class:`CircuitError` once, prints ``error: LOCATION: message`` and the
hint, and exits 1.
"""

from __future__ import annotations


class CircuitError(Exception):
    """Root of every error the engine raises on purpose."""

    def __init__(self, message: str, *, location: str | None = None, hint: str | None = None):
        self.message = message
        self.location = location
        self.hint = hint
        super().__init__(f"{location}: {message}" if location else message)


class SqlError(CircuitError):
    """A view definition that cannot be parsed or planned.

    ``view`` names the view, ``line``/``col`` point into the SQL text (1-based,
    0 when unknown) and ``path`` is the file the SQL came from, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        view: str | None = None,
        line: int = 0,
        col: int = 0,
        path: str | None = None,
        hint: str | None = None,
    ):
        self.view = view
        self.line = line
        self.col = col
        self.path = path
        super().__init__(message, location=sql_location(path, line, col, view), hint=hint)


class UnsupportedSqlError(SqlError):
    """Valid SQL outside the subset the engine maintains incrementally."""


class MutationLogError(CircuitError):
    """A log line that is not a valid mutation (or an anomaly under ``--strict``)."""

    def __init__(
        self, message: str, *, path: str | None = None, line: int = 0, hint: str | None = None
    ):
        self.path = path
        self.line = line
        super().__init__(message, location=log_location(path, line), hint=hint)


class ReplayError(CircuitError):
    """A failure while replaying a log: a worker that died, a view that raised."""


class VerificationError(CircuitError):
    """A view whose rows differ from the oracle's."""


def log_location(path: str | None, line: int) -> str | None:
    """``FILE:LINE`` for a log entry (``<log>`` when the entry came from code)."""
    if path is None and not line:
        return None
    return f"{path or '<log>'}:{line}"


def sql_location(path: str | None, line: int, col: int, view: str | None) -> str | None:
    """``FILE:LINE:COL: view NAME`` for a view definition."""
    parts = f"{path or '<sql>'}:{line}:{col}"
    if view is not None:
        parts += f": view {view}"
    return parts


def escape_control(text: str) -> str:
    """Escape control characters so input text cannot forge terminal output."""
    out = []
    for ch in text:
        code = ord(ch)
        if code < 0x20 or code == 0x7F or 0x80 <= code < 0xA0:
            out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch, f"\\x{code:02x}"))
        else:
            out.append(ch)
    return "".join(out)
