"""The storage seam in memory: a second implementation, in plain Python, that keeps nothing on disk.

For a server hosted inside the desktop client (the conversation lasts while the
client runs) and for tests. It keeps what the SQLite backend keeps, with the same
answers (search has the semantics of SQLite's scan without FTS5: every word a
prefix of a word, case and diacritics ignored), bounded by ``keep_per_room``.

With ``answer_later`` every answer comes on a later pass of the event loop, in the
order asked, as a backend that talks to a database over a socket answers: the tests
run the server's behaviour against it, so the core never relies on an answer that
comes at once.
"""

from __future__ import annotations

import bisect
import json
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from PySide6.QtCore import QObject, QTimer

from qtchat.protocol.message_events import MAX_REACTIONS

from .backend import (
    Account,
    Around,
    Change,
    HeldMessage,
    MailboxCount,
    Page,
    PassBatch,
    Posted,
    Reaction,
    RecentCid,
    RemoteSink,
    StoredMessage,
    Tallies,
    answer,
    around_shares,
    ordered,
    own,
    quoted,
)
from .bans import BanList
from .cluster import Cluster
from .room_state import RoomRecord
from .sqlite_backend import PRUNE_INTERVAL_MS, SEARCH_BUDGET_S, MessageIds
from .store import CHANGES_SCANNED, SearchTooCostly, change_refused, fold, query_words

T = TypeVar("T")
Row = tuple[int, int, str, str, str | None, str]  # id, ts, sender, sender key, cid, text


class MemoryBackend(QObject):
    def __init__(self, *, history: bool = True, keep_days: float | None = None, keep_per_room: int = 20_000,
                 answer_later: bool = False, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.history = history
        self.bans = BanList(None)
        self.cluster = Cluster()
        self.ids = MessageIds()
        self.keep_days = keep_days
        self.keep_per_room = keep_per_room
        self.answer_later = answer_later
        self._rooms: dict[str, list[Row]] = {}  # room key -> rows in id order
        self._room_ids: dict[str, list[int]] = {}  # room key -> their ids (for bisect)
        self._by_cid: dict[tuple[str, str], list[tuple[str, Row]]] = {}  # (sender key, cid) -> (room key, row)
        self._edits: dict[int, tuple[str, int, bool]] = {}  # id -> its current text, edited (ms), deleted
        self._replies: dict[int, int] = {}  # id -> the id of the message it answers
        self._reactions: dict[int, dict[str, set[str]]] = {}  # id -> emoji -> who gave it
        self._changes: dict[str, tuple[list[int], list[int]]] = {}  # room key -> (change seqs, their ids), in order
        self._markers: dict[tuple[str, str], int] = {}
        self._mail: dict[str, list[Row]] = {}  # recipient key -> rows in id order
        self._accounts: dict[str, Account] = {}
        self._room_states: dict[str, str] = {}  # room key -> RoomRecord.state() as JSON (a copy, as stored)
        self._room_members: dict[str, dict[str, int]] = {}  # room key -> member key -> join point
        self._queue: deque[Callable[[], None]] = deque()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._answer_queued)
        self._prune_timer = QTimer(self)
        self._prune_timer.timeout.connect(self.prune)

    def attach(self, sink: RemoteSink) -> None:
        del sink  # nothing comes from elsewhere
        self._prune_timer.start(PRUNE_INTERVAL_MS)

    def close(self) -> None:
        self._prune_timer.stop()
        self._answer_queued()

    # ------------------------------------------------------------ answering

    def _answer(self, call: Callable[[], T]) -> Future[T]:
        if not self.answer_later:
            return answer(call)
        future: Future[T] = Future()

        def run() -> None:
            try:
                future.set_result(call())
            except Exception as exc:
                future.set_exception(exc)

        self._queue.append(run)
        if not self._timer.isActive():
            self._timer.start()
        return future

    def _answer_queued(self) -> None:
        queue, self._queue = self._queue, deque()
        for run in queue:
            run()

    def publish(self, room_key: str, frames: bytes) -> None:
        del room_key, frames  # one machine: no other node to tell

    # ------------------------------------------------------------ ids and passes

    def next_id(self) -> int:
        return self.ids.next()

    def join_point(self, room_key: str) -> int:
        del room_key  # every id stored from now on is above the next one (one machine)
        return self.ids.next()

    def store_pass(self, batch: PassBatch) -> Future[None]:
        return self._answer(lambda: self._store(batch))

    def _store(self, batch: PassBatch) -> None:
        for m in batch.messages:
            if self.history and m.cid is not None and self._resent(m):
                continue  # a resend of a stored message (backend.py, point 8)
            m.id = self.ids.next()
            if self.history:
                row = (m.id, m.ts, m.sender, m.sender_key, m.cid, m.text)
                self._rooms.setdefault(m.room_key, []).append(row)
                self._room_ids.setdefault(m.room_key, []).append(m.id)
                if m.cid is not None:
                    self._by_cid.setdefault((m.sender_key, m.cid), []).append((m.room_key, row))
        for key, mid in batch.markers.items():
            self._markers[key] = max(mid, self._markers.get(key, mid))
        for mid, to_key, ts, sender, sender_key, cid, text in batch.mail:
            self._mail.setdefault(to_key, []).append((mid, ts, sender, sender_key, cid, text))
        for user_key, upto in batch.delivered.items():
            kept = [r for r in self._mail.get(user_key, ()) if r[0] > upto]
            if kept:
                self._mail[user_key] = kept
            else:
                self._mail.pop(user_key, None)
        if batch.messages and self.history:
            self._trim({m.room_key for m in batch.messages})
        self._quote_and_change(batch)

    def _quote_and_change(self, batch: PassBatch) -> None:
        """The pass's replies quoted, its edits and deletions checked and made (backend.py, points 9, 10)."""
        for m in batch.messages:
            if m.reply_to:
                if self.history and not m.again:
                    self._replies[m.id] = m.reply_to
                m.reply_to, m.reply_from, m.reply_text = quoted(m.reply_to, self._parent(m.room_key, m.reply_to))
        for c in batch.changes:
            self._apply_change(c)
        for r in batch.reactions:
            self._react(r)

    def _react(self, r: Reaction) -> None:
        row = self._row(r.room_key, r.id)
        if row is None or self._edits.get(r.id, ("", 0, False))[2]:
            r.result = "no_such_message"
            return
        given = self._reactions.setdefault(r.id, {})
        who = given.setdefault(r.emoji, set())
        if r.on and r.user_key not in who and sum(len(w) for w in given.values()) >= MAX_REACTIONS:
            r.result = "too_many_reactions"
            return
        if r.on:
            who.add(r.user_key)
        else:
            who.discard(r.user_key)
        r.counts, r.mine = self._tally(r.id, r.user_key)

    def _tally(self, mid: int, user_key: str) -> tuple[dict[str, int], tuple[str, ...]]:
        given = self._reactions.get(mid, {})
        return (ordered({e: len(w) for e, w in given.items()}),
                own(e for e, w in given.items() if user_key in w))

    def tallies(self, room_key: str, ids: list[int], user_key: str) -> Future[Tallies]:
        return self._answer(lambda: {mid: self._tally(mid, user_key) for mid in ids
                                     if any(self._reactions.get(mid, {}).values())})

    def _apply_change(self, c: Change) -> None:
        """An edit or a deletion, checked and applied (backend.py, point 9)."""
        row = self._row(c.room_key, c.id)
        now = None if row is None else self._edits.get(row[0], (row[5], 0, False))
        c.result = change_refused(c, None if row is None or now is None else (row[3], row[1], now[2]))
        if c.result or row is None or now is None:
            return
        c.sender, c.seq = row[2], self.ids.next()
        self._edits[c.id] = ("", now[1], True) if c.text is None else (c.text, c.ts, False)
        seqs, ids = self._changes.setdefault(c.room_key, ([], []))
        seqs.append(c.seq)
        ids.append(c.id)

    def _row(self, room_key: str, mid: int) -> Row | None:
        ids = self._room_ids.get(room_key, [])
        at = bisect.bisect_left(ids, mid)
        return self._rooms[room_key][at] if at < len(ids) and ids[at] == mid else None

    def _resent(self, m: Posted) -> bool:
        """Is ``m`` a resend of a stored message (same sender, cid, room and text)? Then it has its id and ts."""
        for room, row in self._by_cid.get((m.sender_key, m.cid or ""), ()):
            if room == m.room_key and row[5] == m.text:
                m.id, m.ts, m.again = row[0], row[1], True
                return True
        return False

    def _unindex(self, room: str, rows: list[Row]) -> None:
        """Deleted rows (trimmed, pruned) are no longer found as the first copy of a resend; their edits, replies
        and reactions go with them (a room's list of changes is cut to those of messages still kept)."""
        for row in rows:
            self._edits.pop(row[0], None)
            self._replies.pop(row[0], None)
            self._reactions.pop(row[0], None)
        if rows and room in self._changes:
            gone = {row[0] for row in rows}
            seqs, ids = self._changes[room]
            left = [(q, i) for q, i in zip(seqs, ids, strict=True) if i not in gone]
            self._changes[room] = ([q for q, _ in left], [i for _, i in left])
        for row in rows:
            if row[4] is not None:
                key = (row[3], row[4])
                kept = [entry for entry in self._by_cid.get(key, ()) if entry != (room, row)]
                if kept:
                    self._by_cid[key] = kept
                else:
                    self._by_cid.pop(key, None)

    def _trim(self, rooms: set[str]) -> None:
        for room in rooms:
            extra = len(self._rooms[room]) - self.keep_per_room
            if extra > 0:
                self._unindex(room, self._rooms[room][:extra])
                del self._rooms[room][:extra]
                del self._room_ids[room][:extra]

    # ------------------------------------------------------------ history

    def page(self, room_key: str, *, before: int | None, after: int | None, limit: int) -> Future[Page]:
        def read() -> Page:
            rows, ids = self._rooms.get(room_key, []), self._room_ids.get(room_key, [])
            if after is not None:
                start = bisect.bisect_right(ids, after)
                found = rows[start:start + limit + 1]
                return Page(self._stored(room_key, found[:limit]), len(found) > limit)
            end = bisect.bisect_left(ids, before) if before is not None else len(ids)
            found = rows[max(0, end - limit - 1):end]
            return Page(self._stored(room_key, found[-limit:] if limit else []), len(found) > limit)

        return self._answer(read)

    def _stored(self, room_key: str, rows: list[Row]) -> list[StoredMessage]:
        edits, replies = self._edits, self._replies
        return [StoredMessage(r[0], room_key, r[1], r[2], r[5], r[4]) if r[0] not in edits and r[0] not in replies
                else StoredMessage(r[0], room_key, r[1], r[2], *_current(edits.get(r[0], (r[5], 0, False)), r[4]),
                                   *quoted(replies.get(r[0], 0), self._parent(room_key, replies.get(r[0], 0))))
                for r in rows]

    def _parent(self, room_key: str, mid: int) -> tuple[str, str, bool] | None:
        """A message a reply answers as it is now: (sender, text, deleted), None if it is not in the room."""
        row = self._row(room_key, mid) if mid else None
        if row is None:
            return None
        text, _, deleted = self._edits.get(mid, (row[5], 0, False))
        return row[2], text, deleted

    def changed(self, room_key: str, after: int, limit: int) -> Future[Page]:
        def read() -> Page:
            seqs, ids = self._changes.get(room_key, ([], []))
            last: dict[int, None] = {}  # the ids changed after ``after``, in the order of their last change
            start = bisect.bisect_right(seqs, after)
            for mid in ids[start:start + CHANGES_SCANNED]:  # a bounded read, as the store's (store.py)
                if mid <= after:
                    last.pop(mid, None)
                    last[mid] = None
            rows = [row for mid in last if (row := self._row(room_key, mid)) is not None]
            return Page(self._stored(room_key, rows[:limit]), len(rows) > limit or len(ids) - start > CHANGES_SCANNED)

        return self._answer(read)

    def around(self, room_key: str, mid: int, limit: int) -> Future[Around]:
        def read() -> Around:
            rows, ids = self._rooms.get(room_key, []), self._room_ids.get(room_key, [])
            at = bisect.bisect_left(ids, mid)
            older, newer = rows[max(0, at - limit - 1):at], rows[at:at + limit + 1]
            want_old, want_new = around_shares(len(older), len(newer), limit)
            old = older[len(older) - want_old:] if want_old else []
            return Around(self._stored(room_key, old), self._stored(room_key, newer[:want_new]), len(older) > len(old),
                          len(newer) > want_new)

        return self._answer(read)

    def search(self, query: str, room_keys: list[str], *, before: int | None, limit: int) -> Future[Page]:
        def read() -> Page:
            words = [" " + fold(w).strip() for w in query_words(query)]
            if not words:
                return Page([], False)
            deadline = time.monotonic() + SEARCH_BUDGET_S
            top = before if before is not None else 1 << 62
            found: list[StoredMessage] = []
            for room in room_keys:
                rows, ids = self._rooms.get(room, []), self._room_ids.get(room, [])
                taken = 0
                for n, row in enumerate(reversed(rows[:bisect.bisect_left(ids, top)])):
                    if n % 256 == 255 and time.monotonic() > deadline:
                        raise SearchTooCostly(SEARCH_BUDGET_S)
                    folded = fold(self._edits[row[0]][0] if row[0] in self._edits else row[5])
                    if all(w in folded for w in words):
                        found.append(self._stored(room, [row])[0])
                        taken += 1
                        if taken > limit:
                            break
            found.sort(key=lambda m: m.id, reverse=True)
            return Page(found[:limit], len(found) > limit)

        return self._answer(read)

    def marker(self, user_key: str, room_key: str) -> Future[int | None]:
        return self._answer(lambda: self._markers.get((user_key, room_key)))

    def unread(self, room_key: str, user_key: str, after: int, cap: int) -> Future[int]:
        def count() -> int:
            rows, ids = self._rooms.get(room_key, []), self._room_ids.get(room_key, [])
            n = 0
            for row in rows[bisect.bisect_right(ids, after):]:
                if row[3] != user_key:
                    n += 1
                    if n >= cap:
                        break
            return n

        return self._answer(count)

    def recent_cids(self, sender_key: str, limit: int) -> Future[list[RecentCid]]:
        del sender_key, limit  # nothing outlives the server here, and the server itself remembers this run's
        return self._answer(list)

    # ------------------------------------------------------------ mailboxes

    def mailbox_count(self, user_key: str, sender_key: str, cap: int, share: int) -> Future[MailboxCount]:
        def count() -> MailboxCount:
            rows = self._mail.get(user_key, ())
            return MailboxCount(min(cap, len(rows)), min(share, sum(1 for r in rows if r[3] == sender_key)))

        return self._answer(count)

    def mailbox_page(self, user_key: str, after: int, limit: int) -> Future[tuple[list[HeldMessage], bool]]:
        def read() -> tuple[list[HeldMessage], bool]:
            rows = [r for r in self._mail.get(user_key, ()) if r[0] > after][:limit + 1]
            return [HeldMessage(r[0], r[1], r[2], r[5], r[4]) for r in rows[:limit]], len(rows) > limit

        return self._answer(read)

    # ------------------------------------------------------------ accounts

    def account(self, key: str) -> Account | None:
        return self._accounts.get(key)

    def accounts(self) -> list[Account]:
        return [self._accounts[k] for k in sorted(self._accounts)]

    def create_account(self, key: str, name: str, password_hash: str, *, admin: bool = False) -> Future[Account]:
        def create() -> Account:
            if key in self._accounts:
                raise ValueError(f"The name {name!r} is registered already.")
            account = self._accounts[key] = Account(key, name, password_hash, admin, time.time())
            return account

        return self._answer(create)

    def set_password(self, key: str, password_hash: str) -> Future[None]:
        return self._answer(lambda: self._change(key, password_hash=password_hash))

    def set_admin(self, key: str, admin: bool) -> Future[None]:
        return self._answer(lambda: self._change(key, admin=admin))

    def _change(self, key: str, *, password_hash: str | None = None, admin: bool | None = None) -> None:
        a = self._accounts.get(key)
        if a is not None:
            self._accounts[key] = Account(a.key, a.name, password_hash if password_hash is not None else
                                          a.password_hash, a.admin if admin is None else admin, a.created)

    def delete_account(self, key: str) -> Future[int | None]:
        def delete() -> int | None:
            if self._accounts.pop(key, None) is None:
                return None
            return len(self._mail.pop(key, ()))

        return self._answer(delete)

    # ------------------------------------------------------------ rooms

    def room_record(self, key: str) -> RoomRecord | None:
        state = self._room_states.get(key)
        return None if state is None else RoomRecord.from_state(key, json.loads(state),
                                                                self._room_members.get(key, {}))

    def save_room(self, key: str, state: dict[str, Any]) -> Future[None]:
        text = json.dumps(state)
        return self._answer(lambda: self._room_states.__setitem__(key, text))

    def save_join(self, room_key: str, member_key: str, since: int) -> Future[None]:
        return self._answer(lambda: None if member_key in self._room_members.setdefault(room_key, {}) else
                            self._room_members[room_key].__setitem__(member_key, since))

    # ------------------------------------------------------------ upkeep

    def prune(self) -> None:
        if self.keep_days is None:
            return
        cutoff = int((time.time() - self.keep_days * 86400) * 1000)
        for store in (self._rooms, self._mail):
            for key, rows in list(store.items()):
                kept = [r for r in rows if r[1] >= cutoff]
                if len(kept) != len(rows):
                    store[key] = kept
                    if store is self._rooms:
                        self._room_ids[key] = [r[0] for r in kept]
                        self._unindex(key, [r for r in rows if r[1] < cutoff])


def _current(edit: tuple[str, int, bool], cid: str | None) -> tuple[str, str | None, int, bool]:
    text, edited, deleted = edit
    return text, cid, edited, deleted
