"""Regression tests for the wrong answers and crashes of issue 13."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_circuit

from circuit import Mutation
from circuit.errors import SqlError
from circuit.sql import load_views


def test_group_by_a_repeated_expression_keeps_the_columns_in_place() -> None:
    circuit = make_circuit()
    circuit.ingest_batch(
        [
            Mutation.create("users", "1", {"team": "red", "score": 3}),
            Mutation.create("users", "2", {"team": "red", "score": 4}),
        ]
    )
    circuit.register_view("q", "SELECT team AS t, SUM(score) AS s FROM users GROUP BY team, team")
    assert circuit.rows("q") == [{"t": "red", "s": 7}]


def test_views_file_with_invalid_utf8_is_a_located_sql_error(tmp_path: Path) -> None:
    path = tmp_path / "views.sql"
    path.write_bytes(b"CREATE VIEW a AS SELECT * FROM t;\nCREATE VIEW b AS SELECT '\xff' FROM t;\n")
    with pytest.raises(SqlError) as info:
        load_views(path)
    assert info.value.line == 2
    assert str(info.value).startswith(f"{path}:2:")
