"""Durable message history in SQLite (the standard library's sqlite3, WAL mode).

The server appends each event-loop pass's accepted messages in one transaction
(group commit) before it sends them to anyone, so an acknowledged message is on
disk, and one fsync is shared by every message of the pass. Reads (history pages)
are indexed by room and id.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,          -- the protocol's message id (microseconds, increasing)
    room TEXT NOT NULL,
    ts INTEGER NOT NULL,             -- milliseconds since the epoch
    sender TEXT NOT NULL,
    sender_key TEXT NOT NULL,        -- protocol.names.name_key(sender)
    cid TEXT,                        -- the sender's client message id, for resends after a restart
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_room_id ON messages (room, id);
CREATE INDEX IF NOT EXISTS messages_sender_cid ON messages (sender_key, cid) WHERE cid IS NOT NULL;
"""


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    room: str
    ts: int
    sender: str
    text: str
    cid: str | None


class MessageStore:
    """Messages on disk. ``path`` None keeps them in memory (tests, or a server that keeps nothing)."""

    def __init__(self, path: Path | None, *, keep_days: float | None = None, keep_per_room: int | None = None) -> None:
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path) if path else ":memory:", isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")  # a commit is on disk: acknowledgements depend on it
        self.db.executescript(SCHEMA)
        self.keep_days = keep_days
        self.keep_per_room = keep_per_room
        self.commits = 0

    def close(self) -> None:
        self.db.close()

    def max_id(self) -> int:
        row = self.db.execute("SELECT MAX(id) FROM messages").fetchone()
        return int(row[0] or 0)

    def append(self, rows: list[tuple[int, str, int, str, str, str | None, str]]) -> None:
        """Store one pass's messages in one transaction: (id, room, ts, sender, sender_key, cid, text)."""
        if not rows:
            return
        db = self.db
        db.execute("BEGIN")
        try:
            db.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.commits += 1

    def page(self, room: str, *, before: int | None = None, after: int | None = None,
             limit: int = 50) -> tuple[list[StoredMessage], bool]:
        """Messages of a room in id order: the newest ``limit`` before ``before`` (default: the newest
        of all), or the oldest ``limit`` after ``after``. Returns (messages, more)."""
        cols = "id, room, ts, sender, text, cid"
        if after is not None:
            rows = self.db.execute(
                f"SELECT {cols} FROM messages WHERE room = ? AND id > ? ORDER BY id LIMIT ?",
                (room, after, limit + 1)).fetchall()
            more = len(rows) > limit
            rows = rows[:limit]
        else:
            rows = self.db.execute(
                f"SELECT {cols} FROM messages WHERE room = ? AND id < ? ORDER BY id DESC LIMIT ?",
                (room, before if before is not None else 1 << 62, limit + 1)).fetchall()
            more = len(rows) > limit
            rows = rows[:limit][::-1]
        return [StoredMessage(*r) for r in rows], more

    def recent_cids(self, sender_key: str, limit: int) -> list[tuple[str, int, int, str, str]]:
        """The sender's latest messages with a cid: (cid, id, ts, room, text), oldest first."""
        rows = self.db.execute(
            "SELECT cid, id, ts, room, text FROM messages WHERE sender_key = ? AND cid IS NOT NULL "
            "ORDER BY id DESC LIMIT ?", (sender_key, limit)).fetchall()
        return [(str(c), int(i), int(t), str(r), str(x)) for c, i, t, r, x in reversed(rows)]

    def prune(self) -> int:
        """Apply the retention settings; returns how many messages were deleted."""
        deleted = 0
        if self.keep_days is not None:
            cutoff = int((time.time() - self.keep_days * 86400) * 1000)
            deleted += self.db.execute("DELETE FROM messages WHERE ts < ?", (cutoff,)).rowcount
        if self.keep_per_room is not None:
            for (room,) in self.db.execute("SELECT DISTINCT room FROM messages").fetchall():
                deleted += self.db.execute(
                    "DELETE FROM messages WHERE room = ? AND id <= (SELECT id FROM messages WHERE room = ? "
                    "ORDER BY id DESC LIMIT 1 OFFSET ?)", (room, room, self.keep_per_room)).rowcount
        return deleted
