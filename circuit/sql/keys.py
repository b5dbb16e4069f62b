"""Keys: hashable join/group keys and sort keys with SQLite's ordering.

Equality keys must make equal SQL values equal Python keys: numbers compare
numerically (``1 == 1.0 == True`` already hash alike in Python), text by code
point, and nested arrays/objects as their canonical JSON text.
Sort keys order NULLs, then numbers, then text, with DESC and NULLS
FIRST/LAST folded in so one tuple comparison decides.
"""

from __future__ import annotations

from typing import Any

from .values import canonical_json

__all__ = ["Descending", "canonical_json", "hash_key", "order_key", "row_key_order"]


def hash_key(value: Any) -> Any:
    """A hashable stand-in for a SQL value with SQL equality (NULL excluded)."""
    if isinstance(value, (list, dict)):
        return canonical_json(value)
    return value


class Descending:
    """Reverses the order of a wrapped, comparable key."""

    __slots__ = ("key",)

    def __init__(self, key: Any):
        self.key = key

    def __lt__(self, other: Descending) -> bool:
        return bool(other.key < self.key)

    def __gt__(self, other: Descending) -> bool:
        return bool(other.key > self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Descending) and bool(self.key == other.key)

    def __le__(self, other: Descending) -> bool:
        return bool(other.key <= self.key)

    def __ge__(self, other: Descending) -> bool:
        return bool(other.key >= self.key)

    def __hash__(self) -> int:
        return hash(self.key)


def order_key(value: Any, desc: bool, nulls_first: bool) -> tuple[Any, ...]:
    """Sort key of one ORDER BY value.

    Ascending: NULL (rank 0, or 3 with NULLS LAST), numbers (1), text (2).
    Descending negates the ranks and the numbers and wraps text, so that the
    same ascending tuple comparison yields the reversed order.
    """
    null_rank = 3 if nulls_first == desc else 0
    if value is None:
        return (-null_rank,) if desc else (null_rank,)
    if isinstance(value, (int, float)):
        return (-1, -value) if desc else (1, value)
    if isinstance(value, str):
        return (-2, Descending(value)) if desc else (2, value)
    text = canonical_json(value)
    return (-2, Descending(text)) if desc else (2, text)


def row_key_order(key: tuple[Any, ...]) -> tuple[Any, ...]:
    """Row keys (tuples of ids, None for a missing LEFT JOIN side) in ascending order."""
    return tuple((0, "") if part is None else (1, part) for part in key)
