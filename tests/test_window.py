"""The top-k window's edge arithmetic against brute force, for one window and for several.

:class:`~circuit.operators.window.GroupWindow` never lists a whole window: it
looks only at the changed rows and the rows within the number of changed keys
of each edge, before and after the change. Here random rounds of inserts,
deletes and moves go through a window (with extra windows of other
LIMIT/OFFSET over the same rows), and each window's reported changes must be
exactly the difference of the sorted lists sliced before and after.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from circuit.operators import Delta
from circuit.operators.window import GroupWindow
from circuit.sql.plan import LevelPlan, OrderItem

Bounds = tuple[int | None, int]  # (limit, offset)

ROUNDS = st.lists(
    st.lists(st.tuples(st.integers(0, 11), st.none() | st.integers(0, 6)), max_size=6),
    min_size=1,
    max_size=12,
)
BOUNDS = st.lists(
    st.tuples(st.none() | st.integers(0, 5), st.integers(0, 4)).filter(
        lambda b: b[0] is not None or b[1] > 0
    ),
    min_size=1,
    max_size=4,
)


def _window(limit: int | None, offset: int) -> GroupWindow:
    order = [OrderItem(lambda row: row[0]["score"], True, False, "score DESC")]
    return GroupWindow(LevelPlan(sources=[("t", "t")], order=order, limit=limit, offset=offset))


def _visible(state: dict[str, int], limit: int | None, offset: int) -> dict[str, int]:
    ranked = sorted(state, key=lambda rid: (-state[rid], rid))
    stop = None if limit is None else offset + limit
    return {rid: state[rid] for rid in ranked[offset:stop]}


@settings(max_examples=200, deadline=None)
@given(rounds=ROUNDS, bounds=BOUNDS)
def test_every_window_reports_exactly_its_difference(
    rounds: list[list[tuple[int, int | None]]], bounds: list[Bounds]
) -> None:
    (limit, offset), extra = bounds[0], bounds[1:]
    window = _window(limit, offset)
    ids = {window.add_window(lim, off): (lim, off) for lim, off in extra}
    state: dict[str, int] = {}
    records: dict[str, dict[str, Any]] = {}
    for changes in rounds:
        before = {w: _visible(state, *b) for w, b in [(0, (limit, offset)), *ids.items()]}
        delta: Delta = {}
        for key, score in dict(changes).items():
            rid = f"t:{key}"
            old = records.get(rid)
            new = None if score is None else {"id": rid, "score": score}
            if old is None and new is None:
                continue
            delta[(rid,)] = (None if old is None else (old,), None if new is None else (new,))
            if new is None:
                del records[rid], state[rid]
            else:
                records[rid], state[rid] = new, score
        reported = {0: window.process(delta) if delta else []}
        reported.update({w: window.extra_visible.get(w, []) for w in ids} if delta else {})
        for w, was in before.items():
            now = _visible(state, *((limit, offset) if w == 0 else ids[w]))
            got = {
                key[0]: (
                    None if old is None else old[0]["score"],
                    None if new is None else new[0]["score"],
                )
                for _ck, key, old, new in reported.get(w, [])
            }
            want = {
                rid: (was.get(rid), now.get(rid))
                for rid in was.keys() | now.keys()
                if was.get(rid) != now.get(rid) or (rid in was and rid in now and (rid,) in delta)
            }
            assert got == want, (w, changes)
            listed = [key[0] for key, _row in window.visible_rows((), None if w == 0 else w)]
            assert listed == list(now)
