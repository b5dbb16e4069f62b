"""The engine is a library: importing all of ``circuit`` pulls in neither typer nor rich."""

from __future__ import annotations

import subprocess
import sys


def test_the_engine_imports_no_cli_library() -> None:
    code = (
        "import pkgutil, sys, circuit\n"
        "for info in pkgutil.walk_packages(circuit.__path__, 'circuit.'):\n"
        "    __import__(info.name)\n"
        "loaded = sorted(m for m in ('typer', 'rich', 'click') if m in sys.modules)\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == ""
