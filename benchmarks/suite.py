"""The benchmark suite: the engine beside its references, in one process, with targets.

Usage::

    .venv/bin/python benchmarks/suite.py                  # full size (several minutes)
    .venv/bin/python benchmarks/suite.py --quick          # a smoke run of seconds
    .venv/bin/python benchmarks/suite.py --json suite.json --repeat 3

Three sections, each timing only ingest calls (``perf_counter_ns`` around each
call; building logs, loading state and registering views happen before the
clock starts):

(a) W1: 1 000 customers, then 100 000 order inserts, through the views
    ``SELECT * FROM orders WHERE amount > 500`` and the orders-customers join,
    in single mode and in batches of 100, 1 000 and 10 000, against
    - ``hand-written``: :class:`HandWritten`, the same two views kept by hand in
      dicts, emitting the same events: the practical limit of pure Python;
    - ``duckdb``: what users do instead, inserting each batch into DuckDB and
      recomputing both views (rows fetched). Recomputing after each of 100 000
      single inserts would take hours, so ``--duckdb-samples`` batches spread
      evenly over the log are timed (the others are inserted untimed) and the
      mean cost of a batch is multiplied by the number of batches.
(b) state: the forum workload with 10k, 100k and 1M records of state loaded
    before its five views are registered, then ``--state-mutations`` entries of
    activity in batches of 100. Cost per entry must not grow with state; the
    hand-written W1 loop over the same numbers of orders is the reference,
    since bigger hash tables slow even a perfect loop once they outgrow the
    CPU caches. The target compares the two ratios (largest over smallest).
    The views run in streaming format here: a flat update lists every member
    by definition, so its cost grows with the view and says nothing about the
    operators (section (c) shows flat beside streaming).
(c) views: 10, 100 and 250 mixed forum views (every template, aggregates
    included) over 5k records, batches of 10, in streaming and flat format,
    and the ``output floor``: only what the contract makes any engine do on
    the same calls (time and count each impacted view, build each update and
    its events), measured by replaying the engine's own per-call counts.

W1 also runs ``engine, no views``: an ingest call's cost before any view runs
(applying entries with versions and anomalies, coalescing, BatchStats).

Every case is repeated ``--repeat`` times, interleaved (each repetition runs
every case once), and the median is kept. The table ends with the targets of
issue 6 and whether each was met. ``--json PATH`` writes every number.
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from circuit import Circuit, Mutation, ViewUpdate
from circuit.metrics import ViewMetrics
from circuit.mutations import parse_entry
from circuit.replay import git_revision, steady_gc
from circuit.workloads import SCENARIOS, Sizes
from circuit.workloads.orders import FILTER_SQL, JOIN_SQL

W1_VIEWS = (("big_orders", FILTER_SQL), ("orders_with_customers", JOIN_SQL))
STATE_BATCH = 100
VIEWS_BATCH = 10


@dataclass(frozen=True, slots=True)
class Config:
    """Sizes of every section (``--quick`` shrinks them all)."""

    customers: int = 1_000
    orders: int = 100_000
    batches: tuple[int, ...] = (1, 100, 1_000, 10_000)
    duckdb_samples: int = 20
    state_sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    state_mutations: int = 20_000
    view_counts: tuple[int, ...] = (10, 100, 250)
    view_records: int = 5_000
    view_mutations: int = 5_000
    repeat: int = 1
    seed: int = 1


QUICK = Config(
    orders=5_000,
    batches=(1, 100, 1_000),
    duckdb_samples=5,
    state_sizes=(2_000, 10_000),
    state_mutations=2_000,
    view_counts=(5, 20),
    view_records=1_000,
    view_mutations=500,
)


@dataclass(slots=True)
class Measure:
    """One timed run: entries ingested, ingest seconds, and members created (a work check)."""

    entries: int
    seconds: float
    created: int = 0
    note: str = ""


@dataclass(slots=True)
class Row:
    """One case over its repetitions; ``rate`` is the median entries/s."""

    section: str
    case: str
    system: str
    entries: int
    rates: list[float] = field(default_factory=list)
    created: int = 0
    note: str = ""

    @property
    def rate(self) -> float:
        return statistics.median(self.rates) if self.rates else 0.0


@dataclass(frozen=True, slots=True)
class Target:
    """One target of issue 6: what was measured against what was asked."""

    name: str
    measured: float
    wanted: float
    unit: str

    @property
    def met(self) -> bool:
        return self.measured >= self.wanted


# -- (a) W1 ----------------------------------------------------------------------


def w1_log(customers: int, orders: int, seed: int) -> tuple[list[Mutation], list[Mutation]]:
    """The `orders` workload (``ssp gen orders``) as mutations: customers, then orders."""
    sizes = Sizes(rows=customers, mutations=orders, views=2)
    entries = SCENARIOS["orders"].entries(random.Random(seed), sizes)
    log = [parse_entry(e, path=None, line=i) for i, e in enumerate(entries, start=1)]
    return log[:customers], log[customers:]


def time_calls(
    calls: Callable[[Sequence[Mutation]], int], entries: Sequence[Mutation], batch: int
) -> Measure:
    """Feed ``entries`` ``batch`` at a time to ``calls``; time each call, sum what it created.

    Every system runs under the garbage-collector setting ``ssp replay`` uses
    (:func:`circuit.replay.steady_gc`), so none pays full collections over the
    others' state.
    """
    clock = time.perf_counter_ns
    elapsed = created = 0
    with steady_gc():
        for start in range(0, len(entries), batch):
            chunk = entries[start : start + batch]
            t0 = clock()
            made = calls(chunk)
            elapsed += clock() - t0
            created += made
    return Measure(len(entries), elapsed / 1e9, created)


def engine_calls(engine: Circuit, batch: int) -> Callable[[Sequence[Mutation]], int]:
    """``ingest_single`` for batch 1 (single mode), else ``ingest_batch``; returns created."""

    def created(updates: Iterable[Any]) -> int:
        return sum(1 for u in updates for r in (u.records or ()) if r["event"] == "created")

    if batch == 1:
        return lambda chunk: created(engine.ingest_single(chunk[0]))
    return lambda chunk: created(engine.ingest_batch(chunk).updates)


def engine_w1(
    customers: list[Mutation], orders: list[Mutation], batch: int, views: bool = True
) -> Measure:
    """The engine on W1; without ``views``, what an ingest call costs before any view
    runs (applying entries with versions and anomalies, coalescing, BatchStats, timing)."""
    engine = Circuit()
    engine.load(customers)
    for name, sql in W1_VIEWS if views else ():
        engine.register_view(name, sql)
    return time_calls(engine_calls(engine, batch), orders, batch)


class HandWritten:
    """W1's two views maintained in place with dicts: the practical limit of pure Python.

    ``big_orders`` keeps the orders above 500; ``orders_with_customers`` keeps
    every order whose customer exists and each such customer (reference
    counted), as the engine's members. Each call returns the streaming
    updates the engine emits: per view, created members sorted by id with
    their versions. Insert-only and customers-first, as W1 is: that is what
    makes it a limit rather than a second engine.
    """

    def __init__(self) -> None:
        self.customers: dict[str, dict[str, Any]] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, int] = {}
        self.big: dict[str, int] = {}
        self.joined: dict[str, int] = {}
        self.seq = 0

    def ingest(self, batch: Sequence[Mutation]) -> list[tuple[str, int, list[dict[str, Any]]]]:
        versions, customers, joined = self.versions, self.customers, self.joined
        big: list[str] = []
        join: list[str] = []
        for m in batch:
            rid = m.id
            assert rid is not None and m.data is not None and m.op == "CREATE"
            version = versions.get(rid, 0) + 1
            versions[rid] = version
            record = {**m.data, "id": rid}
            if m.table == "orders":
                self.orders[rid] = record
                amount = record.get("amount")
                if amount is not None and amount > 500:
                    self.big[rid] = version
                    big.append(rid)
                customer = record.get("customer")
                if customer in customers:
                    joined[rid] = 1
                    join.append(rid)
                    refs = joined.get(customer, 0)
                    joined[customer] = refs + 1
                    if not refs:
                        join.append(customer)
            else:
                customers[rid] = record
        self.seq += 1
        updates = []
        for view, ids in (("big_orders", big), ("orders_with_customers", join)):
            if ids:
                ids.sort()
                records = [{"id": i, "event": "created", "version": versions[i]} for i in ids]
                updates.append((view, self.seq, records))
        return updates

    def calls(self) -> Callable[[Sequence[Mutation]], int]:
        return lambda chunk: sum(len(records) for _, _, records in self.ingest(chunk))


def hand_w1(customers: list[Mutation], orders: list[Mutation], batch: int) -> Measure:
    reference = HandWritten()
    reference.ingest(customers)
    return time_calls(reference.calls(), orders, batch)


def duckdb_w1(
    customers: list[Mutation], orders: list[Mutation], batch: int, samples: int
) -> Measure | None:
    """Insert each batch into DuckDB and recompute both views; None when DuckDB is missing."""
    try:
        import duckdb
    except ImportError:
        return None
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE customer (id VARCHAR PRIMARY KEY, name VARCHAR, email VARCHAR,"
        " country VARCHAR, tier VARCHAR)"
    )
    con.execute(
        "CREATE TABLE orders (id VARCHAR PRIMARY KEY, customer VARCHAR, amount DOUBLE,"
        " items INTEGER, status VARCHAR, created_at BIGINT)"
    )
    customer_rows = [_row(m, ("name", "email", "country", "tier")) for m in customers]
    _insert(con, "customer", customer_rows)
    order_fields = ("customer", "amount", "items", "status", "created_at")
    batches = [orders[i : i + batch] for i in range(0, len(orders), batch)]
    count = min(samples, len(batches))
    sampled = {round(k * (len(batches) - 1) / max(1, count - 1)) for k in range(count)}
    pending: list[tuple[Any, ...]] = []
    elapsed = 0
    for index, chunk in enumerate(batches):
        rows = [_row(m, order_fields) for m in chunk]
        if index not in sampled:
            pending += rows
            continue
        _insert(con, "orders", pending)
        pending = []
        t0 = time.perf_counter_ns()
        _insert(con, "orders", rows)
        con.execute(FILTER_SQL).fetchall()
        con.execute(JOIN_SQL).fetchall()
        elapsed += time.perf_counter_ns() - t0
    seconds = elapsed / 1e9 / len(sampled) * len(batches)
    note = f"{len(sampled)} of {len(batches)} batches timed" if len(sampled) < len(batches) else ""
    return Measure(len(orders), seconds, note=note)


def _row(m: Mutation, names: tuple[str, ...]) -> tuple[Any, ...]:
    data = m.data or {}
    return (m.id, *(data.get(name) for name in names))


def _insert(con: Any, table: str, rows: list[tuple[Any, ...]]) -> None:
    """Insert rows as one statement of column lists: DuckDB's fast bulk path without pandas.

    ``executemany`` costs about a millisecond per row, which would measure the
    driver rather than the database.
    """
    if rows:
        columns = [list(column) for column in zip(*rows, strict=True)]
        unnest = ", ".join("unnest(?)" for _ in columns)
        con.execute(f"INSERT INTO {table} SELECT {unnest}", columns)


# -- (b) state and (c) views -----------------------------------------------------


def forum_log(sizes: Sizes, seed: int) -> tuple[list[Mutation], list[Mutation]]:
    entries = SCENARIOS["forum"].entries(random.Random(seed), sizes)
    log = [parse_entry(e, path=None, line=i) for i, e in enumerate(entries, start=1)]
    return log[: sizes.rows], log[sizes.rows :]


def engine_forum(sizes: Sizes, batch: int, seed: int, fmt: str | None = None) -> Measure:
    """Load ``sizes.rows`` records, register the views (untimed), time the activity."""
    state, activity = forum_log(sizes, seed)
    engine = Circuit()
    engine.load(state)
    del state
    t0 = time.perf_counter()
    for view in SCENARIOS["forum"].views(sizes):
        engine.register_view(view.name, view.sql, format=fmt or view.format)
    register_s = time.perf_counter() - t0
    measure = time_calls(engine_calls(engine, batch), activity, batch)
    measure.note = f"registration {register_s:.1f} s"
    return measure


def output_floor(sizes: Sizes, batch: int, seed: int) -> Measure:
    """What the contract alone costs on the forum views: no engine can go faster.

    The engine runs the activity untimed (streaming) to learn, per ingest
    call, how many views the changes impacted, how many updates they emitted
    and how many events those held. Then only that is timed: reading the
    clock around each impacted view and recording its invocation (the
    per-view metrics of SPEC section 4), and building each update with its
    event records. Every maintenance step is left out.
    """
    state, activity = forum_log(sizes, seed)
    engine = Circuit()
    engine.load(state)
    del state
    for view in SCENARIOS["forum"].views(sizes):
        engine.register_view(view.name, view.sql, format="streaming")
    per_call: list[tuple[int, list[int]]] = []
    with steady_gc():
        for start in range(0, len(activity), batch):
            result = engine.ingest_batch(activity[start : start + batch])
            sizes_of = [len(u.records or ()) for u in result.updates]
            per_call.append((result.stats.views_impacted, sizes_of))
    metrics = [ViewMetrics() for _ in range(max((n for n, _ in per_call), default=0))]
    clock = time.perf_counter_ns
    elapsed = 0
    with steady_gc():
        for seq, (impacted, updates) in enumerate(per_call):
            t0 = clock()
            for view in metrics[:impacted]:
                t1 = clock()
                view.record_invocation(clock() - t1)
            built = [
                ViewUpdate(
                    "v",
                    seq,
                    "streaming",
                    records=[{"id": "x", "event": "created", "version": 1} for _ in range(n)],
                )
                for n in updates
            ]
            elapsed += clock() - t0
            del built
    return Measure(len(activity), elapsed / 1e9, note="per-view timing and events only")


def hand_state(records: int, mutations: int, customers: int, seed: int) -> Measure:
    """The hand-written W1 loop with ``records`` orders of state, timing ``mutations`` more."""
    custs, orders = w1_log(customers, records + mutations, seed)
    reference = HandWritten()
    reference.ingest(custs)
    for start in range(0, records, 10_000):
        reference.ingest(orders[start : min(records, start + 10_000)])
    return time_calls(reference.calls(), orders[records:], STATE_BATCH)


# -- running -----------------------------------------------------------------------


Case = tuple[str, str, str, Callable[[], Measure | None]]
"""(section, case, system, run)."""


def cases(config: Config) -> list[Case]:
    """Every case in run order: W1 by batch size, then state sizes, then view counts."""
    out: list[Case] = []
    custs, orders = w1_log(config.customers, config.orders, config.seed)
    for batch in config.batches:
        label = "single" if batch == 1 else f"batch {batch:,}"
        out += [
            ("W1", label, "engine", partial(engine_w1, custs, orders, batch)),
            ("W1", label, "hand-written", partial(hand_w1, custs, orders, batch)),
            ("W1", label, "engine, no views", partial(engine_w1, custs, orders, batch, False)),
            (
                "W1",
                label,
                "duckdb",
                partial(duckdb_w1, custs, orders, batch, config.duckdb_samples),
            ),
        ]
    for records in config.state_sizes:
        sizes = Sizes(rows=records, mutations=config.state_mutations, views=5)
        label = f"{records:,} records"
        reference = partial(
            hand_state, records, config.state_mutations, config.customers, config.seed
        )
        out += [
            (
                "state",
                label,
                "engine",
                partial(engine_forum, sizes, STATE_BATCH, config.seed, "streaming"),
            ),
            ("state", label, "hand-written", reference),
        ]
    for count in config.view_counts:
        sizes = Sizes(config.view_records, config.view_mutations, count, aggregates=True)
        out += [
            (
                "views",
                f"{count} views",
                f"engine {fmt}",
                partial(engine_forum, sizes, VIEWS_BATCH, config.seed, fmt),
            )
            for fmt in ("streaming", "flat")
        ]
        out.append(
            (
                "views",
                f"{count} views",
                "output floor",
                partial(output_floor, sizes, VIEWS_BATCH, config.seed),
            )
        )
    return out


def run(config: Config, log: Callable[[str], None]) -> list[Row]:
    """Every case ``config.repeat`` times, interleaved; median entries/s per case."""
    plan = cases(config)
    rows: dict[int, Row] = {}
    for repetition in range(config.repeat):
        for index, (section, case, system, fn) in enumerate(plan):
            log(f"[{repetition + 1}/{config.repeat}] {section} {case} {system}")
            gc.collect()
            measure = fn()
            if measure is None:
                rows[index] = Row(section, case, system, 0, note="skipped: duckdb not installed")
                continue
            row = rows.setdefault(index, Row(section, case, system, measure.entries))
            row.rates.append(measure.entries / measure.seconds if measure.seconds else 0.0)
            row.created, row.note = measure.created, measure.note
    return [rows[i] for i in range(len(plan))]


def targets(config: Config, rows: list[Row]) -> list[Target]:
    """The targets of issue 6 that the measured sizes allow judging."""
    rate = {(r.section, r.case, r.system): r.rate for r in rows if r.rates}
    out: list[Target] = []
    for batch in (1, 1_000):
        label = "single" if batch == 1 else f"batch {batch:,}"
        engine, hand = rate.get(("W1", label, "engine")), rate.get(("W1", label, "hand-written"))
        if engine and hand:
            out.append(Target(f"W1 {label}: engine / hand-written", engine / hand, 0.5, "x"))
    for batch in config.batches:
        label = "single" if batch == 1 else f"batch {batch:,}"
        engine, duck = rate.get(("W1", label, "engine")), rate.get(("W1", label, "duckdb"))
        if batch <= 1_000 and engine and duck:
            out.append(Target(f"W1 {label}: engine / duckdb recompute", engine / duck, 1.0, "x"))
    if len(config.state_sizes) >= 2:
        small, large = (
            f"{min(config.state_sizes):,} records",
            f"{max(config.state_sizes):,} records",
        )
        e_small, e_large = (
            rate.get(("state", small, "engine")),
            rate.get(("state", large, "engine")),
        )
        h_small = rate.get(("state", small, "hand-written"))
        h_large = rate.get(("state", large, "hand-written"))
        if e_small and e_large and h_small and h_large:
            ratio = (e_large / e_small) / (h_large / h_small)
            out.append(
                Target(f"state {large} / {small}: engine ratio / hand ratio", ratio, 0.7, "x")
            )
    most = f"{max(config.view_counts)} views"
    for fmt in ("streaming", "flat"):
        measured = rate.get(("views", most, f"engine {fmt}"))
        if measured is not None:
            out.append(Target(f"{most} {fmt}: entries/s", measured, 50_000, "entries/s"))
    return out


def render(rows: list[Row], goals: list[Target]) -> tuple[Table, Table]:
    base = {r.case: r.rate for r in rows if r.section == "W1" and r.system == "hand-written"}
    table = Table(title="ssp benchmark suite (entries/s of ingest time, median)")
    for column in ("section", "case", "system", "entries", "entries/s", "vs hand-written", "note"):
        right = column in ("entries", "entries/s", "vs hand-written")
        table.add_column(column, justify="right" if right else "left")
    for r in rows:
        ref = base.get(r.case) if r.section == "W1" else None
        ratio = f"{r.rate / ref:.2f}x" if ref and r.rates else ""
        rate = f"{r.rate:,.0f}" if r.rates else "-"
        table.add_row(r.section, r.case, r.system, f"{r.entries:,}", rate, ratio, r.note)
    goal_table = Table(title="targets (issue 6)")
    for column in ("target", "measured", "wanted", ""):
        goal_table.add_column(column, justify="left" if column == "target" else "right")
    for g in goals:
        fmt = "{:,.0f}" if g.unit == "entries/s" else "{:.2f}"
        goal_table.add_row(
            g.name,
            fmt.format(g.measured),
            ">= " + fmt.format(g.wanted),
            "[green]met[/]" if g.met else "[red]missed[/]",
        )
    return table, goal_table


def sizes_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v.replace("_", "")) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N,N,...; got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be at least 1, got {text!r}")
    return values


def parse_args(argv: Sequence[str] | None) -> tuple[Config, Path | None]:
    parser = argparse.ArgumentParser(
        description="The engine beside a hand-written loop and DuckDB: W1, state size, views.",
        epilog="Examples:\n"
        "  .venv/bin/python benchmarks/suite.py --quick\n"
        "  .venv/bin/python benchmarks/suite.py --json suite.json\n"
        "  .venv/bin/python benchmarks/suite.py --state-sizes 10000,100000 --repeat 3",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--orders", type=int, help="W1 order inserts (100000)")
    parser.add_argument("--batches", type=sizes_list, help="W1 batch sizes (1,100,1000,10000)")
    parser.add_argument("--duckdb-samples", type=int, help="DuckDB batches timed per case (20)")
    parser.add_argument("--state-sizes", type=sizes_list, help="records of state (10k,100k,1M)")
    parser.add_argument("--state-mutations", type=int, help="entries timed per state size")
    parser.add_argument("--view-counts", type=sizes_list, help="view counts (10,100,250)")
    parser.add_argument("--view-mutations", type=int, help="entries timed per view count")
    parser.add_argument("--repeat", type=int, help="runs per case, interleaved; median (1)")
    parser.add_argument("--seed", type=int, help="workload seed (1)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every number here")
    args = parser.parse_args(argv)
    config = QUICK if args.quick else Config()
    overrides = {
        key: value
        for key, value in vars(args).items()
        if key not in ("quick", "json") and value is not None
    }
    return Config(**{**asdict(config), **overrides}), args.json


def main(argv: Sequence[str] | None = None) -> int:
    config, json_path = parse_args(argv)
    progress = Console(stderr=True)
    rows = run(config, progress.log)
    goals = targets(config, rows)
    out = Console()
    if not out.is_terminal:
        out.width = 160
    for table in render(rows, goals):
        out.print(table)
    if json_path is not None:
        document = {
            "schema": "ssp.bench.suite/1",
            "config": asdict(config),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "git_revision": git_revision(),
            "results": [{**asdict(r), "entries_per_s": r.rate} for r in rows],
            "targets": [{**asdict(g), "met": g.met} for g in goals],
        }
        json_path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
