"""One small, exact test per rule of SPEC sections 1-4 as seen through the Python API.

Each test builds its own circuit, registers the views it needs and asserts whole update
payloads (``payloads(...) == [streaming(...)]``), so a wrong event, version, order or seq
shows up as a readable diff. Record keys are single characters so that ids sort the same
way as a reader expects.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from conftest import (
    EMPTY_HASH,
    by_canonical_json,
    flat,
    flat_hash,
    make_circuit,
    payloads,
    streaming,
)

from circuit import Circuit, Mutation, MutationLogError, SqlError, UnsupportedSqlError
from circuit.metrics import FakeClock


def c(table: str, key: str, version: int | None = None, **data: Any) -> Mutation:
    return Mutation.create(table, key, data, version)


def u(table: str, key: str, version: int | None = None, **data: Any) -> Mutation:
    return Mutation.update(table, key, data, version)


def d(table: str, key: str, version: int | None = None) -> Mutation:
    return Mutation.delete(table, key, version)


def anomalies(cx: Circuit) -> dict[str, int]:
    """The last call's anomaly counts without zero entries (the SPEC leaves them open)."""
    return {k: v for k, v in cx.last_stats.anomalies.items() if v}


USERS = "SELECT * FROM user"
ADULTS = "SELECT * FROM user WHERE age >= 18"
AUTHOR = "SELECT *, (SELECT * FROM user WHERE id = $parent.author)[0] AS author FROM thread"


# --- Section 1: ids and versions ------------------------------------------------------------


def test_id_without_colon_gets_the_table_prefix_and_the_record_id_is_canonical() -> None:
    cx = make_circuit()
    cx.ingest_single(Mutation.create("user", "5", {"id": "5", "name": "ann"}))
    assert cx.tables()["user"] == {"user:5": {"id": "user:5", "name": "ann"}}


def test_versions_count_writes_and_restart_after_a_delete() -> None:
    cx = make_circuit()
    cx.register_view("v", USERS)
    cx.ingest_single(c("user", "a", name="x"))
    cx.ingest_single(u("user", "a", name="y"))
    assert cx.members("v") == [("user:a", 2)]
    cx.ingest_single(d("user", "a"))
    assert cx.members("v") == []
    assert payloads(cx.ingest_single(c("user", "a", name="z"))) == [
        streaming("v", 5, ("user:a", "created", 1))
    ]


def test_an_explicit_version_is_stored_and_the_next_write_counts_on_from_it() -> None:
    cx = make_circuit()
    cx.register_view("v", USERS)
    assert payloads(cx.ingest_single(c("user", "a", version=7, name="x"))) == [
        streaming("v", 2, ("user:a", "created", 7))
    ]
    assert payloads(cx.ingest_single(u("user", "a", name="y"))) == [
        streaming("v", 3, ("user:a", "updated", 8))
    ]


@pytest.mark.parametrize("stale", [1, 3])
def test_a_stale_explicit_version_is_skipped_and_counted(stale: int) -> None:
    cx = make_circuit()
    cx.register_view("v", USERS)
    cx.ingest_single(c("user", "a", version=3, name="x"))
    assert cx.ingest_single(u("user", "a", version=stale, name="y")) == []
    assert anomalies(cx) == {"stale_version": 1}
    assert cx.tables()["user"]["user:a"] == {"id": "user:a", "name": "x"}
    assert cx.members("v") == [("user:a", 3)]
    assert payloads(cx.ingest_single(u("user", "a", version=4, name="y"))) == [
        streaming("v", 4, ("user:a", "updated", 4))
    ]


def test_a_stale_delete_is_skipped() -> None:
    cx = make_circuit()
    cx.register_view("v", USERS)
    cx.ingest_single(c("user", "a", name="x"))
    cx.ingest_single(u("user", "a", name="y"))
    assert cx.ingest_single(d("user", "a", version=2)) == []
    assert anomalies(cx) == {"stale_version": 1}
    assert cx.members("v") == [("user:a", 2)]


def test_create_existing_is_applied_as_an_update_and_counted() -> None:
    cx = make_circuit()
    cx.register_view("v", USERS)
    cx.ingest_single(c("user", "a", name="x"))
    assert payloads(cx.ingest_single(c("user", "a", name="y"))) == [
        streaming("v", 3, ("user:a", "updated", 2))
    ]
    assert anomalies(cx) == {"create_existing": 1}
    assert cx.rows("v") == [{"id": "user:a", "name": "y"}]


def test_update_missing_is_applied_as_a_create_and_counted() -> None:
    cx = make_circuit()
    cx.register_view("v", USERS)
    assert payloads(cx.ingest_single(u("user", "a", name="y"))) == [
        streaming("v", 2, ("user:a", "created", 1))
    ]
    assert anomalies(cx) == {"update_missing": 1}


def test_delete_missing_does_nothing_and_is_counted() -> None:
    cx = make_circuit()
    cx.register_view("v", USERS)
    assert cx.ingest_single(d("user", "a")) == []
    assert anomalies(cx) == {"delete_missing": 1}
    assert cx.tables().get("user", {}) == {}


def test_anomalies_in_a_batch_are_counted_by_kind() -> None:
    cx = make_circuit()
    cx.ingest_batch([c("user", "a", name="x"), c("user", "b", version=5, name="x")])
    result = cx.ingest_batch(
        [
            c("user", "a", name="y"),
            u("user", "m", name="y"),
            d("user", "n"),
            u("user", "b", version=4, name="z"),
        ]
    )
    assert {k: v for k, v in result.stats.anomalies.items() if v} == {
        "create_existing": 1,
        "update_missing": 1,
        "delete_missing": 1,
        "stale_version": 1,
    }


@pytest.mark.parametrize(
    ("setup", "entry", "kind"),
    [
        ([c("user", "a", name="x")], c("user", "a", name="y"), "create_existing"),
        ([], u("user", "a", name="y"), "update_missing"),
        ([], d("user", "a"), "delete_missing"),
        ([c("user", "a", name="x")], u("user", "a", version=1, name="y"), "stale_version"),
    ],
)
def test_strict_makes_every_anomaly_an_error(
    setup: list[Mutation], entry: Mutation, kind: str
) -> None:
    cx = make_circuit(strict=True)
    for m in setup:
        cx.ingest_single(m)
    with pytest.raises(MutationLogError):
        cx.ingest_single(entry)


# --- Section 3.1: tables, pre-images, no-op updates -----------------------------------------


def test_a_delete_without_data_removes_a_row_that_passed_the_filter() -> None:
    cx = make_circuit()
    cx.ingest_single(c("user", "a", age=20))
    assert payloads([cx.register_view("v", ADULTS)]) == [
        streaming("v", 2, ("user:a", "created", 1))
    ]
    assert payloads(cx.ingest_single(d("user", "a"))) == [
        streaming("v", 3, ("user:a", "deleted", 1))
    ]
    assert cx.rows("v") == []


def test_a_delete_is_evaluated_on_the_pre_image_whatever_data_it_carries() -> None:
    cx = make_circuit()
    cx.ingest_single(c("user", "a", age=20))
    cx.register_view("v", ADULTS)
    delete_with_data = Mutation("DELETE", "user", "user:a", {"age": 1})
    assert payloads(cx.ingest_single(delete_with_data)) == [
        streaming("v", 3, ("user:a", "deleted", 1))
    ]


def test_updates_move_records_into_and_out_of_a_filter() -> None:
    cx = make_circuit()
    cx.ingest_batch([c("user", "a", age=20), c("user", "b", age=10)])
    assert payloads([cx.register_view("v", ADULTS)]) == [
        streaming("v", 2, ("user:a", "created", 1))
    ]
    assert payloads(cx.ingest_single(u("user", "b", age=30))) == [
        streaming("v", 3, ("user:b", "created", 2))
    ]
    # A member that leaves reports the version the client holds (its last version).
    assert payloads(cx.ingest_single(u("user", "a", age=5))) == [
        streaming("v", 4, ("user:a", "deleted", 1))
    ]
    assert payloads(cx.ingest_single(u("user", "b", age=31))) == [
        streaming("v", 5, ("user:b", "updated", 3))
    ]
    assert cx.ingest_single(u("user", "a", age=6)) == []
    assert cx.rows("v") == [{"id": "user:b", "age": 31}]
    assert cx.members("v") == [("user:b", 3)]


@pytest.mark.parametrize(
    "same",
    [
        {"b": 2, "a": 1},
        {"a": 1.0, "b": 2},
        {"a": 1, "b": 2, "id": "user:x"},
        {"a": 1, "b": 2, "id": "x"},
    ],
    ids=["key-order", "int-vs-float", "canonical-id-field", "short-id-field"],
)
def test_an_identical_update_is_a_noop(same: dict[str, Any]) -> None:
    cx = make_circuit()
    cx.register_view("v", USERS)
    cx.ingest_single(c("user", "x", a=1, b=2))
    assert cx.ingest_single(Mutation.update("user", "x", same)) == []
    assert cx.last_stats.noop_updates == 1
    assert cx.last_stats.events == {"created": 0, "updated": 0, "deleted": 0}
    assert cx.members("v") == [("user:x", 1)]


def test_an_identical_update_in_a_batch_is_a_noop() -> None:
    cx = make_circuit()
    cx.register_view("v", USERS)
    cx.ingest_single(c("user", "x", a=[1, {"k": 3}]))
    result = cx.ingest_batch([u("user", "x", a=[1, {"k": 3.0}])])
    assert result.updates == []
    assert result.stats.noop_updates == 1
    assert cx.members("v") == [("user:x", 1)]


def test_a_create_of_an_existing_id_with_identical_data_is_a_noop() -> None:
    cx = make_circuit()
    cx.register_view("v", USERS)
    cx.ingest_single(c("user", "x", a=1))
    assert cx.ingest_single(c("user", "x", a=1)) == []
    assert cx.last_stats.noop_updates == 1
    assert cx.members("v") == [("user:x", 1)]


@pytest.mark.parametrize(("old", "new"), [(1, True), (True, 1), (1.0, True), (0, False)])
def test_a_boolean_never_equals_a_number(old: Any, new: Any) -> None:
    cx = make_circuit()
    cx.register_view("v", USERS)
    cx.ingest_single(c("user", "x", flag=old))
    assert payloads(cx.ingest_single(u("user", "x", flag=new))) == [
        streaming("v", 3, ("user:x", "updated", 2))
    ]
    assert cx.last_stats.noop_updates == 0


def test_an_identical_update_with_a_higher_explicit_version_is_applied() -> None:
    cx = make_circuit()
    cx.register_view("v", USERS)
    cx.ingest_single(c("user", "x", a=1))
    assert payloads(cx.ingest_single(u("user", "x", version=5, a=1))) == [
        streaming("v", 3, ("user:x", "updated", 5))
    ]
    assert cx.last_stats.noop_updates == 0


# --- Joins, top-k, nested subqueries ----------------------------------------------------------

JOIN = "SELECT t.id AS tid, u.name AS uname FROM thread t JOIN user u ON t.author = u.id"


def test_updates_move_records_into_and_out_of_a_join() -> None:
    cx = make_circuit()
    cx.ingest_batch(
        [
            c("user", "1", name="ann"),
            c("user", "2", name="bob"),
            c("thread", "1", author="user:1"),
            c("thread", "2", author="user:3"),
        ]
    )
    assert payloads([cx.register_view("j", JOIN)]) == [
        streaming("j", 2, ("thread:1", "created", 1), ("user:1", "created", 1))
    ]
    assert payloads(cx.ingest_single(u("thread", "2", author="user:2"))) == [
        streaming("j", 3, ("thread:2", "created", 2), ("user:2", "created", 1))
    ]
    # The joined record reports the change; the row gets no event of its own.
    assert payloads(cx.ingest_single(u("user", "1", name="amy"))) == [
        streaming("j", 4, ("user:1", "updated", 2))
    ]
    assert payloads(cx.ingest_single(u("thread", "1", author="user:9"))) == [
        streaming("j", 5, ("thread:1", "deleted", 1), ("user:1", "deleted", 2))
    ]
    assert cx.rows("j") == [{"tid": "thread:2", "uname": "bob"}]
    assert cx.members("j") == [("thread:2", 2), ("user:2", 1)]


def test_a_left_join_keeps_the_row_and_has_no_member_for_the_missing_side() -> None:
    cx = make_circuit()
    cx.ingest_single(c("thread", "1", author="user:1"))
    view = "SELECT t.id AS tid, u.name AS uname FROM thread t LEFT JOIN user u ON t.author = u.id"
    assert payloads([cx.register_view("j", view)]) == [
        streaming("j", 2, ("thread:1", "created", 1))
    ]
    assert cx.rows("j") == [{"tid": "thread:1", "uname": None}]
    assert payloads(cx.ingest_single(c("user", "1", name="ann"))) == [
        streaming("j", 3, ("user:1", "created", 1))
    ]
    assert cx.rows("j") == [{"tid": "thread:1", "uname": "ann"}]


TOP2 = "SELECT id, score FROM post ORDER BY score DESC LIMIT 2"


def test_top_k_next_row_enters_when_a_member_leaves_ties_by_row_key() -> None:
    cx = make_circuit()
    cx.ingest_batch(
        [
            c("post", "a", score=5),
            c("post", "c", score=4),
            c("post", "b", score=4),
            c("post", "d", score=1),
            c("post", "e"),
        ]
    )
    assert payloads([cx.register_view("top", TOP2)]) == [
        streaming("top", 2, ("post:a", "created", 1), ("post:b", "created", 1))
    ]
    assert cx.rows("top") == [{"id": "post:a", "score": 5}, {"id": "post:b", "score": 4}]
    assert payloads(cx.ingest_single(u("post", "a", score=0))) == [
        streaming("top", 3, ("post:c", "created", 1), ("post:a", "deleted", 1))
    ]
    assert cx.rows("top") == [{"id": "post:b", "score": 4}, {"id": "post:c", "score": 4}]
    assert payloads(cx.ingest_single(u("post", "d", score=9))) == [
        streaming("top", 4, ("post:d", "created", 2), ("post:c", "deleted", 1))
    ]
    assert payloads(cx.ingest_single(u("post", "d", score=8))) == [
        streaming("top", 5, ("post:d", "updated", 3))
    ]
    # A change below the boundary touches no member.
    assert cx.ingest_single(u("post", "c", score=3)) == []
    assert payloads(cx.ingest_single(d("post", "b"))) == [
        streaming("top", 7, ("post:c", "created", 2), ("post:b", "deleted", 1))
    ]
    assert cx.rows("top") == [{"id": "post:d", "score": 8}, {"id": "post:c", "score": 3}]


def test_top_k_sorts_nulls_first_ascending_and_last_descending() -> None:
    cx = make_circuit()
    cx.ingest_batch([c("post", "a", score=1), c("post", "b"), c("post", "c", score=None)])
    cx.register_view("asc", "SELECT id FROM post ORDER BY score LIMIT 2")
    cx.register_view("desc", "SELECT id FROM post ORDER BY score DESC LIMIT 2")
    cx.register_view("last", "SELECT id FROM post ORDER BY score ASC NULLS LAST LIMIT 1")
    assert cx.rows("asc") == [{"id": "post:b"}, {"id": "post:c"}]
    assert cx.rows("desc") == [{"id": "post:a"}, {"id": "post:b"}]
    assert cx.rows("last") == [{"id": "post:a"}]


def test_top_k_with_offset_keeps_only_the_rows_in_the_window() -> None:
    cx = make_circuit()
    cx.ingest_batch([c("post", k, score=s) for k, s in zip("abc", [3, 2, 1], strict=True)])
    sql = "SELECT id FROM post ORDER BY score DESC LIMIT 1 OFFSET 1"
    assert payloads([cx.register_view("second", sql)]) == [
        streaming("second", 2, ("post:b", "created", 1))
    ]
    assert payloads(cx.ingest_single(c("post", "d", score=9))) == [
        streaming("second", 3, ("post:a", "created", 1), ("post:b", "deleted", 1))
    ]
    assert cx.rows("second") == [{"id": "post:a"}]


def test_limit_without_order_by_keeps_the_first_rows_by_row_key() -> None:
    cx = make_circuit()
    cx.ingest_batch([c("post", k, n=i) for i, k in enumerate("dbca")])
    cx.register_view("first", "SELECT id, n FROM post LIMIT 2")
    assert cx.members("first") == [("post:a", 1), ("post:b", 1)]
    assert payloads(cx.ingest_single(d("post", "a"))) == [
        streaming("first", 3, ("post:c", "created", 1), ("post:a", "deleted", 1))
    ]


def _forum(cx: Circuit) -> None:
    cx.ingest_batch(
        [
            c("user", "1", name="ann"),
            c("user", "2", name="bob"),
            c("thread", "1", title="t1", author="user:1"),
            c("thread", "2", title="t2", author="user:1"),
        ]
    )


def test_shared_nested_child_is_created_once_and_deleted_with_its_last_parent() -> None:
    cx = make_circuit()
    assert cx.register_view("v", AUTHOR) is None
    result = cx.ingest_batch(
        [
            c("user", "1", name="ann"),
            c("thread", "1", title="t1", author="user:1"),
            c("thread", "2", title="t2", author="user:1"),
        ]
    )
    assert payloads(result.updates) == [
        streaming(
            "v",
            2,
            ("thread:1", "created", 1),
            ("thread:2", "created", 1),
            ("user:1", "created", 1),
        )
    ]
    assert payloads(cx.ingest_single(d("thread", "1"))) == [
        streaming("v", 3, ("thread:1", "deleted", 1))
    ]
    assert cx.members("v") == [("thread:2", 1), ("user:1", 1)]
    assert payloads(cx.ingest_single(d("thread", "2"))) == [
        streaming("v", 4, ("thread:2", "deleted", 1), ("user:1", "deleted", 1))
    ]
    assert cx.members("v") == []


def test_nested_row_or_null_and_parent_reads_the_stored_field() -> None:
    cx = make_circuit()
    _forum(cx)
    cx.ingest_single(c("thread", "3", title="t3", author="user:9"))
    cx.register_view("v", AUTHOR)
    ann = {"id": "user:1", "name": "ann"}
    assert cx.rows("v") == by_canonical_json(
        [
            {"id": "thread:1", "title": "t1", "author": ann},
            {"id": "thread:2", "title": "t2", "author": ann},
            {"id": "thread:3", "title": "t3", "author": None},
        ]
    )
    assert cx.members("v") == [("thread:1", 1), ("thread:2", 1), ("thread:3", 1), ("user:1", 1)]
    limit1 = (
        "SELECT *, (SELECT * FROM user WHERE id = $parent.author LIMIT 1) AS author FROM thread"
    )
    cx.register_view("w", limit1)
    assert cx.rows("w") == cx.rows("v")
    assert payloads(cx.ingest_single(c("user", "9", name="zed"))) == [
        streaming("v", 5, ("user:9", "created", 1)),
        streaming("w", 5, ("user:9", "created", 1)),
    ]


def test_a_parent_update_that_leaves_children_alone_reports_only_the_parent() -> None:
    cx = make_circuit()
    _forum(cx)
    cx.register_view("v", AUTHOR)
    assert payloads(cx.ingest_single(u("thread", "1", title="new", author="user:1"))) == [
        streaming("v", 3, ("thread:1", "updated", 2))
    ]


def test_a_child_update_reports_only_the_child() -> None:
    cx = make_circuit()
    _forum(cx)
    cx.register_view("v", AUTHOR)
    assert payloads(cx.ingest_single(u("user", "1", name="amy"))) == [
        streaming("v", 3, ("user:1", "updated", 2))
    ]
    amy = {"id": "user:1", "name": "amy"}
    assert [row["author"] for row in cx.rows("v")] == [amy, amy]


def test_a_parent_update_that_switches_children() -> None:
    cx = make_circuit()
    _forum(cx)
    cx.register_view("v", AUTHOR)
    assert payloads(cx.ingest_single(u("thread", "2", title="t2", author="user:2"))) == [
        streaming("v", 3, ("user:2", "created", 1), ("thread:2", "updated", 2))
    ]


COMMENTS = (
    "SELECT id, (SELECT id, score FROM comment WHERE thread = $parent.id{order}) AS comments"
    " FROM thread"
)


def test_nested_arrays_follow_order_by_else_row_key_whatever_the_mutation_order() -> None:
    cx = make_circuit()
    cx.register_view("by_key", COMMENTS.format(order=""))
    cx.register_view("by_score", COMMENTS.format(order=" ORDER BY score DESC"))
    cx.ingest_single(c("thread", "1"))
    for key, score in [("c", 3), ("a", 1), ("b", 3)]:
        cx.ingest_single(c("comment", key, thread="thread:1", score=score))
    a, b, cc = (
        {"id": "comment:a", "score": 1},
        {"id": "comment:b", "score": 3},
        {"id": "comment:c", "score": 3},
    )
    assert cx.rows("by_key") == [{"id": "thread:1", "comments": [a, b, cc]}]
    assert cx.rows("by_score") == [{"id": "thread:1", "comments": [b, cc, a]}]
    cx.ingest_single(c("thread", "2"))
    assert cx.rows("by_key") == by_canonical_json(
        [{"id": "thread:1", "comments": [a, b, cc]}, {"id": "thread:2", "comments": []}]
    )


def test_rows_cut_off_by_a_nested_limit_are_not_members() -> None:
    cx = make_circuit()
    cx.ingest_single(c("thread", "1"))
    cx.ingest_batch(
        [c("comment", k, thread="thread:1", score=s) for k, s in zip("abc", [3, 2, 1], strict=True)]
    )
    cx.register_view("v", COMMENTS.format(order=" ORDER BY score DESC LIMIT 2"))
    assert cx.members("v") == [("comment:a", 1), ("comment:b", 1), ("thread:1", 1)]
    assert payloads(cx.ingest_single(u("comment", "c", thread="thread:1", score=9))) == [
        streaming("v", 4, ("comment:c", "created", 2), ("comment:b", "deleted", 1))
    ]
    assert cx.rows("v") == [
        {
            "id": "thread:1",
            "comments": [{"id": "comment:c", "score": 9}, {"id": "comment:a", "score": 3}],
        }
    ]


def test_nested_subqueries_nest_to_any_depth() -> None:
    view = (
        "SELECT id, (SELECT id, (SELECT name FROM user WHERE id = $parent.author)[0] AS author"
        " FROM comment WHERE thread = $parent.id) AS comments FROM thread"
    )
    cx = make_circuit()
    cx.register_view("deep", view)
    result = cx.ingest_batch(
        [
            c("user", "1", name="ann"),
            c("user", "2", name="bob"),
            c("thread", "1"),
            c("comment", "a", thread="thread:1", author="user:2"),
            c("comment", "b", thread="thread:1", author="user:3"),
        ]
    )
    assert payloads(result.updates) == [
        streaming(
            "deep",
            2,
            ("comment:a", "created", 1),
            ("comment:b", "created", 1),
            ("thread:1", "created", 1),
            ("user:2", "created", 1),
        )
    ]
    assert cx.rows("deep") == [
        {
            "id": "thread:1",
            "comments": [
                {"id": "comment:a", "author": {"name": "bob"}},
                {"id": "comment:b", "author": None},
            ],
        }
    ]
    assert payloads(cx.ingest_single(u("user", "2", name="bo"))) == [
        streaming("deep", 3, ("user:2", "updated", 2))
    ]


# --- WHERE subqueries: not members ------------------------------------------------------------

ADMIN_THREADS = "SELECT * FROM thread WHERE author IN (SELECT id FROM user WHERE role = 'admin')"


def test_in_subquery_is_a_semi_join_whose_records_are_not_members() -> None:
    cx = make_circuit()
    _forum(cx)
    cx.ingest_single(c("thread", "3", title="t3", author="user:2"))
    assert cx.register_view("v", ADMIN_THREADS) is None
    assert payloads(cx.ingest_single(u("user", "1", name="ann", role="admin"))) == [
        streaming("v", 4, ("thread:1", "created", 1), ("thread:2", "created", 1))
    ]
    assert cx.members("v") == [("thread:1", 1), ("thread:2", 1)]
    # A change to a user that keeps the predicate moves nothing and is no member's event.
    assert cx.ingest_single(u("user", "1", name="amy", role="admin")) == []
    assert payloads(cx.ingest_single(d("user", "1"))) == [
        streaming("v", 6, ("thread:1", "deleted", 1), ("thread:2", "deleted", 1))
    ]


def test_not_in_subquery_is_an_anti_join_with_sqlite_null_semantics() -> None:
    cx = make_circuit()
    cx.ingest_batch(
        [
            c("user", "1"),
            c("user", "2"),
            c("thread", "1", author="user:1"),
            c("thread", "2"),
        ]
    )
    view = "SELECT id FROM user WHERE id NOT IN (SELECT author FROM thread)"
    # The subquery yields a NULL, so NOT IN is NULL (not true) for user:2.
    assert cx.register_view("v", view) is None
    assert payloads(cx.ingest_single(d("thread", "2"))) == [
        streaming("v", 3, ("user:2", "created", 1))
    ]
    assert payloads(cx.ingest_single(d("thread", "1"))) == [
        streaming("v", 4, ("user:1", "created", 1))
    ]
    assert cx.rows("v") == [{"id": "user:1"}, {"id": "user:2"}]


def test_exists_subquery_with_select_1_is_a_semi_join() -> None:
    cx = make_circuit()
    _forum(cx)
    view = "SELECT id FROM user WHERE EXISTS (SELECT 1 FROM thread WHERE thread.author = user.id)"
    assert payloads([cx.register_view("v", view)]) == [streaming("v", 2, ("user:1", "created", 1))]


# --- Section 2: parameters, the subset, `*` ---------------------------------------------------


@pytest.mark.parametrize("param", ["$who", ":who"])
def test_parameters_are_bound_from_params(param: str) -> None:
    cx = make_circuit()
    _forum(cx)
    cx.ingest_single(c("thread", "3", author="user:2"))
    sql = f"SELECT id FROM thread WHERE author = {param}"
    assert payloads([cx.register_view("v", sql, params={"who": "user:2"})]) == [
        streaming("v", 3, ("thread:3", "created", 1))
    ]


def test_an_unbound_parameter_is_an_error_at_registration() -> None:
    cx = make_circuit()
    with pytest.raises(SqlError, match="who"):
        cx.register_view("v", "SELECT id FROM thread WHERE author = $who")
    assert "v" not in cx.view_names()


def test_sql_that_does_not_parse_is_an_sql_error_naming_the_view() -> None:
    with pytest.raises(SqlError, match="view broken"):
        make_circuit().register_view("broken", "SELECT id FROM WHERE")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id FROM user INTERSECT ALL SELECT id FROM thread",
        "SELECT u.id AS uid FROM user u RIGHT JOIN thread t ON u.id = t.author",
        "WITH x AS (SELECT * FROM user) SELECT * FROM x",
    ],
)
def test_sql_outside_the_subset_is_unsupported_and_names_the_view(sql: str) -> None:
    cx = make_circuit()
    with pytest.raises(UnsupportedSqlError) as info:
        cx.register_view("odd", sql)
    assert info.value.view == "odd"
    assert "view odd" in str(info.value)


def test_unsupported_sql_names_line_and_column() -> None:
    cx = make_circuit()
    sql = "SELECT id,\n  ROW_NUMBER() OVER (ORDER BY id) AS rn\nFROM user"
    with pytest.raises(UnsupportedSqlError) as info:
        cx.register_view("ranked", sql)
    err = info.value
    assert (err.view, err.line) == ("ranked", 2)
    assert err.col >= 1
    assert re.match(r"<sql>:2:\d+: view ranked: ", str(err)), str(err)


def test_nesting_deeper_than_the_parser_supports_is_unsupported() -> None:
    depth = 5000
    sql = "SELECT id FROM user WHERE id IN " + "(SELECT id FROM user WHERE id IN " * depth
    sql += "(SELECT id FROM user)" + ")" * depth
    cx = make_circuit()
    with pytest.raises(UnsupportedSqlError, match="view deep"):
        cx.register_view("deep", sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT age + 1 FROM user",
        "SELECT id, (SELECT name FROM user WHERE id = $parent.author)[0] FROM thread",
    ],
)
def test_an_expression_without_an_alias_asks_for_one(sql: str) -> None:
    with pytest.raises(SqlError) as info:
        make_circuit().register_view("v", sql)
    assert re.search(r"(?i)\balias|\bname\b", f"{info.value} {info.value.hint}"), str(info.value)


def test_star_brings_the_fields_a_record_has_and_explicit_items_replace_or_add() -> None:
    cx = make_circuit()
    cx.ingest_batch([c("user", "1", name="ann"), c("user", "2", name="bob", age=3)])
    cx.register_view("star", USERS)
    cx.register_view("upper", "SELECT *, UPPER(name) AS name FROM user")
    cx.register_view("extra", "SELECT *, age AS years FROM user")
    assert cx.rows("star") == [
        {"age": 3, "id": "user:2", "name": "bob"},
        {"id": "user:1", "name": "ann"},
    ]
    assert cx.rows("upper") == [
        {"age": 3, "id": "user:2", "name": "BOB"},
        {"id": "user:1", "name": "ANN"},
    ]
    assert cx.rows("extra") == [
        {"age": 3, "id": "user:2", "name": "bob", "years": 3},
        {"id": "user:1", "name": "ann", "years": None},
    ]


def test_a_dotted_name_reads_a_nested_field_and_a_missing_field_is_null() -> None:
    cx = make_circuit()
    cx.ingest_batch([c("user", "1", meta={"color": "red"}), c("user", "2")])
    cx.register_view("v", "SELECT id, meta.color AS color FROM user")
    assert cx.rows("v") == by_canonical_json(
        [{"color": None, "id": "user:2"}, {"color": "red", "id": "user:1"}]
    )


def test_an_unqualified_column_in_a_subquery_is_a_field_of_its_own_record() -> None:
    cx = make_circuit()
    cx.ingest_batch([c("user", "1", name="ann"), c("thread", "1", title="ann")])
    cx.register_view("v", "SELECT id, (SELECT id FROM user WHERE name = title) AS same FROM thread")
    assert cx.rows("v") == [{"id": "thread:1", "same": []}]
    assert cx.members("v") == [("thread:1", 1)]


def test_parent_in_a_level_with_a_join_is_unsupported() -> None:
    sql = (
        "SELECT t.id AS tid, (SELECT name FROM user WHERE id = $parent.author)[0] AS a"
        " FROM thread t JOIN comment m ON m.thread = t.id"
    )
    with pytest.raises(UnsupportedSqlError, match="view v"):
        make_circuit().register_view("v", sql)


def test_order_by_sees_output_names_and_where_sees_only_fields() -> None:
    cx = make_circuit()
    cx.ingest_batch([c("post", "a", score=1), c("post", "b", score=5), c("post", "c", score=-2)])
    sql = "SELECT id, 0 - score AS score FROM post WHERE score > 0 ORDER BY score LIMIT 1"
    cx.register_view("v", sql)
    assert cx.rows("v") == [{"id": "post:b", "score": -5}]


def test_like_is_case_sensitive() -> None:
    cx = make_circuit()
    cx.ingest_batch([c("user", "1", name="ann"), c("user", "2", name="Ann")])
    cx.register_view("v", "SELECT id FROM user WHERE name LIKE 'a%'")
    cx.register_view("w", "SELECT id FROM user WHERE name NOT LIKE 'a%'")
    assert cx.rows("v") == [{"id": "user:1"}]
    assert cx.rows("w") == [{"id": "user:2"}]


# --- Section 3.2: coalescing, modes, the dependency index -------------------------------------


def test_coalesce_create_then_updates_is_a_create_of_the_last_data() -> None:
    cx = make_circuit()
    cx.register_view("v", USERS)
    result = cx.ingest_batch([c("user", "a", n=1), u("user", "a", n=2), u("user", "a", n=3)])
    assert payloads(result.updates) == [streaming("v", 2, ("user:a", "created", 3))]
    assert (result.stats.entries_received, result.stats.entries_after_coalesce) == (3, 1)
    assert cx.rows("v") == [{"id": "user:a", "n": 3}]


def test_coalesce_create_then_delete_is_nothing() -> None:
    cx = make_circuit()
    cx.register_view("v", USERS)
    result = cx.ingest_batch([c("user", "a", n=1), u("user", "a", n=2), d("user", "a")])
    assert result.updates == []
    assert result.stats.entries_after_coalesce == 0
    assert cx.tables().get("user", {}) == {}


def test_coalesce_update_then_delete_is_a_delete() -> None:
    cx = make_circuit()
    cx.ingest_single(c("user", "a", age=20))
    cx.register_view("v", ADULTS)
    result = cx.ingest_batch([u("user", "a", age=30), d("user", "a")])
    assert payloads(result.updates) == [streaming("v", 3, ("user:a", "deleted", 1))]
    assert result.stats.entries_after_coalesce == 1


def test_coalesce_delete_then_create_is_an_update_with_version_one() -> None:
    cx = make_circuit()
    cx.ingest_batch([c("user", "a", age=20)])
    cx.ingest_single(u("user", "a", age=21))
    cx.register_view("v", USERS)
    result = cx.ingest_batch([d("user", "a"), c("user", "a", age=22)])
    assert payloads(result.updates) == [streaming("v", 4, ("user:a", "updated", 1))]
    assert result.stats.entries_after_coalesce == 1
    assert cx.rows("v") == [{"age": 22, "id": "user:a"}]


def test_a_record_re_created_at_the_same_version_with_other_data_is_updated() -> None:
    cx = make_circuit()
    cx.ingest_single(c("user", "a", age=20))
    cx.register_view("v", USERS)
    result = cx.ingest_batch([d("user", "a"), c("user", "a", age=21)])
    assert payloads(result.updates) == [streaming("v", 3, ("user:a", "updated", 1))]
    assert cx.rows("v") == [{"age": 21, "id": "user:a"}]


def test_delete_then_create_of_the_same_data_and_version_changes_nothing() -> None:
    cx = make_circuit()
    cx.ingest_single(c("user", "a", age=20))
    cx.register_view("v", USERS)
    assert cx.ingest_batch([d("user", "a"), c("user", "a", age=20)]).updates == []
    assert cx.members("v") == [("user:a", 1)]


STEPS = [
    c("user", "a", age=20),
    u("user", "a", age=10),
    u("user", "a", age=30),
    d("user", "a"),
    c("user", "a", age=40),
    u("user", "a", age=50),
    c("user", "b", version=4, age=1),
    u("user", "b", version=3, age=99),
    u("user", "b", age=19),
]


@pytest.mark.parametrize("coalesce", [True, False])
def test_a_batch_leaves_the_versions_of_one_by_one_application(coalesce: bool) -> None:
    single = make_circuit()
    single.register_view("v", ADULTS)
    for m in STEPS:
        single.ingest_single(m)
    batch = make_circuit(coalesce=coalesce)
    batch.register_view("v", ADULTS)
    result = batch.ingest_batch(STEPS)
    assert single.members("v") == batch.members("v") == [("user:a", 2), ("user:b", 5)]
    assert single.rows("v") == batch.rows("v")
    assert payloads(result.updates) == [
        streaming("v", 2, ("user:a", "created", 2), ("user:b", "created", 5))
    ]


def test_a_member_that_left_and_came_back_unchanged_is_absent() -> None:
    cx = make_circuit()
    _forum(cx)
    cx.register_view("v", AUTHOR)
    result = cx.ingest_batch(
        [
            u("thread", "1", title="t1", author="user:2"),
            u("thread", "2", title="t2", author="user:2"),
            u("thread", "1", title="t1", author="user:1"),
            u("thread", "2", title="t2", author="user:1"),
        ]
    )
    # user:1 left and came back with the same version: absent; so did user:2 (in and out).
    assert payloads(result.updates) == [
        streaming("v", 3, ("thread:1", "updated", 3), ("thread:2", "updated", 3))
    ]


def test_a_member_that_left_and_came_back_changed_is_updated() -> None:
    cx = make_circuit()
    cx.ingest_single(c("user", "a", age=20))
    cx.register_view("v", ADULTS)
    result = cx.ingest_batch([u("user", "a", age=10), u("user", "a", age=25)])
    assert payloads(result.updates) == [streaming("v", 3, ("user:a", "updated", 3))]


def test_events_are_ordered_created_updated_deleted_each_by_id() -> None:
    cx = make_circuit()
    cx.ingest_batch([c("user", k, age=20) for k in "bdfh"])
    cx.register_view("v", ADULTS)
    result = cx.ingest_batch(
        [
            d("user", "h"),
            u("user", "f", age=21),
            c("user", "g", age=30),
            d("user", "b"),
            c("user", "a", age=30),
            u("user", "d", age=22),
            c("user", "c", age=1),
        ]
    )
    assert payloads(result.updates) == [
        streaming(
            "v",
            3,
            ("user:a", "created", 1),
            ("user:g", "created", 1),
            ("user:d", "updated", 2),
            ("user:f", "updated", 2),
            ("user:b", "deleted", 1),
            ("user:h", "deleted", 1),
        )
    ]


def test_deferred_queues_and_flush_propagates_once() -> None:
    cx = make_circuit()
    cx.register_view("v", USERS)
    assert cx.ingest_deferred([c("user", "a", n=1), u("user", "a", n=2)]) is None
    assert cx.ingest_deferred([c("user", "b", n=1)]) is None
    assert cx.pending == 3
    assert cx.rows("v") == []
    result = cx.flush()
    assert cx.pending == 0
    assert payloads(result.updates) == [
        streaming("v", 2, ("user:a", "created", 2), ("user:b", "created", 1))
    ]
    assert (result.stats.entries_received, result.stats.entries_after_coalesce) == (3, 2)
    assert cx.seq == 2


def test_reaching_the_pending_limit_flushes_automatically() -> None:
    cx = make_circuit(pending_limit=3)
    cx.register_view("v", USERS)
    assert cx.ingest_deferred([c("user", "a"), c("user", "b")]) is None
    auto = cx.ingest_deferred([c("user", "c"), c("user", "d")])
    assert auto is not None
    assert cx.pending < 3
    assert auto.stats.entries_received + cx.pending == 4
    rest = cx.flush()
    created = [r["id"] for up in auto.updates + rest.updates for r in up.records or []]
    assert sorted(created) == ["user:a", "user:b", "user:c", "user:d"]
    assert cx.members("v") == [("user:a", 1), ("user:b", 1), ("user:c", 1), ("user:d", 1)]


def test_only_views_reading_a_changed_table_run() -> None:
    cx = make_circuit()
    cx.register_view("users", USERS)
    cx.register_view("threads", "SELECT * FROM thread")
    cx.register_view("nested", AUTHOR)
    cx.register_view("admin", ADMIN_THREADS)
    assert cx.dependency_index() == {
        "user": ["users", "nested", "admin"],
        "thread": ["threads", "nested", "admin"],
    }
    # "nested" reads user only through its nested author groups, and no thread shows
    # user:1: the change is routed past it
    cx.ingest_single(c("user", "1"))
    assert (cx.last_stats.tables_touched, cx.last_stats.views_impacted) == (1, 2)
    assert cx.last_stats.views_updated == 1
    cx.ingest_single(c("comment", "1"))
    assert (cx.last_stats.tables_touched, cx.last_stats.views_impacted) == (1, 0)
    result = cx.ingest_batch([c("user", "2"), c("thread", "1", author="user:2")])
    assert (result.stats.tables_touched, result.stats.views_impacted) == (2, 4)
    assert result.stats.views_updated == 3
    assert [up.view for up in result.updates] == ["users", "threads", "nested"]
    # thread:1 shows user:2 now: a change of user:2 reaches "nested"
    cx.ingest_single(u("user", "2", name="Bo"))
    assert cx.last_stats.views_impacted == 3
    assert [up.view for up in cx.ingest_single(u("user", "1", name="Al"))] == ["users"]


# --- Section 3.3: registration, seq, flat, replacing and unregistering ------------------------


def test_streaming_registration_on_empty_tables_emits_nothing_but_takes_a_seq() -> None:
    cx = make_circuit()
    assert cx.register_view("v", USERS) is None
    assert cx.seq == 1
    assert payloads(cx.ingest_single(c("user", "a"))) == [
        streaming("v", 2, ("user:a", "created", 1))
    ]


def test_flat_registration_always_emits_even_when_empty() -> None:
    cx = make_circuit()
    update = cx.register_view("v", USERS, format="flat")
    assert update is not None
    assert update.to_json() == {
        "format": "flat",
        "view": "v",
        "seq": 1,
        "result_hash": EMPTY_HASH,
        "result_data": [],
    }
    assert flat_hash([]) == EMPTY_HASH


def test_registration_on_existing_records_lists_every_member() -> None:
    cx = make_circuit()
    cx.ingest_batch([c("user", k, age=20) for k in "cab"] + [c("user", "d", age=1)])
    expected = [("user:a", 1), ("user:b", 1), ("user:c", 1)]
    assert payloads([cx.register_view("s", ADULTS)]) == [
        streaming("s", 2, *((i, "created", v) for i, v in expected))
    ]
    assert payloads([cx.register_view("f", ADULTS, format="flat")]) == [flat("f", 3, *expected)]


def test_flat_updates_carry_every_member_sorted_with_the_hash() -> None:
    cx = make_circuit()
    cx.ingest_batch([c("user", "b", age=20), c("user", "c", age=30)])
    cx.register_view("f", ADULTS, format="flat")
    assert payloads(cx.ingest_single(c("user", "a", age=40))) == [
        flat("f", 3, ("user:a", 1), ("user:b", 1), ("user:c", 1))
    ]
    assert payloads(cx.ingest_single(u("user", "b", age=21))) == [
        flat("f", 4, ("user:a", 1), ("user:b", 2), ("user:c", 1))
    ]
    assert cx.ingest_single(c("user", "z", age=1)) == []
    assert payloads(cx.ingest_single(d("user", "c"))) == [
        flat("f", 6, ("user:a", 1), ("user:b", 2))
    ]


def test_seq_counts_ingest_calls_and_registrations() -> None:
    cx = make_circuit()
    cx.register_view("v", USERS)
    assert payloads(cx.ingest_single(c("user", "a"))) == [
        streaming("v", 2, ("user:a", "created", 1))
    ]
    assert cx.ingest_single(c("thread", "1")) == []
    assert cx.seq == 3
    assert payloads(cx.ingest_batch([c("user", "b")]).updates) == [
        streaming("v", 4, ("user:b", "created", 1))
    ]
    assert payloads([cx.register_view("w", USERS)]) == [
        streaming("w", 5, ("user:a", "created", 1), ("user:b", "created", 1))
    ]
    cx.ingest_deferred([c("user", "c")])
    assert cx.seq == 5
    assert payloads(cx.flush().updates) == [
        streaming("v", 6, ("user:c", "created", 1)),
        streaming("w", 6, ("user:c", "created", 1)),
    ]
    assert cx.seq == 6


def test_updates_come_in_view_registration_order() -> None:
    cx = make_circuit()
    for name in ["b", "a", "c"]:
        cx.register_view(name, USERS)
    assert [up.view for up in cx.ingest_single(c("user", "x"))] == ["b", "a", "c"]
    assert cx.view_names() == ["b", "a", "c"]


def test_registering_an_existing_name_replaces_the_view_without_events() -> None:
    cx = make_circuit()
    cx.ingest_batch([c("user", "a", age=20), c("user", "b", age=10)])
    cx.register_view("v", ADULTS)
    assert payloads([cx.register_view("v", "SELECT * FROM user WHERE age < 18")]) == [
        streaming("v", 3, ("user:b", "created", 1))
    ]
    assert cx.members("v") == [("user:b", 1)]
    assert payloads(cx.ingest_single(u("user", "a", age=5))) == [
        streaming("v", 4, ("user:a", "created", 2))
    ]
    assert cx.view_names() == ["v"]


def test_unregister_ends_the_view_without_events() -> None:
    cx = make_circuit()
    cx.register_view("v", USERS)
    cx.register_view("w", ADULTS)
    cx.unregister_view("v")
    assert cx.view_names() == ["w"]
    assert cx.dependency_index() == {"user": ["w"]}
    assert payloads(cx.ingest_single(c("user", "a", age=30))) == [
        streaming("w", 3, ("user:a", "created", 1))
    ]


# --- Aggregates and DISTINCT: members are the output rows -------------------------------------


def test_aggregate_rows_are_members_with_their_own_ids_and_versions() -> None:
    cx = make_circuit()
    cx.ingest_batch(
        [
            c("comment", "1", thread="thread:1"),
            c("comment", "2", thread="thread:1"),
            c("comment", "3", thread="thread:2"),
        ]
    )
    sql = "SELECT thread, COUNT(*) AS n FROM comment GROUP BY thread"
    assert payloads([cx.register_view("counts", sql)]) == [
        streaming(
            "counts",
            2,
            ('counts:["thread:1"]', "created", 1),
            ('counts:["thread:2"]', "created", 1),
        )
    ]
    assert cx.rows("counts") == [{"n": 1, "thread": "thread:2"}, {"n": 2, "thread": "thread:1"}]
    # One ingest call that changes a row twice bumps its version once.
    result = cx.ingest_batch(
        [c("comment", "4", thread="thread:1"), c("comment", "5", thread="thread:1")]
    )
    assert payloads(result.updates) == [
        streaming("counts", 3, ('counts:["thread:1"]', "updated", 2))
    ]
    assert cx.ingest_single(u("comment", "1", thread="thread:1", body="x")) == []
    assert payloads(cx.ingest_single(d("comment", "3"))) == [
        streaming("counts", 5, ('counts:["thread:2"]', "deleted", 1))
    ]


def test_an_aggregate_without_group_by_has_one_row_even_over_no_rows() -> None:
    cx = make_circuit()
    sql = "SELECT COUNT(*) AS n, SUM(score) AS total FROM comment"
    assert payloads([cx.register_view("total", sql)]) == [
        streaming("total", 1, ("total:[]", "created", 1))
    ]
    assert cx.rows("total") == [{"n": 0, "total": None}]
    assert payloads(cx.ingest_single(c("comment", "1", score=4))) == [
        streaming("total", 2, ("total:[]", "updated", 2))
    ]
    assert cx.rows("total") == [{"n": 1, "total": 4}]


def test_distinct_rows_are_members_keyed_by_their_values() -> None:
    cx = make_circuit()
    cx.register_view("authors", "SELECT DISTINCT author FROM thread")
    result = cx.ingest_batch([c("thread", "1", author="user:1"), c("thread", "2", author="user:1")])
    assert payloads(result.updates) == [
        streaming("authors", 2, ('authors:["user:1"]', "created", 1))
    ]
    assert cx.ingest_single(d("thread", "1")) == []
    assert payloads(cx.ingest_single(d("thread", "2"))) == [
        streaming("authors", 4, ('authors:["user:1"]', "deleted", 1))
    ]


# --- Section 4: BatchStats and metrics --------------------------------------------------------


def test_batch_stats_fields() -> None:
    cx = make_circuit()
    cx.register_view("v", USERS)
    cx.ingest_batch([c("user", "e", n=1), c("user", "f", n=1)])
    result = cx.ingest_batch(
        [
            c("user", "a", n=1),
            u("user", "a", n=2),
            c("user", "b", n=1),
            u("user", "m", n=1),
            d("user", "z"),
            u("user", "f", n=1),
            d("user", "e"),
        ]
    )
    stats = result.stats
    assert stats.entries_received == 7
    assert stats.noop_updates == 1
    assert {k: v for k, v in stats.anomalies.items() if v} == {
        "update_missing": 1,
        "delete_missing": 1,
    }
    assert (stats.tables_touched, stats.views_impacted, stats.views_updated) == (1, 1, 1)
    assert stats.events == {"created": 3, "updated": 0, "deleted": 1}
    assert stats.duration_ns > 0
    assert stats.duration_ns % 1000 == 0  # the FakeClock's step


def _metrics_run() -> dict[str, Any]:
    cx = make_circuit(clock=FakeClock(step=7))
    cx.register_view("v", ADULTS)
    cx.register_view("n", AUTHOR)
    _forum(cx)
    cx.ingest_single(u("user", "1", name="amy", age=30))
    cx.ingest_batch([d("thread", "1"), c("comment", "1")])
    return cx.metrics().to_json()


def test_metrics_with_a_fake_clock_are_deterministic() -> None:
    first = _metrics_run()
    assert first == _metrics_run()
    assert set(first["views"]) == {"v", "n"}


def test_per_view_metrics_count_invocations_updates_and_events() -> None:
    cx = make_circuit()
    cx.register_view("v", ADULTS)
    before = cx.metrics().views["v"]
    cx.ingest_single(c("user", "a", age=30))
    cx.ingest_single(c("thread", "1"))
    cx.ingest_single(c("user", "b", age=3))
    after = cx.metrics().views["v"]
    assert after["invocations"] - before["invocations"] == 2
    assert after["updates_emitted"] - before["updates_emitted"] == 1
    assert after["events"]["created"] - before["events"]["created"] == 1
    assert (after["rows"], after["members"]) == (1, 1)
    assert after["time_ns"] > before["time_ns"]
