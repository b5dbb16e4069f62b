"""Replay the fuzz regression corpus: every input atheris once crashed on must now pass.

Each file under ``tests/fuzz/corpus/TARGET/`` is fed to the same target function
(``tests/fuzz/targets.py``) that ``make fuzz`` drives under atheris, so the checks are the
same: a result or a located ``CircuitError``, and the three replay modes agreeing. atheris is
not needed here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fuzz.targets import TARGETS

CORPUS = Path(__file__).parent / "fuzz" / "corpus"
CASES = sorted(
    (target, path) for target in TARGETS for path in (CORPUS / target).glob("*") if path.is_file()
)


def test_every_corpus_directory_names_a_target() -> None:
    assert {path.name for path in CORPUS.iterdir() if path.is_dir()} <= set(TARGETS)


@pytest.mark.parametrize(
    ("target", "path"), CASES, ids=[f"{target}/{path.name}" for target, path in CASES]
)
def test_fuzz_corpus_input_passes_its_target(target: str, path: Path) -> None:
    TARGETS[target](path.read_bytes())
