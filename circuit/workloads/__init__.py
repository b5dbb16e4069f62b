"""Synthetic workloads for ``ssp gen``: one module per scenario, one shared writer.

Each scenario is a :class:`~circuit.workloads.model.Scenario`: its views for
given sizes and a lazy stream of log entries drawn from one seeded
``random.Random``. :func:`~circuit.workloads.writer.write_workload` writes
``views.sql`` and ``log.jsonl`` (and ``initial.jsonl``, the state, on request); the same scenario, seed and sizes always give
the same bytes.
"""

from __future__ import annotations

from . import chat, clients, forum, orders, subscriptions
from .model import Entry, Scenario, Sizes, ViewDef
from .writer import INITIAL_FILE, LOG_FILE, VIEWS_FILE, Written, write_workload

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        forum.SCENARIO,
        chat.SCENARIO,
        subscriptions.SCENARIO,
        orders.SCENARIO,
        clients.SCENARIO,
    )
}
"""Every scenario by name, in the order ``ssp gen --help`` lists them."""

__all__ = [
    "INITIAL_FILE",
    "LOG_FILE",
    "SCENARIOS",
    "VIEWS_FILE",
    "Entry",
    "Scenario",
    "Sizes",
    "ViewDef",
    "Written",
    "write_workload",
]
