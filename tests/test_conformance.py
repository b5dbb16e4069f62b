"""Golden conformance cases: each folder of ``tests/conformance/`` pins one SPEC rule as data.

A case is ``views.sql`` and ``log.jsonl`` replayed through :class:`circuit.replay.Replayer`
(the code path of ``ssp replay --updates PATH --dump PATH``) with the options of its optional
``case.json``; the ``--updates`` stream and the ``--dump`` bytes must equal
``expected_updates.jsonl`` and ``expected_dump.json`` byte for byte. An optional
``expected_counts.json`` also pins the run's anomaly counts (non-zero kinds only) and no-op
updates, for the rules whose whole point is that something is counted rather than applied.

The expected files were written from SPEC by hand, not copied from the engine. A case whose
SPEC-correct expectation the engine does not meet yet carries ``"xfail": "<reason>"`` in
``case.json``: it runs as a strict xfail, so fixing the engine turns it into a failure that asks
for the entry's removal. ``pytest --update-golden`` rewrites the expected files from the engine
instead of comparing (each case reports this as a skip), except for the xfail cases, whose
expectations would otherwise be replaced by the engine's known-wrong output.

``case.json`` keys: ``xfail`` (str) and any :class:`~circuit.replay.ReplayOptions` field
(``mode``, ``batch_size``, ``flush_every``, ``params``, ``format``, ...); ``initial`` is a
path relative to the case folder.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import orjson
import pytest

from circuit.metrics import FakeClock
from circuit.replay import Replayer, ReplayOptions, dump_state
from circuit.updates import ViewUpdate

CASES_DIR = Path(__file__).parent / "conformance"
UPDATES = "expected_updates.jsonl"
DUMP = "expected_dump.json"
COUNTS = "expected_counts.json"


def _config(case: Path) -> dict[str, Any]:
    path = case / "case.json"
    config: dict[str, Any] = orjson.loads(path.read_bytes()) if path.exists() else {}
    return config


def _params() -> list[Any]:
    """One ``pytest.param`` per case folder, known engine bugs marked as strict xfails."""
    params = []
    for case in sorted(p for p in CASES_DIR.iterdir() if p.is_dir()):
        reason = _config(case).get("xfail")
        marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
        params.append(pytest.param(case, id=case.name, marks=marks))
    return params


def _replay(case: Path) -> dict[str, bytes]:
    """Replay ``case``; the bytes each expected file should hold."""
    config = _config(case)
    config.pop("xfail", None)
    if "initial" in config:
        config["initial"] = str(case / config["initial"])
    lines: list[bytes] = []

    def sink(update: ViewUpdate) -> None:
        lines.append(update.to_bytes() + b"\n")

    replayer = Replayer(
        case / "views.sql",
        case / "log.jsonl",
        ReplayOptions(**config),
        on_update=sink,
        clock=FakeClock(),
        argv=["conformance", case.name],
    )
    # The replay collects garbage before freezing its state (``steady_gc``); inside pytest that
    # full collection costs ~60 ms a case. Freezing first leaves it nothing to scan; the replay
    # unfreezes everything when it ends, so nothing else changes.
    gc.freeze()
    run = replayer.run()
    actual = {UPDATES: b"".join(lines), DUMP: dump_state(replayer.circuit)}
    if (case / COUNTS).exists():
        counts = {
            "anomalies": {k: v for k, v in sorted(run.errors.anomalies.items()) if v},
            "noop_updates": run.batch_stats.noop_updates,
        }
        actual[COUNTS] = orjson.dumps(counts, option=orjson.OPT_APPEND_NEWLINE)
    return actual


@pytest.mark.parametrize("case", _params())
def test_conformance_case(case: Path, request: pytest.FixtureRequest) -> None:
    actual = _replay(case)
    if request.config.getoption("--update-golden"):
        if _config(case).get("xfail"):
            pytest.skip(f"--update-golden: {case.name} is a known engine bug, left as written")
        rewritten = [n for n, data in actual.items() if _read(case / n) != data]
        for name in rewritten:
            (case / name).write_bytes(actual[name])
        pytest.skip(f"--update-golden: {case.name}: rewrote {', '.join(rewritten) or 'nothing'}")
    for name, data in actual.items():
        assert (case / name).exists(), f"{case.name}/{name} is missing: run with --update-golden"
        # Lists of lines give a readable diff; equal lists mean equal bytes.
        expected = (case / name).read_bytes().decode().splitlines(keepends=True)
        assert data.decode().splitlines(keepends=True) == expected, f"{case.name}/{name}"


def _read(path: Path) -> bytes:
    return path.read_bytes() if path.exists() else b""
