"""The :class:`Run`: everything one replay recorded, in the shape of the JSON report.

A replay produces one ``Run``; the JSON report, the Markdown summary and the
terminal tables are renderers of it, and ``ssp report RUN.json`` reads one back
with :meth:`Run.from_json` (record once, render many). The field layout mirrors
SPEC section 6 one to one, so ``to_json`` is a plain walk and ``from_json`` its
inverse. Sections other commands add (``bench``, ``verification``,
``profile``) live in :attr:`Run.extra` and are written after the core keys.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..metrics import BatchStats

SCHEMA = "ssp.report/1"
STOP_REASONS = ("interrupted", "error", "max_entries")
MAX_REJECTED_LINES = 1000

_CORE_KEYS = frozenset(
    {
        "schema",
        "run",
        "initial",
        "totals",
        "batch_stats",
        "views",
        "operators",
        "errors",
        "completed",
        "stop_reason",
        "stopped_at",
        "error",
    }
)


class ReportFormatError(ValueError):
    """A JSON document that is not an ``ssp.report/1`` report."""


@dataclass(slots=True)
class RunInfo:
    """Who ran what, where and when: enough to reproduce or compare the run."""

    command: str
    argv: list[str]
    options: dict[str, Any]
    views_path: str | None
    log_path: str | None
    python: str
    platform: str
    started_at: str
    git_revision: str | None


@dataclass(slots=True)
class InitialLoad:
    """The ``--initial`` load, measured apart from the replay (not ingest calls)."""

    records: int
    load_s: float
    register_s: float


@dataclass(slots=True)
class Latency:
    """Per-ingest-call latency percentiles in microseconds."""

    p50: float = 0.0
    p90: float = 0.0
    p99: float = 0.0
    max: float = 0.0


@dataclass(slots=True)
class Totals:
    """Throughput and time split of the replay.

    ``read_s`` (reading and parsing the log) is kept apart from ``ingest_s``
    (the sum of the ingest calls' own durations), so ``entries_per_s`` measures
    the circuit, not the JSON parser.
    """

    entries: int = 0
    ingest_calls: int = 0
    wall_s: float = 0.0
    read_s: float = 0.0
    ingest_s: float = 0.0
    entries_per_s: float = 0.0
    latency_us: Latency = field(default_factory=Latency)


@dataclass(slots=True)
class Errors:
    """Input that was not applied as is: rejected lines and anomalies by kind."""

    rejected: int = 0
    rejected_lines: list[int] = field(default_factory=list)
    anomalies: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class StoppedAt:
    """Where a replay that did not read its log to the end stopped."""

    line: int
    entries: int


@dataclass(slots=True)
class RunError:
    """The error that stopped a run, as the terminal printed it (``error: LOCATION: message``
    and ``hint: ...``), so a report or a CI summary says why without the job's log."""

    message: str
    location: str | None = None
    hint: str | None = None

    def line(self) -> str:
        """``LOCATION: message``, the text after ``error: `` on the terminal."""
        return f"{self.location}: {self.message}" if self.location else self.message


@dataclass(slots=True)
class Run:
    """One recorded run (SPEC section 6)."""

    run: RunInfo
    totals: Totals = field(default_factory=Totals)
    batch_stats: BatchStats = field(default_factory=BatchStats)
    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    operators: list[dict[str, Any]] = field(default_factory=list)
    errors: Errors = field(default_factory=Errors)
    completed: bool = True
    stop_reason: str | None = None
    stopped_at: StoppedAt | None = None
    initial: InitialLoad | None = None
    error: RunError | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON-ready dict, core keys in SPEC order, then ``extra``."""
        doc: dict[str, Any] = {
            "schema": SCHEMA,
            "run": asdict(self.run),
            "initial": asdict(self.initial) if self.initial is not None else None,
            "totals": asdict(self.totals),
            "batch_stats": self.batch_stats.to_json(),
            "views": self.views,
            "operators": self.operators,
            "errors": asdict(self.errors),
            "completed": self.completed,
            "stop_reason": self.stop_reason,
            "stopped_at": asdict(self.stopped_at) if self.stopped_at is not None else None,
            "error": asdict(self.error) if self.error is not None else None,
        }
        for key, value in self.extra.items():
            doc.setdefault(key, value)
        return doc

    @classmethod
    def from_json(cls, doc: Any) -> Run:
        """Read a report back; raises :class:`ReportFormatError` on anything else."""
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
            found = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
            raise ReportFormatError(f"not an {SCHEMA} report (schema: {found!r})")
        try:
            totals = dict(doc["totals"])
            latency = Latency(**totals.pop("latency_us"))
            initial, stopped = doc.get("initial"), doc.get("stopped_at")
            error = doc.get("error")
            return cls(
                run=RunInfo(**doc["run"]),
                totals=Totals(**totals, latency_us=latency),
                batch_stats=BatchStats.from_json(doc["batch_stats"]),
                views=dict(doc["views"]),
                operators=list(doc["operators"]),
                errors=Errors(**doc["errors"]),
                completed=bool(doc["completed"]),
                stop_reason=doc["stop_reason"],
                stopped_at=StoppedAt(**stopped) if stopped is not None else None,
                initial=InitialLoad(**initial) if initial is not None else None,
                error=RunError(**error) if error is not None else None,
                extra={k: v for k, v in doc.items() if k not in _CORE_KEYS},
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ReportFormatError(f"malformed {SCHEMA} report: {err}") from err
