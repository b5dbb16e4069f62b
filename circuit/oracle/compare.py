"""Row normalization and readable diffs between the circuit's rows and an oracle's.

Normalization is deliberately small, so that it cannot hide a real
difference:

- booleans become the integers 1 and 0, at any depth. The SPEC makes
  booleans the integers 1 and 0 in expressions; the engine passes stored
  booleans through in ``*`` and bare columns while SQLite can only return
  1/0, so the two spellings of one value are made equal here and nowhere else.
- nothing else changes: ``3`` and ``3.0`` stay different (their canonical JSON
  differs), so an engine that computes a float where SQLite computes an
  integer is reported.

Unordered results are compared as multisets (sorted by canonical JSON);
ordered results (a view with ORDER BY) must match position by position.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .base import canonical_json

MAX_SHOWN = 10
"""Rows listed per section of a rendered diff."""


def normalize_value(value: Any) -> Any:
    """``value`` with every boolean replaced by 1 or 0 (lists and objects recursively)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dict):
        return {key: normalize_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [normalize_value(item) for item in value]
    return value


def row_key(row: dict[str, Any]) -> str:
    """A row's canonical JSON after normalization: its identity for comparison."""
    return canonical_json(normalize_value(row))


@dataclass(frozen=True, slots=True)
class RowDiff:
    """How the circuit's rows (``ssp``) differ from the oracle's.

    ``only_ssp`` / ``only_oracle`` are canonical JSON rows present on one side
    only (with multiplicity); ``order`` is set when both sides hold the same
    rows in a different order: ``(index, ssp_row, oracle_row)`` at the first
    position where they differ.
    """

    only_ssp: list[str]
    only_oracle: list[str]
    order: tuple[int, str, str] | None = None
    ssp_count: int = 0
    oracle_count: int = 0

    def render(self) -> str:
        """A few lines a person can read: counts, then the differing rows."""
        lines = [f"ssp has {self.ssp_count} rows, the oracle {self.oracle_count}"]
        for title, rows in (
            ("rows only in ssp", self.only_ssp),
            ("rows only in the oracle", self.only_oracle),
        ):
            if rows:
                lines.append(f"{title} ({len(rows)}):")
                lines.extend(f"  {row}" for row in rows[:MAX_SHOWN])
                if len(rows) > MAX_SHOWN:
                    lines.append(f"  ... {len(rows) - MAX_SHOWN} more")
        if self.order is not None:
            index, mine, theirs = self.order
            lines.append(f"same rows, different order: first difference at position {index}")
            lines.append(f"  ssp:    {mine}")
            lines.append(f"  oracle: {theirs}")
        return "\n".join(lines)


def diff_rows(
    ssp_rows: Sequence[dict[str, Any]], oracle_rows: Sequence[dict[str, Any]], *, ordered: bool
) -> RowDiff | None:
    """``None`` when the rows agree, else the :class:`RowDiff`."""
    mine = [row_key(row) for row in ssp_rows]
    theirs = [row_key(row) for row in oracle_rows]
    if mine == theirs or (not ordered and sorted(mine) == sorted(theirs)):
        return None
    extra = Counter(mine)
    extra.subtract(Counter(theirs))
    only_ssp = sorted(row for row, n in extra.items() for _ in range(max(n, 0)))
    only_oracle = sorted(row for row, n in extra.items() for _ in range(max(-n, 0)))
    order = None
    if not only_ssp and not only_oracle:
        index = next(i for i, (a, b) in enumerate(zip(mine, theirs, strict=True)) if a != b)
        order = (index, mine[index], theirs[index])
    return RowDiff(only_ssp, only_oracle, order, len(mine), len(theirs))
