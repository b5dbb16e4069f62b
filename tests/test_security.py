"""SQL text and log contents are untrusted: they travel as values, never as code.

The engine compiles expressions into closures that capture literals and
parameter values; no SQL or log text is pasted into Python source, evaluated,
or executed. These tests feed hostile views and log lines and check that they
are treated as plain data (or rejected cleanly), and that the engine's source
never reaches for ``eval``/``exec``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import orjson
import pytest

from circuit import Circuit, Mutation
from circuit.errors import CircuitError, MutationLogError, SqlError, UnsupportedSqlError
from circuit.mutations import read_log

ROOT = Path(__file__).resolve().parents[1]


def _payloads(sentinel: Path) -> list[str]:
    """Strings that would create ``sentinel`` if any layer evaluated or executed them."""
    target = str(sentinel)
    return [
        f"__import__('pathlib').Path({target!r}).touch()",
        f"open({target!r}, 'w').write('x')",
        f"'); open({target!r}, 'w'); ('",
        f'"""; open({target!r}, \'w\'); """',
        f"{{{{open({target!r}, 'w')}}}}",
        f"$(touch {target})",
        f"`touch {target}`",
    ]


def test_hostile_literals_params_and_data_are_only_values(tmp_path: Path) -> None:
    sentinel = tmp_path / "pwned"
    circuit = Circuit()
    for index, payload in enumerate(_payloads(sentinel)):
        quoted = payload.replace("'", "''")
        circuit.ingest_single(
            Mutation.create("note", str(index), {"body": payload, payload: payload})
        )
        sql = (
            f"SELECT id, body || '{quoted}' AS echoed, :p AS param FROM note "
            f"WHERE body = '{quoted}' OR body LIKE :p"
        )
        circuit.register_view(f"v{index}", sql, params={"p": payload})
        rows = circuit.rows(f"v{index}")
        assert rows == [{"id": f"note:{index}", "echoed": payload + payload, "param": payload}]
    assert not sentinel.exists()


def test_hostile_identifiers_are_names_not_code(tmp_path: Path) -> None:
    sentinel = tmp_path / "pwned"
    circuit = Circuit()
    name = f"x\"); open('{sentinel}', 'w'); (\""
    quoted_name = name.replace('"', '""')
    circuit.ingest_single(Mutation.create("t", "1", {name: 1}))
    circuit.register_view(f"v {name}", f'SELECT "{quoted_name}" AS "{quoted_name}" FROM t')
    assert circuit.rows(f"v {name}") == [{name: 1}]
    assert not sentinel.exists()


def test_hostile_log_lines_are_data_or_rejected(tmp_path: Path) -> None:
    sentinel = tmp_path / "pwned"
    log = tmp_path / "log.jsonl"
    lines = [
        orjson.dumps({"op": "CREATE", "table": "t", "id": p[:20], "data": {"v": p, p: 1}})
        for p in _payloads(sentinel)
        if ":" not in p[:20]
    ]
    lines.append(b'{"op": "__import__(\'os\').system(\'touch x\')", "table": "t", "id": "1"}')
    log.write_bytes(b"\n".join(lines) + b"\n")
    entries = []
    with pytest.raises(MutationLogError, match="op"):
        for entry in read_log(log):
            entries.append(entry)
    circuit = Circuit()
    circuit.register_view("all", "SELECT * FROM t")
    circuit.ingest_batch(entries)
    assert len(circuit.rows("all")) == len(entries)
    assert not sentinel.exists()


def test_sql_that_is_not_a_select_is_rejected() -> None:
    circuit = Circuit()
    for sql in (
        "ATTACH DATABASE '/tmp/x.db' AS x",
        "DROP TABLE t",
        "SELECT * FROM t; DROP TABLE t",
        "SELECT load_extension('/tmp/evil.so') AS x FROM t",
        "SELECT * FROM read_csv('/etc/passwd')",
    ):
        with pytest.raises(SqlError):
            circuit.register_view("v", sql)


def test_deep_sql_is_a_clean_error_or_works() -> None:
    circuit = Circuit()
    circuit.ingest_single(Mutation.create("t", "1", {"x": 1}))
    shallow = "SELECT * FROM t WHERE " + "(" * 200 + "x = 1" + ")" * 200
    circuit.register_view("shallow", shallow)
    assert len(circuit.rows("shallow")) == 1
    deep = "SELECT * FROM t WHERE " + "(" * 5000 + "x = 1" + ")" * 5000
    with pytest.raises(UnsupportedSqlError, match="nests deeper"):
        circuit.register_view("deep", deep)


def test_nested_subqueries_to_a_realistic_depth() -> None:
    circuit = Circuit()
    circuit.ingest_batch(
        [Mutation.create("t", "1", {"a": "u:1"}), Mutation.create("u", "1", {"a": "u:1"})]
    )
    inner = "SELECT * FROM u WHERE id = $parent.a"
    for level in range(20):
        inner = f"SELECT *, ({inner})[0] AS n{level} FROM u WHERE id = $parent.a"
    circuit.register_view("deep", f"SELECT *, ({inner})[0] AS top FROM t")
    row = circuit.rows("deep")[0]["top"]
    for level in reversed(range(20)):
        row = row[f"n{level}"]
    assert row["id"] == "u:1"
    assert circuit.members("deep") == [("t:1", 1), ("u:1", 1)]


def test_engine_source_never_evaluates_text() -> None:
    """No eval/exec/compile calls and no dynamic imports anywhere in the engine or CLI."""
    forbidden = {"eval", "exec", "compile", "__import__"}
    offenders = []
    for package in ("circuit", "ssp_cli"):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id in forbidden
                ):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_errors_carry_locations_not_tracebacks() -> None:
    circuit = Circuit()
    with pytest.raises(CircuitError) as info:
        circuit.register_view("v", "SELECT * FROM t WHERE x = $missing")
    assert "view v" in str(info.value) and "missing" in str(info.value)
