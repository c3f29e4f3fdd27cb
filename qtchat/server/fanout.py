"""A cluster's fan-out: each pass's frames to the other nodes over Redis, delivered in each room's order.

Every node publishes what its members of a room got in one pass (``publish``) on the Redis channel
``qtchat:<cluster>:room:<key>``, with a header: the node, and either the room's sequence numbers of the pass's
messages (``room_seq`` in PostgreSQL, taken under the room's lock: pg_backend.py) or, for a pass
without messages (joins, leaves, topics), the last number the node had delivered. Every node
subscribes to all rooms (one pattern) and delivers each room **strictly in its sequence**:

- a payload whose first number is the next one is delivered at once; one from further on waits;
- a hole waits ``GAP_MS`` (publishing after commit reorders between nodes: scale-out.md), then is
  filled from PostgreSQL: the messages after the last id delivered, encoded by the core from the
  stored rows (``RemoteSink.deliver_stored``); a payload that comes after its messages were filled
  gives only its other frames;
- this node's own pass waits the same way (``stored``) until everything numbered before it is
  delivered here, so its members see the room in the same order as every other node's;
- every ``TAIL_MS`` the rooms this node has members in are compared with PostgreSQL's counters, so a
  message committed by a node that died before publishing, or sent while Redis was down, is filled
  within about half a second;
- a room nobody here is in is only counted along (nothing is fetched for it).

Without Redis (down, or not configured) the nodes still chat, through the tail checks: slower, never
lost. Redis connections that break are opened again every ``REDIS_RETRY_MS``.
"""

from __future__ import annotations

import logging
import secrets
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer

from .backend import StoredMessage, done

if TYPE_CHECKING:
    from .backend import RemoteSink
    from .pgloop import PgLink, Rows
    from .redis_link import RedisLink, RedisSubscriber, _Connection

log = logging.getLogger("qtchat.server.fanout")

ROOM = "room:"  # after the cluster's prefix (pg_backend.py), + the room's key: a room's channel
GAP_MS = 20  # how long a hole in a room's sequence waits for its payload before it is filled from PostgreSQL
TAIL_MS = 500  # how often the rooms with members here are compared with PostgreSQL's counters
REDIS_RETRY_MS = 1000
FILL_LIMIT = 500  # messages per fill query
_MSG = b'{"type":"msg",'  # how every message frame begins (protocol.encode_event)


@dataclass(slots=True)
class _Payload:
    frames: bytes
    first: int  # 0: a pass without messages
    last: int  # its last sequence number; without messages, the last one its node had delivered


@dataclass(slots=True)
class _Feed:
    """One room's delivery on this node."""

    next: int = 1  # the next sequence number to deliver
    last_id: int = 0  # the id of the last message delivered
    queue: deque[_Payload] = field(default_factory=deque)
    local: tuple[int, Future[None]] | None = None  # this node's own pass waiting: its first number
    holding: bool = False  # this node's pass may go: nothing else is delivered until the core sent it
    storing: bool = False  # this node's pass is being committed: its numbers are not known yet, so no fill
    filling: bool = False
    publishing: tuple[int, int] | None = None  # this node's pass just stored, for publish()'s header


class Fanout(QObject):
    """The fan-out of one node; ``reads`` is the PostgreSQL link it fills holes with."""

    def __init__(self, reads: PgLink, redis_url: str | None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.node = secrets.token_hex(6)
        self.channel = "qtchat:" + ROOM  # the cluster's (pg_backend.py sets it before ``start``)
        self._reads = reads
        self._sink: RemoteSink | None = None
        self._feeds: dict[str, _Feed] = {}
        self._closed = False
        self.filled = 0  # messages fetched from PostgreSQL instead of Redis (holes, dead nodes, Redis down)
        self._gap_timer = QTimer(self)
        self._gap_timer.setSingleShot(True)
        self._gap_timer.timeout.connect(self._fill_waiting)
        self._tail_timer = QTimer(self)
        self._tail_timer.timeout.connect(self._check_tails)
        self._pub: RedisLink | None = None
        self._sub: RedisSubscriber | None = None
        if redis_url is not None:
            from .redis_link import RedisLink, RedisSubscriber

            self._pub = RedisLink(redis_url, self)
            self._sub = RedisSubscriber(redis_url, self._received, self)
            self._pub.on_lost = lambda why: self._redis_lost(self._pub, why)
            self._sub.on_lost = lambda why: self._redis_lost(self._sub, why)

    def start(self, sink: RemoteSink, counters: Rows) -> Future[None]:
        """Deliver to ``sink`` from now on; ``counters``: (room, last_seq, last id) as stored at the start.
        Done once subscribed (at once without Redis; a Redis that cannot be reached is retried meanwhile)."""
        self._sink = sink
        for room, last_seq, last_id in counters:
            self._feeds[room] = _Feed(next=int(last_seq) + 1, last_id=int(last_id or 0))
        self._tail_timer.start(TAIL_MS)
        if self._sub is None or self._pub is None:
            return done(None)
        self._pub.open().add_done_callback(lambda f: self._opened(self._pub, f))
        subscribed = self._sub.psubscribe(self.channel + "*")
        self._sub.open().add_done_callback(lambda f: self._opened(self._sub, f))
        return subscribed

    def close(self) -> None:
        self._closed = True
        self._gap_timer.stop()
        self._tail_timer.stop()
        for link in (self._pub, self._sub):
            if link is not None:
                link.close()
        for feed in self._feeds.values():
            if feed.local is not None and not feed.local[1].done():
                feed.local[1].set_result(None)

    # ------------------------------------------------------------ this node's passes

    def storing(self, rooms: list[str]) -> None:
        """This node sends a pass with messages in these rooms: until ``stored``, nothing is filled there (a fill
        could hand its members this pass's own messages, which the core sends them once it is stored)."""
        for room in rooms:
            self._feeds.setdefault(room, _Feed()).storing = True

    def not_stored(self, rooms: list[str]) -> None:
        """The pass ``storing`` announced was refused, or stored nothing new in these rooms (its messages there were
        all resends of stored ones, which take no number): nothing of it is coming."""
        for room in rooms:
            feed = self._feeds.get(room)
            if feed is not None:
                feed.storing = False
                if feed.queue:
                    self._wait_gap()

    def stored(self, room: str, first: int, last: int, last_id: int) -> Future[None]:
        """This node stored the room's messages numbered ``first``..``last``: done once everything before them
        is delivered here (at once, mostly). Call ``sent`` once the core has sent the pass."""
        feed = self._feeds.setdefault(room, _Feed())
        feed.publishing = (first, last)
        feed.storing = False
        if feed.next >= first or not self._watching(room):
            self._advance(feed, last, last_id)
            feed.holding = True
            return done(None)
        waiting: Future[None] = Future()
        feed.local = (first, waiting)
        self._advance_later(feed, last, last_id, waiting)
        self._wait_gap()
        return waiting

    def _advance_later(self, feed: _Feed, last: int, last_id: int, waiting: Future[None]) -> None:
        def go(_: Future[None]) -> None:
            self._advance(feed, last, last_id)
            feed.holding = True

        waiting.add_done_callback(go)

    def sent(self, room: str) -> None:
        """The core has sent this node's pass of the room: what waited behind it may go now."""
        feed = self._feeds.get(room)
        if feed is not None:
            feed.publishing = None
            feed.holding = False
            self._drain(room, feed)

    def publish(self, room: str, frames: bytes) -> None:
        """A pass's frames of the room as this node's members got them: to the other nodes."""
        feed = self._feeds.setdefault(room, _Feed())
        first, last = feed.publishing or (0, feed.next - 1)
        feed.publishing = None
        if self._pub is None or not self._pub.is_open:
            return  # the others fill it from PostgreSQL (a pass without messages is not seen there)
        header = f"{self.node} {first} {last}\n".encode()
        self._pub.command("PUBLISH", self.channel + room, header + frames).add_done_callback(_ignore_lost)

    @staticmethod
    def _advance(feed: _Feed, last: int, last_id: int) -> None:
        if last >= feed.next:
            feed.next = last + 1
        feed.last_id = max(feed.last_id, last_id)

    # ------------------------------------------------------------ what other nodes sent

    def _received(self, channel: bytes, payload: bytes) -> None:
        if self._closed or not channel.startswith(self.channel.encode()):
            return
        head, _, frames = payload.partition(b"\n")
        try:
            node, first, last = head.decode().split(" ")
            numbers = int(first), int(last)
        except ValueError:
            log.warning("a payload on %s that is not ours: ignored", channel[:80])
            return
        if node == self.node:
            return  # our own, sent here by Redis too
        room = channel[len(self.channel):].decode()
        feed = self._feeds.setdefault(room, _Feed())
        if not self._watching(room):  # nobody here: only count along
            if numbers[0]:
                self._advance(feed, numbers[1], 0)
            return
        feed.queue.append(_Payload(frames, *numbers))
        self._drain(room, feed)

    def _drain(self, room: str, feed: _Feed) -> None:
        """Deliver what may go now, in the room's order; start the gap timer if something still waits."""
        progress = True
        while progress and not feed.holding:
            progress = False
            for payload in list(feed.queue):
                # a pass without messages goes once all its node had delivered is delivered here
                ready = payload.last < feed.next if payload.first == 0 else payload.first <= feed.next
                if not ready:
                    continue
                feed.queue.remove(payload)
                self._deliver(room, feed, payload)
                progress = True
            if feed.local is not None and feed.next >= feed.local[0]:
                waiting = feed.local[1]
                feed.local = None
                waiting.set_result(None)  # the core sends our pass now (holding until sent())
        if feed.queue or feed.local is not None:
            self._wait_gap()

    def _deliver(self, room: str, feed: _Feed, payload: _Payload) -> None:
        assert self._sink is not None
        frames = payload.frames
        if payload.first and payload.first < feed.next:  # (some of) its messages were filled from PostgreSQL
            frames = _without_delivered(frames, feed.last_id)
        if payload.first and payload.last >= feed.next:
            feed.next = payload.last + 1
            feed.last_id = max(feed.last_id, _last_id(payload.frames))
        if frames:
            self._sink.deliver_remote(room, frames)

    # ------------------------------------------------------------ holes, from PostgreSQL

    def _wait_gap(self) -> None:
        if not self._gap_timer.isActive() and not self._closed:
            self._gap_timer.start(GAP_MS)

    def _fill_waiting(self) -> None:
        for room, feed in list(self._feeds.items()):
            want = self._wanted(feed)
            if want >= feed.next and not feed.filling and not feed.holding and not feed.storing:
                self._fill(room, feed, want)

    @staticmethod
    def _wanted(feed: _Feed) -> int:
        """The last sequence number the room needs delivered before what waits can go."""
        want = 0
        for payload in feed.queue:
            want = max(want, payload.first - 1 if payload.first else payload.last)
        if feed.local is not None:  # never past this node's own waiting pass: the core sends those messages
            want = feed.local[0] - 1
        return want

    def _fill(self, room: str, feed: _Feed, want: int) -> None:
        feed.filling = True

        def answered(f: Future[Rows]) -> None:
            feed.filling = False
            if self._closed:
                return
            if f.exception() is not None:
                log.warning("cannot fill room %s from PostgreSQL: %s", room, f.exception())
                self._wait_gap()
                return
            if feed.holding or feed.storing:  # this node's pass goes first: fetched again after it
                self._wait_gap()
                return
            rows = f.result()
            upto = [r for r in rows if int(r[5]) <= want]  # what comes after ``want`` goes with its own payload
            messages = [StoredMessage(int(r[0]), room, int(r[1]), r[2], r[3], r[4]) for r in upto
                        if int(r[5]) >= feed.next]
            if messages and self._sink is not None and self._watching(room):
                self.filled += len(messages)
                self._sink.deliver_stored(room, messages)
            if upto:  # (not past it: the next fill starts after the last id delivered)
                feed.last_id = max(feed.last_id, int(upto[-1][0]))
            if len(rows) == FILL_LIMIT and int(rows[-1][5]) < want:
                feed.next = max(feed.next, int(rows[-1][5]) + 1)
                self._fill(room, feed, want)  # more to come
                return
            feed.next = max(feed.next, want + 1)  # what is not there was deleted (retention)
            self._drain(room, feed)

        self._reads.query("SELECT id, ts, sender, text, cid, seq FROM messages WHERE room = $1 AND id > $2 "
                          f"ORDER BY id LIMIT {FILL_LIMIT}", [room, feed.last_id]).add_done_callback(answered)

    def _check_tails(self) -> None:
        rooms = [room for room in self._feeds if self._watching(room)] if self._sink is not None else []
        if not rooms:
            return

        def answered(f: Future[Rows]) -> None:
            if f.exception() is not None or self._closed:
                return
            behind = False
            for room, last_seq in f.result():
                feed = self._feeds.get(room)
                if feed is not None and int(last_seq) >= feed.next and not feed.filling:
                    feed.queue.append(_Payload(b"", 0, int(last_seq)))  # waits for everything up to it
                    behind = True
            if behind:
                self._wait_gap()

        self._reads.query("SELECT room, last_seq FROM room_seq WHERE room IN (SELECT jsonb_array_elements_text($1))",
                          [rooms]).add_done_callback(answered)

    def _watching(self, room: str) -> bool:
        return self._sink is not None and self._sink.watching(room)

    # ------------------------------------------------------------ Redis coming and going

    def _opened(self, link: _Connection | None, future: Future[None]) -> None:
        if future.exception() is not None and link is not None:
            self._redis_lost(link, str(future.exception()))

    def _redis_lost(self, link: _Connection | None, why: str) -> None:
        if self._closed or link is None:
            return
        log.warning("Redis: %s; trying again in %d ms (PostgreSQL carries the chat meanwhile)", why, REDIS_RETRY_MS)
        QTimer.singleShot(REDIS_RETRY_MS, self, lambda: self._reopen(link))

    def _reopen(self, link: _Connection) -> None:
        if not self._closed and not link.is_open:
            link.open().add_done_callback(lambda f: self._opened(link, f))


def _last_id(frames: bytes) -> int:
    """The id of the last message frame among ``frames`` (0: none)."""
    at = frames.rfind(_MSG)
    if at < 0:
        return 0
    start = at + len(_MSG)
    if frames.startswith(b'"id":', start):
        digits = frames[start + 5:frames.find(b",", start + 5)]
        if digits.isdigit():
            return int(digits)
    return 0


def _without_delivered(frames: bytes, upto: int) -> bytes:
    """``frames`` without the message frames whose id is ``upto`` or below (delivered from PostgreSQL)."""
    kept = []
    for line in frames.split(b"\n"):
        if line and (not line.startswith(_MSG) or _last_id(line) > upto):
            kept.append(line + b"\n")
    return b"".join(kept)


def _ignore_lost(future: Future[object]) -> None:
    future.exception()  # a publish lost with Redis: the other nodes fill it from PostgreSQL


__all__ = ["Fanout"]
