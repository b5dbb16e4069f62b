"""`forum`: users, threads and comments, with the views a forum front end keeps live.

Sizes: ``rows`` initial records (a tenth users, a fifth threads, the rest
comments), ``mutations`` entries of activity after them, ``views`` views cycling
through the templates below (round ``r`` varies each template's constants).

Activity mixes what a forum does all day: new comments (each bumping its
thread's ``last_activity``), new threads, edits, status changes, user changes,
deletes, and re-creates of deleted records. Reference fields (``author``,
``thread``) hold canonical ids, so joins and subqueries compare ids directly.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

from .model import (
    BASE_TS,
    Entry,
    Pool,
    Scenario,
    Sizes,
    Ticker,
    ViewDef,
    create,
    delete,
    person,
    pick,
    update,
    words,
)

THREAD_STATUSES = ("open", "open", "open", "closed", "archived")
USER_STATUSES = ("active", "active", "active", "active", "suspended")
LIKE_WORDS = ("lorem", "timeout", "flaky", "sqlite", "benchmark")

ACTIONS = (
    ("comment", 0.28),
    ("edit_comment", 0.14),
    ("bump", 0.12),
    ("thread_status", 0.08),
    ("recreate", 0.08),
    ("delete_comment", 0.09),
    ("user", 0.06),
    ("thread", 0.05),
    ("retitle", 0.05),
    ("delete_thread", 0.03),
    ("delete_user", 0.02),
)


def views(sizes: Sizes) -> list[ViewDef]:
    """``sizes.views`` views: the templates in order, round after round."""
    threads = max(1, sizes.rows // 5)
    templates = [_latest, _detail, _with_authors, _matching, _of_active_users]
    if sizes.aggregates:
        templates += [_comment_counts, _latest_reply, _unanswered]
    out = []
    for index in range(sizes.views):
        round_, which = divmod(index, len(templates))
        view = templates[which](round_, threads)
        if round_:
            view = ViewDef(f"{view.name}_{round_ + 1}", view.sql, view.comment, view.format)
        out.append(view)
    return out


def _latest(round_: int, threads: int) -> ViewDef:
    return ViewDef(
        "latest_threads",
        "SELECT * FROM thread WHERE status = 'open'\n"
        f"ORDER BY last_activity DESC LIMIT {10 * (round_ + 1)}",
        "Latest active threads: a top-k on the front page.",
        "flat",
    )


def _detail(round_: int, threads: int) -> ViewDef:
    thread = 1 + (round_ * 7) % threads
    return ViewDef(
        "thread_detail",
        "SELECT *,\n"
        "  (SELECT * FROM user WHERE id = $parent.author)[0] AS author,\n"
        "  (SELECT *,\n"
        "     (SELECT * FROM user WHERE id = $parent.author)[0] AS author\n"
        "   FROM comment WHERE thread = $parent.id ORDER BY created_at) AS comments\n"
        f"FROM thread WHERE id = 'thread:{thread}'",
        "One thread's page: the thread, its author, its comments each with its author.",
    )


def _with_authors(round_: int, threads: int) -> ViewDef:
    status = ("open", "closed", "archived")[round_ % 3]
    return ViewDef(
        "threads_with_authors",
        "SELECT t.id AS id, t.title AS title, u.name AS author_name\n"
        f"FROM thread t JOIN user u ON t.author = u.id WHERE t.status = '{status}'",
        f"Threads with status {status!r} and their authors' names: a join.",
    )


def _matching(round_: int, threads: int) -> ViewDef:
    word = LIKE_WORDS[round_ % len(LIKE_WORDS)]
    return ViewDef(
        "comments_matching",
        f"SELECT * FROM comment WHERE body LIKE '%{word}%'",
        f"Comments mentioning {word!r}: a text filter.",
    )


def _of_active_users(round_: int, threads: int) -> ViewDef:
    return ViewDef(
        "threads_of_active_users",
        "SELECT id, title, author FROM thread\n"
        "WHERE author IN (SELECT id FROM user WHERE status = 'active')"
        + (f" AND created_at > {_ts_cut(round_)}" if round_ else ""),
        "Threads whose author is active: a semi-join.",
        "flat",
    )


def _comment_counts(round_: int, threads: int) -> ViewDef:
    return ViewDef(
        "comment_counts",
        "SELECT thread, COUNT(*) AS comments FROM comment GROUP BY thread"
        + (f" HAVING COUNT(*) > {round_}" if round_ else ""),
        "Comments per thread: GROUP BY with a count.",
    )


def _latest_reply(round_: int, threads: int) -> ViewDef:
    return ViewDef(
        "latest_reply",
        "SELECT thread, MAX(created_at) AS last_reply, COUNT(DISTINCT author) AS authors\n"
        "FROM comment GROUP BY thread ORDER BY last_reply DESC LIMIT "
        f"{5 * (round_ + 1)}",
        "The threads with the latest replies: MAX and COUNT(DISTINCT) per thread, top-k.",
    )


def _unanswered(round_: int, threads: int) -> ViewDef:
    return ViewDef(
        "unanswered_threads",
        "SELECT * FROM thread t\n"
        "WHERE t.status = 'open'\n"
        "  AND NOT EXISTS (SELECT 1 FROM comment c WHERE c.thread = t.id)",
        "Open threads nobody has replied to: an anti-join.",
    )


def _ts_cut(round_: int) -> int:
    """A created_at threshold that later rounds use to vary a view's selectivity."""
    return BASE_TS + 60_000 * round_


def entries(rng: random.Random, sizes: Sizes) -> Iterator[Entry]:
    """The initial users, threads and comments, then ``sizes.mutations`` entries of activity."""
    forum = _Forum(rng)
    n_users = max(1, sizes.rows // 10)
    n_threads = max(1, sizes.rows // 5)
    for _ in range(n_users):
        yield forum.new_user(forum.ts())
    for _ in range(n_threads):
        yield forum.new_thread(forum.ts())
    for _ in range(sizes.rows - n_users - n_threads):
        yield forum.new_comment(forum.ts())
    yield from islice(forum.activity(), sizes.mutations)


class _Forum:
    """The forum's state while its log is generated: live records and the next keys."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.ts = Ticker(rng)
        self.users = Pool("user")
        self.threads = Pool("thread")
        self.comments = Pool("comment")
        self.next_key = {"user": 1, "thread": 1, "comment": 1}
        self.actions: dict[str, Callable[[int], Iterator[Entry]]] = {
            "comment": self._do_comment,
            "edit_comment": self._do_edit_comment,
            "bump": self._do_bump,
            "thread_status": self._do_thread_status,
            "recreate": self._do_recreate,
            "delete_comment": self._do_delete_comment,
            "user": self._do_user,
            "thread": self._do_thread,
            "retitle": self._do_retitle,
            "delete_thread": self._do_delete_thread,
            "delete_user": self._do_delete_user,
        }

    def _key(self, table: str) -> str:
        key = self.next_key[table]
        self.next_key[table] = key + 1
        return f"{table}:{key}"

    @staticmethod
    def _create(pool: Pool, rid: str, data: dict[str, Any], now: int) -> Entry:
        pool.put(rid, data)
        return create(pool.table, rid, data, now)

    @staticmethod
    def _update(pool: Pool, rid: str, now: int, **changes: Any) -> Entry:
        data = {**pool.records[rid], **changes}
        pool.put(rid, data)
        return update(pool.table, rid, data, now)

    @staticmethod
    def _delete(pool: Pool, rid: str, now: int) -> Entry:
        pool.remove(rid)
        return delete(pool.table, rid, now)

    def new_user(self, now: int) -> Entry:
        rng = self.rng
        rid = self._key("user")
        data = {
            "name": person(rng),
            "email": f"user{rid.partition(':')[2]}@example.org",
            "status": rng.choice(USER_STATUSES),
            "karma": rng.randint(0, 5000),
            "joined_at": now,
        }
        return self._create(self.users, rid, data, now)

    def new_thread(self, now: int) -> Entry:
        rng = self.rng
        data = {
            "title": words(rng, 3, 8).capitalize(),
            "author": self.users.choice(rng),
            "status": rng.choice(THREAD_STATUSES),
            "created_at": now,
            "last_activity": now,
            "tags": sorted({rng.choice(LIKE_WORDS) for _ in range(rng.randint(0, 3))}),
        }
        return self._create(self.threads, self._key("thread"), data, now)

    def new_comment(self, now: int) -> Entry:
        rng = self.rng
        data = {
            "thread": self.threads.choice(rng),
            "author": self.users.choice(rng),
            "body": words(rng, 4, 24),
            "created_at": now,
            "edited_at": None,
        }
        return self._create(self.comments, self._key("comment"), data, now)

    def activity(self) -> Iterator[Entry]:
        """Endless activity; the caller takes as many entries as it wants."""
        while True:
            yield from self.actions[pick(self.rng, ACTIONS)](self.ts())

    def _do_comment(self, now: int) -> Iterator[Entry]:
        entry = self.new_comment(now)
        yield entry
        later = self.ts()
        yield self._update(self.threads, entry["data"]["thread"], later, last_activity=later)

    def _do_thread(self, now: int) -> Iterator[Entry]:
        yield self.new_thread(now)

    def _do_user(self, now: int) -> Iterator[Entry]:
        rid = self.users.choice(self.rng)
        record = self.users.records[rid]
        if self.rng.random() < 0.5:
            status = "suspended" if record["status"] == "active" else "active"
            yield self._update(self.users, rid, now, status=status)
        else:
            karma = record["karma"] + self.rng.randint(1, 50)
            yield self._update(self.users, rid, now, karma=karma)

    def _do_edit_comment(self, now: int) -> Iterator[Entry]:
        if self.comments:
            rid = self.comments.choice(self.rng)
            body = self.comments.records[rid]["body"] + " " + words(self.rng, 1, 4)
            yield self._update(self.comments, rid, now, body=body, edited_at=now)

    def _do_bump(self, now: int) -> Iterator[Entry]:
        yield self._update(self.threads, self.threads.choice(self.rng), now, last_activity=now)

    def _do_thread_status(self, now: int) -> Iterator[Entry]:
        rid = self.threads.choice(self.rng)
        current = self.threads.records[rid]["status"]
        status = self.rng.choice([s for s in ("open", "closed", "archived") if s != current])
        yield self._update(self.threads, rid, now, status=status)

    def _do_retitle(self, now: int) -> Iterator[Entry]:
        rid = self.threads.choice(self.rng)
        yield self._update(self.threads, rid, now, title=words(self.rng, 3, 8).capitalize())

    def _do_delete_comment(self, now: int) -> Iterator[Entry]:
        if self.comments:
            yield self._delete(self.comments, self.comments.choice(self.rng), now)

    def _do_delete_thread(self, now: int) -> Iterator[Entry]:
        if len(self.threads) > 1:
            yield self._delete(self.threads, self.threads.choice(self.rng), now)

    def _do_delete_user(self, now: int) -> Iterator[Entry]:
        if len(self.users) > 1:
            yield self._delete(self.users, self.users.choice(self.rng), now)

    def _do_recreate(self, now: int) -> Iterator[Entry]:
        # Comments are deleted most, so they come back most: square the roll toward index 0.
        pool = (self.comments, self.threads, self.users)[int(self.rng.random() ** 2 * 3)]
        restored = pool.pop_deleted(self.rng)
        if restored is not None:
            yield self._create(pool, *restored, now)


SCENARIO = Scenario(
    name="forum",
    summary="users, threads and comments; top-k, nested-subquery, join, LIKE and IN views",
    defaults=Sizes(rows=6_000, mutations=14_000, views=8),
    min_rows=3,
    views=views,
    entries=entries,
)
