"""The storage seam on one machine: SQLite files in the data folder, or all in memory.

``messages.db`` (history, read markers, mailboxes, the full-text index: store.py),
``accounts.db`` (accounts.py) and ``bans.json`` (bans.py). Reads answer at once
(their futures are done when returned): SQLite on a local disk is fast enough to
be asked from the event loop; searches, whose cost cannot be bounded finely there,
are answered by the search agent (searcher.py) when the data folder is on disk. Writes are committed at once but answered only when
the sync agent (syncer.py) has synced them: waiting for the disk, often tens and at
times hundreds of milliseconds, never holds the loop, and a commit of a pass shares
one sync with everything committed while the sync before it ran. Without a data
folder nothing needs syncing and writes answer at once too. Indexing for search and
retention run on timers of their own here.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from PySide6.QtCore import QObject, QTimer

from .accounts import AccountStore
from .backend import (
    Account,
    Around,
    HeldMessage,
    MailboxCount,
    Page,
    PassBatch,
    RecentCid,
    RemoteSink,
    Tallies,
    answer,
    done,
    mapped,
    quoted,
)
from .bans import BanList
from .cluster import Cluster
from .room_state import RoomRecord, RoomTable
from .searcher import Searcher
from .store import INDEX_BATCH, MessageStore
from .syncer import Syncer

log = logging.getLogger("qtchat.server")
T = TypeVar("T")

INDEX_INTERVAL_MS = 1000  # how often stored messages are added to the full-text index
INDEX_CATCH_UP_MS = 200  # ...and while it is behind (after an import or a burst) and no message came in
INDEX_BUDGET_S = 0.02  # at most this long per indexing tick
# a search on the loop (no search agent: a database in memory, or the agent cannot run) first indexes for at most
# SEARCH_INDEX_BUDGET_S, and is stopped past SEARCH_BUDGET_S (search_too_broad): nobody else waits longer for it
SEARCH_INDEX_BUDGET_S = 0.01
SEARCH_BUDGET_S = 0.01
PRUNE_INTERVAL_MS = 10 * 60 * 1000


PRIVATE_FILES = ("accounts.db", "messages.db", "bans.json")


def prepare_data_dir(folder: Path, databases: tuple[str, ...]) -> None:
    """Make the data folder private (0700) when it is made here and its files 0600 (POSIX), before SQLite opens
    them: password hashes and held private messages are in them. Warn about an existing folder others can read."""
    if not folder.exists():
        folder.mkdir(mode=0o700, parents=True)
    elif os.name == "posix" and stat.S_IMODE(folder.stat().st_mode) & 0o077:
        log.warning("the data folder %s can be read by other users of this machine (mode %o): they can read "
                    "password hashes and private messages; chmod 700 it", folder, stat.S_IMODE(folder.stat().st_mode))
    if os.name != "posix":
        return
    for name in databases:  # made empty and private: SQLite keeps the mode, and gives it to -wal and -shm
        os.close(os.open(folder / name, os.O_WRONLY | os.O_CREAT, 0o600))
    for name in PRIVATE_FILES:  # and those made by an earlier version, readable by all
        for path in (folder / name, folder / f"{name}-wal", folder / f"{name}-shm"):
            if path.exists():
                path.chmod(0o600)


class MessageIds:
    """Message ids: microseconds since the Unix epoch, bumped to stay strictly increasing.

    Unique across restarts as long as the clock does not go back by more than
    the ids ran ahead of it: ``last`` starts from the highest stored id. Every id
    fits in JavaScript's 2**53.
    """

    __slots__ = ("last",)

    def __init__(self, last: int = 0) -> None:
        self.last = last

    def next(self) -> int:
        now = time.time_ns() // 1000
        self.last = now if now > self.last else self.last + 1
        return self.last


class SqliteBackend(QObject):
    """One machine's backend. ``data_dir`` None keeps everything in memory; ``history`` False keeps no
    messages at all; ``keep_days``/``keep_messages`` are the retention settings; ``sync_command`` starts
    another sync agent than ours (syncer.agent_command)."""

    def __init__(self, data_dir: Path | None, *, history: bool = True, keep_days: float | None = None,
                 keep_messages: int | None = None, full_text: bool = True, parent: QObject | None = None,
                 sync_command: list[str] | None = None) -> None:
        super().__init__(parent)
        self.history = history
        if data_dir is not None:
            prepare_data_dir(data_dir, ("accounts.db", "messages.db") if history else ("accounts.db",))
        self.bans = BanList(data_dir / "bans.json" if data_dir else None)
        self.cluster = Cluster()
        messages_db = data_dir / "messages.db" if data_dir and history else None
        accounts_db = data_dir / "accounts.db" if data_dir else None
        # commits are made durable by the sync agent, off the loop; nothing to sync with no data folder
        on_disk = [db for db in (messages_db, accounts_db) if db is not None]
        self.syncer = Syncer(on_disk, self, command=sync_command) if on_disk else None
        self.store = MessageStore(
            messages_db, keep_days=keep_days,
            # a history kept in memory only is bounded whatever the settings say
            keep_per_room=keep_messages if data_dir or keep_messages else 20_000,
            full_text=full_text, synced_elsewhere=self.syncer is not None,
        )
        # searches run in the search agent, off the loop (search_agent.py), for a database on disk
        self.searcher = Searcher(messages_db, self._search_here, self) if messages_db is not None else None
        self.ids = MessageIds(self.store.opened_at_id)  # the newest id stored before this run
        self._accounts = AccountStore(accounts_db, synced_elsewhere=self.syncer is not None)
        self._rooms = RoomTable(self._accounts.db)  # in accounts.db: kept even with no history
        self.stored_messages = 0  # room messages stored by this run
        self._stored_at_index = 0
        self._prune_timer = QTimer(self)
        self._prune_timer.timeout.connect(self.prune)
        self._index_timer = QTimer(self)
        self._index_timer.timeout.connect(self._index)

    def attach(self, sink: RemoteSink) -> None:
        del sink  # one machine: no other node sends anything
        self._prune_timer.start(PRUNE_INTERVAL_MS)
        self.prune()
        if self.store.fts and self.history:
            self._index_timer.start(INDEX_INTERVAL_MS)

    def close(self) -> None:
        self._prune_timer.stop()
        self._index_timer.stop()
        if self.searcher is not None:
            self.searcher.close()
        self.store.close()
        self._accounts.close()
        if self.syncer is not None:
            self.syncer.close()

    def publish(self, room_key: str, frames: bytes) -> None:
        del room_key, frames  # one machine: no other node to tell

    # ------------------------------------------------------------ ids and passes

    def next_id(self) -> int:
        return self.ids.next()

    def join_point(self, room_key: str) -> int:
        del room_key  # every id stored from now on is above the next one (one machine)
        return self.ids.next()

    def store_pass(self, batch: PassBatch) -> Future[None]:
        ids = self.ids
        for m in batch.messages:
            m.id = ids.next()
        if not self.history:  # nothing is kept: nothing to change, answer, or react to
            for change in batch.changes:
                change.result = "no_such_message"
            for reaction in batch.reactions:
                reaction.result = "no_such_message"
            rows: list[tuple[int, str, int, str, str, str | None, str]] = []
            future = answer(lambda: self.store.append([], batch.markers, batch.mail, batch.delivered))
        else:
            rows = [(m.id, m.room_key, m.ts, m.sender, m.sender_key, m.cid, m.text) for m in batch.messages]
            replies = {m.id: m.reply_to for m in batch.messages if m.reply_to}
            future = answer(lambda: self.store.append(rows, batch.markers, batch.mail, batch.delivered,
                                                      changes=batch.changes, seq=ids.next, replies=replies,
                                                      reactions=batch.reactions))
            if replies and future.exception() is None:
                self._quote(batch)
        if future.exception() is None:
            self.stored_messages += len(rows)
        taken = [row[0] for row in rows] + [row[0] for row in batch.mail]
        undone = [] if future.exception() is not None else future.result()

        def undo() -> None:
            self.store.forget(taken)
            self.store.undo(undone)

        return mapped(self._durable(future, undo=undo), lambda _: None)

    def _quote(self, batch: PassBatch) -> None:
        """The pass's replies quote what they answer as it is now (backend.py, point 10)."""
        parents = self.store.parents([(m.reply_to, m.room_key) for m in batch.messages if m.reply_to])
        for m in batch.messages:
            if m.reply_to:
                m.reply_to, m.reply_from, m.reply_text = quoted(m.reply_to, parents.get(m.reply_to))

    def _durable(self, written: Future[T], undo: Callable[[], None] | None = None) -> Future[T]:
        """``written`` (a commit's answer), answered only once the commit is on disk. If it cannot be synced,
        ``undo`` takes it back, so that what was refused never shows up later."""
        if self.syncer is None or written.exception() is not None:
            return written
        value = written.result()
        result: Future[T] = Future()

        def synced(sync: Future[None]) -> None:
            exc = sync.exception()
            if exc is None:
                result.set_result(value)
                return
            if undo is not None:
                try:
                    undo()
                except Exception as again:
                    log.error("cannot take back a commit that was not synced: %s", again)
            result.set_exception(exc)

        self.syncer.sync().add_done_callback(synced)
        return result

    # ------------------------------------------------------------ history

    def page(self, room_key: str, *, before: int | None, after: int | None, limit: int) -> Future[Page]:
        return answer(lambda: Page(*self.store.page(room_key, before=before, after=after, limit=limit)))

    def tallies(self, room_key: str, ids: list[int], user_key: str) -> Future[Tallies]:
        del room_key  # (ids are unique across rooms)
        return answer(lambda: self.store.tallies(ids, user_key))

    def changed(self, room_key: str, after: int, limit: int) -> Future[Page]:
        return answer(lambda: Page(*self.store.changed(room_key, after, limit)))

    def around(self, room_key: str, mid: int, limit: int) -> Future[Around]:
        return answer(lambda: Around(*self.store.around(room_key, mid, limit)))

    def search(self, query: str, room_keys: list[str], *, before: int | None, limit: int) -> Future[Page]:
        if self.searcher is None:
            return self._search_here(query, room_keys, before, limit)
        upto = self.store.fts_upto if self.store.fts else None
        return self.searcher.search(query, room_keys, before=before, limit=limit, upto=upto)

    def _search_here(self, query: str, room_keys: list[str], before: int | None, limit: int) -> Future[Page]:
        """A search on the loop, bounded by the loop's short budget."""
        def run() -> Page:
            self.store.index_pending(SEARCH_INDEX_BUDGET_S)  # what is still not indexed after this is scanned
            return Page(*self.store.search(query, room_keys, before=before, limit=limit, budget=SEARCH_BUDGET_S))

        return answer(run)

    def marker(self, user_key: str, room_key: str) -> Future[int | None]:
        return answer(lambda: self.store.marker(user_key, room_key))

    def unread(self, room_key: str, user_key: str, after: int, cap: int) -> Future[int]:
        return answer(lambda: self.store.unread(room_key, user_key, after, cap))

    def recent_cids(self, sender_key: str, limit: int) -> Future[list[RecentCid]]:
        def run() -> list[RecentCid]:
            found = [RecentCid(cid, mid, ts, room, hash(text)) for cid, mid, ts, room, text in
                     self.store.recent_cids(sender_key, limit)]
            found += [RecentCid(cid, mid, ts, "@" + to_key, hash(text), held=True) for cid, mid, ts, to_key, text in
                      self.store.recent_mail_cids(sender_key, limit)]
            found.sort(key=lambda r: r.id)
            return found[-limit:]

        return answer(run)

    # ------------------------------------------------------------ mailboxes

    def mailbox_count(self, user_key: str, sender_key: str, cap: int, share: int) -> Future[MailboxCount]:
        return answer(lambda: MailboxCount(self.store.mailbox_count(user_key, cap),
                                           self.store.mailbox_share(user_key, sender_key, share)))

    def mailbox_page(self, user_key: str, after: int, limit: int) -> Future[tuple[list[HeldMessage], bool]]:
        return answer(lambda: self.store.mailbox_page(user_key, after, limit))

    # ------------------------------------------------------------ accounts

    def account(self, key: str) -> Account | None:
        return self._accounts.get(key)

    def accounts(self) -> list[Account]:
        return self._accounts.all()

    def create_account(self, key: str, name: str, password_hash: str, *, admin: bool = False) -> Future[Account]:
        return self._durable(answer(lambda: self._accounts.create(key, name, password_hash, admin=admin)))

    def set_password(self, key: str, password_hash: str) -> Future[None]:
        return self._durable(answer(lambda: self._accounts.set_password(key, password_hash)))

    def set_admin(self, key: str, admin: bool) -> Future[None]:
        return self._durable(answer(lambda: self._accounts.set_admin(key, admin)))

    def delete_account(self, key: str) -> Future[int | None]:
        if not self._accounts.delete(key):
            return done(None)
        try:
            return self._durable(done(self.store.drop_mailbox(key)))
        except Exception as exc:
            log.error("cannot delete the private messages kept for %s: %s", key, exc)
            return self._durable(done(0))

    # ------------------------------------------------------------ rooms

    def room_record(self, key: str) -> RoomRecord | None:
        return self._rooms.get(key)

    def save_room(self, key: str, state: dict[str, Any]) -> Future[None]:
        return self._durable(answer(lambda: self._rooms.save(key, state)))

    def save_join(self, room_key: str, member_key: str, since: int) -> Future[None]:
        return self._durable(answer(lambda: self._rooms.save_join(room_key, member_key, since)))

    # ------------------------------------------------------------ upkeep

    def prune(self) -> None:
        try:
            deleted = self.store.prune()
        except Exception as exc:
            log.error("history retention: %s", exc)
            return
        if deleted:
            log.info("history retention removed %d messages", deleted)

    def _index(self) -> None:
        try:
            count = self.store.index_pending(INDEX_BUDGET_S)
        except Exception as exc:
            log.error("full-text index: %s", exc)
            return
        # stopped by the time budget, most likely with more to do: catch up faster, but only while no
        # messages come in, so that indexing never competes with a busy server's fan-out
        behind = count >= INDEX_BATCH
        quiet = self.stored_messages == self._stored_at_index
        self._stored_at_index = self.stored_messages
        self._index_timer.setInterval(INDEX_CATCH_UP_MS if behind and quiet else INDEX_INTERVAL_MS)
