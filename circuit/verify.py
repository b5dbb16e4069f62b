"""``ssp verify``: replay a log and check every view against an independent oracle.

The replay is the ordinary one (:class:`~circuit.replay.Replayer`, so the
modes, triggers and options are exactly those of ``ssp replay``); what is
added is a circuit that checks itself: after every ``every``-th ingest call,
after each registration, and at the end, each registered view's rows
(``Circuit.rows``) are compared with the oracle's evaluation of the same SQL
over ``Circuit.tables()``.

The first mismatch stops the replay. The result then names the view, the
``seq`` of the ingest call and the log line it ended at, carries the diff,
and (with ``repro_dir``) a minimal reproduction is written: ``views.sql``
with that view alone (when it came from the views file), ``log.jsonl`` with
the log prefix up to the failing entry (``REGISTER``/``UNREGISTER`` entries
of other views dropped), and ``repro.json`` with the command line to re-run
it and the diff.

A view the oracle cannot evaluate is counted as skipped, with the reason,
never as passed.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable, Mapping
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
from sqlglot import exp

from .circuit import Circuit
from .errors import CircuitError, ReplayError, VerificationError
from .executors import ProcessExecutor, WorkerPool, default_workers
from .mutations import Mutation
from .oracle import Oracle, RowDiff, Rows, diff_rows, get_oracle
from .oracle.base import Snapshot
from .replay import ProgressSink, Replayer, ReplayInterrupted, ReplayOptions, RunFailed
from .report.run import Run
from .sql.parse import ViewDefinition, load_views
from .updates import FLAT, BatchResult, ViewUpdate

MAX_SKIP_REASONS = 5
"""Distinct skip reasons kept per view (a data-dependent skip can vary)."""


@dataclass(slots=True)
class ViewChecks:
    """How often one view was checked: passed, or skipped with the reasons."""

    passed: int = 0
    skipped: int = 0
    skip_reasons: list[str] = field(default_factory=list)

    def skip(self, reason: str) -> None:
        self.skipped += 1
        if reason not in self.skip_reasons and len(self.skip_reasons) < MAX_SKIP_REASONS:
            self.skip_reasons.append(reason)

    def to_json(self) -> dict[str, Any]:
        return {"passed": self.passed, "skipped": self.skipped, "skip_reasons": self.skip_reasons}


@dataclass(frozen=True, slots=True)
class Mismatch:
    """The first view whose rows differed from the oracle's."""

    view: str
    seq: int
    line: int
    entries: int
    diff: RowDiff
    sql: str
    repro: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "view": self.view,
            "seq": self.seq,
            "line": self.line,
            "entries": self.entries,
            "only_ssp": self.diff.only_ssp,
            "only_oracle": self.diff.only_oracle,
            "order": list(self.diff.order) if self.diff.order is not None else None,
            "repro": self.repro,
        }


class MismatchError(VerificationError):
    """Raised inside the replay to stop it at the first mismatch."""

    def __init__(self, mismatch: Mismatch, *, location: str):
        super().__init__(
            f"view {mismatch.view}: rows differ from the oracle after ingest call "
            f"seq {mismatch.seq}",
            location=location,
        )
        self.mismatch = mismatch


@dataclass(slots=True)
class VerificationResult:
    """What ``verify`` found: per-view counts, the first mismatch, and the run.

    ``failure`` is an error that stopped the replay other than a mismatch (a
    bad log line, an unsupported view); ``interrupted`` is Ctrl-C. ``run`` is
    the replay's record (the report), whichever way it ended.
    """

    oracle: str
    every: int
    run: Run
    views: dict[str, ViewChecks] = field(default_factory=dict)
    checkpoints: int = 0
    mismatch: Mismatch | None = None
    failure: CircuitError | None = None
    interrupted: bool = False

    @property
    def passed(self) -> int:
        return sum(checks.passed for checks in self.views.values())

    @property
    def skipped(self) -> int:
        return sum(checks.skipped for checks in self.views.values())

    @property
    def ok(self) -> bool:
        """No mismatch, no failure, not interrupted (skipped checks do not fail it)."""
        return self.mismatch is None and self.failure is None and not self.interrupted

    def to_json(self) -> dict[str, Any]:
        """The report's ``verification`` section."""
        return {
            "oracle": self.oracle,
            "every": self.every,
            "checkpoints": self.checkpoints,
            "passed": self.passed,
            "skipped": self.skipped,
            "ok": self.ok,
            "views": {name: checks.to_json() for name, checks in self.views.items()},
            "mismatch": self.mismatch.to_json() if self.mismatch is not None else None,
        }


class _Checker:
    """Compares the circuit's views with the oracle; owned by one verification."""

    def __init__(self, oracle: Oracle, every: int, result: VerificationResult) -> None:
        self.oracle = oracle
        self.every = every
        self.result = result
        self.definitions: dict[str, tuple[str, Mapping[str, Any]]] = {}
        self.calls = 0
        self.checked_call = -1
        self.replayer: Replayer | None = None
        # an oracle of one state (PostgreSQL's tables after a recording) checks at the end only
        self.final_only = bool(getattr(oracle, "final_only", False))
        self.at_final = False

    def check(self, circuit: Circuit, names: Iterable[str]) -> None:
        """Compare ``names`` now; raise :class:`MismatchError` at the first difference."""
        if self.final_only and not self.at_final:
            return
        self.result.checkpoints += 1
        with closing(self.oracle.snapshot(circuit.tables())) as snapshot:
            for name in names:
                self._check_view(circuit, snapshot, name)

    def _check_view(self, circuit: Circuit, snapshot: Snapshot, name: str) -> None:
        sql, params = self.definitions[name]
        checks = self.result.views.setdefault(name, ViewChecks())
        answer = snapshot.evaluate(sql, params)
        if not isinstance(answer, Rows):
            checks.skip(answer.reason)
            return
        diff = diff_rows(circuit.rows(name), answer.rows, ordered=answer.ordered)
        if diff is None:
            checks.passed += 1
            return
        line = self.replayer.line if self.replayer is not None else 0
        entries = self.replayer.entries if self.replayer is not None else 0
        mismatch = Mismatch(name, circuit.seq, line, entries, diff, sql)
        log = self.replayer.log_path if self.replayer is not None else None
        raise MismatchError(mismatch, location=f"{log or '<log>'}:{line}")

    def after_call(self, circuit: Circuit) -> None:
        names = circuit.view_names()
        if not names:
            return
        self.calls += 1
        if self.calls % self.every == 0:
            self.checked_call = self.calls
            self.check(circuit, names)

    def at_end(self, circuit: Circuit) -> None:
        self.at_final = True
        if self.final_only or self.checked_call != self.calls or self.calls == 0:
            self.check(circuit, circuit.view_names())


class _CheckedCircuit(Circuit):
    """A circuit that runs the checker after each outermost ingest call and registration.

    Only the public API is overridden; a depth counter keeps an ingest call
    that the circuit makes internally (a flush inside ``ingest_deferred``)
    from being checked twice.
    """

    checker: _Checker
    _depth: int = 0

    def register_view(
        self,
        name: str,
        sql: str,
        params: Mapping[str, Any] | None = None,
        format: str = "streaming",
        *,
        path: str | None = None,
    ) -> ViewUpdate | None:
        update = super().register_view(name, sql, params, format, path=path)
        self.checker.definitions[name] = (sql, dict(params or {}))
        self.checker.check(self, [name])
        return update

    def ingest_single(self, m: Mutation) -> list[ViewUpdate]:
        self._depth += 1
        try:
            updates = super().ingest_single(m)
        finally:
            self._depth -= 1
        if not self._depth:
            self.checker.after_call(self)
        return updates

    def ingest_batch(self, ms: Iterable[Mutation]) -> BatchResult:
        self._depth += 1
        try:
            result = super().ingest_batch(ms)
        finally:
            self._depth -= 1
        if not self._depth:
            self.checker.after_call(self)
        return result

    def ingest_deferred(self, ms: Iterable[Mutation]) -> BatchResult | None:
        self._depth += 1
        try:
            result = super().ingest_deferred(ms)
        finally:
            self._depth -= 1
        if result is not None and not self._depth:
            self.checker.after_call(self)
        return result

    def flush(self) -> BatchResult:
        self._depth += 1
        try:
            result = super().flush()
        finally:
            self._depth -= 1
        if not self._depth:
            self.checker.after_call(self)
        return result


def verify(
    views_path: str | os.PathLike[str],
    log_path: str | os.PathLike[str],
    options: ReplayOptions | None = None,
    *,
    oracle: str = "sqlite",
    dsn: str | None = None,
    every: int = 1,
    repro_dir: str | os.PathLike[str] | None = None,
    argv: list[str] | None = None,
    progress: ProgressSink | None = None,
) -> VerificationResult:
    """Replay ``log_path`` through ``views_path`` and check the views (module docstring).

    Errors that stop the replay (a bad log line, an unsupported view) come
    back in ``result.failure``, Ctrl-C as ``result.interrupted``, so the
    caller can still write the report from ``result.run``.
    """
    if every < 1:
        raise ReplayError(f"must be at least 1, got {every}", location="--every")
    options = options or ReplayOptions()
    checker_oracle = get_oracle(oracle, dialect=options.dialect, dsn=dsn)
    executor = None
    if options.executor == "processes":
        pool = WorkerPool(options.workers or default_workers())
        executor = ProcessExecutor(pool, threshold=options.parallel_threshold, owns_pool=True)
    circuit = _CheckedCircuit(
        strict=options.strict,
        coalesce=options.coalesce,
        pending_limit=options.pending_limit,
        dialect=options.dialect,
        executor=executor,
    )
    replayer = Replayer(
        views_path,
        log_path,
        options,
        command="verify",
        argv=argv,
        circuit=circuit,
        progress=progress,
    )
    replayer.executor = executor  # the replayer starts, syncs and stops it as its own
    result = VerificationResult(oracle, every, Run(run=replayer.info))
    checker = _Checker(checker_oracle, every, result)
    checker.replayer = replayer
    circuit.checker = checker
    views: list[ViewDefinition] | None = None
    try:
        views = load_views(os.fspath(views_path), dialect=options.dialect)
        result.run = replayer.run(views=views)
        checker.at_end(circuit)
    except RunFailed as err:
        result.run = err.run
        if isinstance(err.cause, MismatchError):
            result.mismatch = err.cause.mismatch
        else:
            result.failure = err.cause
    except MismatchError as err:
        result.mismatch = err.mismatch
    except ReplayInterrupted as err:
        result.run, result.interrupted = err.run, True
    except CircuitError as err:
        result.failure = err
    closer = getattr(checker_oracle, "close", None)
    if closer is not None:
        closer()
    if result.mismatch is not None and repro_dir is not None:
        path = write_repro(
            repro_dir, result.mismatch, views or [], log_path, options, oracle=oracle
        )
        result.mismatch = replace(result.mismatch, repro=path)
    result.run.extra["verification"] = result.to_json()
    return result


def write_repro(
    directory: str | os.PathLike[str],
    mismatch: Mismatch,
    views: list[ViewDefinition],
    log_path: str | os.PathLike[str],
    options: ReplayOptions,
    *,
    oracle: str,
) -> str:
    """Write ``views.sql``, ``log.jsonl`` and ``repro.json`` reproducing ``mismatch``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    definition = next((v for v in views if v.name == mismatch.view), None)
    views_text = ""
    if definition is not None:
        prefix = "-- format: flat\n" if definition.format == FLAT else ""
        body = definition.sql.strip().rstrip(";")
        if not body[:6].upper().startswith("CREATE"):
            name = exp.to_identifier(definition.name).sql(dialect=options.dialect)
            body = f"CREATE VIEW {name} AS\n{body}"
        views_text = f"{prefix}{body};\n"
    (out / "views.sql").write_text(views_text, encoding="utf-8")
    log_written = os.fspath(log_path) != "-"
    if log_written:
        (out / "log.jsonl").write_bytes(_log_prefix(log_path, mismatch.line, mismatch.view))
    command = ["ssp", "verify", str(out / "views.sql"), str(out / "log.jsonl")]
    command += ["--oracle", oracle, "--mode", options.mode]
    if options.mode == "batch":
        command += ["--batch-size", str(options.batch_size)]
    for flag, value in (
        ("--flush-every", options.flush_every),
        ("--frame-ms", options.frame_ms),
        ("--initial", options.initial),
        ("--dialect", options.dialect),
    ):
        if value is not None:
            command += [flag, str(value)]
    for name, value in options.params.items():
        command += ["--param", f"{name}={orjson.dumps(value).decode()}"]
    if not options.coalesce:
        command.append("--no-coalesce")
    info = {
        "view": mismatch.view,
        "sql": mismatch.sql,
        "seq": mismatch.seq,
        "line": mismatch.line,
        "log_written": log_written,
        "command": shlex.join(command),
        "diff": mismatch.diff.render(),
    }
    (out / "repro.json").write_bytes(
        orjson.dumps(info, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    )
    return str(out)


def _log_prefix(log_path: str | os.PathLike[str], last_line: int, view: str) -> bytes:
    """Lines 1..``last_line`` without the REGISTER/UNREGISTER entries of other views.

    A REGISTER or UNREGISTER at ``last_line`` itself is dropped too: the check
    that failed ran before it took effect.
    """
    kept: list[bytes] = []
    with open(log_path, "rb") as log:
        for number, raw in enumerate(log, start=1):
            if number > last_line:
                break
            control = _control_view(raw)
            if control is not None and (control != view or number == last_line):
                continue
            kept.append(raw if raw.endswith(b"\n") else raw + b"\n")
    return b"".join(kept)


def _control_view(raw: bytes) -> str | None:
    """The view a REGISTER/UNREGISTER line names; None for any other line."""
    try:
        entry = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("op"), str):
        return None
    if entry["op"].upper() not in ("REGISTER", "UNREGISTER"):
        return None
    name = entry.get("view")
    return name if isinstance(name, str) else None
