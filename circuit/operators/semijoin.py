"""The contents of a WHERE subquery, kept as counts per correlation key.

``x IN (SELECT v ...)`` needs, per correlation key, how many visible rows
carry each value, how many carry NULL, and how many there are (SQL's NULL
rules for IN depend on all three); ``EXISTS`` needs only the count. The
update returns what the outer filter must look at again: probes of values
whose count crossed zero, and whole groups whose emptiness or NULL presence
changed.
"""

from __future__ import annotations

from typing import Any

from ..sql.keys import hash_key
from ..sql.plan import AtomState, SubqueryAtom
from .window import Visible


def update_atom(atom: SubqueryAtom, visible: Visible) -> tuple[set[Any], set[Any]]:
    """Apply a subquery level's visible changes; return (value probes, groups) to re-judge."""
    state: AtomState = atom.state
    groups = state.groups
    value_fn = atom.level.value_fn
    touched: dict[Any, tuple[int, int]] = {}
    crossed: set[Any] = set()
    for ck, _key, old, new in visible:
        group = groups.get(ck)
        if group is None:
            group = groups[ck] = [{}, 0, 0]
        if ck not in touched:
            touched[ck] = (group[1], group[2])
        for row, sign in ((old, -1), (new, 1)):
            if row is None:
                continue
            group[2] += sign
            if value_fn is None:
                continue
            value = value_fn(row)
            if value is None:
                group[1] += sign
                continue
            vkey = hash_key(value)
            counts = group[0]
            count = counts.get(vkey, 0) + sign
            if count:
                counts[vkey] = count
            else:
                del counts[vkey]
            if count == 0 or (count == 1 and sign == 1):
                crossed.add((ck, vkey))
    whole: set[Any] = set()
    for ck, (nulls_before, total_before) in touched.items():
        group = groups[ck]
        if (nulls_before > 0) != (group[1] > 0) or (total_before > 0) != (group[2] > 0):
            whole.add(ck)
        if group[2] == 0:
            del groups[ck]
    # probes with a NULL value depend only on emptiness: they sit in whole groups
    return crossed, whole
