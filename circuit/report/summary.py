"""The facts a human summary of a :class:`Run` shows, as titled tables of strings.

The terminal and Markdown renderers lay out the same :class:`Section` list,
so the two never disagree about what a run's summary contains.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..metrics import ANOMALY_KINDS, EVENT_KINDS
from .run import Run

SHOWN_REJECTED_LINES = 20


@dataclass(frozen=True, slots=True)
class Section:
    """One table: a title, column headers and rows of already formatted cells.

    Columns after the first are numbers (right-aligned by renderers that can).
    """

    title: str
    headers: tuple[str, ...]
    rows: Sequence[tuple[str, ...]]
    note: str | None = None
    """A line printed under the table (what was left out, verdicts)."""


def integer(value: Any) -> str:
    return f"{int(value):,}"


def decimal(value: Any, digits: int = 1) -> str:
    return f"{float(value):,.{digits}f}"


def title(run: Run) -> str:
    """``ssp replay: views.sql × log.jsonl``."""
    info = run.run
    inputs = " × ".join(p for p in (info.views_path, info.log_path) if p)
    return f"ssp {info.command}: {inputs}" if inputs else f"ssp {info.command}"


def status(run: Run) -> str:
    """One line: completed, or why and where the replay stopped (the error first)."""
    if run.completed:
        return "completed"
    if run.error is not None:
        where = ""
        if run.stopped_at is not None and run.stopped_at.line > 0:
            where = (
                f" (stopped at {run.run.log_path or '<log>'}:{run.stopped_at.line}"
                f" after {integer(run.stopped_at.entries)} entries)"
            )
        return f"failed: error: {run.error.line()}{where}"
    where = ""
    if run.stopped_at is not None:
        where = (
            f" at {run.run.log_path or '<log>'}:{run.stopped_at.line}"
            f" after {integer(run.stopped_at.entries)} entries"
        )
    return f"stopped ({run.stop_reason}){where}"


def options_line(run: Run) -> str:
    """The options that shape the numbers: ``mode batch, batch size 100, executor sequential``.

    Options a mode ignores are left out (batch size in single mode, flushes outside
    deferred mode, workers with the sequential executor).
    """
    o = run.run.options
    mode = o.get("mode")
    parts = [f"mode {mode}"]
    if mode == "batch":
        parts.append(f"batch size {o.get('batch_size')}")
    if mode == "deferred":
        for key, label in (("flush_every", "flush every"), ("frame_ms", "frame ms")):
            if o.get(key) is not None:
                parts.append(f"{label} {o[key]}")
    executor = o.get("executor")
    if executor is not None:
        workers = o.get("workers")
        parts.append(f"executor {executor}" + (f" ({workers} workers)" if workers else ""))
    if o.get("coalesce") is False:
        parts.append("no coalesce")
    if o.get("max_entries") is not None:
        parts.append(f"max entries {integer(o['max_entries'])}")
    if o.get("params"):
        parts.append("params " + ", ".join(f"{k}={v!r}" for k, v in o["params"].items()))
    return ", ".join(parts)


def headline(run: Run) -> str:
    """The verdict line: the status, then throughput beside the wall time when completed."""
    if not run.completed and run.error is not None:
        return status(run)
    t = run.totals
    numbers = (
        f"{integer(t.entries)} entries, {decimal(t.entries_per_s, 0)} entries/s of ingest time, "
        f"p99 {decimal(t.latency_us.p99)} µs, wall {decimal(t.wall_s, 2)} s"
    )
    return f"{status(run)}: {numbers}"


def throughput(run: Run) -> Section:
    t = run.totals
    lat = t.latency_us
    rows = [
        ("entries", integer(t.entries)),
        ("ingest calls", integer(t.ingest_calls)),
        ("throughput (entries/s of ingest time)", decimal(t.entries_per_s, 0)),
        ("latency p50 (µs per ingest call)", decimal(lat.p50)),
        ("latency p90 (µs)", decimal(lat.p90)),
        ("latency p99 (µs)", decimal(lat.p99)),
        ("latency max (µs)", decimal(lat.max)),
        ("ingest time (s)", decimal(t.ingest_s, 3)),
        ("read and parse time (s)", decimal(t.read_s, 3)),
        ("wall time (s)", decimal(t.wall_s, 3)),
    ]
    if run.initial is not None:
        rows += [
            ("initial records (loaded apart)", integer(run.initial.records)),
            ("initial load (s)", decimal(run.initial.load_s, 3)),
            ("view registration (s)", decimal(run.initial.register_s, 3)),
        ]
    return Section("Throughput and latency", ("metric", "value"), rows)


def batch_totals(run: Run) -> Section:
    s = run.batch_stats
    rows = [
        ("entries received", integer(s.entries_received)),
        ("entries after coalesce", integer(s.entries_after_coalesce)),
        ("no-op updates", integer(s.noop_updates)),
        ("tables touched", integer(s.tables_touched)),
        ("views impacted", integer(s.views_impacted)),
        ("views updated", integer(s.views_updated)),
    ]
    rows += [(f"events {kind}", integer(s.events.get(kind, 0))) for kind in EVENT_KINDS]
    return Section("BatchStats totals", ("counter", "total"), rows)


def problems(run: Run) -> Section:
    """Anomalies by kind (every kind, zeros included) and rejected lines."""
    e = run.errors
    kinds = list(ANOMALY_KINDS) + sorted(set(e.anomalies) - set(ANOMALY_KINDS))
    rows = [(f"anomaly {kind}", integer(e.anomalies.get(kind, 0))) for kind in kinds]
    rows.append(("rejected lines", integer(e.rejected)))
    if e.rejected_lines:
        shown = ", ".join(str(n) for n in e.rejected_lines[:SHOWN_REJECTED_LINES])
        more = len(e.rejected_lines) > SHOWN_REJECTED_LINES or e.rejected > len(e.rejected_lines)
        rows.append(("rejected at lines", shown + (", …" if more else "")))
    return Section("Anomalies and rejects", ("kind", "count"), rows)


def top_views(run: Run, limit: int | None = None) -> Section:
    """The costliest views by total time (ms), with invocations (calls), per-invocation
    percentiles, rows, members and full recomputes."""
    ranked = sorted(run.views.items(), key=lambda item: (-int(item[1].get("time_ns", 0)), item[0]))
    rows = [
        (
            name,
            decimal(m.get("time_ns", 0) / 1e6, 3),
            integer(m.get("invocations", 0)),
            decimal(m.get("time_ns_p50", 0) / 1e3),
            decimal(m.get("time_ns_p99", 0) / 1e3),
            integer(m.get("rows", 0)),
            integer(m.get("members", 0)),
            integer(m.get("full_recomputes", 0)),
        )
        for name, m in ranked[:limit]
    ]
    cut = limit is not None and len(ranked) > limit
    shown = f"top {limit} of {len(ranked)}" if cut else "all"
    headers = ("view", "ms", "calls", "p50 µs", "p99 µs", "rows", "members", "recomputes")
    note = None
    if cut:
        rest = ranked[len(rows) :]
        rest_ms = sum(int(m.get("time_ns", 0)) for _, m in rest) / 1e6
        note = f"{integer(len(rest))} more views not shown ({decimal(rest_ms, 3)} ms together)"
    return Section(f"Views by time ({shown})", headers, rows, note)


def bench_table(run: Run) -> Section | None:
    """The ``bench`` section of a ``ssp bench`` report as a table, verdicts under it."""
    bench = run.extra.get("bench")
    if not isinstance(bench, dict) or not bench.get("combinations"):
        return None
    rows = []
    verdicts = []
    for combo in bench["combinations"]:
        s = combo.get("summary", {})
        tput = s.get("entries_per_s", {})
        ratio = combo.get("ratio", {})
        rows.append(
            (
                str(combo.get("label", "")),
                decimal(tput.get("median", 0), 0),
                f"±{float(tput.get('spread_percent', 0)) / 2:.1f}%",
                _ratio(ratio.get("entries_per_s")),
                decimal(s.get("latency_p50_us", {}).get("median", 0)),
                decimal(s.get("latency_p99_us", {}).get("median", 0)),
                _ratio(ratio.get("latency_p99_us")),
            )
        )
        if combo.get("verdict"):
            verdicts.append(str(combo["verdict"]))
    for warning in bench.get("warnings", []):
        verdicts.append(f"warning: {warning}")
    headers = ("combination", "entries/s", "±", "ratio", "p50 µs", "p99 µs", "p99 ratio")
    title = f"Bench: {len(rows)} combinations x {bench.get('repeat')} runs (interleaved)"
    return Section(title, headers, rows, "\n".join(verdicts) or None)


def _ratio(value: Any) -> str:
    return "-" if value is None else f"{float(value):.2f}x"


def sections(run: Run, view_limit: int | None = None) -> list[Section]:
    bench = bench_table(run)
    return [
        *([bench] if bench is not None else []),
        throughput(run),
        batch_totals(run),
        problems(run),
        top_views(run, view_limit),
    ]
