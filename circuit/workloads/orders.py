"""`orders`: customers, then a stream of order inserts; the engine benchmark's workload.

Sizes: ``rows`` customers, ``mutations`` order inserts, ``views`` views
alternating a filter on the amount and the orders-customers join (round ``r``
raises the amount threshold). Nothing is updated or deleted: this scenario
measures the insert path of a filter and of a join.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from .model import Entry, Scenario, Sizes, Ticker, ViewDef, create, person

COUNTRIES = ("BR", "CN", "DE", "FR", "IN", "JP", "NG", "PL", "SE", "US", "VN")
TIERS = ("free", "free", "free", "pro", "pro", "enterprise")

FILTER_SQL = "SELECT * FROM orders WHERE amount > 500"
JOIN_SQL = (
    "SELECT o.id AS id, o.amount AS amount, c.name AS name\n"
    "FROM orders o JOIN customer c ON o.customer = c.id"
)


def views(sizes: Sizes) -> list[ViewDef]:
    """The filter and the join, round after round, each round with a higher threshold."""
    out = []
    for index in range(sizes.views):
        round_, which = divmod(index, 2)
        suffix = f"_{round_ + 1}" if round_ else ""
        threshold = 500 + 100 * round_
        if which == 0:
            sql = FILTER_SQL.replace("500", str(threshold))
            out.append(ViewDef(f"big_orders{suffix}", sql, f"Orders above {threshold}: a filter."))
        else:
            sql = JOIN_SQL + (f"\nWHERE o.amount > {threshold}" if round_ else "")
            comment = "Orders with their customer's name: a join."
            out.append(ViewDef(f"orders_with_customers{suffix}", sql, comment))
    return out


def entries(rng: random.Random, sizes: Sizes) -> Iterator[Entry]:
    """``sizes.rows`` customer CREATEs, then ``sizes.mutations`` order CREATEs."""
    ts = Ticker(rng, max_step=5)
    for key in range(1, sizes.rows + 1):
        data: dict[str, Any] = {
            "name": person(rng),
            "email": f"customer{key}@example.com",
            "country": rng.choice(COUNTRIES),
            "tier": rng.choice(TIERS),
        }
        yield create("customer", f"customer:{key}", data, ts())
    for key in range(1, sizes.mutations + 1):
        now = ts()
        data = {
            "customer": f"customer:{rng.randint(1, sizes.rows)}",
            # Cents, so amounts are exact two-decimal floats; about half exceed 500.
            "amount": rng.randint(100, 100_000) / 100,
            "items": rng.randint(1, 9),
            "status": "new",
            "created_at": now,
        }
        yield create("orders", f"orders:{key}", data, now)


SCENARIO = Scenario(
    name="orders",
    summary="customers, then order inserts; a filter view and an orders-customers join",
    defaults=Sizes(rows=1_000, mutations=19_000, views=2),
    min_rows=1,
    views=views,
    entries=entries,
)
