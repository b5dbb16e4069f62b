"""The README's PostgreSQL session, run as written (its ``sh`` block, with ``DSN`` set).

The block is found by its ``<!-- readme-test: postgres-session -->`` marker and
run by bash in a fresh directory against a database of the test cluster, with
the venv's ``ssp`` and the cluster's ``psql`` on ``PATH``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from pgcluster import Database, pg_db_fixture, pg_fixture  # noqa: F401  (fixtures)

from circuit.record.cluster import find_bindir

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = "<!-- readme-test: postgres-session -->"


def readme_block() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(re.escape(MARKER) + r"\s*```sh\n(.*?)```", text, re.DOTALL)
    assert match, f"README.md has no sh block after {MARKER}"
    return match.group(1)


def test_the_readme_session_records_replays_and_verifies(pg_db: Database, tmp_path: Path) -> None:
    script = readme_block()
    assert "ssp record postgres" in script and "ssp verify" in script
    bindir = Path(sys.executable).parent
    path = [str(bindir)]
    server_bin = find_bindir()
    if shutil.which("psql") is None and server_bin is not None:
        path.append(str(server_bin))
    env = {**os.environ, "DSN": pg_db.dsn, "PATH": os.pathsep.join([*path, os.environ["PATH"]])}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok: 3 checks passed" in done.stdout + done.stderr
    views = json.loads((tmp_path / "dump.json").read_text())["views"]
    assert sorted((r["name"], r["balance"]) for r in views["rich"]["rows"]) == [("ann", 9.5)]
    assert sorted((r["name"], r["label"], r["seq"]) for r in views["labels"]["rows"]) == [
        ("bob", "ink", 2)
    ]
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    ops = [(e["op"], e.get("id")) for e in log]
    assert ("DELETE", "item:[2,1]") in ops and ("CREATE", "item:[2,2]") in ops  # the key change
    assert not any(e["op"] == "DELETE" and e["id"].startswith("account:") for e in log)
