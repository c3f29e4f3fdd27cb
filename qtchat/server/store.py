"""Durable message history in SQLite (the standard library's sqlite3, WAL mode).

The server appends each event-loop pass's accepted messages, and the read markers
moved in that pass, in one transaction (group commit) before it sends the messages
to anyone, so an acknowledged message is on disk, and one fsync is shared by every
message of the pass. Reads (history pages) are indexed by room and id.

Private messages to offline registered users wait in ``mailbox`` (kept in the same
transactions) until their recipient confirms them; the confirmations of a pass are
deleted in its transaction too.

Full-text search uses an external-content FTS5 table over ``messages``, filled off
the hot path: ``index_pending`` indexes the rows after the last indexed id in
batches (the server calls it from a timer, and before every search), and a trigger
takes deleted rows (retention) out of the index. Without FTS5, or with
``full_text=False``, searches scan the messages with LIKE instead (slower).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from qtchat.protocol.message_events import MAX_REACTIONS

from .backend import Change, HeldMessage, MailRow, Reaction, StoredMessage, Tallies, around_shares, ordered, own, quoted
from .rekey import rekey_messages
from .search_agent import Row, TooCostly, fold, fts_query, query_words, search_rows, within

__all__ = ["MessageStore", "SearchTooCostly", "fold", "fts_query", "query_words"]

log = logging.getLogger("qtchat.server.store")

# a resend after a restart is recognised when its message was stored at most this long before the restart
# (message ids are microseconds since the epoch)
RESEND_WINDOW_S = 15 * 60
RECENT_CIDS_KEPT = 64  # per sender, from that window

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,          -- the protocol's message id (microseconds, increasing)
    room TEXT NOT NULL,
    ts INTEGER NOT NULL,             -- milliseconds since the epoch
    sender TEXT NOT NULL,
    sender_key TEXT NOT NULL,        -- protocol.names.name_key(sender)
    cid TEXT,                        -- the sender's client message id, for resends after a restart
    text TEXT NOT NULL,              -- its current text ('' once deleted)
    edited INTEGER NOT NULL DEFAULT 0,   -- when the text was last replaced (ms), 0: never
    deleted INTEGER NOT NULL DEFAULT 0,  -- 1: deleted by its author or an operator
    changed INTEGER,                 -- the seq of its last edit or deletion (an id of the same sequence)
    reply_to INTEGER                 -- the message of the room it answers
);
CREATE INDEX IF NOT EXISTS messages_room_id ON messages (room, id);
-- no index on (sender_key, cid): it cost a third of every insert; recent_cids scans a bounded id range
DROP INDEX IF EXISTS messages_sender_cid;
CREATE TABLE IF NOT EXISTS read_markers (
    user_key TEXT NOT NULL,          -- name_key of the username
    room_key TEXT NOT NULL,          -- name_key of the room (as messages.room)
    id INTEGER NOT NULL,             -- the highest message id the user marked read there
    PRIMARY KEY (user_key, room_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS mailbox (  -- private messages kept for offline users until they confirm them
    id INTEGER PRIMARY KEY,          -- the message id (from the same sequence as messages.id)
    user_key TEXT NOT NULL,          -- name_key of the recipient
    ts INTEGER NOT NULL,
    sender TEXT NOT NULL,
    sender_key TEXT NOT NULL,
    cid TEXT,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS mailbox_user_id ON mailbox (user_key, id);
CREATE INDEX IF NOT EXISTS mailbox_sender_cid ON mailbox (sender_key, cid) WHERE cid IS NOT NULL;
"""

FTS_SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5(
    text, content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER IF NOT EXISTS messages_fts_delete AFTER DELETE ON messages
WHEN old.id <= (SELECT value FROM meta WHERE key = 'fts_upto')
BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TRIGGER IF NOT EXISTS messages_fts_update AFTER UPDATE OF text ON messages
WHEN old.id <= (SELECT value FROM meta WHERE key = 'fts_upto')
BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO messages_fts (rowid, text) VALUES (new.id, new.text);
END;
"""

CHANGES_SCHEMA = """
CREATE INDEX IF NOT EXISTS messages_room_changed ON messages (room, changed) WHERE changed IS NOT NULL;
CREATE TABLE IF NOT EXISTS reactions (  -- who gave which reaction to which message (backend.py, point 11)
    message_id INTEGER NOT NULL,
    user_key TEXT NOT NULL,
    emoji TEXT NOT NULL,
    PRIMARY KEY (message_id, user_key, emoji)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS messages_reactions_delete AFTER DELETE ON messages
BEGIN
    DELETE FROM reactions WHERE message_id = old.id;
END;
"""
# (a messages table made before edits existed gets their columns: _add_change_columns)
CHANGE_COLUMNS = (("edited", "INTEGER NOT NULL DEFAULT 0"), ("deleted", "INTEGER NOT NULL DEFAULT 0"),
                  ("changed", "INTEGER"), ("reply_to", "INTEGER"))

CHANGES_SCANNED = 1000  # changes a catch-up page looks through at most (the rest: ``changed_more``)
INDEX_BATCH = 2000  # rows per indexing transaction (about 7 ms here)

# a message with its reply's parent as it is now (backend.py, point 10): read with _stored
_COLS = "m.id, m.room, m.ts, m.sender, m.text, m.cid, m.edited, m.deleted, m.reply_to, p.sender, p.text, p.deleted"
_FROM = "messages AS m LEFT JOIN messages AS p ON p.id = m.reply_to AND p.room = m.room"


def _stored(r: tuple[Any, ...]) -> StoredMessage:
    parent = None if r[9] is None else (str(r[9]), str(r[10]), bool(r[11]))
    return StoredMessage(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]), *quoted(r[8], parent))


# a change taken back: id, text, edited, deleted, changed; or a reaction: -id, user key, had it, 0, emoji
Undo = tuple[int, str, int, int, "int | str | None"]


def _add_change_columns(db: sqlite3.Connection) -> None:
    have = {str(r[1]) for r in db.execute("PRAGMA table_info(messages)")}
    for name, decl in CHANGE_COLUMNS:
        if name not in have:
            db.execute(f"ALTER TABLE messages ADD COLUMN {name} {decl}")


def change_refused(c: Change, found: tuple[str, int, bool] | None) -> str:
    """Why the store refuses a change of a message found as (sender key, ts, deleted), or None: "" if it
    does not (backend.py, point 9)."""
    if found is None or found[2]:
        return "no_such_message"
    if c.author_key is not None and found[0] != c.author_key:
        return "not_author"
    if c.text is not None and found[1] < c.not_before:
        return "too_late"
    return ""


class SearchTooCostly(Exception):
    """A search stopped at its time budget (or, with ``why``, not started: too many wait)."""

    def __init__(self, budget: float, why: str | None = None) -> None:
        super().__init__(why or f"the search ran past its budget of {budget * 1000:.0f} ms")
        self.budget = budget


def open_wal(path: Path | None, *, synced_elsewhere: bool = False) -> sqlite3.Connection:
    """A connection to a SQLite file in WAL mode. A commit is on disk when it returns (synchronous=FULL),
    or, ``synced_elsewhere``, only once the log is synced by someone else (the sync agent: syncer.py).

    Then this connection syncs nothing at all (synchronous=OFF, no automatic checkpoints): the agent
    fsyncs the log before anything is acknowledged, and makes every checkpoint itself with a connection
    of its own at synchronous=FULL (the log synced before the database is written, the database synced
    before the log may start over). What OFF leaves out beyond NORMAL is the sync of the log's header
    when a writer starts the log over after a checkpoint: a stall of the disk's fsync on the loop (seen
    at 290 ms here). Without it a crash can leave the old header before the new frames; those frames'
    salts then do not match, so they are ignored, and they were not acknowledged, since the agent had
    not synced them; the frames they replace were all checkpointed and synced already. Close it with
    ``close_wal`` (the last connection to close checkpoints, which must sync)."""
    db = sqlite3.connect(str(path) if path else ":memory:", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    if synced_elsewhere:
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA wal_autocheckpoint=0")
    else:
        db.execute("PRAGMA synchronous=FULL")
    return db


def close_wal(db: sqlite3.Connection) -> None:
    """Close a connection of ``open_wal``. If it is the last one, SQLite checkpoints the log into the
    database and removes it: with synchronous=FULL, so that the checkpoint is synced before the log goes."""
    with contextlib.suppress(sqlite3.Error):
        db.execute("PRAGMA synchronous=FULL")
    db.close()


def rollback(db: sqlite3.Connection) -> None:
    """Undo the open transaction, if SQLite has not already (it does on a full disk, SQLITE_FULL, and some
    I/O errors): a ROLLBACK then would fail and hide the real cause."""
    if db.in_transaction:
        db.execute("ROLLBACK")


class MessageStore:
    """Messages on disk. ``path`` None keeps them in memory (tests, or a server that keeps nothing)."""

    def __init__(self, path: Path | None, *, keep_days: float | None = None, keep_per_room: int | None = None,
                 full_text: bool = True, synced_elsewhere: bool = False) -> None:
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.db = open_wal(path, synced_elsewhere=synced_elsewhere)
        self.synchronous = "OFF" if synced_elsewhere else "FULL"
        self.db.executescript(SCHEMA)
        _add_change_columns(self.db)
        self.db.executescript(CHANGES_SCHEMA)
        rekey_messages(self.db)  # (once, after names began to compare by their skeletons)
        self.db.create_function("qtchat_fold", 1, fold, deterministic=True)
        self.keep_days = keep_days
        self.keep_per_room = keep_per_room
        self.commits = 0
        self.fts = False  # True: searches use the FTS5 index; False: a LIKE scan
        self.opened_at_id = self.max_id()  # the last message stored before this run
        self._recent_by_sender: dict[str, deque[tuple[str, int, int, str, str]]] | None = None
        self.fts_upto = 0  # the highest message id in the index
        self._setup_fts(full_text)

    def _setup_fts(self, wanted: bool) -> None:
        db = self.db
        try:
            db.executescript(FTS_SCHEMA)
        except sqlite3.OperationalError as exc:  # this SQLite has no FTS5
            log.warning("full-text search without an index (SQLite lacks FTS5: %s); searches scan the messages",
                        exc)
            # a trigger of an index made elsewhere would fail every delete here; forget the index instead
            db.execute("DROP TRIGGER IF EXISTS messages_fts_delete")
            db.execute("DROP TRIGGER IF EXISTS messages_fts_update")
            db.execute("DELETE FROM meta WHERE key = 'fts_upto'")
            return
        row = db.execute("SELECT value FROM meta WHERE key = 'fts_upto'").fetchone()
        if row is None:  # a new index, or one left behind by a SQLite without FTS5: start it over
            db.execute("INSERT INTO messages_fts (messages_fts) VALUES ('delete-all')")
            db.execute("INSERT INTO meta VALUES ('fts_upto', 0)")
        else:
            self.fts_upto = int(row[0])
        self.fts = wanted  # the index is kept right on deletes either way; unwanted, it is not filled

    def close(self) -> None:
        close_wal(self.db)

    def max_id(self) -> int:
        """The highest message id stored, in the history or in a mailbox."""
        row = self.db.execute("SELECT max(coalesce((SELECT MAX(id) FROM messages), 0), "
                              "coalesce((SELECT MAX(id) FROM mailbox), 0))").fetchone()
        return int(row[0] or 0)

    def parents(self, wanted: list[tuple[int, str]]) -> dict[int, tuple[str, str, bool]]:
        """The messages replies answer, (id, room key) each: id -> (sender, text, deleted), those found."""
        found = {}
        for mid, room in wanted:
            row = self.db.execute("SELECT sender, text, deleted FROM messages WHERE id = ? AND room = ?",
                                  (mid, room)).fetchone()
            if row is not None:
                found[mid] = (str(row[0]), str(row[1]), bool(row[2]))
        return found

    def append(self, rows: list[tuple[int, str, int, str, str, str | None, str]],
               markers: Mapping[tuple[str, str], int] | None = None, mail: list[MailRow] | None = None,
               delivered: Mapping[str, int] | None = None, *, changes: list[Change] | None = None,
               seq: Callable[[], int] | None = None, replies: Mapping[int, int] | None = None,
               reactions: list[Reaction] | None = None) -> list[Undo]:
        """Store one pass's messages, (id, room, ts, sender, sender_key, cid, text), read markers,
        (user key, room key) -> id, and private messages for offline users (``mail``: id, recipient
        key, ts, sender, sender key, cid, text), and delete the mailbox messages their recipients
        confirmed (``delivered``: user key -> the highest id confirmed), in one transaction. A
        marker never moves back. ``changes``: edits and deletions, checked and stamped here (backend.py,
        point 9), each taking a ``seq`` from ``seq()``; returns what ``undo`` needs to take them back."""
        if not rows and not markers and not mail and not delivered and not changes and not reactions:
            return []
        db = self.db
        undo: list[Undo] = []
        db.execute("BEGIN")
        try:
            if rows:
                db.executemany("INSERT INTO messages (id, room, ts, sender, sender_key, cid, text, reply_to) "
                               "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [(*r, replies.get(r[0])) for r in rows] if replies
                               else [(*r, None) for r in rows])
            if changes:
                assert seq is not None
                undo = self._change(changes, seq)
            if reactions:
                undo += self._react(reactions)
            if markers:
                db.executemany(
                    "INSERT INTO read_markers VALUES (?, ?, ?) ON CONFLICT (user_key, room_key) "
                    "DO UPDATE SET id = max(id, excluded.id)",
                    [(user, room, mid) for (user, room), mid in markers.items()])
            if mail:
                db.executemany("INSERT INTO mailbox VALUES (?, ?, ?, ?, ?, ?, ?)", mail)
            if delivered:
                db.executemany("DELETE FROM mailbox WHERE user_key = ? AND id <= ?", list(delivered.items()))
            db.execute("COMMIT")
        except BaseException:
            rollback(db)
            raise
        self.commits += 1
        return undo

    def _change(self, changes: list[Change], seq: Callable[[], int]) -> list[Undo]:
        """Check and apply edits and deletions (inside ``append``'s transaction): see ``Change``."""
        db = self.db
        undo: list[Undo] = []
        for c in changes:
            row = db.execute("SELECT sender, sender_key, ts, deleted, text, edited, changed FROM messages "
                             "WHERE id = ? AND room = ?", (c.id, c.room_key)).fetchone()
            c.result = change_refused(c, None if row is None else (str(row[1]), int(row[2]), bool(row[3])))
            if c.result:
                continue
            c.sender, c.seq = str(row[0]), seq()
            undo.append((c.id, str(row[4]), int(row[5]), int(row[3]), row[6]))
            if c.text is None:
                db.execute("UPDATE messages SET text = '', deleted = 1, changed = ? WHERE id = ?", (c.seq, c.id))
            else:
                db.execute("UPDATE messages SET text = ?, edited = ?, changed = ? WHERE id = ?",
                           (c.text, c.ts, c.seq, c.id))
        return undo

    def _react(self, reactions: list[Reaction]) -> list[Undo]:
        """Check and apply reactions (inside ``append``'s transaction): see ``Reaction``."""
        db = self.db
        undo: list[Undo] = []
        for r in reactions:
            row = db.execute("SELECT deleted FROM messages WHERE id = ? AND room = ?", (r.id, r.room_key)).fetchone()
            had = db.execute("SELECT 1 FROM reactions WHERE message_id = ? AND user_key = ? AND emoji = ?",
                             (r.id, r.user_key, r.emoji)).fetchone() is not None
            if row is None or row[0]:
                r.result = "no_such_message"
            elif r.on and not had and db.execute("SELECT count(*) FROM reactions WHERE message_id = ?",
                                                  (r.id,)).fetchone()[0] >= MAX_REACTIONS:
                r.result = "too_many_reactions"
            elif r.on != had:
                db.execute("INSERT INTO reactions VALUES (?, ?, ?)" if r.on else
                           "DELETE FROM reactions WHERE message_id = ? AND user_key = ? AND emoji = ?",
                           (r.id, r.user_key, r.emoji))
                undo.append((-r.id, r.user_key, int(had), 0, r.emoji))  # (a reaction: its id negated)
            if not r.result:
                r.counts, r.mine = self.tally(r.id, r.user_key)
        return undo

    def tally(self, mid: int, user_key: str) -> tuple[dict[str, int], tuple[str, ...]]:
        """A message's reactions: emoji -> how many, and the user's own."""
        counts = dict(self.db.execute("SELECT emoji, count(*) FROM reactions WHERE message_id = ? GROUP BY emoji",
                                      (mid,)).fetchall())
        mine = [str(e) for (e,) in self.db.execute(
            "SELECT emoji FROM reactions WHERE message_id = ? AND user_key = ?", (mid, user_key))]
        return ordered(counts), own(mine)

    def tallies(self, ids: list[int], user_key: str) -> Tallies:
        """The reactions of those messages that have any."""
        found: Tallies = {}
        marks = ",".join("?" * len(ids))
        for mid in {int(m) for (m,) in self.db.execute(
                f"SELECT DISTINCT message_id FROM reactions WHERE message_id IN ({marks})", ids)} if ids else ():
            found[mid] = self.tally(mid, user_key)
        return found

    def undo(self, undo: list[Undo]) -> None:
        """Take back the changes of a pass whose sync failed (``append``'s answer)."""
        if undo:
            self.db.execute("BEGIN")
            try:
                self.db.executemany("UPDATE messages SET text = ?, edited = ?, deleted = ?, changed = ? WHERE id = ?",
                                    [(text, edited, deleted, changed, mid) for mid, text, edited, deleted, changed
                                     in reversed(undo) if mid > 0])
                for mid, user_key, had, _, emoji in reversed(undo):
                    if mid < 0:
                        self.db.execute("INSERT OR IGNORE INTO reactions VALUES (?, ?, ?)" if had else
                                        "DELETE FROM reactions WHERE message_id = ? AND user_key = ? AND emoji = ?",
                                        (-mid, user_key, emoji))
                self.db.execute("COMMIT")
            except BaseException:
                rollback(self.db)
                raise

    def changed(self, room: str, after: int, limit: int) -> tuple[list[StoredMessage], bool]:
        """The room's messages up to ``after`` changed after it, in the order of their changes: among the first
        CHANGES_SCANNED changes after it at most (a bounded read, however many were made; more: ``more``)."""
        rows = self.db.execute(
            f"SELECT {_COLS} FROM (SELECT * FROM messages WHERE room = ? AND changed > ? ORDER BY changed LIMIT ?) "
            f"AS m LEFT JOIN messages AS p ON p.id = m.reply_to AND p.room = m.room WHERE m.id <= ? "
            f"ORDER BY m.changed LIMIT ?", (room, after, CHANGES_SCANNED, after, limit + 1)).fetchall()
        beyond = self.db.execute("SELECT 1 FROM messages WHERE room = ? AND changed > ? ORDER BY changed "
                                 "LIMIT 1 OFFSET ?", (room, after, CHANGES_SCANNED)).fetchone() is not None
        return [_stored(r) for r in rows[:limit]], len(rows) > limit or beyond

    def forget(self, ids: list[int]) -> None:
        """Delete the messages (history or mailbox) with these ids: those of a pass whose sync failed, so
        that what its senders were told was not stored never shows up later."""
        if not ids:
            return
        db = self.db
        db.execute("BEGIN")
        try:
            db.executemany("DELETE FROM messages WHERE id = ?", [(i,) for i in ids])
            db.executemany("DELETE FROM mailbox WHERE id = ?", [(i,) for i in ids])
            db.execute("COMMIT")
        except BaseException:
            rollback(db)
            raise

    def marker(self, user_key: str, room_key: str) -> int | None:
        """The user's read marker in the room, as stored."""
        row = self.db.execute("SELECT id FROM read_markers WHERE user_key = ? AND room_key = ?",
                              (user_key, room_key)).fetchone()
        return None if row is None else int(row[0])

    def unread(self, room_key: str, user_key: str, after: int, cap: int) -> int:
        """How many stored messages of the room, not the user's own, have an id above ``after``
        (counting stops at ``cap``)."""
        row = self.db.execute(
            "SELECT COUNT(*) FROM (SELECT 1 FROM messages WHERE room = ? AND id > ? AND sender_key <> ? LIMIT ?)",
            (room_key, after, user_key, cap)).fetchone()
        return int(row[0])

    def page(self, room: str, *, before: int | None = None, after: int | None = None,
             limit: int = 50) -> tuple[list[StoredMessage], bool]:
        """Messages of a room in id order: the newest ``limit`` before ``before`` (default: the newest
        of all), or the oldest ``limit`` after ``after``. Returns (messages, more)."""
        cols = _COLS
        if after is not None:
            rows = self.db.execute(
                f"SELECT {cols} FROM {_FROM} WHERE m.room = ? AND m.id > ? ORDER BY m.id LIMIT ?",
                (room, after, limit + 1)).fetchall()
            more = len(rows) > limit
            rows = rows[:limit]
        else:
            rows = self.db.execute(
                f"SELECT {cols} FROM {_FROM} WHERE m.room = ? AND m.id < ? ORDER BY m.id DESC LIMIT ?",
                (room, before if before is not None else 1 << 62, limit + 1)).fetchall()
            more = len(rows) > limit
            rows = rows[:limit][::-1]
        return [_stored(r) for r in rows], more

    def around(self, room: str, mid: int, limit: int) -> tuple[list[StoredMessage], list[StoredMessage], bool, bool]:
        """Up to ``limit`` messages of a room centred on the id ``mid``: about half older than it, the
        rest from it on (the message itself first, when it exists); a side with fewer messages leaves
        its share to the other. Returns (older, newer, more older beyond, more newer beyond), each
        list in id order."""
        older = self.db.execute(
            f"SELECT {_COLS} FROM {_FROM} WHERE m.room = ? AND m.id < ? ORDER BY m.id DESC LIMIT ?",
            (room, mid, limit + 1)).fetchall()
        newer = self.db.execute(
            f"SELECT {_COLS} FROM {_FROM} WHERE m.room = ? AND m.id >= ? ORDER BY m.id LIMIT ?",
            (room, mid, limit + 1)).fetchall()
        want_old, want_new = around_shares(len(older), len(newer), limit)
        old, new = older[:want_old], newer[:want_new]
        return ([_stored(r) for r in reversed(old)], [_stored(r) for r in new],
                len(older) > len(old), len(newer) > len(new))

    # ------------------------------------------------------------ search

    def index_pending(self, budget: float | None = None) -> int:
        """Add the messages stored since the last call to the full-text index, in transactions of
        INDEX_BATCH rows, until none is left or ``budget`` seconds are spent. Returns how many."""
        if not self.fts:
            return 0
        db = self.db
        start = time.monotonic()
        done = 0
        # the index can be rebuilt from the messages, so its commits need not wait for the disk: the
        # next message commit's sync takes the log with them, and one lost on a crash takes its
        # fts_upto with it, so those rows are indexed again
        db.execute("PRAGMA synchronous=OFF" if self.synchronous == "OFF" else "PRAGMA synchronous=NORMAL")
        try:
            while True:
                count, last = db.execute(
                    "SELECT COUNT(*), MAX(id) FROM (SELECT id FROM messages WHERE id > ? ORDER BY id LIMIT ?)",
                    (self.fts_upto, INDEX_BATCH)).fetchone()
                if not count:
                    break
                db.execute("BEGIN")
                try:
                    db.execute("INSERT INTO messages_fts (rowid, text) SELECT id, text FROM messages "
                               "WHERE id > ? AND id <= ? ORDER BY id", (self.fts_upto, last))
                    db.execute("UPDATE meta SET value = ? WHERE key = 'fts_upto'", (last,))
                    db.execute("COMMIT")
                except BaseException:
                    rollback(db)
                    raise
                self.fts_upto = int(last)
                done += int(count)
                if count < INDEX_BATCH or (budget is not None and time.monotonic() - start >= budget):
                    break
        finally:
            db.execute(f"PRAGMA synchronous={self.synchronous}")
        return done

    def search(self, query: str, rooms: list[str], *, before: int | None = None, limit: int = 50,
               budget: float | None = None) -> tuple[list[StoredMessage], bool]:
        """Messages of ``rooms`` (room keys) holding every word of ``query`` as a word prefix, case and
        diacritics ignored, newest first, with ids below ``before``. Returns (messages, more).

        With the index, the messages it does not hold yet (stored after its last ``index_pending``)
        are scanned, so the answer is complete whenever the index was last brought up to date. A search
        still running after ``budget`` seconds is stopped (SQLite's progress handler) and raises
        SearchTooCostly. (The server runs it in the search agent when it can: search_agent.py.)
        """
        upto = self.fts_upto if self.fts else None

        def run() -> tuple[list[Row], bool]:
            return search_rows(self.db, query, rooms, before=before, limit=limit, upto=upto)

        try:
            rows, more = run() if budget is None else within(self.db, budget, run)
        except TooCostly:
            raise SearchTooCostly(budget or 0.0) from None
        return [StoredMessage(*r) for r in rows], more

    def recent_cids(self, sender_key: str, limit: int) -> list[tuple[str, int, int, str, str]]:
        """The sender's latest messages with a cid stored in the RESEND_WINDOW_S before this run began (later
        ones the server remembers itself): (cid, id, ts, room, text), oldest first, at most ``limit``.

        A resend after a restart is of a message stored just before it, whose acknowledgement the restart
        lost. The window is read once, at the first call (one scan of an id range, no index that every
        insert would pay for), and kept per sender, so the logins after a restart cost a lookup each."""
        if self._recent_by_sender is None:
            top = self.opened_at_id
            found: dict[str, deque[tuple[str, int, int, str, str]]] = {}
            for cid, mid, ts, room, text, key in self.db.execute(
                    "SELECT cid, id, ts, room, text, sender_key FROM messages WHERE id > ? AND id <= ? "
                    "AND cid IS NOT NULL ORDER BY id", (top - RESEND_WINDOW_S * 1_000_000, top)):
                kept = found.get(key)
                if kept is None:
                    kept = found[key] = deque(maxlen=RECENT_CIDS_KEPT)
                kept.append((str(cid), int(mid), int(ts), str(room), str(text)))
            self._recent_by_sender = found
        return list(self._recent_by_sender.get(sender_key, ()))[-limit:]

    # ------------------------------------------------------------ mailboxes

    def mailbox_count(self, user_key: str, cap: int) -> int:
        """How many private messages wait for the user (counting stops at ``cap``)."""
        row = self.db.execute("SELECT COUNT(*) FROM (SELECT 1 FROM mailbox WHERE user_key = ? LIMIT ?)",
                              (user_key, cap)).fetchone()
        return int(row[0])

    def mailbox_share(self, user_key: str, sender_key: str, cap: int) -> int:
        """How many of the private messages waiting for the user the sender sent (counting stops at ``cap``)."""
        row = self.db.execute("SELECT COUNT(*) FROM (SELECT 1 FROM mailbox WHERE user_key = ? AND sender_key = ? "
                              "LIMIT ?)", (user_key, sender_key, cap)).fetchone()
        return int(row[0])

    def mailbox_page(self, user_key: str, after: int, limit: int) -> tuple[list[HeldMessage], bool]:
        """The oldest ``limit`` messages waiting for the user with ids above ``after``, in id order.
        Returns (messages, more)."""
        rows = self.db.execute(
            "SELECT id, ts, sender, text, cid FROM mailbox WHERE user_key = ? AND id > ? ORDER BY id LIMIT ?",
            (user_key, after, limit + 1)).fetchall()
        return [HeldMessage(*r) for r in rows[:limit]], len(rows) > limit

    def drop_mailbox(self, user_key: str) -> int:
        """Delete every message waiting for the user (their account is gone); returns how many."""
        return int(self.db.execute("DELETE FROM mailbox WHERE user_key = ?", (user_key,)).rowcount)

    def recent_mail_cids(self, sender_key: str, limit: int) -> list[tuple[str, int, int, str, str]]:
        """The sender's latest private messages still waiting in a mailbox, with a cid:
        (cid, id, ts, recipient key, text), oldest first."""
        rows = self.db.execute(
            "SELECT cid, id, ts, user_key, text FROM mailbox WHERE sender_key = ? AND cid IS NOT NULL "
            "ORDER BY id DESC LIMIT ?", (sender_key, limit)).fetchall()
        return [(str(c), int(i), int(t), str(u), str(x)) for c, i, t, u, x in reversed(rows)]

    def prune(self) -> int:
        """Apply the retention settings; returns how many messages were deleted (a trigger takes the
        indexed ones out of the full-text index in the same statement). ``keep_days`` applies to the
        mailboxes too."""
        deleted = 0
        if self.keep_days is not None:
            cutoff = int((time.time() - self.keep_days * 86400) * 1000)
            deleted += self.db.execute("DELETE FROM messages WHERE ts < ?", (cutoff,)).rowcount
            deleted += self.db.execute("DELETE FROM mailbox WHERE ts < ?", (cutoff,)).rowcount
        if self.keep_per_room is not None:
            for (room,) in self.db.execute("SELECT DISTINCT room FROM messages").fetchall():
                deleted += self.db.execute(
                    "DELETE FROM messages WHERE room = ? AND id <= (SELECT id FROM messages WHERE room = ? "
                    "ORDER BY id DESC LIMIT 1 OFFSET ?)", (room, room, self.keep_per_room)).rowcount
        return deleted
