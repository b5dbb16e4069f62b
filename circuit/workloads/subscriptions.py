"""`subscriptions`: clients come and go, each subscribing parametrized views
through the log while the data keeps changing.

``views.sql`` holds two global views; the per-client views arrive as REGISTER
entries with ``params`` (both ``$name`` and ``:name`` styles), are sometimes
registered again under the same name with new params (a client switching
rooms: SPEC section 1 makes that a replacement), and are UNREGISTERed later.

Sizes: ``rows`` initial records (a tenth users, a fortieth rooms, a fifth
notifications, the rest messages); ``mutations`` entries after them, REGISTER
and UNREGISTER entries included; ``views`` REGISTER entries, spread evenly over
those entries.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

from .model import (
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

MAX_ACTIVE = 40
"""Subscriptions alive at once: past this, the oldest clients start leaving."""

TEMPLATES: tuple[tuple[str, str], ...] = (
    ("room_feed", "SELECT * FROM message WHERE room = :room ORDER BY sent_at DESC LIMIT 20"),
    ("notifications", "SELECT * FROM notification WHERE recipient = $user AND seen = 0"),
    (
        "room_authors",
        "SELECT m.id AS id, m.text AS text, u.name AS author\n"
        "FROM message m JOIN user u ON m.author = u.id WHERE m.room = $room",
    ),
    (
        "my_posts",
        "SELECT *, (SELECT id, name FROM user WHERE id = $parent.author)[0] AS author\n"
        "FROM message WHERE author = $user ORDER BY sent_at DESC LIMIT 10",
    ),
    ("room_since", "SELECT * FROM message WHERE room = :room AND sent_at > :since"),
)
"""(name, SQL) of the views clients subscribe; parameters are bound per REGISTER."""

DATA_ACTIONS = (
    ("message", 0.40),
    ("notify", 0.20),
    ("seen", 0.15),
    ("edit", 0.10),
    ("delete", 0.05),
    ("room", 0.05),
    ("user", 0.05),
)


def views(sizes: Sizes) -> list[ViewDef]:
    """The global views; the per-client ones are in the log."""
    return [
        ViewDef("open_rooms", "SELECT * FROM room WHERE archived = 0", "Rooms not archived."),
        ViewDef(
            "recent_messages",
            "SELECT * FROM message ORDER BY sent_at DESC LIMIT 20",
            "The 20 latest messages anywhere: a top-k.",
            "flat",
        ),
    ]


def entries(rng: random.Random, sizes: Sizes) -> Iterator[Entry]:
    """The initial records, then data changes with REGISTER and UNREGISTER among them."""
    app = _App(rng, users=max(1, sizes.rows // 10), rooms=max(1, sizes.rows // 40))
    yield from app.setup(sizes.rows)
    yield from islice(app.activity(sizes.mutations, sizes.views), sizes.mutations)


class _App:
    """The application's state while its log is generated: records and live subscriptions."""

    def __init__(self, rng: random.Random, users: int, rooms: int):
        self.rng = rng
        self.ts = Ticker(rng)
        self.n_users = users
        self.n_rooms = rooms
        self.users = Pool("user")
        self.rooms = Pool("room")
        self.messages = Pool("message")
        self.notifications = Pool("notification")
        self.next_key = {"message": 1, "notification": 1}
        self.active: list[tuple[str, int]] = []
        self.registered = 0
        self.actions: dict[str, Callable[[int], Entry]] = {
            "message": self._new_message,
            "notify": self._new_notification,
            "seen": self._seen,
            "edit": self._edit,
            "delete": self._delete_message,
            "room": self._room,
            "user": self._user_change,
        }

    def _room_id(self) -> str:
        """A room, skewed toward low keys so that subscriptions see traffic."""
        return f"room:{1 + int(self.n_rooms * self.rng.random() ** 2)}"

    def _user_id(self) -> str:
        return f"user:{1 + int(self.n_users * self.rng.random() ** 2)}"

    def _key(self, table: str) -> str:
        key = self.next_key[table]
        self.next_key[table] = key + 1
        return f"{table}:{key}"

    @staticmethod
    def _put(pool: Pool, rid: str, data: dict[str, Any], now: int, *, new: bool) -> Entry:
        pool.put(rid, data)
        return (create if new else update)(pool.table, rid, data, now)

    def setup(self, rows: int) -> Iterator[Entry]:
        rng = self.rng
        for key in range(1, self.n_users + 1):
            data: dict[str, Any] = {"name": person(rng), "email": f"user{key}@example.net"}
            yield self._put(self.users, f"user:{key}", data, self.ts(), new=True)
        for key in range(1, self.n_rooms + 1):
            data = {"name": words(rng, 1, 3).title(), "archived": 0}
            yield self._put(self.rooms, f"room:{key}", data, self.ts(), new=True)
        n_notifications = rows // 5
        for _ in range(rows - self.n_users - self.n_rooms - n_notifications):
            yield self._new_message(self.ts())
        for _ in range(n_notifications):
            yield self._new_notification(self.ts())

    def activity(self, length: int, registers: int) -> Iterator[Entry]:
        """Endless entries; REGISTERs every ``length // registers`` of them, ``registers`` in all."""
        every = max(1, length // max(1, registers))
        step = 0
        while True:
            now = self.ts()
            if self.registered < registers and step % every == 0:
                yield self._register(now)
            elif self.active and (len(self.active) > MAX_ACTIVE or self.rng.random() < 0.01):
                yield self._unregister(now)
            else:
                yield self.actions[pick(self.rng, DATA_ACTIONS)](now)
            step += 1

    def _register(self, now: int) -> Entry:
        rng = self.rng
        if self.active and rng.random() < 0.2:
            name, template = self.active[rng.randrange(len(self.active))]
        else:
            template = rng.randrange(len(TEMPLATES))
            name = f"s{self.registered + 1}_{TEMPLATES[template][0]}"
            self.active.append((name, template))
        self.registered += 1
        sql = TEMPLATES[template][1]
        params: dict[str, Any] = {}
        if ":room" in sql or "$room" in sql:
            params["room"] = self._room_id()
        if "$user" in sql:
            params["user"] = self._user_id()
        if ":since" in sql:
            params["since"] = now - 600_000
        entry: Entry = {"op": "REGISTER", "view": name, "sql": sql, "params": params, "ts": now}
        if self.registered % 4 == 0:
            entry["format"] = "flat"
        return entry

    def _unregister(self, now: int) -> Entry:
        # The oldest subscriptions leave first when there are too many; otherwise anyone.
        index = 0 if len(self.active) > MAX_ACTIVE else self.rng.randrange(len(self.active))
        name, _ = self.active.pop(index)
        return {"op": "UNREGISTER", "view": name, "ts": now}

    def _new_message(self, now: int) -> Entry:
        data = {
            "room": self._room_id(),
            "author": self._user_id(),
            "text": words(self.rng, 2, 16),
            "sent_at": now,
        }
        return self._put(self.messages, self._key("message"), data, now, new=True)

    def _new_notification(self, now: int) -> Entry:
        data = {"recipient": self._user_id(), "text": words(self.rng, 2, 6), "seen": 0}
        return self._put(self.notifications, self._key("notification"), data, now, new=True)

    def _seen(self, now: int) -> Entry:
        """A notification is read; one already read is cleared away."""
        if not self.notifications:
            return self._new_notification(now)
        rid = self.notifications.choice(self.rng)
        record = self.notifications.records[rid]
        if record["seen"]:
            self.notifications.remove(rid)
            return delete("notification", rid, now)
        return self._put(self.notifications, rid, {**record, "seen": 1}, now, new=False)

    def _edit(self, now: int) -> Entry:
        if not self.messages:
            return self._new_message(now)
        rid = self.messages.choice(self.rng)
        data = {**self.messages.records[rid], "text": words(self.rng, 2, 16), "edited_at": now}
        return self._put(self.messages, rid, data, now, new=False)

    def _delete_message(self, now: int) -> Entry:
        if not self.messages:
            return self._new_message(now)
        rid = self.messages.choice(self.rng)
        self.messages.remove(rid)
        return delete("message", rid, now)

    def _room(self, now: int) -> Entry:
        rid = self._room_id()
        record = self.rooms.records[rid]
        if self.rng.random() < 0.5:
            data = {**record, "archived": 1 - record["archived"]}
        else:
            data = {**record, "name": words(self.rng, 1, 3).title()}
        return self._put(self.rooms, rid, data, now, new=False)

    def _user_change(self, now: int) -> Entry:
        rid = self._user_id()
        data = {**self.users.records[rid], "name": person(self.rng)}
        return self._put(self.users, rid, data, now, new=False)


SCENARIO = Scenario(
    name="subscriptions",
    summary="parametrized views registered and unregistered in the log while data changes",
    defaults=Sizes(rows=2_000, mutations=10_000, views=60),
    min_rows=3,
    views=views,
    entries=entries,
)
