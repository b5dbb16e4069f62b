"""``ssp import`` from fixture files written after each tool's documented format, and the
conversion rules of ``circuit.record.changes`` (no server needed).

The fixtures (``tests/data/import``) follow:

- ``debezium-envelope.jsonl``: Debezium's PostgreSQL connector documentation
  (``connectors/postgresql.adoc``: the create/update/delete event values with the
  JSON converter's schema, the ``source`` fields, ``before`` holding the key only
  under REPLICA IDENTITY DEFAULT, the tombstone after a delete, the
  ``__debezium_unavailable_value`` placeholder for an unchanged TOASTed column);
- ``debezium-plain.jsonl``: the MySQL connector's events without the schema
  (``schemas.enable=false``), with transaction metadata; a primary key change is
  a delete, its tombstone and a create, as both connectors' documentation says;
- ``wal2json-v1.jsonl`` / ``wal2json-v2.jsonl``: wal2json's README (format 1 with
  ``include-xids``, ``include-timestamp``, ``include-pk``; format 2's B/I/U/D/M/C
  lines with ``xid`` and ``timestamp``, ``identity`` and ``pk``);
- ``maxwell.jsonl``: Maxwell's data format page (maxwells-daemon.io/dataformat:
  ``commit`` on a transaction's last row, ``xoffset`` on the others, ``old`` on
  updates, ``position``/``server_id``/``thread_id``, bootstrap and DDL lines).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from circuit.record.changes import RecordError, convert_value, key_text
from ssp_cli.main import app

DATA = Path(__file__).parent / "data" / "import"


def run_import(tmp_path: Path, fmt: str, name: str, *args: str) -> tuple[Any, list[dict[str, Any]]]:
    out = tmp_path / "log.jsonl"
    result = CliRunner().invoke(app, ["import", fmt, str(DATA / name), "-o", str(out), *args])
    log = [json.loads(x) for x in out.read_text().splitlines()] if out.exists() else []
    return result, log


def ops(log: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [(e["op"], e.get("id")) for e in log]


def test_debezium_with_the_schema_envelope(tmp_path: Path) -> None:
    result, log = run_import(tmp_path, "debezium", "debezium-envelope.jsonl")
    assert result.exit_code == 0, result.output
    assert ops(log) == [
        ("CREATE", "customers:1001"), ("FLUSH", None),
        ("CREATE", "customers:1002"), ("UPDATE", "customers:1001"), ("FLUSH", None),
        ("DELETE", "customers:1002"), ("FLUSH", None),
    ]  # fmt: skip
    # Decimal bytes decoded with the schema's scale, io.debezium.data.Json parsed
    assert log[0]["data"] == {
        "id": 1001, "first_name": "Sally", "balance": 12.34, "prefs": {"theme": "dark"},
    }  # fmt: skip
    assert log[2]["data"]["balance"] == -2.0
    # __debezium_unavailable_value is taken from the last row seen
    assert log[3]["data"] == {
        "id": 1001, "first_name": "Sal", "balance": 12.34, "prefs": {"theme": "dark"},
    }  # fmt: skip
    assert [e["ts"] for e in log] == [1559033904863] * 2 + [1559033906000] * 3 + [1559033907000] * 2


def test_debezium_plain_events_with_a_given_composite_key(tmp_path: Path) -> None:
    result, log = run_import(
        tmp_path, "debezium", "debezium-plain.jsonl", "--key", "lines=order_id,line"
    )
    assert result.exit_code == 0, result.output
    assert ops(log) == [
        ("CREATE", "lines:[7,1]"), ("CREATE", "lines:[7,2]"), ("FLUSH", None),  # one transaction
        ("DELETE", "lines:[7,2]"), ("CREATE", "lines:[7,3]"), ("FLUSH", None),  # a key change
        ("DELETE", "lines:[7,1]"), ("FLUSH", None),  # no transaction id: alone
    ]  # fmt: skip
    result, _ = run_import(tmp_path, "debezium", "debezium-plain.jsonl")
    assert result.exit_code == 1
    assert "debezium-plain.jsonl:1: table lines: no primary key known" in result.output
    assert "--key TABLE=COLUMN" in result.output


def test_wal2json_format_versions_1_and_2(tmp_path: Path) -> None:
    result, log = run_import(tmp_path, "wal2json", "wal2json-v1.jsonl")
    assert result.exit_code == 0, result.output
    assert ops(log) == [
        ("CREATE", "account:1"), ("CREATE", "account:2"), ("FLUSH", None),
        ("DELETE", "account:2"), ("CREATE", "account:3"), ("FLUSH", None),
        ("DELETE", "account:1"), ("FLUSH", None),
    ]  # fmt: skip
    assert log[0]["data"] == {"k": 1, "name": "ann", "balance": 10.5, "meta": {"tier": "gold"}}
    assert log[0]["ts"] == 1796637600500
    result, log = run_import(tmp_path, "wal2json", "wal2json-v2.jsonl")
    assert result.exit_code == 0, result.output
    assert ops(log) == [
        ("CREATE", "item:[1,1]"), ("FLUSH", None),
        ("UPDATE", "item:[1,1]"), ("DELETE", "item:[1,1]"), ("FLUSH", None),
    ]  # fmt: skip
    assert log[0]["data"]["price"] == "12345678901234567890.5"  # no float rounding
    assert log[0]["data"]["doc"] == {"a": [1, 2.5]}
    assert log[2]["data"] == {"owner": 1, "seq": 1, "price": 2, "doc": {"a": [1, 2.5]}}


def test_maxwell(tmp_path: Path) -> None:
    result, log = run_import(tmp_path, "maxwell", "maxwell.jsonl")
    assert result.exit_code == 0, result.output
    assert ops(log) == [
        ("CREATE", "maxwell:1"), ("FLUSH", None),
        ("CREATE", "maxwell:2"), ("UPDATE", "maxwell:2"), ("FLUSH", None),
        ("DELETE", "maxwell:2"), ("CREATE", "maxwell:3"), ("FLUSH", None),
        ("DELETE", "maxwell:1"), ("FLUSH", None),
    ]  # fmt: skip
    assert log[0]["ts"] == 1449786310000


@pytest.mark.parametrize(
    ("fmt", "name"),
    [("debezium", "debezium-envelope.jsonl"), ("wal2json", "wal2json-v1.jsonl"),
     ("wal2json", "wal2json-v2.jsonl"), ("maxwell", "maxwell.jsonl")],
)  # fmt: skip
def test_imported_logs_replay_strictly(tmp_path: Path, fmt: str, name: str) -> None:
    result, log = run_import(tmp_path, fmt, name)
    assert result.exit_code == 0
    table = log[0]["table"]
    (tmp_path / "views.sql").write_text(f"CREATE VIEW v AS SELECT * FROM {table};\n")
    replay = CliRunner().invoke(
        app, ["replay", str(tmp_path / "views.sql"), str(tmp_path / "log.jsonl"), "--strict", "-q"]
    )
    assert replay.exit_code == 0, replay.output


def test_bad_lines_fail_with_file_and_line_or_go_to_rejects(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        '{"database":"d","table":"t","type":"insert","ts":1,"data":{"id":1,"x":1}}\n'
        "not json\n"
        '{"database":"d","table":"t","type":"insert","ts":2,"data":{"id":2,"x":1e400}}\n'
        '{"database":"d","table":"t","type":"insert","ts":3,"data":{"id":3,"x":NaN}}\n'
        '{"database":"d","table":"t","type":"insert","ts":4,"data":{"id":4,"x":0.5}}\n'
    )
    out = tmp_path / "log.jsonl"
    result = CliRunner().invoke(app, ["import", "maxwell", str(source), "-o", str(out)])
    assert result.exit_code == 1
    assert f"error: {source}:2: not JSON" in result.output
    rejects = tmp_path / "rej.jsonl"
    result = CliRunner().invoke(
        app,
        ["import", "maxwell", str(source), "-o", str(out), "--on-error", "skip",
         "--rejects", str(rejects)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [e.get("id") for e in map(json.loads, out.read_text().splitlines())] == [
        "t:1", None, "t:4", None,
    ]  # fmt: skip
    assert rejects.read_text().splitlines() == source.read_text().splitlines()[1:4]


def test_values_follow_the_recording_rules() -> None:
    loc = "here"
    assert convert_value("integer", "42", "c", loc) == 42
    assert convert_value("numeric(10,2)", "10.50", "c", loc) == 10.5
    assert convert_value("numeric", "0.1", "c", loc) == 0.1
    assert (
        convert_value("numeric", "12345678901234567890.12", "c", loc) == "12345678901234567890.12"
    )
    assert (
        convert_value("numeric", "123456789012345678901234", "c", loc) == "123456789012345678901234"
    )
    assert convert_value("numeric", 2**70, "c", loc) == str(2**70)
    assert convert_value("double precision", "1e300", "c", loc) == 1e300
    assert convert_value("boolean", "t", "c", loc) is True
    assert convert_value("jsonb", '{"a": [1, null]}', "c", loc) == {"a": [1, None]}
    assert convert_value("text", "NaN", "c", loc) == "NaN"  # text is text
    assert convert_value("timestamp with time zone", "2026-01-01 00:00:00+00", "c", loc) == (
        "2026-01-01 00:00:00+00"
    )
    for bad in ("NaN", "Infinity", "-Infinity"):
        with pytest.raises(RecordError, match="cannot carry"):
            convert_value("numeric", bad, "c", loc)
        with pytest.raises(RecordError, match="cannot carry"):
            convert_value("real", bad, "c", loc)
    with pytest.raises(RecordError, match="invalid JSON"):
        convert_value("json", '{"a": 1e400}', "c", loc)
    with pytest.raises(RecordError, match="cannot carry"):
        convert_value(None, float("inf"), "c", loc)
    assert key_text([5]) == "5"
    assert key_text(["a:b"]) == "a:b"
    assert key_text([1, "x"]) == '[1,"x"]'
