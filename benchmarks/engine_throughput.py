"""Engine throughput: order inserts through a filter view and a join view.

Usage::

    .venv/bin/python benchmarks/engine_throughput.py [--n 100000] [--json PATH]

The log is the `orders` workload (``ssp gen orders``): ``--customers``
customers, then ``--n`` order inserts, built up front as ``circuit.Mutation``
objects. Each case registers one view on a fresh ``Circuit``, loads the
customers in one untimed batch, then ingests the orders one at a time
(``ingest_single``) or in batches of 100 and 1000 (``ingest_batch``). Only the
ingest calls are timed (``perf_counter_ns`` around each call), so the figure is
entries per second of ingest time, as ``ssp replay`` reports it; generating
the log and counting events are outside the clock. ``--repeat`` runs every
case several times, interleaved, and keeps the median.

Only the public API is used: ``Circuit()``, ``register_view``,
``ingest_single`` and ``ingest_batch``.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from circuit import Circuit, Mutation, ViewUpdate
from circuit.replay import steady_gc
from circuit.workloads import SCENARIOS, Sizes
from circuit.workloads.orders import FILTER_SQL, JOIN_SQL

VIEWS = (("filter", FILTER_SQL), ("join", JOIN_SQL))
MODES = (("single", 1), ("batch", 100), ("batch", 1000))


@dataclass(frozen=True, slots=True)
class Result:
    """One case: a view, a mode and batch size, and its median timing over the repeats."""

    view: str
    mode: str
    batch_size: int
    entries: int
    ingest_s: float
    entries_per_s: float
    runs_s: list[float]
    created_events: int


def build_log(customers: int, orders: int, seed: int) -> tuple[list[Mutation], list[Mutation]]:
    """The customers and the orders of the `orders` workload, as mutations."""
    sizes = Sizes(rows=customers, mutations=orders, views=2)
    entries = SCENARIOS["orders"].entries(random.Random(seed), sizes)
    log = [Mutation.create(e["table"], e["id"], e["data"]) for e in entries]
    return log[:customers], log[customers:]


def created(updates: Sequence[ViewUpdate]) -> int:
    """Members created by these updates (a check that the view did its work)."""
    return sum(1 for u in updates for record in u.records or () if record["event"] == "created")


def run_case(
    sql: str, customers: list[Mutation], orders: list[Mutation], batch_size: int
) -> tuple[float, int]:
    """Ingest time in seconds of ``orders``, and the members the view gained from them."""
    engine = Circuit()
    engine.register_view("v", sql)
    engine.ingest_batch(customers)
    clock = time.perf_counter_ns
    elapsed = 0
    events = 0
    with steady_gc():  # the collector setting `ssp replay` runs under
        if batch_size == 1:
            for m in orders:
                start = clock()
                updates = engine.ingest_single(m)
                elapsed += clock() - start
                events += created(updates)
        else:
            for i in range(0, len(orders), batch_size):
                chunk = orders[i : i + batch_size]
                start = clock()
                result = engine.ingest_batch(chunk)
                elapsed += clock() - start
                events += created(result.updates)
    return elapsed / 1e9, events


def benchmark(args: argparse.Namespace, console: Console) -> list[Result]:
    customers, orders = build_log(args.customers, args.n, args.seed)
    cases = [(view, sql, mode, size) for view, sql in VIEWS for mode, size in MODES]
    timings: dict[int, list[float]] = {i: [] for i in range(len(cases))}
    events: dict[int, int] = {}
    for repeat in range(args.repeat):
        for i, (view, sql, mode, size) in enumerate(cases):
            console.log(f"run {repeat + 1}/{args.repeat}: {view} {mode} {size}")
            seconds, events[i] = run_case(sql, customers, orders, size)
            timings[i].append(seconds)
    results = []
    for i, (view, _, mode, size) in enumerate(cases):
        median = statistics.median(timings[i])
        rate = len(orders) / median if median > 0 else float("inf")
        results.append(Result(view, mode, size, len(orders), median, rate, timings[i], events[i]))
    return results


def render(results: list[Result]) -> Table:
    table = Table(title="engine throughput (order inserts, ingest time only)")
    for column in ("view", "mode", "batch", "entries", "ingest s", "entries/s", "created"):
        table.add_column(column, justify="left" if column in ("view", "mode") else "right")
    for r in results:
        table.add_row(
            r.view,
            r.mode,
            str(r.batch_size),
            f"{r.entries:,}",
            f"{r.ingest_s:.3f}",
            f"{r.entries_per_s:,.0f}",
            f"{r.created_events:,}",
        )
    return table


def git_revision() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Entries/s of the engine's ingest calls: order inserts through a filter\n"
        "view and an orders-customers join, in single mode and in batches of 100 and 1000.",
        epilog="Examples:\n"
        "  .venv/bin/python benchmarks/engine_throughput.py\n"
        "  .venv/bin/python benchmarks/engine_throughput.py --n 20000 --repeat 3 "
        "--json bench.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--n", type=positive, default=100_000, help="order inserts (100000)")
    parser.add_argument("--customers", type=positive, default=1_000, help="customers (1000)")
    parser.add_argument("--seed", type=int, default=1, help="workload seed (1)")
    parser.add_argument("--repeat", type=positive, default=1, help="runs per case; median (1)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results as JSON")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(stderr=True, quiet=not sys.stderr.isatty())
    try:
        Circuit()
    except NotImplementedError:
        print("error: circuit.Circuit is not implemented yet: nothing to measure", file=sys.stderr)
        return 1
    results = benchmark(args, console)
    Console().print(render(results))
    if args.json is not None:
        report: dict[str, Any] = {
            "schema": "ssp.bench.engine_throughput/1",
            "n": args.n,
            "customers": args.customers,
            "seed": args.seed,
            "repeat": args.repeat,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "git_revision": git_revision(),
            "results": [asdict(r) for r in results],
        }
        args.json.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
