"""Writing a recorded log: whole transactions, one ``FLUSH`` each, flushed as they end.

A transaction's lines reach the file in one ``write`` followed by a flush, so
a recording stopped at any moment (Ctrl-C, a lost connection) leaves a valid
log that ends at a transaction boundary. Entries that cannot be converted go,
with ``on_error="skip"``, verbatim to the rejects file (one line each).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import IO, Any, Literal

from .changes import RecordError, Transaction, encode_entry

OnError = Literal["fail", "skip"]


@dataclass
class RecordStats:
    """Counts of a recording so far (the progress line and the summary show them)."""

    transactions: int = 0
    changes: int = 0
    entries: int = 0
    rejected: int = 0
    initial_rows: int = 0
    last_position: str | None = None
    lag: str | None = None
    lag_seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        text = f"{self.changes} changes, {self.transactions} transactions"
        if self.rejected:
            text += f", {self.rejected} rejected"
        if self.lag is not None:
            text += f", lag {self.lag}"
        return text


class LogWriter:
    """Appends transactions to an ssp log file (and rejected source lines to ``rejects``)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        on_error: OnError = "fail",
        rejects: str | os.PathLike[str] | None = None,
        append: bool = False,
    ) -> None:
        self.path = os.fspath(path)
        self.on_error = on_error
        self.stats = RecordStats()
        self._out: IO[bytes] = open(self.path, "ab" if append else "wb")  # noqa: SIM115
        self._rejects: IO[bytes] | None = None
        self._rejects_path = os.fspath(rejects) if rejects is not None else None

    def reject(self, raw: str | bytes, err: RecordError) -> None:
        """Handle a change that could not be converted: raise, or keep its source line."""
        if self.on_error == "fail":
            raise err
        if self._rejects is None:
            if self._rejects_path is None:
                raise RecordError(
                    "--on-error skip needs --rejects PATH to keep what was skipped",
                    location=err.location,
                ) from err
            self._rejects = open(self._rejects_path, "ab")  # noqa: SIM115
        data = raw.encode("utf-8") if isinstance(raw, str) else raw
        self._rejects.write(data.rstrip(b"\n") + b"\n")
        self._rejects.flush()
        self.stats.rejected += 1

    def write(self, txn: Transaction) -> None:
        """Write one committed transaction and its ``FLUSH``; flush the file."""
        if not txn.entries:
            if txn.changes:
                self.stats.transactions += 1
            return
        parts = []
        for entry in txn.entries:
            if txn.ts is not None:
                entry["ts"] = txn.ts
            parts.append(encode_entry(entry, txn.location))
        flush: dict[str, Any] = {"op": "FLUSH"}
        if txn.ts is not None:
            flush["ts"] = txn.ts
        flush.update(txn.marks)
        parts.append(encode_entry(flush, txn.location))
        self._out.write(b"".join(parts))
        self._out.flush()
        self.stats.transactions += 1
        self.stats.changes += txn.changes
        self.stats.entries += len(txn.entries)
        if txn.location is not None:
            self.stats.last_position = txn.location

    def close(self) -> None:
        self._out.close()
        if self._rejects is not None:
            self._rejects.close()

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_initial(out: IO[bytes], table: str, rid: str, row: dict[str, Any]) -> None:
    """One ``--initial`` line: ``{"table", "id", "data"}``."""
    out.write(encode_entry({"table": table, "id": rid, "data": row}, f"initial {rid}"))
