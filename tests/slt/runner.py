"""Run SQLite's sqllogictest corpus through ssp views.

Each file is read record by record. ``statement`` records run in SQLite (the
tables' truth); every ``query`` is registered as an ssp view *before* the
tables it reads are filled: the circuit then receives the difference between
its tables and SQLite's as mutations (each table row a record with a
synthetic id in rowid order), with a third of the rows deleted and re-inserted
on the way, so the answer is maintained, not computed once. The view's rows
are formatted as sqllogictest's SQLite driver prints them (``I`` ``%d``,
``R`` ``%.3f``, ``T`` text, ``NULL``, ``(empty)``; ``rowsort``, ``valuesort``,
``nosort``; MD5 of the values where the file records a hash) and compared
with the recorded answer.

Translation from the corpus's SQL to a view (what any user of a schemaless
engine would write): select items without a usable name get aliases
``_c0``, ``_c1``... (ssp asks for one); in a query with several sources, an
unqualified column is qualified with the one source whose table has it, and
``*`` is spelled out (records carry no schema). Rows come back as JSON
objects and are put back in select-list order.

Run: ``python -m tests.slt.runner [FILES...]`` (default: the whole corpus
under ``SSP_SLT_DIR``, else ``../shared/sqllogictest``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from circuit import Circuit, Mutation
from circuit.errors import CircuitError, SqlError, UnsupportedSqlError

DEFAULT_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "sqllogictest"
FAST_FILES = (
    "select1.test",
    "select2.test",
    "select3.test",
    "select4.test",
    "select5.test",
    "evidence/in1.test",
    "evidence/in2.test",
    "evidence/slt_lang_aggfunc.test",
)
ENGINE = "sqlite"


def corpus_dir() -> Path:
    """The corpus directory (``SSP_SLT_DIR``, else ``../shared/sqllogictest``)."""
    return Path(os.environ.get("SSP_SLT_DIR") or DEFAULT_DIR).resolve()


# records ------------------------------------------------------------------------------
@dataclass
class Record:
    kind: str  # statement | query | halt | hash-threshold
    line: int
    sql: str = ""
    expect_error: bool = False
    types: str = ""
    sort: str = "nosort"
    expected: list[str] = field(default_factory=list)


def read_records(path: Path) -> Iterator[Record]:
    """The records of a ``.test`` file that apply to SQLite, in order."""
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    index = 0
    while index < len(lines):
        line = lines[index].rstrip("\r")
        if not line.strip() or line.startswith("#"):
            index += 1
            continue
        start = index + 1
        skip = False
        while line.startswith(("skipif", "onlyif")):
            word, _, rest = line.partition(" ")
            engine = rest.split()[0] if rest.split() else ""
            if word == "skipif" and engine == ENGINE:
                skip = True
            if word == "onlyif" and engine != ENGINE:
                skip = True
            index += 1
            line = lines[index].rstrip("\r")
        words = line.split()
        index += 1
        if words[0] == "halt":
            if not skip:
                yield Record("halt", start)
                return
            continue
        if words[0] == "hash-threshold":
            continue
        body: list[str] = []
        while index < len(lines) and lines[index].strip() and lines[index].rstrip("\r") != "----":
            body.append(lines[index].rstrip("\r"))
            index += 1
        expected: list[str] = []
        if index < len(lines) and lines[index].rstrip("\r") == "----":
            index += 1
            while index < len(lines) and lines[index].strip():
                expected.append(lines[index].rstrip("\r"))
                index += 1
        if skip:
            continue
        sql = "\n".join(body)
        if words[0] == "statement":
            yield Record("statement", start, sql, expect_error=words[1:2] == ["error"])
        elif words[0] == "query":
            yield Record(
                "query",
                start,
                sql,
                types=words[1] if len(words) > 1 else "",
                sort=words[2] if len(words) > 2 else "nosort",
                expected=expected,
            )


# formatting as the SQLite driver does ---------------------------------------------------
class Formatter:
    """Values to sqllogictest text; conversions of text to numbers go through SQLite."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def value(self, value: Any, kind: str) -> str:
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            value = int(value)
        if kind == "I":
            if isinstance(value, int):
                return str(value)
            if isinstance(value, float):
                return str(self._sql("SELECT CAST(? AS INTEGER)", value))
            return str(self._sql("SELECT CAST(? AS INTEGER)", _text(value)))
        if kind == "R":
            if isinstance(value, (int, float)):
                return f"{float(value):.3f}"
            return f"{float(self._sql('SELECT CAST(? AS REAL)', _text(value))):.3f}"
        if isinstance(value, float):
            text = str(self._sql("SELECT CAST(? AS TEXT)", value))
        else:
            text = _text(value)
        if text == "":
            return "(empty)"
        return "".join(ch if " " <= ch <= "~" else "@" for ch in text)

    def _sql(self, sql: str, value: Any) -> Any:
        return self.db.execute(sql, (value,)).fetchone()[0]


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        import orjson

        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return str(value)


def result_lines(rows: list[list[str]], sort: str) -> list[str]:
    if sort == "rowsort":
        rows = sorted(rows)
    values = [v for row in rows for v in row]
    if sort == "valuesort":
        values.sort()
    return values


def matches(values: list[str], expected: list[str], ncols: int) -> bool:
    if len(expected) == 1 and " values hashing to " in expected[0]:
        count, _, digest = expected[0].partition(" values hashing to ")
        md5 = hashlib.md5("".join(v + "\n" for v in values).encode()).hexdigest()
        return int(count) == len(values) and md5 == digest.strip()
    if values == expected:
        return True
    # some files print a row per line, values separated by spaces
    if ncols > 1 and len(expected) * ncols == len(values):
        rows = [" ".join(values[i : i + ncols]) for i in range(0, len(values), ncols)]
        return rows == expected
    return False


# translating a query into a view -------------------------------------------------------
class Untranslatable(Exception):
    """The runner cannot name the query's outputs (counted as a refusal)."""


def translate(sql: str, schema: dict[str, list[str]]) -> tuple[str, list[str], bool]:
    """The view's SQL, the output names in select-list order, whether it has ORDER BY."""
    tree = sqlglot.parse_one(sql, read="sqlite")
    ordered = tree.args.get("order") is not None
    first = tree
    while isinstance(first, exp.SetOperation):
        first = first.this
    if isinstance(first, exp.Subquery):
        first = first.unnest()
    for select in list(tree.find_all(exp.Select)):
        _qualify(select, schema)
    names: list[str] = []
    if isinstance(first, exp.Select):
        names = _name_items(first, schema, top=True)
    if isinstance(tree, exp.SetOperation):
        for select in _set_members(tree):
            if select is not first:
                _name_items(select, schema, top=False, names=names)
    return tree.sql(dialect="sqlite"), names, ordered


def _set_members(node: exp.Expression) -> list[exp.Select]:
    if isinstance(node, exp.SetOperation):
        return _set_members(node.this) + _set_members(node.expression)
    if isinstance(node, exp.Subquery):
        return _set_members(node.this)
    return [node] if isinstance(node, exp.Select) else []


def _sources(select: exp.Select) -> list[tuple[str, str]]:
    out = []
    from_ = select.args.get("from_") or select.args.get("from")
    items = ([from_.this] if from_ is not None else []) + [
        j.this for j in select.args.get("joins") or []
    ]
    for item in items:
        if isinstance(item, exp.Table):
            out.append((item.name, item.alias or item.name))
    return out


def _qualify(select: exp.Select, schema: dict[str, list[str]]) -> None:
    """Qualify unqualified columns of a multi-source SELECT and spell out its ``*``."""
    sources = _sources(select)
    if len(sources) < 2:
        if sources and select.args.get("distinct"):
            _expand_stars(select, sources, schema)  # DISTINCT needs named columns
        return
    owners: dict[str, list[str]] = {}
    for table, alias in sources:
        for column in schema.get(table.lower(), []):
            owners.setdefault(column.lower(), []).append(alias)
    for column in list(select.find_all(exp.Column)):
        if column.table or isinstance(column.this, exp.Star):
            continue
        scope = column.find_ancestor(exp.Select)
        if scope is not select:
            continue
        found = owners.get(column.name.lower(), [])
        if len(found) == 1:
            column.set("table", exp.to_identifier(found[0]))
    _expand_stars(select, sources, schema)


def _expand_stars(
    select: exp.Select, sources: list[tuple[str, str]], schema: dict[str, list[str]]
) -> None:
    expanded: list[exp.Expression] = []
    changed = False
    for item in select.expressions:
        if isinstance(item, exp.Star) or (
            isinstance(item, exp.Column) and isinstance(item.this, exp.Star)
        ):
            wanted = [a for _, a in sources] if isinstance(item, exp.Star) else [item.table]
            for table, alias in sources:
                if alias in wanted:
                    for column in schema.get(table.lower(), []):
                        expanded.append(exp.column(column, table=alias))
            changed = True
        else:
            expanded.append(item)
    if changed:
        select.set("expressions", expanded)


def _name_items(
    select: exp.Select,
    schema: dict[str, list[str]],
    *,
    top: bool,
    names: list[str] | None = None,
) -> list[str]:
    """Give every select item a unique output name; returns them in order."""
    out: list[str] = []
    items: list[exp.Expression] = []
    taken: set[str] = set()
    for index, item in enumerate(select.expressions):
        if isinstance(item, exp.Star):
            sources = _sources(select)
            if len(sources) != 1:
                raise Untranslatable("* without a single source")
            for column in schema.get(sources[0][0].lower(), []):
                out.append(column)
                taken.add(column.lower())
            items.append(item)
            continue
        if names is not None and not top:
            # a later member of a set operation: SQL takes the first member's names
            target = item.this if isinstance(item, exp.Alias) else item
            wanted = names[len(out)] if len(out) < len(names) else f"_c{index}"
            if isinstance(target, exp.Column) and target.name == wanted:
                items.append(target)
            else:
                items.append(exp.alias_(target, wanted, quoted=True))
            out.append(wanted)
            continue
        name = None
        if isinstance(item, exp.Alias) and item.alias:
            name = item.alias
        elif isinstance(item, exp.Column) and item.name:
            name = item.name
        if name is None or name.lower() in taken:
            name = f"_c{index}"
            target = item.this if isinstance(item, exp.Alias) else item
            item = exp.alias_(target, name, quoted=True)
        taken.add(name.lower())
        out.append(name)
        items.append(item)
    select.set("expressions", items)
    return out


# running a file --------------------------------------------------------------------------
@dataclass
class FileResult:
    path: str
    queries: int = 0
    planned: int = 0
    agree: int = 0
    wrong: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    refusals: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def merge(self, other: FileResult) -> None:
        self.queries += other.queries
        self.planned += other.planned
        self.agree += other.agree
        self.wrong += other.wrong
        self.failed += other.failed
        self.refusals.update(other.refusals)
        self.seconds += other.seconds


@dataclass
class _Pending:
    record: Record
    view: str
    names: list[str]
    ordered: bool


class FileRunner:
    """One ``.test`` file through one circuit (see the module docstring)."""

    def __init__(self, path: Path, label: str, limit: int | None = None):
        self.path = path
        self.result = FileResult(label)
        self.db = sqlite3.connect(":memory:")
        self.format = Formatter(self.db)
        self.circuit = Circuit(dialect="sqlite")
        self.mirror: dict[str, dict[str, dict[str, Any]]] = {}  # the circuit's tables
        self.limit = limit
        self.counter = 0
        self._schema_cache: dict[str, list[str]] | None = None

    def run(self) -> FileResult:
        started = time.perf_counter()
        pending: list[_Pending] = []
        for record in read_records(self.path):
            if record.kind == "halt":
                break
            if record.kind == "statement":
                if pending:
                    self._settle(pending)
                    pending = []
                self._statement(record)
                continue
            if self.limit is not None and self.result.queries >= self.limit:
                continue
            self.result.queries += 1
            entry = self._register(record)
            if entry is not None:
                pending.append(entry)
        if pending:
            self._settle(pending)
        self.result.seconds = time.perf_counter() - started
        self.db.close()
        return self.result

    def _statement(self, record: Record) -> None:
        # `statement error` records, and what SQLite refuses, change nothing
        self._schema_cache = None
        with contextlib.suppress(sqlite3.Error):
            self.db.execute(record.sql)

    def _schema(self) -> dict[str, list[str]]:
        if self._schema_cache is not None:
            return self._schema_cache
        schema: dict[str, list[str]] = {}
        for (name,) in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'"):
            columns = [row[1] for row in self.db.execute(f'PRAGMA table_info("{name}")')]
            schema[name.lower()] = columns
        self._schema_cache = schema
        return schema

    def _register(self, record: Record) -> _Pending | None:
        self.counter += 1
        view = f"q{record.line}"
        try:
            sql, names, ordered = translate(record.sql, self._schema())
        except (sqlglot.errors.ParseError, sqlglot.errors.TokenError) as err:
            self.result.refusals[f"runner: cannot parse ({str(err).splitlines()[0][:60]})"] += 1
            return None
        except Untranslatable as err:
            self.result.refusals[f"runner: {err}"] += 1
            return None
        try:
            self.circuit.register_view(view, sql)
        except UnsupportedSqlError as err:
            self.result.refusals[reason(err.message)] += 1
            return None
        except SqlError as err:
            self.result.refusals[f"error: {reason(err.message)}"] += 1
            return None
        except Exception as err:  # a crash is a finding, not the end of the run
            self.result.failed.append(f"{self.result.path}:{record.line}: {_crash(err)}")
            return None
        self.result.planned += 1
        return _Pending(record, view, names, ordered)

    def _settle(self, pending: list[_Pending]) -> None:
        """Bring the circuit's tables to SQLite's, compare every pending view, drop them."""
        try:
            self._sync()
            for entry in pending:
                self._compare(entry)
        except Exception as err:
            for entry in pending:
                self.result.failed.append(f"{self.result.path}:{entry.record.line}: {_crash(err)}")
            # the circuit's state is unknown now: start again from empty tables
            self.circuit = Circuit(dialect="sqlite")
            self.mirror = {}
            return
        for entry in pending:
            with contextlib.suppress(Exception):
                self.circuit.unregister_view(entry.view)

    def _sync(self) -> None:
        target: dict[str, dict[str, dict[str, Any]]] = {}
        for (name,) in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'"):
            cursor = self.db.execute(f'SELECT rowid, * FROM "{name}" ORDER BY rowid')
            columns = [d[0] for d in cursor.description][1:]
            table = {}
            for row in cursor:
                table[f"{row[0]:09d}"] = dict(zip(columns, row[1:], strict=True))
            target[name] = table
        first: list[Mutation] = []
        removed: list[Mutation] = []
        back: list[Mutation] = []
        for name, rows in target.items():
            old = self.mirror.get(name, {})
            for key, data in rows.items():
                if key not in old:
                    first.append(Mutation.create(name, key, data))
                elif old[key] != data:
                    first.append(Mutation.update(name, key, data))
            for key in old:
                if key not in rows:
                    first.append(Mutation.delete(name, key))
            for index, (key, data) in enumerate(rows.items()):
                if index % 3 == 1:
                    removed.append(Mutation.delete(name, key))
                    back.append(Mutation.create(name, key, data))
        for name, old in self.mirror.items():
            if name not in target:
                first.extend(Mutation.delete(name, key) for key in old)
        for batch in (first, removed):
            if batch:
                self.circuit.ingest_batch(batch)
        for m in back[:2]:
            self.circuit.ingest_single(m)
        if back[2:]:
            self.circuit.ingest_batch(back[2:])
        self.mirror = target

    def _compare(self, entry: _Pending) -> None:
        record = entry.record
        where = f"{self.result.path}:{record.line}"
        try:
            rows = self.circuit.rows(entry.view)
        except Exception as err:
            self.result.failed.append(f"{where}: {_crash(err)}")
            return
        kinds = record.types
        if len(entry.names) != len(kinds):
            self.result.failed.append(f"{where}: {len(entry.names)} columns, expected {len(kinds)}")
            return
        texts = [
            [self.format.value(row.get(n), k) for n, k in zip(entry.names, kinds, strict=True)]
            for row in rows
        ]
        if record.sort == "nosort" and not entry.ordered:
            # No ORDER BY: the recorded order is SQLite's own. Compare the rows as a multiset
            # with SQLite's, and SQLite's in its order with the recording.
            theirs = [
                [self.format.value(v, k) for v, k in zip(row, kinds, strict=True)]
                for row in self.db.execute(record.sql)
            ]
            ok = sorted(texts) == sorted(theirs) and matches(
                result_lines(theirs, "nosort"), record.expected, len(kinds)
            )
        else:
            ok = matches(result_lines(texts, record.sort), record.expected, len(kinds))
        if ok:
            self.result.agree += 1
        else:
            self.result.wrong.append(where)


def _crash(err: BaseException) -> str:
    if isinstance(err, CircuitError):
        return str(err)
    return f"crash: {type(err).__name__}: {err}"


def reason(message: str) -> str:
    """A refusal message without the names of the query at hand (so reasons group)."""
    message = re.sub(r"\bcolumn \w+\b", "column X", message)
    message = re.sub(r"\bterm \d+\b.*", "term N is not a position in the select list", message)
    return message


def run_file(path: Path, label: str | None = None, limit: int | None = None) -> FileResult:
    return FileRunner(path, label or path.name, limit).run()


def all_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.test"))


GROUPS = (("select1-5 + evidence", FAST_FILES), ("random/*", ("random/",)))


def group_of(path: str) -> str:
    for name, members in GROUPS:
        if any(path == m or (m.endswith("/") and path.startswith(m)) for m in members):
            return name
    return "other"


def totals(results: Iterable[FileResult]) -> list[FileResult]:
    """One merged result per file group (in :data:`GROUPS` order), then the grand total."""
    results = list(results)
    out = []
    for name in [g for g, _ in GROUPS] + ["other"]:
        members = [r for r in results if group_of(r.path) == name]
        if members:
            merged = FileResult(name)
            for r in members:
                merged.merge(r)
            out.append(merged)
    total = FileResult("total")
    for r in results:
        total.merge(r)
    out.append(total)
    return out


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def table(results: Iterable[FileResult], top: int = 10) -> str:
    """The report as Markdown: one row per file and group, then the refusals by reason."""
    results = list(results)
    lines = [
        "| file | queries | planned | agree | wrong | failed | seconds |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in [*results, *totals(results)]:
        lines.append(
            f"| {r.path} | {r.queries} | {r.planned} ({_pct(r.planned, r.queries)}) | {r.agree}"
            f" | {len(r.wrong)} | {len(r.failed)} | {r.seconds:.1f} |"
        )
    for r in totals(results):
        if not r.refusals:
            continue
        lines += ["", f"Refusals, {r.path} (top {top} of {len(r.refusals)} reasons):", ""]
        lines += ["| reason | queries |", "| --- | ---: |"]
        for why, count in r.refusals.most_common(top):
            lines.append(f"| {why.replace('|', '/')} | {count} |")
    return "\n".join(lines)


def to_json(results: Iterable[FileResult]) -> dict[str, Any]:
    """Everything the table shows, and every refusal reason, per file and per group."""

    def one(r: FileResult) -> dict[str, Any]:
        return {
            "file": r.path,
            "queries": r.queries,
            "planned": r.planned,
            "agree": r.agree,
            "wrong": r.wrong,
            "failed": r.failed,
            "refusals": dict(r.refusals.most_common()),
            "seconds": round(r.seconds, 3),
        }

    results = list(results)
    return {"files": [one(r) for r in results], "groups": [one(r) for r in totals(results)]}


def main(argv: list[str]) -> int:
    """``python -m tests.slt.runner [--fast] [--json=PATH] [--top=N] [--limit=N] [FILES...]``."""
    root = corpus_dir()
    if not root.is_dir():
        print(f"no sqllogictest corpus at {root} (set SSP_SLT_DIR)", file=sys.stderr)
        return 2
    top = 10
    limit = None
    json_path = None
    names: list[str] = []
    for arg in argv:
        if arg.startswith("--top="):
            top = int(arg.split("=", 1)[1])
        elif arg.startswith("--limit="):
            limit = int(arg.split("=", 1)[1])
        elif arg.startswith("--json="):
            json_path = Path(arg.split("=", 1)[1])
        elif arg == "--fast":
            names.extend(FAST_FILES)
        else:
            names.append(arg)
    files = names or all_files(root)
    results = []
    for name in files:
        result = run_file(root / name, name, limit)
        results.append(result)
        print(
            f"{name}: {result.queries} queries, {result.planned} planned, {result.agree} agree"
            f" ({result.seconds:.1f}s)",
            file=sys.stderr,
        )
        for where in result.wrong[:5] + result.failed[:5]:
            print(f"  {where}", file=sys.stderr)
    print(table(results, top))
    if json_path is not None:
        json_path.write_text(json.dumps(to_json(results), indent=1) + "\n", encoding="utf-8")
    bad = sum(len(r.wrong) + len(r.failed) for r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
