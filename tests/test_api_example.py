"""The README's Python example runs as written.

The first ```python block under the first heading that mentions "Python" is the API's
advertised usage; it carries its own asserts. It runs in a fresh interpreter (its own
process, a temporary working directory) so it cannot lean on test fixtures or leak state.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
HEADING = re.compile(r"^#{1,6}\s.*python", re.IGNORECASE)
FENCE = re.compile(r"^```python\s*$\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)


def python_example(markdown: str) -> str | None:
    """The first ```python block after the first heading containing "Python", if any."""
    lines = markdown.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if HEADING.match(line):
            match = FENCE.search("".join(lines[index + 1 :]))
            return None if match is None else match.group(1)
    return None


def test_python_example_extraction() -> None:
    text = "# Intro\n```python\nno\n```\n## The Python API\ntext\n```python\nx = 1\n```\n"
    assert python_example(text) == "x = 1\n"
    assert python_example("# Python\nno code\n") is None


def test_readme_python_example_runs(tmp_path: Path) -> None:
    if not README.exists():
        pytest.skip("README.md is not written yet (the lead adds the Python example)")
    example = python_example(README.read_text(encoding="utf-8"))
    if example is None:
        pytest.skip('README.md has no ```python block under a "Python" heading yet')
    script = tmp_path / "readme_example.py"
    script.write_text(example, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"README example failed:\n{done.stdout}\n{done.stderr}"
