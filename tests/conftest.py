"""Shared test helpers: a fresh circuit per test and terse expected payloads.

Also the ``--update-golden`` option of the conformance cases (a pytest hook must live in a
conftest). Other test modules import these names (``make_circuit``, ``payloads``, ``streaming``,
``flat``, ``canonical_json``, ``by_canonical_json``, ``flat_hash``): keep them stable.
The expected payloads are built here independently of the engine's own helpers
(``flat_hash`` hashes with BLAKE3 directly) so a bug there cannot hide itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import orjson
import pytest
from blake3 import blake3
from hypothesis import settings

from circuit import Circuit, ViewUpdate
from circuit.metrics import FakeClock

EMPTY_HASH = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"


def make_circuit(**options: Any) -> Circuit:
    """A circuit with a fake clock (deterministic metrics); ``options`` go to ``Circuit``."""
    options.setdefault("clock", FakeClock())
    return Circuit(**options)


def payloads(updates: Iterable[ViewUpdate | None]) -> list[dict[str, Any]]:
    """The JSON payloads of ``updates`` (a ``None`` registration result is dropped)."""
    return [u.to_json() for u in updates if u is not None]


def streaming(view: str, seq: int, *records: tuple[str, str, int]) -> dict[str, Any]:
    """The expected streaming payload; ``records`` are ``(id, event, version)`` in order."""
    return {
        "format": "streaming",
        "view": view,
        "seq": seq,
        "records": [{"id": i, "event": e, "version": v} for i, e, v in records],
    }


def flat_hash(ids: Iterable[str]) -> str:
    """BLAKE3 hex of the sorted ids, each followed by one NUL byte (SPEC 3.3)."""
    hasher = blake3()
    for member_id in sorted(ids):
        hasher.update(member_id.encode("utf-8") + b"\0")
    return hasher.hexdigest()


def flat(view: str, seq: int, *members: tuple[str, int]) -> dict[str, Any]:
    """The expected flat payload for ``members`` (``(id, version)``, any order)."""
    ordered = sorted(members)
    return {
        "format": "flat",
        "view": view,
        "seq": seq,
        "result_hash": flat_hash(i for i, _ in ordered),
        "result_data": [[i, v] for i, v in ordered],
    }


def canonical_json(value: Any) -> str:
    """Keys sorted, no spaces, non-ASCII as is (SPEC 3.3)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def by_canonical_json(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows in the order ``Circuit.rows`` uses for a view without ORDER BY."""
    return sorted(rows, key=canonical_json)


# --- Golden conformance cases (tests/test_conformance.py) ---------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--update-golden``: rewrite the conformance cases' expected files instead of comparing."""
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/conformance/*/expected_* from the engine (known-bug cases are kept); "
        "each case reports what it rewrote as a skip (see -rs)",
    )


# The default run is deterministic: hypothesis derives its examples from each test (and keeps
# no example database), so CI cannot fail on a lucky draw. ``SSP_FUZZ=1`` (``make fuzz``)
# searches at random instead.
_FUZZ = os.environ.get("SSP_FUZZ") == "1"
settings.register_profile(
    "ssp", derandomize=not _FUZZ, database=None if not _FUZZ else settings.default.database
)
settings.load_profile("ssp")
