"""`chat`: rooms and messages, plus typing indicators and composer cursors that
change many times a second.

The activity is laid out in 16 ms display frames: in each frame the few users
typing right now update their ``typing`` and ``cursor`` records, often several
times, and now and then one of them sends a message. Replayed with
``--mode deferred --frame-ms 16`` each frame becomes one ingest call, and
coalescing nets the bursts out; in single mode every keystroke propagates.

Sizes: ``rows`` initial records (a fiftieth rooms, a tenth users, the rest
messages), ``mutations`` entries of activity, ``views`` views cycling through
the templates (round ``r`` watches room ``r + 1``). Activity favours
low-numbered rooms, so the views watch busy rooms.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from itertools import islice
from typing import Any

from .model import (
    BASE_TS,
    Entry,
    Pool,
    Scenario,
    Sizes,
    ViewDef,
    create,
    delete,
    person,
    update,
    words,
)

FRAME_MS = 16
SESSIONS = 6
"""Users typing at any moment."""
STATUSES = ("online", "away", "offline")
CARET_STEPS = (-3, -2, -1, 1, 2, 3, 4, 5, 6)


def views(sizes: Sizes) -> list[ViewDef]:
    """``sizes.views`` views: the templates in order, round after round."""
    rooms = _rooms(sizes.rows)
    templates = [_feed, _typing, _cursors, _inbox, _mentions]
    out = []
    for index in range(sizes.views):
        round_, which = divmod(index, len(templates))
        view = templates[which](1 + round_ % rooms, round_ + 1)
        if round_:
            view = ViewDef(f"{view.name}_{round_ + 1}", view.sql, view.comment, view.format)
        out.append(view)
    return out


def _feed(room: int, user: int) -> ViewDef:
    return ViewDef(
        "room_feed",
        f"SELECT * FROM message WHERE room = 'room:{room}' ORDER BY sent_at DESC LIMIT 50",
        f"The last 50 messages of room:{room}: a top-k.",
    )


def _typing(room: int, user: int) -> ViewDef:
    return ViewDef(
        "typing_now",
        "SELECT t.id AS id, u.name AS name FROM typing t JOIN user u ON t.user = u.id\n"
        f"WHERE t.room = 'room:{room}' AND t.active = 1",
        f"Who is typing in room:{room}: a join over a hot table.",
        "flat",
    )


def _cursors(room: int, user: int) -> ViewDef:
    return ViewDef(
        "room_cursors",
        f"SELECT * FROM cursor WHERE room = 'room:{room}'",
        f"Composer cursors in room:{room}: updated many times per frame.",
    )


def _inbox(room: int, user: int) -> ViewDef:
    return ViewDef(
        "inbox",
        "SELECT *,\n"
        "  (SELECT * FROM message WHERE room = $parent.id ORDER BY sent_at DESC)[0]"
        " AS last_message\n"
        f"FROM room ORDER BY last_message_at DESC LIMIT {20 * room}",
        "The busiest rooms with their last message: a top-k with a nested subquery.",
    )


def _mentions(room: int, user: int) -> ViewDef:
    return ViewDef(
        "mentions",
        f"SELECT * FROM message WHERE text LIKE '@u{user} %'",
        f"Messages addressed to user:{user}: a prefix LIKE.",
    )


def _rooms(rows: int) -> int:
    return max(1, rows // 50)


def _users(rows: int) -> int:
    return max(2, rows // 10)


def entries(rng: random.Random, sizes: Sizes) -> Iterator[Entry]:
    """Rooms, users and a message history, then ``sizes.mutations`` entries of activity."""
    chat = _Chat(rng, _rooms(sizes.rows), _users(sizes.rows))
    yield from chat.setup(sizes.rows)
    yield from islice(chat.activity(), sizes.mutations)


class _Chat:
    """The chat's state while its log is generated."""

    def __init__(self, rng: random.Random, rooms: int, users: int):
        self.rng = rng
        self.rooms = rooms
        self.users = users
        self.now = BASE_TS
        self.room_records: dict[str, dict[str, Any]] = {}
        self.user_records: dict[str, dict[str, Any]] = {}
        self.messages = Pool("message")
        self.next_message = 1
        self.typing: dict[str, dict[str, Any]] = {}
        self.cursors: dict[str, dict[str, Any]] = {}
        self.sessions: list[tuple[str, str]] = []

    def _tick(self, low: int, high: int) -> int:
        self.now += self.rng.randint(low, high)
        return self.now

    def _hot_room(self) -> str:
        """A room, skewed toward room:1 so that the views watch busy rooms."""
        return f"room:{1 + int(self.rooms * self.rng.random() ** 3)}"

    def _user(self) -> str:
        return f"user:{self.rng.randint(1, self.users)}"

    def setup(self, rows: int) -> Iterator[Entry]:
        rng = self.rng
        for key in range(1, self.rooms + 1):
            now = self._tick(1, 50)
            data = {"name": f"#{words(rng, 1, 2).replace(' ', '-')}", "topic": words(rng, 3, 8)}
            self.room_records[f"room:{key}"] = {**data, "archived": 0, "last_message_at": now}
            yield create("room", f"room:{key}", self.room_records[f"room:{key}"], now)
        for key in range(1, self.users + 1):
            data = {"name": person(rng), "handle": f"u{key}", "status": "offline"}
            self.user_records[f"user:{key}"] = data
            yield create("user", f"user:{key}", data, self._tick(1, 50))
        for _ in range(rows - self.rooms - self.users):
            yield self._message(self._hot_room(), self._user(), self._tick(1, 200))
        self.sessions = [(self._user(), self._hot_room()) for _ in range(SESSIONS)]

    def _message(self, room: str, author: str, now: int) -> Entry:
        text = words(self.rng, 2, 14)
        if self.rng.random() < 0.2:
            text = f"@u{1 + int(self.users * self.rng.random() ** 2)} {text}"
        rid = f"message:{self.next_message}"
        self.next_message += 1
        data = {"room": room, "author": author, "text": text, "sent_at": now, "edited_at": None}
        self.messages.put(rid, data)
        return create("message", rid, data, now)

    def activity(self) -> Iterator[Entry]:
        """Endless frames of activity."""
        rng = self.rng
        while True:
            # Idle stretches between bursts, as in a real recording.
            frames = 1 if rng.random() < 0.8 else rng.randint(2, 30)
            frame_start = self.now - self.now % FRAME_MS + FRAME_MS * frames
            self.now = frame_start
            for index, (user, room) in enumerate(self.sessions):
                yield from self._session_frame(user, room, frame_start)
                if rng.random() < 0.004:
                    yield from self._switch(index, frame_start)
            yield from self._rare(frame_start)

    def _at(self, frame_start: int) -> int:
        """The next ``ts`` inside the frame: never decreasing, never past its end."""
        self.now = min(self.now + self.rng.randint(0, 2), frame_start + FRAME_MS - 1)
        return self.now

    def _session_frame(self, user: str, room: str, frame_start: int) -> Iterator[Entry]:
        rng = self.rng
        for _ in range(rng.choice((0, 0, 1, 2, 3))):
            yield self._cursor(user, room, self._at(frame_start))
        if rng.random() < 0.5:
            yield self._typing(user, room, 1, self._at(frame_start))
        if rng.random() < 0.03:
            now = self._at(frame_start)
            yield self._message(room, user, now)
            yield self._typing(user, room, 0, self._at(frame_start))
            record = {**self.room_records[room], "last_message_at": now}
            self.room_records[room] = record
            yield update("room", room, record, self._at(frame_start))

    def _typing(self, user: str, room: str, active: int, now: int) -> Entry:
        rid = f"typing:{room.partition(':')[2]}-{user.partition(':')[2]}"
        old = self.typing.get(rid)
        chars = ((old["chars"] if old else 0) + self.rng.randint(1, 4)) if active else 0
        data = {"room": room, "user": user, "active": active, "chars": chars, "ts": now}
        self.typing[rid] = data
        return (update if old else create)("typing", rid, data, now)

    def _cursor(self, user: str, room: str, now: int) -> Entry:
        rid = f"cursor:{user.partition(':')[2]}"
        old = self.cursors.get(rid)
        # The caret always moves (never a no-op update), and never before the start.
        start, step = (old["pos"] if old else 0), self.rng.choice(CARET_STEPS)
        pos = start + step if start + step >= 0 else start - step
        data = {"user": user, "room": room, "pos": pos, "ts": now}
        self.cursors[rid] = data
        return (update if old else create)("cursor", rid, data, now)

    def _switch(self, index: int, frame_start: int) -> Iterator[Entry]:
        """A typist leaves: their indicator goes off, someone else starts."""
        user, room = self.sessions[index]
        indicator = self.typing.get(f"typing:{room.partition(':')[2]}-{user.partition(':')[2]}")
        if indicator is not None and indicator["active"]:
            yield self._typing(user, room, 0, self._at(frame_start))
        self.sessions[index] = (self._user(), self._hot_room())

    def _rare(self, frame_start: int) -> Iterator[Entry]:
        """Edits, deletes and presence changes: a few per hundred frames."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.02 and self.messages:
            rid = self.messages.choice(rng)
            now = self._at(frame_start)
            data = {**self.messages.records[rid], "text": words(rng, 2, 14), "edited_at": now}
            self.messages.put(rid, data)
            yield update("message", rid, data, now)
        elif roll < 0.03 and self.messages:
            rid = self.messages.choice(rng)
            self.messages.remove(rid)
            yield delete("message", rid, self._at(frame_start))
        elif roll < 0.05:
            user = self._user()
            status = rng.choice([s for s in STATUSES if s != self.user_records[user]["status"]])
            self.user_records[user] = {**self.user_records[user], "status": status}
            yield update("user", user, self.user_records[user], self._at(frame_start))


SCENARIO = Scenario(
    name="chat",
    summary="rooms and messages with high-frequency typing and cursor updates in 16 ms frames"
    " (replay with --mode deferred --frame-ms 16)",
    defaults=Sizes(rows=3_000, mutations=17_000, views=5),
    min_rows=3,
    views=views,
    entries=entries,
)
