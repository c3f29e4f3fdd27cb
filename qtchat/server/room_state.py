"""What a room keeps when everyone has left it: its creator, operators, modes, invites and join points.

Every room but the lobby has a ``RoomRecord`` from its first join on (the first joiner is its creator
and first operator; a room whose history dates from before records existed gets one the same way).
The record is kept through the storage seam (``Backend.room_record``/``save_room``/``save_join``) and
served from memory here (``RoomRecords``), so a room everyone left stays invite-only, and its join
points stay, across a restart. Invites to a registered name are kept; one to an unregistered name
(``guests``) lasts while that name is online. A member's join point is the backend's ``join_point()`` at
their first join: with ``history`` "joined", pages, searches and catch-up show them only the messages
after it (stored ids only grow). Leaving and joining again keeps the first join point.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qtchat.protocol import RoomState

if TYPE_CHECKING:
    from .backend import Backend

log = logging.getLogger("qtchat.server")

JOINED, FULL = "joined", "full"

SCHEMA = """
CREATE TABLE IF NOT EXISTS rooms (key TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS room_members (
    room TEXT NOT NULL, member TEXT NOT NULL, since INTEGER NOT NULL, PRIMARY KEY (room, member)
) WITHOUT ROWID;
"""


@dataclass(slots=True)
class RoomRecord:
    """A room's lasting state. Keys are ``name_key``s; names are the display names."""

    key: str
    name: str
    creator: str = ""  # the creator's key
    creator_name: str = ""
    operators: dict[str, str] = field(default_factory=dict)  # key -> name, the creator among them
    invite_only: bool = False
    history: str = FULL
    invites: set[str] = field(default_factory=set)  # kept: registered names' keys
    guests: set[str] = field(default_factory=set)  # not kept: unregistered names invited while online
    joined: dict[str, int] = field(default_factory=dict)  # member key -> join point (an id)

    def state(self) -> dict[str, Any]:
        """What ``save_room`` keeps (join points are kept one by one, with ``save_join``)."""
        return {"name": self.name, "creator": self.creator, "creator_name": self.creator_name,
                "operators": self.operators, "invite_only": self.invite_only, "history": self.history,
                "invites": sorted(self.invites)}

    @classmethod
    def from_state(cls, key: str, state: dict[str, Any], joined: dict[str, int]) -> RoomRecord:
        return cls(key, str(state["name"]), str(state.get("creator", "")), str(state.get("creator_name", "")),
                   {str(k): str(v) for k, v in dict(state.get("operators", {})).items()},
                   bool(state.get("invite_only", False)), JOINED if state.get("history") == JOINED else FULL,
                   {str(k) for k in state.get("invites", ())}, set(), dict(joined))

    def event(self, by: str = "") -> RoomState:
        return RoomState(self.name, self.creator_name, tuple(self.operators.values()), self.invite_only,
                         self.history, by)


class RoomTable:
    """Room records in SQLite (accounts.db: two tables, made if missing, so an old data folder just gains
    them). Each write is committed at once."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        db.executescript(SCHEMA)

    def get(self, key: str) -> RoomRecord | None:
        row = self.db.execute("SELECT state FROM rooms WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        joined = dict(self.db.execute("SELECT member, since FROM room_members WHERE room = ?", (key,)).fetchall())
        return RoomRecord.from_state(key, json.loads(row[0]), joined)

    def save(self, key: str, state: dict[str, Any]) -> None:
        self.db.execute("INSERT OR REPLACE INTO rooms VALUES (?, ?)", (key, json.dumps(state, ensure_ascii=False)))

    def save_join(self, room: str, member: str, since: int) -> None:
        self.db.execute("INSERT OR IGNORE INTO room_members VALUES (?, ?, ?)", (room, member, since))


class RoomRecords:
    """The records of the rooms asked about so far, from memory; read from the backend once each."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._cache: dict[str, RoomRecord | None] = {}

    def get(self, key: str) -> RoomRecord | None:
        if key not in self._cache:
            self._cache[key] = self.backend.room_record(key)
        return self._cache[key]

    def may_enter(self, key: str, user_key: str) -> bool:
        """May this name join the room (open, or invited, an operator, or a server admin)?"""
        record = self.get(key)
        if record is None or not record.invite_only:
            return True
        if user_key in record.operators or user_key in record.invites or user_key in record.guests:
            return True
        return self.is_admin(user_key)

    def is_admin(self, user_key: str) -> bool:
        account = self.backend.account(user_key)
        return account is not None and account.admin

    def is_operator(self, record: RoomRecord, user_key: str) -> bool:
        return user_key in record.operators or self.is_admin(user_key)

    def entered(self, key: str, name: str, user_key: str, user_name: str) -> RoomRecord:
        """A user is in the room: its record (made, with them as creator, if it has none) with their join point."""
        record = self.get(key)
        if record is None:
            record = self._cache[key] = RoomRecord(key, name, user_key, user_name, {user_key: user_name})
            self.save(record)
        if user_key not in record.joined:
            since = record.joined[user_key] = self.backend.join_point(key)
            self._report(self.backend.save_join(key, user_key, since), f"the join point in {name!r}")
        return record

    def floor(self, user_key: str, key: str) -> int | None:
        """The id after which the user may read the room's history (None: all of it)."""
        record = self.get(key)
        if record is None or record.history != JOINED:
            return None
        since = record.joined.get(user_key)
        return since if since is not None else self.backend.join_point(key)

    def listed(self, key: str) -> bool:
        """Does the room appear in the ``rooms`` list of those who are not in it?"""
        record = self.get(key)
        return record is None or not record.invite_only

    def save(self, record: RoomRecord) -> None:
        self._report(self.backend.save_room(record.key, record.state()), f"the room {record.name!r}")

    def reloaded(self, fresh: RoomRecord) -> None:
        """The record as another node stored it: taken in place of what was kept (the object the room's
        handlers hold), except what this node keeps alone: the guests invited here, join points seen here."""
        record = self._cache.get(fresh.key)
        if record is None:
            if fresh.key in self._cache:  # asked before, and had none: now it has one
                self._cache[fresh.key] = fresh
            return  # never asked: read from the backend when it is
        record.name, record.creator, record.creator_name = fresh.name, fresh.creator, fresh.creator_name
        record.operators, record.invite_only, record.history = dict(fresh.operators), fresh.invite_only, fresh.history
        record.invites = set(fresh.invites)
        for member, since in fresh.joined.items():
            record.joined.setdefault(member, since)

    def drop_guest(self, user_key: str) -> None:
        """An unregistered name went offline: its invites end."""
        for record in self._cache.values():
            if record is not None:
                record.guests.discard(user_key)

    def _report(self, future: Any, what: str) -> None:
        def done(f: Any) -> None:
            exc = f.exception()
            if exc is not None:
                log.error("cannot store %s: %s", what, exc)
        future.add_done_callback(done)
