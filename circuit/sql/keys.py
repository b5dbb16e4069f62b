"""Keys: hashable join/group keys, and the order of row keys.

Equality keys must make equal SQL values equal Python keys: numbers compare
numerically (``1 == 1.0 == True`` already hash alike in Python), text by code
point, and nested arrays/objects as their canonical JSON text. ORDER BY keys
are :func:`circuit.sql.values.make_order_key`'s.
"""

from __future__ import annotations

from typing import Any

from .values import canonical_json

__all__ = ["canonical_json", "hash_key", "row_key_order"]


def hash_key(value: Any) -> Any:
    """A hashable stand-in for a SQL value with SQL equality (NULL excluded)."""
    if isinstance(value, (list, dict)):
        return canonical_json(value)
    return value


def row_key_order(key: tuple[Any, ...]) -> tuple[Any, ...]:
    """Row keys (tuples of ids, None for a missing LEFT JOIN side) in ascending order."""
    return tuple((0, "") if part is None else (1, part) for part in key)
