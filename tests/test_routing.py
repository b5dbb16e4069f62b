"""Routing: a change reaches only the views it can affect, and routing never changes results.

Two kinds of routing keep many parametrized views cheap:

- static: a view whose WHERE pins a field of its FROM source to a constant
  (``WHERE id = 'thread:1'``) sees a change of that table only when the old or
  new record has the value;
- by active groups: a view that reads a table only through lazy nested levels
  (``(SELECT ... FROM comment WHERE thread = $parent.id)``) sees a change of it
  only when the record's group is one some shown row references; the circuit
  keeps an index of those groups as they are built and dropped.

Random logs run through a circuit with routing and one with every view
reading every change of its tables; updates, rows and members must be equal,
and the routed circuit must have run views fewer times.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from circuit import Circuit, Mutation
from circuit.view import View

PAGE = (
    "SELECT *, (SELECT * FROM user WHERE id = $parent.author)[0] AS author,"
    " (SELECT *, (SELECT * FROM user WHERE id = $parent.author)[0] AS author"
    " FROM comment WHERE thread = $parent.id ORDER BY created_at) AS comments"
    " FROM thread WHERE id = '{thread}'"
)
VIEWS = {f"page_{n}": PAGE.format(thread=f"thread:{n}") for n in range(1, 4)}
VIEWS["again_1"] = PAGE.format(thread="thread:1")  # shares page_1's state
VIEWS["authors"] = (
    "SELECT *, (SELECT name FROM user WHERE id = $parent.author)[0] AS by FROM thread"
)


def _log(seed: int, n: int) -> list[Mutation]:
    rng = random.Random(seed)
    live: set[str] = set()
    out: list[Mutation] = []
    for step in range(n):
        table = rng.choice(["user", "thread", "comment", "comment"])
        rid = f"{table}:{rng.randint(1, 5)}"
        if rid in live and rng.random() < 0.2:
            out.append(Mutation("DELETE", table, rid))
            live.discard(rid)
            continue
        data: dict[str, Any] = {"name": rng.choice("ab")}
        if table != "user":
            data["author"] = f"user:{rng.randint(1, 5)}"
        if table == "comment":
            data |= {"thread": f"thread:{rng.randint(1, 5)}", "created_at": step}
        out.append(Mutation("UPDATE" if rid in live else "CREATE", table, rid, data))
        live.add(rid)
    return out


def _run(circuit: Circuit, log: list[Mutation], batch: int) -> tuple[list[Any], int]:
    stream: list[Any] = []
    impacted = 0
    for start in range(0, len(log), batch):
        result = circuit.ingest_batch(log[start : start + batch])
        impacted += result.stats.views_impacted
        stream += [u.to_json() for u in result.updates]
        stream += [(name, circuit.rows(name), circuit.members(name)) for name in VIEWS]
    return stream, impacted


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("batch", [1, 4])
def test_routing_changes_which_views_run_but_not_what_they_emit(
    seed: int, batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = _log(seed, 300)
    routed = Circuit()
    for name, sql in VIEWS.items():
        routed.register_view(name, sql)
    with monkeypatch.context() as patch:
        patch.setattr(View, "lazy_tables", lambda self: {})
        patch.setattr(type(routed._views["page_1"].plan), "route", property(lambda self: None))
        unrouted = Circuit()
        for name, sql in VIEWS.items():
            unrouted.register_view(name, sql)
        want, runs_unrouted = _run(unrouted, log, batch)
    got, runs_routed = _run(routed, log, batch)
    assert got == want
    assert runs_routed < runs_unrouted


def test_a_comment_reaches_a_page_only_while_its_thread_is_shown() -> None:
    circuit = Circuit()
    circuit.register_view("page", PAGE.format(thread="thread:1"))
    circuit.ingest_single(Mutation("CREATE", "comment", "comment:1", {"thread": "thread:1"}))
    assert circuit.last_stats.views_impacted == 0  # thread:1 does not exist yet
    circuit.ingest_single(Mutation("CREATE", "thread", "thread:1", {"author": "user:1"}))
    assert [r["id"] for r in circuit.rows("page")[0]["comments"]] == ["comment:1"]
    circuit.ingest_single(Mutation("CREATE", "comment", "comment:2", {"thread": "thread:2"}))
    assert circuit.last_stats.views_impacted == 0
    circuit.ingest_single(Mutation("CREATE", "comment", "comment:3", {"thread": "thread:1"}))
    assert circuit.last_stats.views_impacted == 1
    circuit.ingest_single(Mutation("CREATE", "user", "user:1", {"name": "a"}))
    assert circuit.last_stats.views_impacted == 1  # the thread's author is shown
    circuit.ingest_single(Mutation("DELETE", "thread", "thread:1"))
    circuit.ingest_single(Mutation("UPDATE", "comment", "comment:3", {"thread": "thread:1"}))
    assert circuit.last_stats.views_impacted == 0  # its group was dropped with the thread
