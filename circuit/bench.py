"""Benchmark a workload over a matrix of replay options (``ssp bench``).

``--matrix mode=single,batch --matrix batch_size=100,1000`` names values of
:class:`~circuit.replay.ReplayOptions` fields; :func:`parse_matrix` checks
every key against the dataclass and converts every value to the field's type,
and :func:`expand` builds every combination over the options given apart. The
first combination (every axis at its first value) is the baseline the others
are compared with.

Runs are interleaved: repetition 1 runs every combination once, in order, then
repetition 2 in the reverse order, and so on (:func:`schedule`). A machine
whose speed drifts (thermal throttling, a noisy neighbour on a CI runner) then
slows every combination alike instead of whichever happened to run last, and
no combination always runs in the same place after the same other one (what
a run leaves behind, such as a grown heap or warm caches, could otherwise
favour one combination in every repetition).

Per combination the median and the spread of throughput and latency
percentiles are kept over the repetitions, and each combination gets a
verdict against the baseline: a difference counts only when the two ranges of
throughput do not overlap and the medians differ by more than
:data:`NOISE_FLOOR`.

When a combination runs the process executor, each repetition first measures
the machine's *capacity* (:func:`measure_capacity`): what as many plain
CPU-bound Python processes as there are workers achieve together, in units of
one alone. On a shared machine that is the ceiling of any parallel speed-up
at that moment, so the verdict reports the executor's ratio against it.
"""

from __future__ import annotations

import itertools
import multiprocessing
import statistics
import time
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from .errors import ReplayError, escape_control
from .executors import default_workers
from .replay import ReplayOptions
from .report.markdown import cell
from .report.run import Run

NOISE_FLOOR = 0.05
"""Relative differences of throughput below 5% are never called a win or a loss."""

MIN_REPEAT_FOR_NOISE = 3
"""Fewer repetitions than this cannot tell a difference from noise."""

METRICS = ("entries_per_s", "latency_p50_us", "latency_p90_us", "latency_p99_us", "latency_max_us")
"""What is summarised per combination: throughput, then latency per ingest call."""

NOT_VARIABLE = {
    "params": "bind parameters with --param instead",
    "rejects": "every run would write the same rejects file",
}

CAPACITY_WORK = 2_000_000
"""Loop iterations each capacity probe runs (about 0.1 s of one core)."""

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


class MatrixError(ReplayError):
    """An unknown ``--matrix`` key, a value of the wrong type, or an invalid combination."""


@dataclass(frozen=True, slots=True)
class Axis:
    """One ``--matrix KEY=V1,V2``: a ReplayOptions field and its values, typed."""

    key: str
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Combination:
    """One point of the matrix: its label (``mode=batch batch_size=100``) and its options."""

    label: str
    settings: dict[str, Any]
    options: ReplayOptions


def parse_matrix(specs: Sequence[str]) -> list[Axis]:
    """``KEY=V1,V2`` strings to typed axes; raises :class:`MatrixError` naming the spec.

    Keys are ReplayOptions field names, with ``-`` accepted for ``_``
    (``batch-size``). ``none`` (or ``null``) is the value None where the
    option allows it; booleans are ``true/false``, ``yes/no``, ``on/off``, ``1/0``.
    """
    hints = get_type_hints(ReplayOptions)
    names = [f.name for f in fields(ReplayOptions)]
    axes: list[Axis] = []
    for spec in specs:
        raw_key, sep, raw_values = spec.partition("=")
        key = raw_key.strip().replace("-", "_")
        where = f"--matrix {spec}"
        if not sep or not key or not raw_values.strip():
            raise MatrixError("expected KEY=V1,V2,...", location=where)
        if key not in hints:
            raise MatrixError(
                f"unknown key {raw_key.strip()!r}",
                location=where,
                hint="keys are replay options: "
                + ", ".join(n for n in names if n not in NOT_VARIABLE),
            )
        if key in NOT_VARIABLE:
            raise MatrixError(f"{key} cannot be varied: {NOT_VARIABLE[key]}", location=where)
        if any(axis.key == key for axis in axes):
            raise MatrixError(f"{key} is given twice", location=where, hint="list every value once")
        values = tuple(_convert(v.strip(), hints[key], where) for v in raw_values.split(","))
        if len(set(map(repr, values))) != len(values):
            raise MatrixError("a value is repeated", location=where)
        axes.append(Axis(key, values))
    return axes


def _convert(raw: str, hint: Any, where: str) -> Any:
    """One value to the field's type (``int``, ``float``, ``bool``, ``str``, a Literal, optional)."""
    args = get_args(hint)
    if get_origin(hint) in (Union, types.UnionType) and type(None) in args:
        if raw.lower() in ("none", "null"):
            return None
        (hint,) = [a for a in args if a is not type(None)]
    if get_origin(hint) is Literal:
        choices = get_args(hint)
        if raw.lower() not in choices:
            raise MatrixError(f"{raw!r} is not one of {', '.join(choices)}", location=where)
        return raw.lower()
    if hint is bool:
        if raw.lower() in _TRUE | _FALSE:
            return raw.lower() in _TRUE
        raise MatrixError(f"{raw!r} is not a boolean (true or false)", location=where)
    try:
        if hint is int:
            return int(raw)
        if hint is float:
            return float(raw)
    except ValueError:
        kind = "an integer" if hint is int else "a number"
        raise MatrixError(f"{raw!r} is not {kind}", location=where) from None
    if hint is str:
        return raw
    raise MatrixError(f"values of type {hint} cannot be varied", location=where)


def expand(base: ReplayOptions, axes: Sequence[Axis]) -> list[Combination]:
    """Every combination of the axes' values over ``base``, the first axis varying slowest.

    Each combination is validated as a ReplayOptions (``batch_size=0`` or an
    executor that is not available is a :class:`MatrixError`).
    """
    combinations = []
    for values in itertools.product(*(axis.values for axis in axes)):
        settings = {axis.key: value for axis, value in zip(axes, values, strict=True)}
        try:
            options = replace(base, **settings)
        except ReplayError as err:
            label = _label(settings)
            raise MatrixError(
                f"{label}: {err.message}", location=f"--matrix ({err.location})", hint=err.hint
            ) from None
        combinations.append(Combination(_label(settings) or "as given", settings, options))
    return combinations


def _label(settings: dict[str, Any]) -> str:
    return " ".join(f"{key}={_text(value)}" for key, value in settings.items())


def _text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def schedule(combinations: int, repeat: int) -> list[tuple[int, int]]:
    """``(repetition, combination)`` pairs in run order: one round per repetition, every
    other round reversed."""
    forward = list(range(combinations))
    return [(r, c) for r in range(repeat) for c in (forward if r % 2 == 0 else forward[::-1])]


@dataclass(frozen=True, slots=True)
class Summary:
    """One metric over the repetitions: median, extremes, and spread in % of the median."""

    median: float
    low: float
    high: float

    @property
    def spread_percent(self) -> float:
        return (self.high - self.low) / self.median * 100 if self.median else 0.0

    def to_json(self) -> dict[str, float]:
        return {
            "median": self.median,
            "min": self.low,
            "max": self.high,
            "spread_percent": round(self.spread_percent, 3),
        }


def summarise(values: Sequence[float]) -> Summary:
    return Summary(statistics.median(values), min(values), max(values))


def run_metrics(run: Run) -> dict[str, float]:
    """The values :data:`METRICS` names, from one run's totals."""
    lat = run.totals.latency_us
    return {
        "entries_per_s": run.totals.entries_per_s,
        "latency_p50_us": lat.p50,
        "latency_p90_us": lat.p90,
        "latency_p99_us": lat.p99,
        "latency_max_us": lat.max,
    }


@dataclass(slots=True)
class Result:
    """A combination's runs (in order) and their summaries."""

    combination: Combination
    runs: list[Run] = field(default_factory=list)

    def summary(self, metric: str) -> Summary:
        return summarise([run_metrics(run)[metric] for run in self.runs])

    def median_run(self) -> Run:
        """The run whose throughput is the median (the lower middle for an even count)."""
        ranked = sorted(self.runs, key=lambda run: run.totals.entries_per_s)
        return ranked[(len(ranked) - 1) // 2]


@dataclass(slots=True)
class Bench:
    """Every combination's result, in matrix order; the first is the baseline."""

    axes: list[Axis]
    repeat: int
    results: list[Result]
    capacity: list[float] = field(default_factory=list)
    """The machine's capacity measured before each repetition (empty without processes)."""
    capacity_processes: int = 0

    @property
    def baseline(self) -> Result:
        return self.results[0]

    def ratio(self, result: Result, metric: str) -> float | None:
        """``result``'s median over the baseline's (None when the baseline's is 0)."""
        base = self.baseline.summary(metric).median
        return result.summary(metric).median / base if base else None

    def verdict(self, result: Result) -> str:
        """One line judging ``result`` against the baseline on throughput and p99 latency."""
        base = self.baseline
        mine, theirs = result.summary("entries_per_s"), base.summary("entries_per_s")
        ratio = self.ratio(result, "entries_per_s")
        p99 = self.ratio(result, "latency_p99_us")
        head = f"{result.combination.label} vs {base.combination.label}: "
        if ratio is None:
            return head + "the baseline measured no throughput"
        numbers = f"{ratio:.2f}x the throughput" + (f", {p99:.2f}x the p99 latency" if p99 else "")
        if self.repeat < MIN_REPEAT_FOR_NOISE:
            judged = f"cannot tell from noise with {self.repeat} run(s): use --repeat 3 or more"
        elif mine.low <= theirs.high and theirs.low <= mine.high:
            judged = "within noise (the ranges over the runs overlap)"
        elif abs(ratio - 1) < NOISE_FLOOR:
            judged = f"within noise (less than {NOISE_FLOOR:.0%} apart)"
        else:
            judged = "faster" if ratio > 1 else "slower"
        verdict = f"{head}{numbers}: {judged}"
        if self.capacity and result.combination.options.executor == "processes":
            capacity = statistics.median(self.capacity)
            verdict += (
                f"; machine capacity {capacity:.2f}x ({self.capacity_processes} CPU-bound "
                f"processes vs 1, median over the repetitions), so {ratio / capacity:.0%} of it"
            )
        return verdict

    def to_json(self) -> dict[str, Any]:
        """The report's ``bench`` section."""
        return {
            "repeat": self.repeat,
            "order": "interleaved: every combination once per repetition, every other one reversed",
            "matrix": {axis.key: list(axis.values) for axis in self.axes},
            "baseline": self.baseline.combination.label,
            "capacity": self._capacity_json(),
            "combinations": [
                {
                    "label": r.combination.label,
                    "settings": r.combination.settings,
                    "runs": [run_metrics(run) for run in r.runs],
                    "summary": {m: r.summary(m).to_json() for m in METRICS},
                    "ratio": {
                        "entries_per_s": self.ratio(r, "entries_per_s"),
                        "latency_p99_us": self.ratio(r, "latency_p99_us"),
                    },
                    "verdict": None if r is self.baseline else self.verdict(r),
                }
                for r in self.results
            ],
        }

    def _capacity_json(self) -> dict[str, Any] | None:
        if not self.capacity:
            return None
        return {
            "processes": self.capacity_processes,
            "runs": self.capacity,
            "median": statistics.median(self.capacity),
        }


Runner = Callable[[ReplayOptions], Run]
"""Replays the workload once with the given options (raising as ``replay`` does)."""


def run_bench(
    combinations: Sequence[Combination],
    repeat: int,
    runner: Runner,
    *,
    axes: Sequence[Axis] = (),
    on_run: Callable[[int, int, Combination], None] | None = None,
    capacity: Callable[[int], float] | None = None,
) -> Bench:
    """Run every combination ``repeat`` times, interleaved; ``on_run`` hears each start.

    When a combination uses the process executor, ``capacity`` (default
    :func:`measure_capacity`) is called with the largest worker count before
    each repetition.
    """
    if repeat < 1:
        raise MatrixError(f"must be at least 1, got {repeat}", location="--repeat")
    results = [Result(c) for c in combinations]
    parallel = [c.options for c in combinations if c.options.executor == "processes"]
    processes = max((o.workers or default_workers() for o in parallel), default=0)
    probe = capacity or measure_capacity
    bench = Bench(list(axes), repeat, results, capacity_processes=processes)
    for done, (repetition, index) in enumerate(schedule(len(combinations), repeat)):
        if processes and index == 0:
            bench.capacity.append(probe(processes))
        if on_run is not None:
            on_run(done, repetition, combinations[index])
        results[index].runs.append(runner(combinations[index].options))
    return bench


def measure_capacity(processes: int, *, work: int = CAPACITY_WORK) -> float:
    """What ``processes`` CPU-bound Python processes achieve together, in units of one alone.

    Each probe process spins the same pure-Python loop; their rates (work per
    second) are summed when they run at once and divided by the rate of one
    running alone. An idle machine with enough cores gives about
    ``processes``; a busy one less.
    """
    (alone,) = _spin_together(1, work)
    return sum(alone / seconds for seconds in _spin_together(processes, work))


def _spin_together(processes: int, work: int) -> list[float]:
    """Seconds each of ``processes`` spinning processes took, started at the same moment."""
    ctx: Any = multiprocessing.get_context("spawn")
    start = ctx.Barrier(processes + 1)
    results = ctx.SimpleQueue()
    children = [ctx.Process(target=_spin, args=(start, results, work)) for _ in range(processes)]
    for child in children:
        child.start()
    start.wait()  # every child is loaded: the loops start together
    times = [results.get() for _ in children]
    for child in children:
        child.join()
    return times


def _spin(start: Any, results: Any, work: int) -> None:
    start.wait()
    began = time.perf_counter()
    total = 0
    for i in range(work):
        total += i & 7
    results.put(max(time.perf_counter() - began, 1e-9))


def render_markdown(bench: Bench) -> str:
    """The bench table and verdicts as Markdown (for ``--markdown``)."""
    out = [f"## ssp bench: {len(bench.results)} combinations x {bench.repeat} runs", ""]
    out.append(
        "| combination | entries/s (median) | spread | ratio | p50 µs | p99 µs | p99 ratio |"
    )
    out.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in table_rows(bench):
        out.append("| " + " | ".join(cell(c) for c in row) + " |")
    out.append("")
    out += [f"- {_inline(bench.verdict(r))}" for r in bench.results[1:]]
    return "\n".join(out) + "\n\n"


def _inline(text: str) -> str:
    """Text safe in a Markdown list item (not clipped, unlike a table cell)."""
    text = escape_control(text)
    for raw, safe in (("\\", "\\\\"), ("<", "&lt;"), (">", "&gt;"), ("`", "\\`")):
        text = text.replace(raw, safe)
    return text


def table_rows(bench: Bench) -> list[tuple[str, ...]]:
    """One row of formatted cells per combination (shared by the terminal and Markdown)."""
    rows: list[tuple[str, ...]] = []
    for r in bench.results:
        tput = r.summary("entries_per_s")
        ratio, p99_ratio = bench.ratio(r, "entries_per_s"), bench.ratio(r, "latency_p99_us")
        rows.append(
            (
                r.combination.label,
                f"{tput.median:,.0f}",
                f"±{tput.spread_percent / 2:.1f}%",
                "-" if ratio is None else f"{ratio:.2f}x",
                f"{r.summary('latency_p50_us').median:,.1f}",
                f"{r.summary('latency_p99_us').median:,.1f}",
                "-" if p99_ratio is None else f"{p99_ratio:.2f}x",
            )
        )
    return rows
