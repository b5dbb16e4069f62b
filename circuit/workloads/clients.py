"""`clients`: a sync engine's day: many clients, each holding its own subscriptions of
three query shapes, coming and going while the data changes.

The log starts with a state of users, rooms and messages (``rows`` records,
optionally written apart as an ``--initial`` file), then every client
REGISTERs one subscription of each template with its own parameters:

- ``c7_feed``: the last 50 messages of the client's room with their authors'
  names (a join and a top-k, keyed by ``$room``);
- ``c7_card``: the room with its owner nested through ``$parent.owner``;
- ``c7_mine``: the client's own messages since it connected (``$me`` by
  equality, ``$since`` by a range).

The tail mixes data changes (messages posted, edited and deleted, users and
rooms renamed) with churn: a client leaves (three UNREGISTERs) and a new one
joins in its place (three REGISTERs under a new client number, same user and
room: a reconnect).

Every tail entry touches a bounded number of subscriptions, whatever the number
of clients: a room has at most :data:`ROOM_CLIENTS` clients; a user posts only
in its home room and owns at most one room, so renaming it reaches one room's
feeds and one room's cards; a message reaches its room's feeds and its
author's ``mine``. Rooms are ``rows // 50`` but at least enough for every client
(``clients / ROOM_CLIENTS``), users ``rows // 10`` but at least one per client;
the rest of ``rows`` are messages, spread over all rooms. Most new messages go
to rooms with clients (:data:`HOT_SHARE`), so the tail exercises subscriptions.

Sizes: ``rows`` state records (raised to the users and rooms the clients need),
``clients`` clients (default 30), ``mutations`` entries after the state, the
clients' REGISTERs included (so ``mutations`` below ``3 * clients`` cuts the
registrations short and leaves no tail).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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
    update,
    words,
)
from .model import pick as pick_weighted

ROOM_CLIENTS = 3
"""Clients per room at most: what bounds the subscriptions an entry touches."""

HOT_SHARE = 0.9
"""The share of new messages posted in a room that has clients."""

DEFAULT_CLIENTS = 30

MAX_OTHER_POSTERS = 8
"""Users without a client who post in a room, at most (the first ones whose home it is)."""

SINCE_MS = 3_600_000
"""A client's ``mine`` shows its messages of the last hour before it connected."""

FEED_SQL = (
    "SELECT m.*, u.name AS author_name FROM message m JOIN user u ON u.id = m.author\n"
    "WHERE m.room = $room ORDER BY m.ts DESC LIMIT 50"
)
CARD_SQL = (
    "SELECT *, (SELECT * FROM user WHERE id = $parent.owner)[0] AS owner\n"
    "FROM room WHERE id = $room"
)
MINE_SQL = "SELECT * FROM message WHERE author = $me AND ts > $since"

TEMPLATES: tuple[tuple[str, str], ...] = (
    ("feed", FEED_SQL),
    ("card", CARD_SQL),
    ("mine", MINE_SQL),
)
"""(suffix, SQL) of each client's subscriptions: client 7 registers ``c7_feed`` and so on."""

DATA_ACTIONS: tuple[tuple[str, float], ...] = (
    ("post", 0.50),
    ("edit", 0.22),
    ("delete", 0.08),
    ("rename_user", 0.10),
    ("rename_room", 0.10),
)
"""The mix of data changes in the tail (churn is drawn apart, see :class:`Shape`)."""


@dataclass(frozen=True, slots=True)
class Shape:
    """The numbers a `clients` workload is built from (see the module docstring)."""

    rows: int
    clients: int
    churn: float = 0.05
    """The share of tail entries that are churn (a leave or a join, each three entries)."""

    @property
    def users(self) -> int:
        return max(2, self.rows // 10, self.clients)

    @property
    def rooms(self) -> int:
        return max(1, self.rows // 50, -(-self.clients // ROOM_CLIENTS))

    @property
    def messages(self) -> int:
        return max(0, self.rows - self.users - self.rooms)

    @property
    def state(self) -> int:
        """Records in the state: ``rows``, or more when the clients need more."""
        return self.users + self.rooms + self.messages


def shape(sizes: Sizes) -> Shape:
    return Shape(sizes.rows, DEFAULT_CLIENTS if sizes.clients is None else sizes.clients)


def state_size(sizes: Sizes) -> int:
    """How many leading entries are the state (what ``ssp gen --initial`` writes apart)."""
    return shape(sizes).state


def views(sizes: Sizes) -> list[ViewDef]:
    """One global view; the clients' subscriptions arrive in the log."""
    return [
        ViewDef(
            "room_directory",
            "SELECT id, name FROM room ORDER BY name LIMIT 20",
            "The first rooms by name, as a lobby shows them.",
        )
    ]


def entries(rng: random.Random, sizes: Sizes) -> Iterator[Entry]:
    """The state, the clients' REGISTERs, then the tail: ``state + mutations`` entries."""
    app = Clients(rng, shape(sizes))
    yield from app.state()
    yield from islice(app.after_state(), sizes.mutations)


class Clients:
    """The application while its log is generated: records, slots and live clients.

    A *slot* is a (user, room) seat a client occupies: slot ``s`` is user
    ``s + 1`` in room ``s // ROOM_CLIENTS + 1``. A leaving client frees its
    slot; a joining client takes a free one, so no room ever has more than
    :data:`ROOM_CLIENTS` clients. Public so that benchmarks can drive the same
    workload with their own churn.
    """

    def __init__(self, rng: random.Random, shape: Shape):
        self.rng = rng
        self.shape = shape
        self.ts = Ticker(rng)
        self.users = Pool("user")
        self.rooms = Pool("room")
        self.messages = Pool("message")
        self.next_message = 1
        self.next_client = 1
        self.live: list[tuple[int, int]] = []
        """(client number, slot) of the clients connected now, in join order."""
        self.free: list[int] = []
        """Slots without a client."""
        self.hot_rooms = -(-shape.clients // ROOM_CLIENTS)

    # -- who is where ----------------------------------------------------

    def home(self, user: int) -> int:
        """The one room ``user`` posts in."""
        if user <= self.shape.clients:
            return (user - 1) // ROOM_CLIENTS + 1
        return (user - 1) % self.shape.rooms + 1

    def owner(self, room: int) -> int:
        """The user owning ``room``: users outnumber rooms, so each owns at most one."""
        return (room - 1) % self.shape.users + 1

    def poster(self, room: int) -> int:
        """A user whose home is ``room``: one of its client users, or another."""
        shape = self.shape
        clients = min(ROOM_CLIENTS, max(0, shape.clients - (room - 1) * ROOM_CLIENTS))
        # the users past the clients' whose home is ``room``: room, room + rooms, ...
        first = room + max(0, -(-(shape.clients + 1 - room) // shape.rooms)) * shape.rooms
        others = range(first, shape.users + 1, shape.rooms)[:MAX_OTHER_POSTERS]
        choices = clients + len(others)
        if choices == 0:
            return self.owner(room)  # a room nobody calls home: its owner posts
        index = int(self.rng.random() * choices)
        if index < clients:
            return (room - 1) * ROOM_CLIENTS + index + 1
        return others[index - clients]

    # -- the state -------------------------------------------------------

    def state(self) -> Iterator[Entry]:
        rng, shape = self.rng, self.shape
        for key in range(1, shape.users + 1):
            data: dict[str, Any] = {"name": person(rng), "handle": f"u{key}"}
            self.users.put(f"user:{key}", data)
            yield create("user", f"user:{key}", data, self.ts())
        for key in range(1, shape.rooms + 1):
            data = {"name": words(rng, 1, 3).title(), "owner": f"user:{self.owner(key)}"}
            self.rooms.put(f"room:{key}", data)
            yield create("room", f"room:{key}", data, self.ts())
        for _ in range(shape.messages):
            yield self._post(1 + int(rng.random() * shape.rooms), self.ts())

    def after_state(self) -> Iterator[Entry]:
        """Every client's REGISTERs, then an endless tail."""
        for slot in range(self.shape.clients):
            yield from self._join(slot, self.ts())
        while True:
            yield from self.tail_step()

    def tail_step(self) -> Iterator[Entry]:
        """One step of the tail: one data entry, or a churn event (three entries)."""
        now = self.ts()
        if self.rng.random() < self.shape.churn:
            # joins win while more than a tenth of the slots are free: the crowd stays near full
            spare = len(self.free) > self.shape.clients // 10
            if self.free and (not self.live or spare or self.rng.random() < 0.5):
                slot = self.free.pop(int(self.rng.random() * len(self.free)))
                yield from self._join(slot, now)
            else:
                yield from self._leave(now)
            return
        yield self._data(pick_weighted(self.rng, DATA_ACTIONS), now)

    def data_step(self) -> Entry:
        """One data entry of the tail (no churn): for benchmarks that time data alone."""
        return self._data(pick_weighted(self.rng, DATA_ACTIONS), self.ts())

    # -- churn -----------------------------------------------------------

    def _join(self, slot: int, now: int) -> Iterator[Entry]:
        client = self.next_client
        self.next_client += 1
        self.live.append((client, slot))
        user, room = slot + 1, slot // ROOM_CLIENTS + 1
        params: dict[str, dict[str, Any]] = {
            "feed": {"room": f"room:{room}"},
            "card": {"room": f"room:{room}"},
            "mine": {"me": f"user:{user}", "since": now - SINCE_MS},
        }
        for suffix, sql in TEMPLATES:
            yield {
                "op": "REGISTER",
                "view": f"c{client}_{suffix}",
                "sql": sql,
                "params": params[suffix],
                "ts": now,
            }

    def _leave(self, now: int) -> Iterator[Entry]:
        client, slot = self.live.pop(int(self.rng.random() * len(self.live)))
        self.free.append(slot)
        for suffix, _ in TEMPLATES:
            yield {"op": "UNREGISTER", "view": f"c{client}_{suffix}", "ts": now}

    # -- data ------------------------------------------------------------

    def _data(self, action: str, now: int) -> Entry:
        act: Callable[[int], Entry] = getattr(self, f"_{action}_action")
        return act(now)

    def _room_for_post(self) -> int:
        if self.rng.random() < HOT_SHARE:
            return 1 + int(self.rng.random() * self.hot_rooms)
        return 1 + int(self.rng.random() * self.shape.rooms)

    def _post(self, room: int, now: int) -> Entry:
        rid = f"message:{self.next_message}"
        self.next_message += 1
        data = {
            "room": f"room:{room}",
            "author": f"user:{self.poster(room)}",
            "text": words(self.rng, 2, 14),
            "ts": now,
        }
        self.messages.put(rid, data)
        return create("message", rid, data, now)

    def _post_action(self, now: int) -> Entry:
        return self._post(self._room_for_post(), now)

    def _edit_action(self, now: int) -> Entry:
        if not self.messages:
            return self._post_action(now)
        rid = self.messages.choice(self.rng)
        data = {**self.messages.records[rid], "text": words(self.rng, 2, 14), "edited": now}
        self.messages.put(rid, data)
        return update("message", rid, data, now)

    def _delete_action(self, now: int) -> Entry:
        if not self.messages:
            return self._post_action(now)
        rid = self.messages.choice(self.rng)
        self.messages.remove(rid)
        return delete("message", rid, now)

    def _rename_user_action(self, now: int) -> Entry:
        room = self._room_for_post()
        rid = f"user:{self.poster(room)}"
        data = {**self.users.records[rid], "name": person(self.rng)}
        if data == self.users.records[rid]:
            data["name"] += " Jr."
        self.users.put(rid, data)
        return update("user", rid, data, now)

    def _rename_room_action(self, now: int) -> Entry:
        rid = f"room:{self._room_for_post()}"
        data = {**self.rooms.records[rid], "name": words(self.rng, 1, 3).title()}
        if data == self.rooms.records[rid]:
            data["name"] += " Two"
        self.rooms.put(rid, data)
        return update("room", rid, data, now)


SCENARIO = Scenario(
    name="clients",
    summary="clients each holding room feed, room card and own-messages subscriptions,"
    " leaving and joining while data changes",
    defaults=Sizes(rows=3_000, mutations=3_000, views=1, clients=DEFAULT_CLIENTS),
    min_rows=3,
    views=views,
    entries=entries,
    state_size=state_size,
)
