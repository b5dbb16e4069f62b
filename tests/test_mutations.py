"""The mutation log reader: SPEC section 1 validation, decoding rules, streaming."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import pickle
import sys
import threading
import tracemalloc
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from circuit.errors import MutationLogError
from circuit.mutations import (
    CREATE,
    DELETE,
    FLUSH,
    MAX_DEPTH,
    MAX_REJECTED_LINES,
    REGISTER,
    UNREGISTER,
    UPDATE,
    Mutation,
    _decode_fallback,
    canonical_id,
    decode_line,
    parse_entry,
    read_initial,
    read_log,
)

DATA = Path(__file__).parent / "data" / "logs"
FUZZ_EXAMPLES = 2000 if os.environ.get("SSP_FUZZ") else 100


def parse(obj: object) -> Mutation:
    return parse_entry(obj, path="log.jsonl", line=7)


def parse_error(obj: object) -> MutationLogError:
    with pytest.raises(MutationLogError) as info:
        parse(obj)
    return info.value


def decode(raw: bytes, line: int = 3) -> Any:
    return decode_line(raw, path="log.jsonl", line=line)


def decode_error(raw: bytes, line: int = 3) -> str:
    with pytest.raises(MutationLogError) as info:
        decode(raw, line)
    assert info.value.line == line
    return info.value.message


def nested(depth: int, leaf: str = "0") -> bytes:
    """An entry whose nesting is ``depth`` levels, the entry object being level 1."""
    inner = "[" * (depth - 1) + leaf + "]" * (depth - 1)
    return f'{{"a":{inner}}}'.encode()


def create(id: str = "1", **extra: Any) -> dict[str, Any]:
    return {"op": "CREATE", "table": "user", "id": id, "data": {"name": "ada"}, **extra}


def write_log(path: Path, lines: list[bytes]) -> str:
    path.write_bytes(b"".join(lines))
    return str(path)


# --- parse_entry: data ops --------------------------------------------------------------------


def test_create_entry_becomes_a_mutation_with_its_location() -> None:
    m = parse(create(version=3, ts=12.5))
    assert m == Mutation(
        CREATE, "user", "user:1", {"name": "ada"}, 3, 12.5, line=7, source="log.jsonl"
    )


def test_fast_built_mutation_is_an_ordinary_frozen_mutation() -> None:
    m = parse(create())
    twin = Mutation(CREATE, "user", "user:1", {"name": "ada"}, line=7, source="log.jsonl")
    assert m == twin
    assert repr(m) == repr(twin)
    assert dataclasses.astuple(m) == dataclasses.astuple(twin)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.op = UPDATE  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(m)) == m  # the process executor ships Mutations


@pytest.mark.parametrize("op", ["create", "Create", "cReAtE", "CREATE"])
def test_op_is_case_insensitive(op: str) -> None:
    assert parse({**create(), "op": op}).op == CREATE


@pytest.mark.parametrize(
    ("op", "expected"),
    [("update", UPDATE), ("delete", DELETE), ("flush", FLUSH), ("Unregister", UNREGISTER)],
)
def test_every_op_is_recognised_in_lower_case(op: str, expected: str) -> None:
    entry = {"op": op, "table": "user", "id": "1", "data": {}, "view": "v"}
    assert parse(entry).op == expected


def test_record_is_an_alias_of_data() -> None:
    entry = {"op": "UPDATE", "table": "user", "id": "1", "record": {"name": "bob"}}
    assert parse(entry).data == {"name": "bob"}


def test_data_is_passed_through_untouched() -> None:
    data = {"id": "something else", "nested": {"a": [1, 2]}}
    m = parse({"op": "CREATE", "table": "user", "id": "1", "data": data})
    assert m.data is data
    assert data == {"id": "something else", "nested": {"a": [1, 2]}}


def test_other_fields_are_ignored() -> None:
    assert parse(create(comment="hi", view=5, sql=None)) == parse(create())


def test_null_optional_fields_count_as_absent() -> None:
    m = parse(create(version=None, ts=None))
    assert (m.version, m.ts) == (None, None)


def test_version_zero_and_integer_ts_are_accepted() -> None:
    m = parse(create(version=0, ts=1700000000000))
    assert (m.version, m.ts) == (0, 1700000000000)


def test_delete_may_omit_data_and_ignores_any_data() -> None:
    assert parse({"op": "DELETE", "table": "user", "id": "1"}).data is None
    assert parse({"op": "DELETE", "table": "user", "id": "1", "data": 5}).data is None
    assert parse({"op": "DELETE", "table": "user", "id": "1", "version": 4}).version == 4


# --- ids --------------------------------------------------------------------------------------


def test_id_without_prefix_gets_the_table() -> None:
    assert parse(create("5")).id == "user:5"


def test_id_with_its_own_table_prefix_stays() -> None:
    assert parse(create("user:5")).id == "user:5"


def test_key_may_contain_colons() -> None:
    assert parse(create("user:a:b")).id == "user:a:b"


def test_id_of_another_table_is_bad_input() -> None:
    err = parse_error(create("post:5"))
    assert err.message == 'id "post:5" names table "post", not "user"'
    assert err.hint is not None


def test_id_with_an_empty_key_is_bad_input() -> None:
    assert parse_error(create("user:")).message == 'id "user:" has an empty key'


def test_canonical_id_handles_tables_named_with_a_colon() -> None:
    assert canonical_id("a:b", "5") == "a:b:5"
    assert canonical_id("a:b", "a:b:5") == "a:b:5"
    with pytest.raises(ValueError, match="names table 'a'"):
        canonical_id("a:b", "a:5")


# --- parse_entry: control ops -----------------------------------------------------------------


def test_register_with_every_field() -> None:
    entry = {
        "op": "register",
        "view": "v",
        "sql": "SELECT * FROM user",
        "params": {"x": 1},
        "format": "flat",
        "ts": 5,
    }
    assert parse(entry) == Mutation(
        REGISTER,
        view="v",
        sql="SELECT * FROM user",
        params={"x": 1},
        format="flat",
        ts=5,
        line=7,
        source="log.jsonl",
    )


def test_register_leaves_absent_options_unset() -> None:
    m = parse({"op": "REGISTER", "view": "v", "sql": "SELECT 1", "format": "streaming"})
    assert (m.params, m.format) == (None, "streaming")
    m = parse({"op": "REGISTER", "view": "v", "sql": "SELECT 1"})
    assert (m.params, m.format) == (None, None)


def test_unregister_and_flush() -> None:
    assert parse({"op": "UNREGISTER", "view": "v"}) == Mutation(
        UNREGISTER, view="v", line=7, source="log.jsonl"
    )
    assert parse({"op": "FLUSH"}) == Mutation(FLUSH, line=7, source="log.jsonl")
    assert parse({"op": "FLUSH", "ts": 1.5}).ts == 1.5


# --- parse_entry: bad input -------------------------------------------------------------------

BAD_ENTRIES = [
    ([1, 2], "expected a JSON object, got an array"),
    ("create", 'expected a JSON object, got "create"'),
    (None, "expected a JSON object, got null"),
    ({"table": "user"}, 'missing key "op"'),
    ({"op": 1}, '"op" must be a string, got 1'),
    ({"op": "MERGE"}, 'unknown op "MERGE"'),
    ({"op": "ﬂush"}, 'unknown op "ﬂush"'),
    ({"op": "CREATE", "id": "1", "data": {}}, 'missing key "table"'),
    (
        {"op": "CREATE", "table": 5, "id": "1", "data": {}},
        '"table" must be a non-empty string, got 5',
    ),
    (
        {"op": "CREATE", "table": "", "id": "1", "data": {}},
        '"table" must be a non-empty string, got ""',
    ),
    ({"op": "CREATE", "table": "user", "data": {}}, 'missing key "id"'),
    (
        {"op": "CREATE", "table": "user", "id": 5, "data": {}},
        '"id" must be a non-empty string, got 5',
    ),
    (
        {"op": "CREATE", "table": "user", "id": "", "data": {}},
        '"id" must be a non-empty string, got ""',
    ),
    ({"op": "DELETE", "table": "user"}, 'missing key "id"'),
    (create(version="x"), '"version" must be an integer >= 0, got "x"'),
    (create(version=-1), '"version" must be an integer >= 0, got -1'),
    (create(version=1.0), '"version" must be an integer >= 0, got 1.0'),
    (create(version=True), '"version" must be an integer >= 0, got true'),
    (create(ts="x"), '"ts" must be a finite number, got "x"'),
    (create(ts=False), '"ts" must be a finite number, got false'),
    (create(ts=float("nan")), '"ts" must be a finite number, got nan'),
    (create(ts=float("-inf")), '"ts" must be a finite number, got -inf'),
    ({"op": "CREATE", "table": "user", "id": "1"}, 'missing key "data" (or its alias "record")'),
    ({"op": "UPDATE", "table": "user", "id": "1"}, 'missing key "data" (or its alias "record")'),
    ({**create(), "data": [1]}, '"data" must be an object, got an array'),
    ({**create(), "data": None}, '"data" must be an object, got null'),
    (
        {"op": "CREATE", "table": "user", "id": "1", "record": "x"},
        '"record" must be an object, got "x"',
    ),
    ({**create(), "record": {}}, 'give "data" or its alias "record", not both'),
    ({"op": "REGISTER", "sql": "SELECT 1"}, 'missing key "view"'),
    ({"op": "REGISTER", "view": 3, "sql": "SELECT 1"}, '"view" must be a non-empty string, got 3'),
    ({"op": "REGISTER", "view": "v"}, 'missing key "sql"'),
    ({"op": "REGISTER", "view": "v", "sql": ["SELECT 1"]}, '"sql" must be a string, got an array'),
    (
        {"op": "REGISTER", "view": "v", "sql": "SELECT 1", "params": [1]},
        '"params" must be an object, got an array',
    ),
    (
        {"op": "REGISTER", "view": "v", "sql": "SELECT 1", "format": "Flat"},
        '"format" must be "streaming" or "flat", got "Flat"',
    ),
    ({"op": "REGISTER", "view": "v", "sql": "SELECT 1", "ts": "now"}, '"ts" must be a finite'),
    ({"op": "UNREGISTER"}, 'missing key "view"'),
    ({"op": "UNREGISTER", "view": ""}, '"view" must be a non-empty string, got ""'),
    ({"op": "FLUSH", "ts": "x"}, '"ts" must be a finite number, got "x"'),
]


@pytest.mark.parametrize(("entry", "message"), BAD_ENTRIES)
def test_bad_entry_names_the_problem_and_the_location(entry: object, message: str) -> None:
    err = parse_error(entry)
    assert err.message.startswith(message)
    assert (err.path, err.line) == ("log.jsonl", 7)
    assert str(err) == f"log.jsonl:7: {err.message}"


def test_long_values_are_shortened_in_messages() -> None:
    err = parse_error(create(version="x" * 500))
    assert len(err.message) < 120
    assert err.message.endswith("...")


# --- decoding ---------------------------------------------------------------------------------


def test_blank_lines_decode_to_nothing() -> None:
    for raw in (b"", b"\n", b"   \n", b"\t \r\n", b" "):
        assert decode(raw) is None


def test_crlf_line_ending_is_accepted() -> None:
    assert decode(b'{"a":1}\r\n') == {"a": 1}


def test_not_json_is_bad_input() -> None:
    assert decode_error(b'{"op": "CREATE",\n').startswith("not valid JSON: ")
    assert decode_error(b"{'op': 'CREATE'}\n").startswith("not valid JSON: ")
    assert decode_error(b'{"a":1}{"b":2}\n').startswith("not valid JSON: ")
    assert decode_error(b"\x0b\n").startswith("not valid JSON: ")


@pytest.mark.parametrize(
    ("raw", "kind"), [(b"null", "null"), (b"[1, 2]", "an array"), (b'"x"', '"x"'), (b"5", "5")]
)
def test_json_that_is_not_an_object_is_bad_input(raw: bytes, kind: str) -> None:
    assert decode_error(raw + b"\n") == f"expected a JSON object, got {kind}"


@pytest.mark.parametrize("raw", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"1E999"])
def test_non_finite_numbers_are_bad_input(raw: bytes) -> None:
    assert decode_error(b'{"a":[1, ' + raw + b"]}").startswith("non-finite number")


def test_underflow_is_zero_not_an_error() -> None:
    assert decode(b'{"a":1e-400}') == {"a": 0.0}


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("18446744073709551616", 18446744073709551616.0),
        ("-9223372036854775809", -9223372036854775809.0),
        ("1" + "0" * 30, 1e30),
    ],
)
def test_integers_beyond_64_bits_are_floats(literal: str, value: float) -> None:
    obj = decode(f'{{"a":{literal},"b":"{literal}"}}'.encode())
    assert type(obj["a"]) is float
    assert obj == {"a": value, "b": literal}


def test_integers_within_64_bits_stay_integers() -> None:
    obj = decode(b'{"a":18446744073709551615,"b":-9223372036854775808}')
    assert obj == {"a": 2**64 - 1, "b": -(2**63)}
    assert type(obj["a"]) is int


def test_lone_surrogates_are_bad_input() -> None:
    for escaped in (b"\\ud800", b"\\udc00", b"x\\ud83dy"):
        message = decode_error(b'{"a":"' + escaped + b'"}')
        assert message.startswith("string with a lone surrogate") or "surrogate" in message
    assert decode(b'{"a":"\\ud83d\\ude00"}') == {"a": "\U0001f600"}


def test_nul_characters_are_allowed() -> None:
    assert decode(b'{"a\\u0000":"x\\u0000y"}') == {"a\x00": "x\x00y"}


def test_invalid_utf8_is_bad_input() -> None:
    assert decode_error(b'{"a":"\xff"}') == "invalid UTF-8: byte 0xff at offset 6"
    assert decode_error(b'{"a":"\xed\xa0\x80"}').startswith("invalid UTF-8")


def test_byte_order_mark_is_bad_input_within_a_line() -> None:
    assert decode_error(b'\xef\xbb\xbf{"a":1}\n').startswith("not valid JSON")


def test_depth_limit_is_1000_levels() -> None:
    assert decode(nested(MAX_DEPTH))["a"] is not None
    assert decode_error(nested(MAX_DEPTH + 1)) == "JSON nested deeper than 1000 levels"


@pytest.mark.parametrize("depth", [1025, 5000, 200_000])
def test_very_deep_nesting_is_bad_input_not_a_crash(depth: int) -> None:
    assert decode_error(nested(depth)) == "JSON nested deeper than 1000 levels"
    assert decode_error(b'{"a":' + b"[" * depth) == "JSON nested deeper than 1000 levels"


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = "[" * 3000
    assert decode(f'{{"a":"{text}","b":[1,{{"x":"]"}}]}}'.encode())["a"] == text


# The fallback path runs only after orjson refused a line. Which lines orjson refuses depends
# on its release (before 3.11 it refused integers beyond 64 bits), so it is tested directly.


def fallback(raw: bytes) -> Any:
    refusal = orjson.JSONDecodeError("number out of range", raw.decode("utf-8", "replace"), 0)
    return _decode_fallback(raw, refusal, path="log.jsonl", line=3)


def test_fallback_reads_big_integers_as_floats() -> None:
    big = "1" + "0" * 25
    obj = fallback(f'{{"a":[{big},-{big},2.5e3,7],"s":"{big}"}}'.encode())
    assert obj == {"a": [1e25, -1e25, 2500.0, 7], "s": big}
    assert type(obj["a"][3]) is int


def test_fallback_checks_depth_without_recursing() -> None:
    big = "1" + "0" * 25
    assert fallback(nested(MAX_DEPTH, big))["a"] is not None
    for depth in (MAX_DEPTH + 1, 100_000):
        with pytest.raises(MutationLogError, match="nested deeper than 1000"):
            fallback(nested(depth, big))


def test_fallback_reports_orjsons_reason_when_it_finds_nothing_specific() -> None:
    with pytest.raises(MutationLogError, match=r"not valid JSON: number out of range \(column 1\)"):
        fallback(b'{"a":1}')


@given(st.binary(max_size=200))
@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
def test_any_bytes_decode_or_raise_a_log_error(raw: bytes) -> None:
    """Only blank lines decode to nothing; anything else is an object or a located error."""
    try:
        value = decode(raw)
    except MutationLogError as err:
        assert err.message
        assert err.line == 3
    else:
        assert (value is None) == (not raw.strip(b" \t\r\n"))
        assert value is None or type(value) is dict


INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | INT64
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)


@given(st.dictionaries(st.text(), JSON_VALUES, max_size=5))
@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
def test_valid_json_objects_round_trip(obj: dict[str, Any]) -> None:
    assert decode(orjson.dumps(obj)) == obj


# --- read_log ---------------------------------------------------------------------------------

MIXED = DATA / "mixed.jsonl"
MIXED_ACCEPTED = [1, 4, 9, 13]
MIXED_REJECTED = [3, 5, 6, 7, 8, 10, 11]


def test_reader_numbers_lines_from_one_counting_blank_lines(tmp_path: Path) -> None:
    path = write_log(
        tmp_path / "log.jsonl",
        [
            orjson.dumps(create("1")) + b"\n",
            b"\n",
            b"  \n",
            orjson.dumps({"op": "DELETE", "table": "user", "id": "1"}) + b"\r\n",
            orjson.dumps({"op": "FLUSH"}),
        ],
    )
    with read_log(path) as reader:
        got = [(m.op, m.id, m.line, m.source) for m in reader]
        assert reader.line == 5
        assert reader.bytes_read == reader.total_bytes == os.path.getsize(path)
    assert got == [
        (CREATE, "user:1", 1, path),
        (DELETE, "user:1", 4, path),
        (FLUSH, None, 5, path),
    ]


def test_byte_order_mark_opening_the_file_is_skipped(tmp_path: Path) -> None:
    path = write_log(tmp_path / "log.jsonl", [b"\xef\xbb\xbf" + orjson.dumps(create()) + b"\n"])
    with read_log(path) as reader:
        assert [m.id for m in reader] == ["user:1"]
        assert reader.bytes_read == reader.total_bytes


def test_byte_order_mark_alone_is_a_blank_first_line(tmp_path: Path) -> None:
    path = write_log(tmp_path / "log.jsonl", [b"\xef\xbb\xbf\n", orjson.dumps(create()) + b"\n"])
    with read_log(path) as reader:
        assert [m.line for m in reader] == [2]


def test_fail_mode_raises_at_the_first_bad_line() -> None:
    reader = read_log(str(MIXED))
    seen: list[int] = []
    with reader, pytest.raises(MutationLogError) as info:
        seen.extend(m.line for m in reader)
    assert seen == [1]
    assert str(info.value).startswith(f"{MIXED}:3: not valid JSON")
    assert reader.line == 3
    assert reader.rejected == 0


def test_skip_mode_copies_rejected_lines_verbatim(tmp_path: Path) -> None:
    rejects = tmp_path / "rejects.jsonl"
    with read_log(MIXED, on_error="skip", rejects=str(rejects)) as reader:
        got = [m.line for m in reader]
    assert got == MIXED_ACCEPTED
    assert reader.rejected == len(MIXED_REJECTED)
    assert reader.rejected_lines == MIXED_REJECTED
    raw_lines = MIXED.read_bytes().splitlines(keepends=True)
    assert rejects.read_bytes() == b"".join(raw_lines[n - 1] for n in MIXED_REJECTED)


def test_skip_mode_without_a_rejects_path_only_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with read_log(str(MIXED), on_error="skip") as reader:
        assert [m.line for m in reader] == MIXED_ACCEPTED
    assert reader.rejected_lines == MIXED_REJECTED
    assert list(tmp_path.iterdir()) == []
    assert not Path(f"{MIXED}.rejects.jsonl").exists()


def test_rejects_file_is_created_only_when_a_line_is_rejected(tmp_path: Path) -> None:
    path = write_log(tmp_path / "log.jsonl", [orjson.dumps(create()) + b"\n"])
    rejects = tmp_path / "rejects.jsonl"
    with read_log(path, on_error="skip", rejects=str(rejects)) as reader:
        assert len(list(reader)) == 1
    assert not rejects.exists()


def test_rejected_last_line_without_newline_gets_one(tmp_path: Path) -> None:
    path = write_log(tmp_path / "log.jsonl", [b"oops\n", b"[1]"])
    rejects = tmp_path / "rejects.jsonl"
    with read_log(path, on_error="skip", rejects=str(rejects)) as reader:
        assert list(reader) == []
    assert rejects.read_bytes() == b"oops\n[1]\n"


def test_rejected_line_numbers_are_capped(tmp_path: Path) -> None:
    path = write_log(tmp_path / "log.jsonl", [b"x\n"] * (MAX_REJECTED_LINES + 5))
    with read_log(path, on_error="skip") as reader:
        assert list(reader) == []
    assert reader.rejected == MAX_REJECTED_LINES + 5
    assert reader.rejected_lines == list(range(1, MAX_REJECTED_LINES + 1))


def test_rejects_file_may_not_be_the_log(tmp_path: Path) -> None:
    path = write_log(tmp_path / "log.jsonl", [b"x\n"])
    with pytest.raises(MutationLogError, match="rejects file is the log itself"):
        read_log(path, on_error="skip", rejects=str(tmp_path / "." / "log.jsonl"))
    assert Path(path).read_bytes() == b"x\n"


def test_unknown_on_error_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="on_error"):
        read_log(str(MIXED), on_error="ignore")  # type: ignore[arg-type]


def test_missing_log_is_a_log_error(tmp_path: Path) -> None:
    with pytest.raises(MutationLogError, match="cannot read the log"):
        read_log(str(tmp_path / "nope.jsonl"))


def test_reader_reads_lazily(tmp_path: Path) -> None:
    lines = [orjson.dumps(create(str(i))) + b"\n" for i in range(10_000)]
    path = write_log(tmp_path / "log.jsonl", lines)
    with read_log(path) as reader:
        stream = iter(reader)
        for expected in (1, 2, 3):
            assert next(stream).line == expected
            assert reader.bytes_read == sum(map(len, lines[:expected]))
        assert reader.total_bytes == sum(map(len, lines))


def test_reading_keeps_nothing_per_line(tmp_path: Path) -> None:
    """Peak memory stays far below the log's size (each entry is dropped after use)."""
    lines = [orjson.dumps(create(str(i), note="x" * 60)) + b"\n" for i in range(10_000)]
    lines[5::7] = [b"bad\n"] * len(lines[5::7])
    path = write_log(tmp_path / "log.jsonl", lines)
    tracemalloc.start()
    try:
        with read_log(path, on_error="skip") as reader:
            for _ in reader:
                pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reader.rejected == len(lines[5::7])
    assert peak < os.path.getsize(path) / 8


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_reader_yields_before_the_input_is_complete(tmp_path: Path) -> None:
    """A writer holds back the rest of the log until the first entry is read.

    A reader that read ahead to the end would get its first entry only after
    the writer gave up waiting, and then never see the other 999.
    """
    fifo = tmp_path / "log.fifo"
    os.mkfifo(fifo)
    first_read = threading.Event()

    def writer() -> None:
        with contextlib.suppress(BrokenPipeError), open(fifo, "wb") as out:
            out.write(orjson.dumps(create("1")) + b"\n")
            out.flush()
            if first_read.wait(timeout=30):
                out.writelines(orjson.dumps(create(str(i))) + b"\n" for i in range(2, 1001))

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        with read_log(str(fifo)) as reader:
            assert reader.total_bytes is None
            stream = iter(reader)
            assert next(stream).id == "user:1"
            first_read.set()
            assert sum(1 for _ in stream) == 999
            assert reader.line == 1000
    finally:
        first_read.set()
        thread.join()


class FakeStdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)


def test_dash_reads_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    data = orjson.dumps(create()) + b"\n" + b"bad\n"
    monkeypatch.setattr(sys, "stdin", FakeStdin(data))
    with read_log("-", on_error="skip") as reader:
        mutations = list(reader)
    assert [(m.id, m.line, m.source) for m in mutations] == [("user:1", 1, "<stdin>")]
    assert reader.total_bytes is None
    assert reader.rejected_lines == [2]
    assert not sys.stdin.buffer.closed


def test_stdin_errors_name_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", FakeStdin(b"\n{}\n"))
    with read_log("-") as reader, pytest.raises(MutationLogError, match=r"^<stdin>:2: missing"):
        list(reader)


def test_close_closes_the_log(tmp_path: Path) -> None:
    path = write_log(tmp_path / "log.jsonl", [b"x\n"])
    reader = read_log(path)
    reader.close()
    reader.close()
    with pytest.raises(ValueError):
        list(reader)


# --- read_initial -----------------------------------------------------------------------------


def test_initial_file_accepts_records_and_create_entries(tmp_path: Path) -> None:
    path = write_log(
        tmp_path / "initial.jsonl",
        [
            b'{"table":"user","id":"1","data":{"name":"ada"}}\n',
            b"\n",
            b'{"table":"user","id":"user:2","record":{"name":"bob"},"version":4}\n',
            b'{"op":"create","table":"post","id":"7","data":{}}\n',
        ],
    )
    got = list(read_initial(path))
    assert got == [
        Mutation(CREATE, "user", "user:1", {"name": "ada"}, line=1, source=path),
        Mutation(CREATE, "user", "user:2", {"name": "bob"}, 4, line=3, source=path),
        Mutation(CREATE, "post", "post:7", {}, line=4, source=path),
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b'{"op":"UPDATE","table":"user","id":"1","data":{}}', "records or CREATE entries"),
        (b'{"table":"user","id":"post:1","data":{}}', "names table"),
        (b'{"table":"user","id":"1"}', 'missing key "data"'),
        (b'{"table":"user","id":"1","data":{"x":NaN}}', "non-finite"),
        (b'"user:1"', "expected a JSON object"),
    ],
)
def test_initial_file_bad_lines_raise(tmp_path: Path, line: bytes, message: str) -> None:
    path = write_log(tmp_path / "initial.jsonl", [b'{"table":"u","id":"1","data":{}}\n', line])
    stream = read_initial(path)
    assert next(stream).id == "u:1"
    with pytest.raises(MutationLogError, match=message) as info:
        next(stream)
    assert (info.value.path, info.value.line) == (path, 2)
