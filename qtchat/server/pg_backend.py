"""The storage seam on PostgreSQL: what several nodes of one chat share (issue 15; one node works alone too).

Everything goes through ``PgLink`` (pgloop.py): libpq's non-blocking API on the loop's own
sockets, no threads. Three connections, so that one kind of request never waits behind another:

- **writes**: passes, accounts, room records, bans, in the order the core made them (and the rows that
  other nodes changed, read again in that order: pg_mirror.py), and the reads the
  core adds what is not stored yet to (markers, unread counts, mailboxes): asked on the same connection
  after a pass was sent, they run after its commit, and are answered after it (on another connection a
  count could miss a pass whose answer came first, and a mailbox could overflow);
- **reads**: history pages, pages around a message, recent cids, blocks of ids;
- **searches** and retention's deletes, which can take longest (a search stops at
  ``SEARCH_TIMEOUT_MS``, PostgreSQL's ``statement_timeout``: ``search_too_broad``).

**A pass is one transaction, one round trip** (pipelined statements, committed at their Sync). Each
room's messages go through ``qtchat_post()``, which first locks the room's row in ``room_seq`` (an
upsert that bumps the room's own counter: the lock is held until the commit) and only then takes the
messages' ids from the sequence ``message_ids``. So within a room ids become visible in increasing
order on every node: a transaction that takes smaller ids commits first, and a reader resuming
"after the last id I saw" never skips one (backend.py, point 4; a plain sequence did skip ids in
two-writer measurements: ../shared/notes/scale-out.md). Rooms are locked in the order of their keys,
so two nodes' passes never deadlock. Under that lock ``qtchat_post()`` also looks each row up among the
room's stored messages (same sender, cid and text; index ``messages_resend``): a resend after a reconnect,
to this node or to another, is not stored again and takes no number; its ``Posted`` gets the stored id
and ts and ``again`` (backend.py, point 8). Two nodes storing the same resend at once store it once: the
second looks after the first committed. A pass also writes a token row (``passes``): when the connection
breaks after the pass was sent, whether it was committed is found out from that row, and the ids it
took, before the core is answered (point 5); meanwhile (PostgreSQL down) the check is tried again
every second and the journal waits.

**Ids outside rooms** (private messages; ``next_id()`` must answer at once) come from a block taken
from the same sequence ahead of time and renewed every second and when half used: unique among all
messages, growing on this node. A join point is the highest id this node knows was taken.

**Search**: each message's text is folded in Python as the SQLite scan folds it (search_agent.fold:
case-folded, no diacritics, non-word characters as spaces) and kept as a ``tsvector`` of the
``simple`` configuration with a GIN index; a query word is a prefix (``:*``), the words ANDed.

**Accounts, bans and room records** are read from memory (point 7): loaded by ``open()``, written
through, and kept in step with the other nodes' writes by ``PgMirror`` (pg_mirror.py: a NOTIFY in each
write's transaction, a fourth connection that listens). ``open()`` listens before it loads, so nothing
written meanwhile is missed. The core is built only once ``open()`` is done (``opened`` in cli.py and the
tests).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from PySide6.QtCore import QObject, QTimer

from .backend import (
    Account,
    Around,
    HeldMessage,
    MailboxCount,
    Page,
    PassBatch,
    Posted,
    RecentCid,
    RemoteSink,
    StoredMessage,
    Tallies,
    around_shares,
    chain,
    done,
    failed,
    mapped,
    ordered,
    own,
    quoted,
)
from .bans import BanList
from .cluster import Cluster
from .fanout import ROOM, Fanout
from .pg_mirror import LOAD, PgBanList, PgMirror
from .pg_pass import PassPlan
from .pg_schema import COLS, FROM, SCHEMA, SCHEMA_LOCK, TALLIES, post_answer, ts_query
from .pgloop import PgConnectionLost, PgError, PgLink, Rows
from .redis_cluster import RedisCluster
from .room_state import RoomRecord
from .store import CHANGES_SCANNED, RESEND_WINDOW_S, SearchTooCostly

log = logging.getLogger("qtchat.server.pg")
U = TypeVar("U")

ID_BLOCK = 1024  # ids taken ahead for next_id()
ID_BLOCK_S = 1.0  # ...and renewed at least this often, so a join point is never older than this
SEARCH_TIMEOUT_MS = 500
SEARCH_MAX_WAITING = 64  # searches queued on the search connection; more: search_too_broad
CHECK_RETRY_MS = 1000  # how often to ask again whether a pass whose connection broke was committed
PRUNE_INTERVAL_MS = 10 * 60 * 1000
PRUNE_BATCH = 5000  # rows per retention DELETE
PASSES_KEPT_S = 3600  # how long a pass's token row is kept for the check after a broken connection
QUERY_CANCELED = "57014"

class PostgresBackend(QObject):
    """The backend of a node on PostgreSQL. Call ``open()`` and wait for it before building the server."""

    def __init__(self, dsn: str, *, history: bool = True, keep_days: float | None = None,
                 keep_messages: int | None = None, redis: str | None = None, parent: QObject | None = None,
                 connect_timeout: float = 10.0) -> None:
        super().__init__(parent)
        self.history = history
        self.keep_days = keep_days
        self.keep_messages = keep_messages
        self._write = PgLink(dsn, self, connect_timeout=connect_timeout)
        self._read = PgLink(dsn, self, connect_timeout=connect_timeout)
        self._search = PgLink(dsn, self, connect_timeout=connect_timeout)
        self.mirror = PgMirror(dsn, self._write, self, connect_timeout=connect_timeout)
        self.bans: BanList = self.mirror.bans
        self.fanout = Fanout(self._read, redis, self)
        self.cluster: Cluster = RedisCluster(redis, self.fanout.node, self) if redis is not None else Cluster()
        self._counters: Rows = []  # (room, last number, last id) when opened, for the fan-out
        self._ids: deque[int] = deque()
        self._ids_at = 0.0  # when the block in _ids was taken
        self._top = 0  # the highest message id this node knows was taken (join points)
        self._renewing = False
        self._searches = 0  # sent on the search connection, not answered yet
        self._closed = False
        self.stored_messages = 0  # room messages stored by this node in this run
        self._id_timer = QTimer(self)
        self._id_timer.timeout.connect(self._renew_ids)
        self._prune_timer = QTimer(self)
        self._prune_timer.timeout.connect(self.prune)

    # ------------------------------------------------------------ opening

    def open(self) -> Future[None]:
        """Connect, make the schema if it is missing (one node at a time), listen to the other nodes' changes,
        then load accounts, bans and room records into memory, and take the first block of ids."""
        result: Future[None] = Future()
        made = self._write.transaction([("SELECT pg_advisory_xact_lock($1)", [SCHEMA_LOCK])]
                                       + [(sql, ()) for sql in SCHEMA])

        def load(_: None) -> None:  # on the write connection: in order with its writes (pg_mirror.py)
            chain(self._write.transaction([
                *LOAD,
                (f"SELECT nextval('message_ids') FROM generate_series(1, {ID_BLOCK})", ()),
                ("SELECT r.room, r.last_seq, (SELECT max(id) FROM messages AS m WHERE m.room = r.room) "
                 "FROM room_seq AS r", ()),
                ("SELECT value FROM meta WHERE key = 'cluster'", ()),
            ]), loaded, result)

        def loaded(rows: list[Rows]) -> None:
            *mirrored, ids, self._counters, cluster = rows
            prefix = f"qtchat:{cluster[0][0]}:" if cluster else "qtchat:"
            self.fanout.channel = prefix + ROOM
            if isinstance(self.cluster, RedisCluster):
                self.cluster.set_prefix(prefix)
            self.mirror.load(*mirrored)
            self._take_ids(ids)
            result.set_result(None)

        chain(made, lambda _: chain(self.mirror.listen(), load, result), result)
        return result

    def attach(self, sink: RemoteSink) -> None:
        self.mirror.attach(sink)
        self.fanout.start(sink, self._counters)
        self._id_timer.start(int(ID_BLOCK_S * 1000))
        self._prune_timer.start(PRUNE_INTERVAL_MS)
        QTimer.singleShot(0, self.prune)

    def close(self) -> None:
        self._closed = True
        self._id_timer.stop()
        self._prune_timer.stop()
        self.fanout.close()
        self.cluster.close()
        self.mirror.close()
        for link in (self._write, self._read, self._search):
            link.close()

    def publish(self, room_key: str, frames: bytes) -> None:
        self.fanout.publish(room_key, frames)

    # ------------------------------------------------------------ ids

    def next_id(self) -> int:
        if len(self._ids) < ID_BLOCK // 2:
            self._renew_ids(force=True)
        if not self._ids:
            raise RuntimeError("no message id left: PostgreSQL has not answered for a new block of ids")
        mid = self._ids.popleft()
        self._top = max(self._top, mid)
        return mid

    def join_point(self, room_key: str) -> int:
        del room_key  # ids are taken in one order for all rooms: the highest this node knows is above the room's
        return self._top

    def _take_ids(self, rows: Rows) -> None:
        self._ids = deque(sorted(int(r[0]) for r in rows))
        self._ids_at = time.monotonic()
        if self._ids:
            self._top = max(self._top, self._ids[0] - 1)  # every id taken before the block is below it

    def _renew_ids(self, force: bool = False) -> None:
        """A fresh block of ids, when half of this one is used or it is older than ID_BLOCK_S."""
        if self._renewing or self._closed or not (force or time.monotonic() - self._ids_at >= ID_BLOCK_S):
            return
        self._renewing = True

        def taken(f: Future[Rows]) -> None:
            self._renewing = False
            if f.exception() is None:
                self._take_ids(f.result())
            else:
                log.warning("cannot take a block of message ids: %s", f.exception())

        self._read.query(f"SELECT nextval('message_ids') FROM generate_series(1, {ID_BLOCK})").add_done_callback(taken)

    # ------------------------------------------------------------ passes

    def store_pass(self, batch: PassBatch) -> Future[None]:
        result: Future[None] = Future()
        token = secrets.randbits(62)
        if not self.history:
            for m in batch.messages:
                m.id = self.next_id()
        plan = PassPlan(token, batch, self.history)
        by_room, rooms, statements = plan.by_room, plan.rooms, plan.statements

        def stamp(ids: dict[str, list[int]]) -> None:
            waits = []
            for room in rooms:
                new, top = _stamp(by_room[room], ids[room])
                if not new:  # all of them resends: the room's numbers did not move
                    self.fanout.not_stored([room])
                    continue
                self._top = max(self._top, new[-1].id)
                waits.append(self.fanout.stored(room, top - len(new) + 1, top, new[-1].id))
                self.stored_messages += len(new)
            # answered once everything numbered before this pass in its rooms is delivered here (fanout.py)
            self._after_all(waits, lambda: self._answer_pass(result, rooms))

        def answered(f: Future[list[Rows]]) -> None:
            exc = f.exception()
            if exc is None:
                stamp(plan.answered(f.result()))
            elif isinstance(exc, PgConnectionLost) and exc.sent:
                log.warning("the connection to PostgreSQL broke after a pass was sent; asking whether it was stored")
                for change in batch.changes:  # stored or not: its asker is told it may not be (internal)
                    change.result = "unknown"
                for reaction in batch.reactions:
                    reaction.result = "unknown"
                self._check_pass(token, exc, stamp, result)
            else:
                result.set_exception(exc)

        def refused(f: Future[None]) -> None:
            if f.exception() is not None:
                self.fanout.not_stored(rooms)

        self.fanout.storing(rooms)
        result.add_done_callback(refused)
        self._write.transaction(statements).add_done_callback(answered)
        return result

    def _after_all(self, futures: list[Future[None]], then: Callable[[], None]) -> None:
        left = [len(futures)]
        if not futures:
            then()
            return

        def one(_: Future[None]) -> None:
            left[0] -= 1
            if left[0] == 0:
                then()

        for future in futures:
            future.add_done_callback(one)

    def _answer_pass(self, result: Future[None], rooms: list[str]) -> None:
        result.set_result(None)  # the core sends the pass now (its done-callbacks run here)
        for room in rooms:
            self.fanout.sent(room)

    def _check_pass(self, token: int, lost: BaseException, stamp: Callable[[dict[str, list[int]]], None],
                    result: Future[None]) -> None:
        """Was the pass with this token committed? Asked (again every CHECK_RETRY_MS while PostgreSQL cannot be
        reached) on a new connection, after waiting for the old transaction's lock: its ids, or its failure."""
        def answered(f: Future[list[Rows]]) -> None:
            exc = f.exception()
            if exc is None:
                rows = f.result()[1]
                if rows:
                    log.info("the pass was stored")
                    stamp({room: list(ids) for room, ids in rows if room})
                else:
                    result.set_exception(lost)
            elif self._closed:
                result.set_exception(lost)
            else:
                QTimer.singleShot(CHECK_RETRY_MS, self, ask)

        def ask() -> None:
            self._write.transaction([("SELECT pg_advisory_xact_lock($1)", [token]),
                                     ("SELECT room, ids FROM passes WHERE token = $1", [token])]
                                    ).add_done_callback(answered)

        ask()

    # ------------------------------------------------------------ history

    def _rows(self, link: PgLink, sql: str, params: list[object], convert: Callable[[Rows], U]) -> Future[U]:
        return mapped(link.query(sql, params), convert)

    def page(self, room_key: str, *, before: int | None, after: int | None, limit: int) -> Future[Page]:
        if not self.history:
            return done(Page([], False))
        if after is not None:
            return self._rows(self._read, f"SELECT {COLS} FROM {FROM} WHERE m.room = $1 AND m.id > $2 ORDER BY m.id "
                              "LIMIT $3", [room_key, after, limit + 1],
                              lambda rows: Page(_stored(rows[:limit]), len(rows) > limit))
        return self._rows(self._read, f"SELECT {COLS} FROM {FROM} WHERE m.room = $1 AND m.id < $2 ORDER BY m.id DESC "
                          "LIMIT $3", [room_key, before if before is not None else 1 << 62, limit + 1],
                          lambda rows: Page(_stored(rows[:limit][::-1]), len(rows) > limit))

    def tallies(self, room_key: str, ids: list[int], user_key: str) -> Future[Tallies]:
        del room_key
        if not ids:
            return done({})

        def found(rows: Rows) -> Tallies:
            counts: dict[int, dict[str, int]] = {}
            mine: dict[int, list[str]] = {}
            for mid, emoji, n, theirs in rows:
                counts.setdefault(int(mid), {})[emoji] = int(n)
                if theirs:
                    mine.setdefault(int(mid), []).append(emoji)
            return {mid: (ordered(c), own(mine.get(mid, ()))) for mid, c in counts.items()}

        return self._rows(self._read, TALLIES, [ids, user_key], found)

    def changed(self, room_key: str, after: int, limit: int) -> Future[Page]:
        if not self.history:
            return done(Page([], False))
        return mapped(self._read.transaction([  # among the first CHANGES_SCANNED changes after it (store.py)
            (f"SELECT {COLS} FROM (SELECT * FROM messages WHERE room = $1 AND changed > $2 ORDER BY changed LIMIT $4) "
             "AS m LEFT JOIN messages AS p ON p.id = m.reply_to AND p.room = m.room WHERE m.id <= $2 "
             "ORDER BY m.changed LIMIT $3", [room_key, after, limit + 1, CHANGES_SCANNED]),
            ("SELECT 1 FROM messages WHERE room = $1 AND changed > $2 ORDER BY changed LIMIT 1 OFFSET $3",
             [room_key, after, CHANGES_SCANNED]),
        ]), lambda rows: Page(_stored(rows[0][:limit]), len(rows[0]) > limit or bool(rows[1])))

    def around(self, room_key: str, mid: int, limit: int) -> Future[Around]:
        if not self.history:
            return done(Around([], [], False, False))

        def split(rows: list[Rows]) -> Around:
            older, newer = rows
            want_old, want_new = around_shares(len(older), len(newer), limit)
            old, new = older[:want_old], newer[:want_new]
            return Around(_stored(old[::-1]), _stored(new), len(older) > len(old), len(newer) > len(new))

        return mapped(self._read.transaction([
            (f"SELECT {COLS} FROM {FROM} WHERE m.room = $1 AND m.id < $2 ORDER BY m.id DESC LIMIT $3",
             [room_key, mid, limit + 1]),
            (f"SELECT {COLS} FROM {FROM} WHERE m.room = $1 AND m.id >= $2 ORDER BY m.id LIMIT $3",
             [room_key, mid, limit + 1]),
        ]), split)

    def search(self, query: str, room_keys: list[str], *, before: int | None, limit: int) -> Future[Page]:
        tsq = ts_query(query)
        if not self.history or tsq is None or not room_keys:
            return done(Page([], False))
        if self._searches >= SEARCH_MAX_WAITING:
            return failed(SearchTooCostly(SEARCH_TIMEOUT_MS / 1000, why="too many searches are waiting"))
        self._searches += 1
        result: Future[Page] = Future()

        def answered(f: Future[list[Rows]]) -> None:
            self._searches -= 1
            exc = f.exception()
            if exc is None:
                rows = f.result()[1]
                result.set_result(Page(_stored(rows[:limit]), len(rows) > limit))
            elif isinstance(exc, PgError) and exc.code == QUERY_CANCELED:
                result.set_exception(SearchTooCostly(SEARCH_TIMEOUT_MS / 1000))
            else:
                result.set_exception(exc)

        self._search.transaction([
            (f"SET LOCAL statement_timeout = {SEARCH_TIMEOUT_MS}", ()),
            (f"SELECT {COLS} FROM {FROM} WHERE m.room IN (SELECT jsonb_array_elements_text($1::jsonb)) "
             "AND m.words @@ to_tsquery('simple', $2) AND m.id < $3 ORDER BY m.id DESC LIMIT $4",
             [room_keys, tsq, before if before is not None else 1 << 62, limit + 1]),
        ]).add_done_callback(answered)
        return result

    def marker(self, user_key: str, room_key: str) -> Future[int | None]:
        return self._rows(self._write, "SELECT id FROM read_markers WHERE user_key = $1 AND room_key = $2",
                          [user_key, room_key], lambda rows: int(rows[0][0]) if rows else None)

    def unread(self, room_key: str, user_key: str, after: int, cap: int) -> Future[int]:
        if not self.history:
            return done(0)
        return self._rows(self._write, "SELECT count(*) FROM (SELECT 1 FROM messages WHERE room = $1 AND id > $2 "
                          "AND sender_key <> $3 LIMIT $4) AS s", [room_key, after, user_key, cap],
                          lambda rows: int(rows[0][0]))

    def recent_cids(self, sender_key: str, limit: int) -> Future[list[RecentCid]]:
        since = int((time.time() - RESEND_WINDOW_S) * 1000)

        def found(rows: list[Rows]) -> list[RecentCid]:
            kept = [RecentCid(cid, int(mid), int(ts), where, hash(text)) for cid, mid, ts, where, text in rows[0]]
            kept += [RecentCid(cid, int(mid), int(ts), "@" + where, hash(text), held=True)
                     for cid, mid, ts, where, text in rows[1]]
            kept.sort(key=lambda r: r.id)
            return kept[-limit:]

        return mapped(self._read.transaction([
            ("SELECT cid, id, ts, room, text FROM messages WHERE sender_key = $1 AND cid IS NOT NULL AND ts >= $2 "
             "ORDER BY id DESC LIMIT $3", [sender_key, since, limit]),
            ("SELECT cid, id, ts, user_key, text FROM mailbox WHERE sender_key = $1 AND cid IS NOT NULL "
             "ORDER BY id DESC LIMIT $2", [sender_key, limit]),
        ]), found)

    # ------------------------------------------------------------ mailboxes

    def mailbox_count(self, user_key: str, sender_key: str, cap: int, share: int) -> Future[MailboxCount]:
        return self._rows(self._write, "SELECT (SELECT count(*) FROM (SELECT 1 FROM mailbox WHERE user_key = $1 "
                          "LIMIT $3) AS a), (SELECT count(*) FROM (SELECT 1 FROM mailbox WHERE user_key = $1 AND "
                          "sender_key = $2 LIMIT $4) AS b)", [user_key, sender_key, cap, share],
                          lambda rows: MailboxCount(int(rows[0][0]), int(rows[0][1])))

    def mailbox_page(self, user_key: str, after: int, limit: int) -> Future[tuple[list[HeldMessage], bool]]:
        return self._rows(self._write, "SELECT id, ts, sender, text, cid FROM mailbox WHERE user_key = $1 AND id > $2 "
                          "ORDER BY id LIMIT $3", [user_key, after, limit + 1],
                          lambda rows: ([HeldMessage(*r) for r in rows[:limit]], len(rows) > limit))

    # ------------------------------------------------------------ accounts

    def account(self, key: str) -> Account | None:
        return self.mirror.accounts.get(key)

    def accounts(self) -> list[Account]:
        accounts = self.mirror.accounts
        return [accounts[k] for k in sorted(accounts)]

    def create_account(self, key: str, name: str, password_hash: str, *, admin: bool = False) -> Future[Account]:
        return self.mirror.create_account(key, name, password_hash, admin)

    def set_password(self, key: str, password_hash: str) -> Future[None]:
        return self.mirror.update_account(key, "password_hash", password_hash)

    def set_admin(self, key: str, admin: bool) -> Future[None]:
        return self.mirror.update_account(key, "admin", admin)

    def delete_account(self, key: str) -> Future[int | None]:
        return self.mirror.delete_account(key)

    # ------------------------------------------------------------ rooms

    def room_record(self, key: str) -> RoomRecord | None:
        return self.mirror.rooms.get(key)

    def save_room(self, key: str, state: dict[str, Any]) -> Future[None]:
        return self.mirror.save_room(key, state)

    def save_join(self, room_key: str, member_key: str, since: int) -> Future[None]:
        kept = self.mirror.rooms.get(room_key)
        if kept is not None:
            kept.joined.setdefault(member_key, since)
        return mapped(self._write.query("INSERT INTO room_members (room, member, since) VALUES ($1, $2, $3) "
                                        "ON CONFLICT DO NOTHING", [room_key, member_key, since]), lambda _: None)

    # ------------------------------------------------------------ upkeep

    def prune(self) -> None:
        """Retention, on the search connection (its deletes may take a while; nobody's pass waits for them),
        in batches of PRUNE_BATCH rows; and the token rows of passes older than PASSES_KEPT_S."""
        if self._closed:
            return
        # (statement, parameters, batched: it deletes messages, again while it finds a whole batch)
        steps: list[tuple[str, list[object], bool]] = [
            ("DELETE FROM passes WHERE at < now() - make_interval(secs => $1)", [float(PASSES_KEPT_S)], False)]
        if self.keep_days is not None:
            cutoff = int((time.time() - self.keep_days * 86400) * 1000)
            steps += [(f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE ts < $1 LIMIT {PRUNE_BATCH})",
                       [cutoff], True) for table in ("messages", "mailbox")]
        if self.keep_messages is not None:
            steps.append((f"DELETE FROM messages WHERE id IN (SELECT m.id FROM room_seq AS r, LATERAL (SELECT id "
                          f"FROM messages WHERE room = r.room ORDER BY id DESC OFFSET $1 LIMIT {PRUNE_BATCH}) AS m)",
                          [self.keep_messages], True))
        self._prune_steps(deque(steps), 0)

    def _prune_steps(self, steps: deque[tuple[str, list[object], bool]], deleted: int) -> None:
        if not steps or self._closed:
            if deleted:
                log.info("history retention removed %d messages", deleted)
            return
        sql, params, batched = steps[0]

        def answered(f: Future[Rows]) -> None:
            exc = f.exception()
            if exc is not None:
                log.error("history retention: %s", exc)
                return
            count = len(f.result())
            if count < PRUNE_BATCH or not batched:
                steps.popleft()
            self._prune_steps(steps, deleted + (count if batched else 0))

        self._search.query(sql + " RETURNING 1", params).add_done_callback(answered)


def _stamp(messages: list[Posted], answer: list[int]) -> tuple[list[Posted], int]:
    """Stamp a room's messages of a pass with ``qtchat_post()``'s answer: a new one gets its id, a resend of a
    stored message that message's id and ts (``again``). The new ones, in order, and the room's last number."""
    ids, resent_ts, top = post_answer(answer, len(messages))
    stored_ts = iter(resent_ts)
    new = []
    for m, mid in zip(messages, ids, strict=True):
        if mid < 0:
            m.id, m.ts, m.again = -mid, next(stored_ts), True
        else:
            m.id = mid
            new.append(m)
    return new, top


def _stored(rows: Rows) -> list[StoredMessage]:
    return [StoredMessage(int(r[0]), r[1], int(r[2]), r[3], r[4], r[5], int(r[6]), bool(r[7]),
                          *quoted(r[8], None if r[9] is None else (r[9], r[10], bool(r[11])))) for r in rows]

__all__ = ["PgBanList", "PostgresBackend"]
