"""Run one fuzz target under atheris: ``python tests/fuzz/run.py TARGET [libFuzzer flags]``.

``make fuzz`` runs every target for ``FUZZ_SECONDS`` with a per-input time limit and a
memory limit (``-timeout``, ``-rss_limit_mb``). The engine and sqlglot are instrumented for
coverage. A crash is written by libFuzzer as ``crash-*`` under ``-artifact_prefix``: copy it
into ``tests/fuzz/corpus/TARGET/`` with a name saying what it found, fix the bug, and the
default test run replays it from then on (``tests/test_fuzz_corpus.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

with atheris.instrument_imports(include=["circuit", "sqlglot"]):
    from fuzz.targets import TARGETS


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: run.py {{{','.join(TARGETS)}}} [libFuzzer flags] [corpus dirs]")
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
