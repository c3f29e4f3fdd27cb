"""Stored name keys brought up to date when the way names compare changes (protocol/names.py).

Version 2 of the keys adds confusable skeletons: a non-ASCII name's key can change (ASCII keys never
do). The key of an old key is the new key (names.py folds case first), so every stored key is
rewritten from itself, once, in one transaction, and ``PRAGMA user_version`` remembers that it was
done: history and mailboxes (their room and user keys), read markers (merged, the highest kept, where
two old keys became one) and accounts (from their names; an account whose new key another account
has already, unreachable now, is named in the log for the operator to unregister).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable

from qtchat.protocol import name_key

log = logging.getLogger("qtchat.server")

KEYS_VERSION = 2  # 2: confusable skeletons (issue 14)
_KEY_COLUMNS = (("messages", "room"), ("messages", "sender_key"), ("mailbox", "user_key"), ("mailbox", "sender_key"))


def _new(key: str) -> str:
    return key if key.isascii() else name_key(key)


def _once(db: sqlite3.Connection, rewrite: Callable[[], int]) -> int:
    """Run ``rewrite`` in one transaction, unless the keys are current; mark them current with it."""
    if int(db.execute("PRAGMA user_version").fetchone()[0]) >= KEYS_VERSION:
        return 0
    db.execute("BEGIN")
    try:
        changed = rewrite()
        db.execute(f"PRAGMA user_version = {KEYS_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return changed


def rekey_messages(db: sqlite3.Connection) -> int:
    """Bring the keys of messages.db up to date; returns how many rows changed."""

    def rewrite() -> int:
        changed = 0
        for table, column in _KEY_COLUMNS:
            for (old,) in db.execute(f"SELECT DISTINCT {column} FROM {table}").fetchall():
                if _new(old) != old:
                    changed += db.execute(f"UPDATE {table} SET {column} = ? WHERE {column} = ?",
                                          (_new(old), old)).rowcount
        markers = db.execute("SELECT user_key, room_key, id FROM read_markers").fetchall()
        if any(_new(u) != u or _new(r) != r for u, r, _ in markers):
            merged: dict[tuple[str, str], int] = {}
            for user, room, mid in markers:
                key = (_new(user), _new(room))
                merged[key] = max(mid, merged.get(key, mid))
            db.execute("DELETE FROM read_markers")
            db.executemany("INSERT INTO read_markers VALUES (?, ?, ?)", [(u, r, i) for (u, r), i in merged.items()])
            changed += len(markers)
        return changed

    changed = _once(db, rewrite)
    if changed:
        log.warning("name keys brought up to date (look-alike names now compare equal): %d stored rows", changed)
    return changed


def rekey_accounts(db: sqlite3.Connection) -> int:
    """Bring the keys of accounts.db up to date from the accounts' names; returns how many changed."""

    def rewrite() -> int:
        changed = 0
        taken = {k for (k,) in db.execute("SELECT key FROM accounts")}
        for key, name in db.execute("SELECT key, name FROM accounts ORDER BY created").fetchall():
            new = name_key(name)
            if new == key:
                continue
            if new in taken:
                log.warning("the account %r now looks like another (%r): it cannot log in any more; unregister it "
                            "('qtchat-server admin unregister')", name, new)
                continue
            db.execute("UPDATE accounts SET key = ? WHERE key = ?", (new, key))
            taken.discard(key)
            taken.add(new)
            changed += 1
        return changed

    changed = _once(db, rewrite)
    if changed:
        log.warning("account keys brought up to date (look-alike names now compare equal): %d accounts", changed)
    return changed
