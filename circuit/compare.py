"""Compare two reports, and gate on throughput and p99 latency without crying wolf.

``ssp compare BASE.json NEW.json`` is a regression gate for CI. Each *gated*
metric (throughput ``totals.entries_per_s`` and p99 latency per ingest call
``totals.latency_us.p99`` by default; ``--metric NAME=PCT`` adds others or
sets their own limit) gets a :class:`Judgement`:

- when both reports carry repeated samples (``ssp bench --repeat N``
  reports, whose ``bench`` section keeps every run), a **regression** needs
  the samples to differ at 95% confidence by a two-sided Mann-Whitney U test
  (:mod:`circuit.stats`) *and* the medians to differ by more than the limit
  (default :data:`DEFAULT_MAX_REGRESSION_SAMPLED`); a difference beyond the
  limit that the test cannot confirm is **inconclusive**, never a failure;
- single runs (plain ``--report`` files) are judged by the limit alone
  (default :data:`DEFAULT_MAX_REGRESSION`, wide enough for shared runners,
  whose speed swings 10-50% between runs), and the judgement says so.

The :class:`Comparison`'s verdict is ``regression`` if any metric regressed,
else ``inconclusive`` if any could not be told, else ``improvement`` if any
improved, else ``pass``; ``decided_by`` names the judgements behind it.

Every other metric both reports hold is a :class:`Change`; :meth:`Comparison.shown`
keeps only those that changed beyond noise (a count that differs at all, a
time that moved by more than the limit and by more than 1% of the ingest
time), and views and operators with nothing shown are only counted.

Two reports that did not measure the same work cannot be compared: runs over
a different number of entries, runs stopped by an error or Ctrl-C, or a run
stopped by ``--max-entries`` against one that was not stopped at the same
entry raise :class:`ReportMismatch`. Differences that leave the comparison
meaningful (other options, other paths, views in only one report) become
:attr:`Comparison.notes`.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import CircuitError
from .report.run import Run
from .stats import mann_whitney_u, min_p_value

THROUGHPUT = "totals.entries_per_s"
P99 = "totals.latency_us.p99"
DEFAULT_MAX_REGRESSION = 25.0
"""Allowed regression in percent for single runs (no samples to measure the noise)."""
DEFAULT_MAX_REGRESSION_SAMPLED = 10.0
"""Allowed regression in percent when both sides carry repeated samples: the U test
already keeps noise out, the limit keeps out real but negligible changes."""
ALPHA = 0.05
"""The test's significance level: 95% confidence."""
TIME_SHARE = 0.01
"""A view's or operator's time change is shown only when it moved by more than this share
of the ingest time: a tiny view's time swings by large percentages."""

HIGHER_IS_BETTER = frozenset({THROUGHPUT})
"""Metrics where a larger value is an improvement; time metrics are the opposite."""

SECTIONS = ("totals", "initial", "batch_stats", "errors", "views")

ALIASES = {
    "throughput": THROUGHPUT,
    "entries_per_s": THROUGHPUT,
    "p50": "totals.latency_us.p50",
    "p90": "totals.latency_us.p90",
    "p99": P99,
    "max": "totals.latency_us.max",
}
"""Short names accepted by ``--metric`` (any dotted metric name is accepted too)."""

LABELS = {
    THROUGHPUT: "throughput",
    "totals.latency_us.p50": "p50 latency",
    "totals.latency_us.p90": "p90 latency",
    P99: "p99 latency",
    "totals.latency_us.max": "max latency",
}

SAMPLED = {
    THROUGHPUT: "entries_per_s",
    "totals.latency_us.p50": "latency_p50_us",
    "totals.latency_us.p90": "latency_p90_us",
    P99: "latency_p99_us",
    "totals.latency_us.max": "latency_max_us",
}
"""Gated metric -> its key in a bench report's per-run samples."""

OUTCOMES = ("pass", "improvement", "inconclusive", "regression")
"""From least to most severe: the verdict is the most severe judgement."""


class ReportMismatch(CircuitError):
    """Two reports that did not measure the same work (the location names the report)."""


def label(name: str) -> str:
    """``throughput``, ``p99 latency``, or the dotted name itself."""
    return LABELS.get(name, name)


def metric_name(name: str) -> str:
    """A ``--metric`` name (alias or dotted) as the dotted metric name."""
    return ALIASES.get(name.strip().lower(), name.strip())


@dataclass(frozen=True, slots=True)
class Change:
    """One metric in both reports. ``percent`` is None when the base is 0."""

    name: str
    base: float
    new: float
    percent: float | None
    better: str | None
    """``higher`` or ``lower`` for metrics with a direction, None for counts."""

    @property
    def verdict(self) -> str:
        """``better``, ``worse`` or ``""`` (no direction, or no change)."""
        if self.better is None or self.new == self.base:
            return ""
        improved = (self.new > self.base) == (self.better == "higher")
        return "better" if improved else "worse"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "base": self.base,
            "new": self.new,
            "percent": self.percent,
            "better": self.better,
            "verdict": self.verdict,
        }


@dataclass(frozen=True, slots=True)
class Judgement:
    """One gated metric judged: its medians, the test (if samples allowed one), the outcome."""

    name: str
    base: float
    new: float
    limit_percent: float
    better: str
    base_samples: tuple[float, ...] = ()
    new_samples: tuple[float, ...] = ()
    p_value: float | None = None
    outcome: str = "pass"
    rule: str = ""
    """Which test or rule decided, in words."""

    @property
    def percent(self) -> float | None:
        return None if self.base == 0 else (self.new - self.base) / abs(self.base) * 100

    @property
    def regression_percent(self) -> float:
        """How much worse NEW is, in percent of BASE (negative when it improved)."""
        percent = self.percent or 0.0
        return -percent if self.better == "higher" else percent

    @property
    def passed(self) -> bool:
        return self.outcome != "regression"

    @property
    def sampled(self) -> bool:
        return bool(self.base_samples) and bool(self.new_samples)

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.name,
            "label": label(self.name),
            "base": self.base,
            "new": self.new,
            "percent": None if self.percent is None else round(self.percent, 3),
            "limit_percent": self.limit_percent,
            "better": self.better,
            "outcome": self.outcome,
            "test": "mann-whitney-u" if self.sampled else "threshold",
            "p_value": None if self.p_value is None else round(self.p_value, 6),
            "alpha": ALPHA if self.sampled else None,
            "runs": [len(self.base_samples) or 1, len(self.new_samples) or 1],
            "rule": self.rule,
        }


Gate = Judgement
"""The former name of a gated metric's judgement."""


@dataclass(slots=True)
class Comparison:
    """Every shared metric's change, the judgements of the gated ones, notes."""

    changes: list[Change]
    judgements: list[Judgement]
    notes: list[str] = field(default_factory=list)
    ingest_ns: float = 0.0
    """The base's ingest time (ns): the scale below which a view's time change is noise."""
    view_names: list[str] = field(default_factory=list)

    def owner(self, change: Change) -> str | None:
        """The view a ``views.V.x`` or ``operators[V;...].x`` metric belongs to (view names
        may hold dots and semicolons, so they are matched, longest first)."""
        for prefix, stop in (("views.", "."), ("operators[", ";")):
            if change.name.startswith(prefix):
                rest = change.name[len(prefix) :]
                for view in sorted(self.view_names, key=len, reverse=True):
                    if rest.startswith(view + stop):
                        return view
                return rest.split(stop, 1)[0]
        return None

    @property
    def gates(self) -> list[Judgement]:
        return self.judgements

    @property
    def passed(self) -> bool:
        return all(j.passed for j in self.judgements)

    @property
    def verdict(self) -> str:
        """``pass``, ``improvement``, ``inconclusive`` or ``regression`` (the most severe)."""
        return max((j.outcome for j in self.judgements), key=OUTCOMES.index, default="pass")

    @property
    def decided_by(self) -> list[Judgement]:
        """The judgements whose outcome is the verdict."""
        return [j for j in self.judgements if j.outcome == self.verdict]

    def limit_for(self, name: str) -> float:
        for j in self.judgements:
            if j.name == name:
                return j.limit_percent
        return max((j.limit_percent for j in self.judgements), default=DEFAULT_MAX_REGRESSION)

    def beyond_noise(self, change: Change) -> bool:
        """Whether a change is worth a line: a count that differs, a time that moved."""
        if change.new == change.base:
            return False
        if change.better is None:
            return True  # counts are deterministic: any difference is real
        if change.percent is not None and abs(change.percent) <= self.limit_for(change.name):
            return False
        if self.owner(change) is not None and "_ns" in change.name.rsplit(".", 1)[-1]:
            return abs(change.new - change.base) > TIME_SHARE * self.ingest_ns
        return True

    def shown(self) -> list[Change]:
        """The changes beyond noise, gated metrics excluded (their judgements say it)."""
        gated = {j.name for j in self.judgements}
        return [c for c in self.changes if c.name not in gated and self.beyond_noise(c)]

    def unchanged(self) -> tuple[list[str], int]:
        """Views none of whose metrics changed beyond noise, and how many operators."""
        shown_owners = {self.owner(c) for c in self.shown()}
        views: list[str] = []
        operators: set[str] = set()
        for c in self.changes:
            owner = self.owner(c)
            if owner is None or owner in shown_owners:
                continue
            if c.name.startswith("views.") and owner not in views:
                views.append(owner)
            elif c.name.startswith("operators["):
                operators.add(c.name.rsplit("].", 1)[0])
        return views, len(operators)

    def to_json(self, base: str, new: str) -> dict[str, Any]:
        """The machine-readable verdict (``ssp compare --format json``, a ``verdict`` section)."""
        views, operators = self.unchanged()
        return {
            "verdict": self.verdict,
            "passed": self.passed,
            "decided_by": [j.name for j in self.decided_by],
            "base": base,
            "new": new,
            "metrics": [j.to_json() for j in self.judgements],
            "changes": [c.to_json() for c in self.shown()],
            "unchanged": {"views": len(views), "operators": operators},
            "notes": self.notes,
        }


def parse_metric_limits(specs: Sequence[str]) -> dict[str, float]:
    """``NAME=PCT`` strings (``p99=40``, ``totals.wall_s=50``) to dotted name -> percent."""
    limits: dict[str, float] = {}
    for spec in specs:
        raw, sep, value = spec.partition("=")
        try:
            percent = float(value)
        except ValueError:
            percent = -1.0
        if not sep or not raw.strip() or not percent >= 0:
            raise CircuitError(
                f"expected NAME=PCT with PCT >= 0, got {spec!r}",
                location="--metric",
                hint="e.g. --metric p99=40 --metric throughput=10",
            )
        limits[metric_name(raw)] = percent
    return limits


def samples(run: Run) -> dict[str, list[float]]:
    """The per-run samples of a bench report's baseline combination, by gated metric name.

    Empty for a plain replay report (one run: no spread to test against).
    """
    bench = run.extra.get("bench")
    if not isinstance(bench, dict) or not bench.get("combinations"):
        return {}
    runs = bench["combinations"][0].get("runs") or []
    if len(runs) < 2:
        return {}
    out: dict[str, list[float]] = {}
    for name, key in SAMPLED.items():
        values = [float(r[key]) for r in runs if isinstance(r, dict) and key in r]
        if len(values) == len(runs):
            out[name] = values
    return out


def compare_runs(
    base: Run,
    new: Run,
    *,
    max_regression: float | None = None,
    metrics: dict[str, float] | None = None,
    base_name: str = "BASE",
    new_name: str = "NEW",
) -> Comparison:
    """Compare ``new`` against ``base``; raises :class:`ReportMismatch` when they cannot be.

    ``max_regression`` (percent) is the limit of the default gates (throughput,
    p99); None picks :data:`DEFAULT_MAX_REGRESSION` or, when both sides carry
    samples, :data:`DEFAULT_MAX_REGRESSION_SAMPLED`. ``metrics`` maps more
    metrics (or the same) to their own limits. ``base_name`` and ``new_name``
    (the files' paths) locate errors and notes.
    """
    _check_comparable(base, new, base_name, new_name)
    base_metrics, new_metrics = dict(flatten(base)), dict(flatten(new))
    changes = [
        _change(name, value, new_metrics[name])
        for name, value in base_metrics.items()
        if name in new_metrics
    ]
    base_samples, new_samples = samples(base), samples(new)
    both = bool(base_samples) and bool(new_samples)
    default = max_regression
    if default is None:
        default = DEFAULT_MAX_REGRESSION_SAMPLED if both else DEFAULT_MAX_REGRESSION
    limits = {THROUGHPUT: default, P99: default, **(metrics or {})}
    judgements = []
    for name, limit in limits.items():
        if name not in base_metrics or name not in new_metrics:
            raise ReportMismatch(
                f"no metric {name!r} in both reports",
                location="--metric",
                hint="use throughput, p50, p90, p99, max or a dotted name such as "
                "views.NAME.time_ns",
            )
        pair = (base_samples.get(name, []), new_samples.get(name, [])) if both else ([], [])
        judgements.append(judge(name, base_metrics[name], new_metrics[name], limit, *pair))
    notes = _notes(base, new, base_name, new_name)
    if bool(base_samples) != bool(new_samples):
        single = new_name if base_samples else base_name
        notes.append(f"{single} holds a single run: judged by the thresholds alone")
    return Comparison(
        changes,
        judgements,
        notes,
        ingest_ns=base.totals.ingest_s * 1e9,
        view_names=[v for v in base.views if v in new.views],
    )


def judge(
    name: str,
    base: float,
    new: float,
    limit: float,
    base_samples: Sequence[float] = (),
    new_samples: Sequence[float] = (),
) -> Judgement:
    """Judge one metric: by the U test and the limit with samples, else by the limit alone."""
    better = "higher" if name in HIGHER_IS_BETTER else "lower"
    sampled = len(base_samples) >= 2 and len(new_samples) >= 2
    if sampled:
        base, new = statistics.median(base_samples), statistics.median(new_samples)
    draft = Judgement(name, base, new, limit, better)
    worse = draft.regression_percent
    size = f"{abs(worse):.1f}% {'worse' if worse > 0 else 'better'}"
    beyond = abs(worse) > limit
    direction = "regression" if worse > 0 else "improvement"
    p_value = None
    if not sampled:
        if beyond:
            outcome = direction
            rule = f"threshold alone (single runs): {size}, limit {limit:g}%"
        else:
            outcome = "pass"
            rule = f"threshold alone (single runs): {size}, within {limit:g}%"
    else:
        n1, n2 = len(base_samples), len(new_samples)
        test = mann_whitney_u(list(new_samples), list(base_samples))
        p_value = test.p_value
        runs = f"{n2} vs {n1} runs"
        significant = p_value < ALPHA
        if significant and beyond:
            outcome = direction
            rule = (
                f"Mann-Whitney U over {runs}: p={p_value:.4f} < {ALPHA:g}, "
                f"and the medians are {size}, beyond {limit:g}%"
            )
        elif significant:
            outcome = "pass"
            rule = (
                f"Mann-Whitney U over {runs}: p={p_value:.4f}, a real difference, but "
                f"{size} is within {limit:g}%"
            )
        elif beyond:
            outcome = "inconclusive"
            reach = min_p_value(n1, n2)
            why = (
                f"{runs} can never reach p < {ALPHA:g} (at best {reach:.3f}): use --repeat 5"
                if reach >= ALPHA
                else f"p={p_value:.4f} >= {ALPHA:g}: the samples overlap"
            )
            rule = f"Mann-Whitney U: medians {size}, beyond {limit:g}%, but {why}"
        else:
            outcome = "pass"
            rule = f"Mann-Whitney U over {runs}: p={p_value:.4f}, {size}, within {limit:g}%"
    return Judgement(
        name,
        base,
        new,
        limit,
        better,
        tuple(base_samples) if sampled else (),
        tuple(new_samples) if sampled else (),
        p_value,
        outcome,
        rule,
    )


def _check_comparable(base: Run, new: Run, base_name: str, new_name: str) -> None:
    for run, name in ((base, base_name), (new, new_name)):
        if not run.completed and run.stop_reason != "max_entries":
            raise ReportMismatch(
                f"the run stopped early ({run.stop_reason}): its numbers cover part of the log",
                location=name,
                hint="compare reports of runs that completed",
            )
        if run.totals.ingest_calls == 0:
            raise ReportMismatch("the run made no ingest calls: nothing to compare", location=name)
    capped = [r.stop_reason == "max_entries" for r in (base, new)]
    if any(capped):
        b, n = base.stopped_at, new.stopped_at
        if not all(capped) or b is None or n is None or (b.line, b.entries) != (n.line, n.entries):
            where = {
                False: "read the whole log",
                True: "stopped by --max-entries",
            }
            raise ReportMismatch(
                f"the run {where[capped[1]]}"
                + (f" at line {n.line}" if capped[1] and n is not None else "")
                + f" but {base_name} {where[capped[0]]}"
                + (f" at line {b.line}" if capped[0] and b is not None else "")
                + ": the reports measure different work",
                location=new_name,
                hint="give both runs the same --max-entries",
            )
    if base.totals.entries != new.totals.entries:
        raise ReportMismatch(
            f"replayed {new.totals.entries:,} entries but {base_name} replayed "
            f"{base.totals.entries:,}: the reports measure different work",
            location=new_name,
            hint="compare reports of the same views and log",
        )


def flatten(run: Run) -> Iterator[tuple[str, float]]:
    """Every numeric metric of a report as ``(dotted.name, value)``, in report order.

    Operators are keyed by their path (``operators[VIEW;join].self_ns``);
    booleans, strings and lists (rejected line numbers) are not metrics.
    """
    doc = run.to_json()
    for section in SECTIONS:
        if doc.get(section) is not None:
            yield from _leaves(section, doc[section])
    for op in doc["operators"]:
        yield from _leaves(f"operators[{op['path']}]", op)


def _leaves(prefix: str, value: Any) -> Iterator[tuple[str, float]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(f"{prefix}.{key}", item)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield prefix, value


def _direction(name: str) -> str | None:
    if name in HIGHER_IS_BETTER:
        return "higher"
    last = name.rsplit(".", 1)[-1]
    if ".latency_us." in name or last.endswith("_s") or "_ns" in last:
        return "lower"
    return None


def _change(name: str, base: float, new: float) -> Change:
    percent = None if base == 0 else (new - base) / abs(base) * 100
    return Change(name, base, new, percent, _direction(name))


def _notes(base: Run, new: Run, base_name: str, new_name: str) -> list[str]:
    """What differs between the runs without making the comparison meaningless."""
    notes = []
    options = [
        f"{key} {base.run.options.get(key)!r} -> {new.run.options.get(key)!r}"
        for key in sorted(set(base.run.options) | set(new.run.options))
        if base.run.options.get(key) != new.run.options.get(key)
    ]
    if options:
        notes.append("the runs used different options: " + ", ".join(options))
    for what in ("views_path", "log_path"):
        a, b = getattr(base.run, what), getattr(new.run, what)
        if a != b:
            notes.append(f"{what}: {a} in {base_name}, {b} in {new_name}")
    only_base = sorted(set(base.views) - set(new.views))
    only_new = sorted(set(new.views) - set(base.views))
    if only_base:
        notes.append(f"views only in {base_name}: {', '.join(only_base)}")
    if only_new:
        notes.append(f"views only in {new_name}: {', '.join(only_new)}")
    return notes
