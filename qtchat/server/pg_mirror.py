"""The live copies of a cluster's accounts, bans and room records, on PostgreSQL (issue 15).

Every node serves accounts, bans and room records from memory (backend.py, point 7). Each write goes
to PostgreSQL with a ``pg_notify`` on ``CHANNEL`` **in the same transaction**, so a notification means
committed; its payload names the writing node, what changed and its key (``{"node": ..., "what":
"account" | "bans" | "room", "key": ...}``). Every node listens on a connection of its own; on a
notification from another node it reads that account's row (or the bans' row, or that room's record)
again and tells the server's sink what changed (``RemoteSink.account_changed``, ``bans_added``,
``room_changed``: operator.py, room_state.py act on their users as they would on a change made here).
A node ignores its own notifications: its writes set its memory themselves.

**In step with the database.** Reads after a notification go on the backend's write connection, whose
requests run and are answered in the order sent: a read sent after one of this node's writes sees it, and
its answer comes after that write's. Account writes return the row they wrote, and memory takes it. The
bans are one jsonb row: a change is made by one statement on the row (appending a ban, filtering bans
out), never by writing this node's whole list, so bans made on two nodes at the same moment are both
kept; the statement returns the row, which memory takes unless another write of this node is on its way
(that one's answer is newer). A room record read again is not taken while this node's own save of the
room is on its way (the database will hold what this node saved, unless another node saves after it,
whose notification follows).

**A broken listening connection** is opened again every ``RELISTEN_MS``; ``PgLink.open()`` answers once it
is listening again, and then everything mirrored is read again (notifications sent meanwhile were
missed) and the differences are acted on as if notified.

Not live (yet): join points (``save_join``; a member's first join point on another node may be a later
one), and guests invited to an invite-only room (kept per node, while the guest is online).
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict
from typing import Any

from PySide6.QtCore import QObject, QTimer

from qtchat.protocol import name_key

from .backend import Account, RemoteSink, chain, done, mapped
from .bans import Ban, BanList, parse_bans
from .pgloop import PgError, PgLink, Rows
from .room_state import RoomRecord

log = logging.getLogger("qtchat.server.pg")

CHANNEL = "qtchat_changes"
RELISTEN_MS = 500  # how soon a broken listening connection is opened again (and again, while it fails)
UNIQUE_VIOLATION = "23505"
ACCOUNT = "SELECT key, name, password_hash, admin, created FROM accounts"
RETURNING_ACCOUNT = " RETURNING key, name, password_hash, admin, created"
# what open() and a reload after a broken listening connection read: accounts, rooms, join points, bans
LOAD: list[tuple[str, Any]] = [(ACCOUNT, ()), ("SELECT key, state FROM rooms", ()),
                               ("SELECT room, member, since FROM room_members", ()), ("SELECT state FROM bans", ())]


def _kept_bans(more: str = "") -> str:
    """The stored list of bans without those that ended before ``$NOW`` (and those ``more`` leaves out)."""
    return ("(SELECT coalesce(jsonb_agg(e ORDER BY n), '[]'::jsonb) FROM jsonb_array_elements(b.state->'bans') "
            "WITH ORDINALITY AS x(e, n) WHERE (jsonb_typeof(e->'until') = 'null' OR (e->>'until')::float8 > $NOW)"
            f"{more})")


ADD_BAN = ("INSERT INTO bans AS b (one, state) VALUES (1, jsonb_build_object('version', 1, 'bans', "
           "jsonb_build_array($1::jsonb))) ON CONFLICT (one) DO UPDATE SET state = jsonb_set(b.state, '{bans}', "
           + _kept_bans() + " || jsonb_build_array($1::jsonb)) RETURNING state").replace("$NOW", "$2")
REMOVE_BAN = ("UPDATE bans AS b SET state = jsonb_set(b.state, '{bans}', " + _kept_bans(
    " AND e->>'name_key' IS DISTINCT FROM $1 AND e->>'address' IS DISTINCT FROM $2") + ") RETURNING state"
              ).replace("$NOW", "$3")


class PgBanList(BanList):
    """The bans, kept in PostgreSQL's one row (table ``bans``): each change one statement on that row, with
    its notification; ``reload()`` reads the row again (another node changed it). ``on_added`` is told the
    bans that reached this node from elsewhere."""

    def __init__(self, link: PgLink, notice: Callable[[], tuple[str, list[object]]]) -> None:
        super().__init__(None)
        self._link = link
        self._notice = notice
        self._writing = 0  # this node's changes sent and not answered yet
        self.on_added: Callable[[list[Ban]], None] | None = None

    def _added(self, ban: Ban) -> None:
        self._write(ADD_BAN, [asdict(ban), time.time()])

    def _removed(self, target: str) -> None:
        self._write(REMOVE_BAN, [name_key(target), target, time.time()])

    def _expired(self) -> None:
        """Nothing to write: the next change leaves ended bans out of the row."""

    def _write(self, sql: str, params: list[object]) -> None:
        self._writing += 1

        def answered(f: Future[list[Rows]]) -> None:
            self._writing -= 1
            exc = f.exception()
            if exc is not None:
                log.error("cannot keep the bans: %s", exc)
                self.reload()  # a change of another node's may have been left for this answer to bring
            elif f.result()[0]:
                self.take(f.result()[0][0][0])

        self._link.transaction([(sql, params), self._notice()]).add_done_callback(answered)

    def reload(self) -> None:
        def read(f: Future[Rows]) -> None:
            exc = f.exception()
            if exc is not None:
                log.error("cannot read the bans again: %s", exc)
            elif f.result():
                self.take(f.result()[0][0])

        self._link.query("SELECT state FROM bans").add_done_callback(read)

    def take(self, state: object) -> None:
        """The row as stored now: held instead (unless a change of this node's is on its way: its answer is
        newer); the bans new to this node go to ``on_added``."""
        if self._writing:
            return
        try:
            fresh = parse_bans(state, "the ban list in PostgreSQL (table bans)", "Fix or delete its row")
        except OSError as exc:
            log.error("%s", exc)
            return
        held = self.bans
        self.load(fresh)
        added = [ban for ban in self.bans if ban not in held]
        if added and self.on_added is not None:
            self.on_added(added)


class PgMirror(QObject):
    """Accounts, bans and room records in memory, written through ``write`` (the backend's write connection)
    and kept in step with the other nodes' writes by listening on a connection of its own."""

    def __init__(self, dsn: str, write: PgLink, parent: QObject | None = None, *,
                 connect_timeout: float = 10.0) -> None:
        super().__init__(parent)
        self.node = secrets.token_hex(8)  # this node's name in its notifications
        self._write = write
        self._listen = PgLink(dsn, self, connect_timeout=connect_timeout)
        self._listen.lost.connect(self._on_lost)
        self.accounts: dict[str, Account] = {}
        self.rooms: dict[str, RoomRecord] = {}
        self._saving: dict[str, int] = {}  # room key -> this node's saves of it not answered yet
        self.bans = PgBanList(write, lambda: self.notice("bans"))
        self._sink: RemoteSink | None = None
        self._closed = False
        self.reloads = 0  # everything read again after the listening connection came back
        self._retry = QTimer(self)
        self._retry.setSingleShot(True)
        self._retry.setInterval(RELISTEN_MS)
        self._retry.timeout.connect(self._relisten)

    # ------------------------------------------------------------ listening

    def listen(self) -> Future[None]:
        """Start listening: done once notifications reach this node (before it reads what it mirrors)."""
        return self._listen.listen(CHANNEL, self._on_note)

    def attach(self, sink: RemoteSink) -> None:
        self._sink = sink
        self.bans.on_added = sink.bans_added

    def close(self) -> None:
        self._closed = True
        self._retry.stop()
        self._listen.close()

    @property
    def listen_pid(self) -> int | None:
        """The listening connection's server process (tests end it with pg_terminate_backend)."""
        return self._listen.backend_pid

    def notice(self, what: str, key: str = "") -> tuple[str, list[object]]:
        """The statement that tells the other nodes, at the commit of its transaction, what changed."""
        return "SELECT pg_notify($1, $2)", [CHANNEL, json.dumps({"node": self.node, "what": what, "key": key})]

    def _on_note(self, payload: str) -> None:
        try:
            note = json.loads(payload)
            node, what, key = note["node"], note["what"], str(note["key"])
        except (ValueError, KeyError, TypeError):
            log.warning("a notification on %s that is not one of ours: %.200r", CHANNEL, payload)
            return
        if node == self.node or self._closed:
            return
        if what == "account":
            self._reload_account(key)
        elif what == "bans":
            self.bans.reload()
        elif what == "room":
            self._reload_room(key)

    def _on_lost(self, reason: str) -> None:
        if not self._closed:
            log.warning("not listening to the other nodes' changes (%s): trying again", reason)
            self._retry.start()

    def _relisten(self) -> None:
        def listening(f: Future[None]) -> None:
            if f.exception() is None and not self._closed:  # (a failure was `lost`, which tries again)
                log.info("listening to the other nodes' changes again: reading accounts, bans and rooms again")
                self.reload_all()

        if not self._closed:
            self._listen.open().add_done_callback(listening)

    # ------------------------------------------------------------ reading

    def load(self, accounts: Rows, rooms: Rows, members: Rows, bans: Rows) -> None:
        """What ``LOAD`` read, taken as it is (when the node opens)."""
        self.accounts = {r[0]: _account(r) for r in accounts}
        self.rooms = _records(rooms, members)
        if bans:
            self.bans.load(parse_bans(bans[0][0], "the ban list in PostgreSQL (table bans)", "Fix or delete its row"))

    def reload_all(self) -> None:
        """Read everything again (notifications may have been missed), and act on what differs."""
        def read(f: Future[list[Rows]]) -> None:
            exc = f.exception()
            if exc is not None:
                log.error("cannot read accounts, bans and rooms again: %s", exc)
                return
            accounts, rooms, members, bans = f.result()
            fresh = {r[0]: _account(r) for r in accounts}
            for key in sorted(fresh.keys() | self.accounts.keys()):
                self._take_account(key, fresh.get(key))
            for record in _records(rooms, members).values():
                self._take_room(record)
            if bans:
                self.bans.take(bans[0][0])
            self.reloads += 1

        self._write.transaction(LOAD).add_done_callback(read)

    def _reload_account(self, key: str) -> None:
        def read(f: Future[Rows]) -> None:
            exc = f.exception()
            if exc is not None:
                log.error("cannot read the account %r again: %s", key, exc)
            else:
                self._take_account(key, _account(f.result()[0]) if f.result() else None)

        self._write.query(ACCOUNT + " WHERE key = $1", [key]).add_done_callback(read)

    def _take_account(self, key: str, after: Account | None) -> None:
        before = self.accounts.get(key)
        if before == after:
            return
        if after is None:
            del self.accounts[key]
        else:
            self.accounts[key] = after
        if self._sink is not None:
            self._sink.account_changed(key, before, after)

    def _reload_room(self, key: str) -> None:
        def read(f: Future[list[Rows]]) -> None:
            exc = f.exception()
            if exc is not None:
                log.error("cannot read the room %r again: %s", key, exc)
            elif f.result()[0]:
                self._take_room(_records(*f.result())[key])

        self._write.transaction([("SELECT key, state FROM rooms WHERE key = $1", [key]),
                                 ("SELECT room, member, since FROM room_members WHERE room = $1", [key])]
                                ).add_done_callback(read)

    def _take_room(self, fresh: RoomRecord) -> None:
        if self._saving.get(fresh.key):
            return  # this node's own save is on its way: the database will hold it (or a later one, notified)
        kept = self.rooms.get(fresh.key)
        if kept is not None:
            for member, since in kept.joined.items():
                fresh.joined.setdefault(member, since)
            if kept.state() == fresh.state():
                kept.joined = fresh.joined
                return
        self.rooms[fresh.key] = fresh
        if self._sink is not None:
            self._sink.room_changed(fresh)

    # ------------------------------------------------------------ accounts

    def create_account(self, key: str, name: str, password_hash: str, admin: bool) -> Future[Account]:
        result: Future[Account] = Future()

        def made(f: Future[list[Rows]]) -> None:
            exc = f.exception()
            if exc is None:
                account = self.accounts[key] = _account(f.result()[0][0])
                result.set_result(account)
            elif isinstance(exc, PgError) and exc.code == UNIQUE_VIOLATION:
                result.set_exception(ValueError(f"The name {name!r} is registered already."))
            else:
                result.set_exception(exc)

        self._write.transaction([
            ("INSERT INTO accounts (key, name, password_hash, admin, created) VALUES ($1, $2, $3, $4, $5)"
             + RETURNING_ACCOUNT, [key, name, password_hash, admin, time.time()]),
            self.notice("account", key)]).add_done_callback(made)
        return result

    def update_account(self, key: str, column: str, value: object) -> Future[None]:
        """Set one column (``password_hash``, ``admin``) of the account; memory takes the row as written."""
        def written(rows: list[Rows]) -> None:
            if rows[0]:  # (none: deleted meanwhile by another node, whose notification tells)
                self.accounts[key] = _account(rows[0][0])

        return mapped(self._write.transaction([
            (f"UPDATE accounts SET {column} = $1 WHERE key = $2" + RETURNING_ACCOUNT, [value, key]),
            self.notice("account", key)]), written)

    def delete_account(self, key: str) -> Future[int | None]:
        if key not in self.accounts:
            return done(None)
        result: Future[int | None] = Future()

        def deleted(rows: list[Rows]) -> None:
            self.accounts.pop(key, None)
            result.set_result(len(rows[1]))

        chain(self._write.transaction([
            ("DELETE FROM accounts WHERE key = $1", [key]),
            ("DELETE FROM mailbox WHERE user_key = $1 RETURNING 1", [key]),
            self.notice("account", key),
        ]), deleted, result)
        return result

    # ------------------------------------------------------------ rooms

    def save_room(self, key: str, state: dict[str, Any]) -> Future[None]:
        kept = self.rooms.get(key)
        self.rooms[key] = RoomRecord.from_state(key, state, kept.joined if kept is not None else {})
        self._saving[key] = self._saving.get(key, 0) + 1

        def answered(_: Future[list[Rows]]) -> None:
            self._saving[key] -= 1
            if not self._saving[key]:
                del self._saving[key]

        written = self._write.transaction([("INSERT INTO rooms (key, state) VALUES ($1, $2) "
                                            "ON CONFLICT (key) DO UPDATE SET state = EXCLUDED.state", [key, state]),
                                           self.notice("room", key)])
        written.add_done_callback(answered)
        return mapped(written, lambda _: None)


def _account(row: tuple[Any, ...]) -> Account:
    return Account(row[0], row[1], row[2], bool(row[3]), float(row[4]))


def _records(rooms: Rows, members: Rows) -> dict[str, RoomRecord]:
    joined: dict[str, dict[str, int]] = {}
    for room, member, since in members:
        joined.setdefault(room, {})[member] = int(since)
    return {key: RoomRecord.from_state(key, state, joined.get(key, {})) for key, state in rooms}


__all__ = ["CHANNEL", "PgBanList", "PgMirror"]
