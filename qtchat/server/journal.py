"""The pass journal: what one event-loop pass accepted, stored in one commit before anything is sent.

Room messages, read markers, private messages kept for offline users and the
confirmations of held ones collect in a ``PassBatch`` during the pass. At the flush
the batch goes to the backend (``store_pass``); only once it is stored do the room
messages get their frames (their ids come from the store) and go out with the
pass's other frames, and are the senders of kept private messages acknowledged. A
pass that cannot be stored sends none of its messages (each sender gets an
``internal`` error naming its cid) and keeps its markers and confirmations for the
next pass; one with no room messages still sends its notices.

One pass is stored at a time: a pass that ends while the one before is still being
stored waits for it (a backend on one machine answers at once, so this never happens
there).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from qtchat.protocol import ErrorCode, Message, ProtocolError, encode_event

from .backend import Backend, MailRow, PassBatch, Posted, then
from .peer import Connections, Peer, User
from .rooms import Batch, Rooms

log = logging.getLogger("qtchat.server")

NOT_STORED = "The server could not store your message, so it was not sent."


@dataclass(slots=True)
class _Pass:
    batch: PassBatch = field(default_factory=PassBatch)
    senders: list[User] = field(default_factory=list)  # batch.messages[i] was sent by senders[i]
    # acknowledgements of kept private messages, written once stored: (sender, frame, cid, its row if it is
    # stored by this pass, None for a resend)
    mail_acks: list[tuple[Peer, bytes, str | None, MailRow | None]] = field(default_factory=list)
    resends: dict[int, list[User]] = field(default_factory=dict)  # index in batch.messages -> more to acknowledge
    by_cid: dict[tuple[str, str], int] = field(default_factory=dict)  # (sender key, cid) -> index in batch.messages


class Journal:
    """This pass's accepted work. ``stored(posted, message)`` is told of each room message once stored
    (the resend cache and the server's signal); ``forget(sender_key, cid)`` of kept private messages
    that could not be."""

    def __init__(self, backend: Backend, rooms: Rooms, connections: Connections, *, schedule: Callable[[], None],
                 stored: Callable[[Posted, Message], None], forget: Callable[[str, str], None]) -> None:
        self.backend = backend
        self.schedule = schedule  # flush at the end of this pass
        self.rooms = rooms
        self.connections = connections
        self._stored = stored
        self._forget = forget
        self._pass = _Pass()
        self._in_flight: _Pass | None = None
        self.mail_pending: dict[str, int] = {}  # recipient key -> how many kept for them are not stored yet
        self._after: list[Callable[[], None]] = []  # run once everything accepted so far is stored (or not)

    # ------------------------------------------------------------ what a pass collects

    def post(self, user: User, posted: Posted) -> None:
        p = self._pass
        if posted.cid is not None:
            p.by_cid[(posted.sender_key, posted.cid)] = len(p.senders)
        p.batch.messages.append(posted)
        p.senders.append(user)

    def pending_message(self, sender_key: str, cid: str) -> int | None:
        """The index of this pass's room message with that cid from that sender, if any."""
        return self._pass.by_cid.get((sender_key, cid))

    def acknowledge_with(self, index: int, user: User) -> None:
        """A resend of this pass's message ``index`` (from another connection): acknowledge it too."""
        self._pass.resends.setdefault(index, []).append(user)

    def mark(self, user_key: str, room_key: str, mid: int) -> None:
        self._pass.batch.markers[(user_key, room_key)] = mid

    def marker(self, user_key: str, room_key: str) -> int | None:
        """A read marker moved but not stored yet."""
        key = (user_key, room_key)
        mark = self._pass.batch.markers.get(key)
        if mark is None and self._in_flight is not None:
            mark = self._in_flight.batch.markers.get(key)
        return mark

    def unstored(self, room_key: str, user_key: str) -> int:
        """Room messages accepted but not stored yet, in the room and not the user's own (all newer than
        any stored message)."""
        passes = [self._pass] if self._in_flight is None else [self._in_flight, self._pass]
        return sum(1 for p in passes for m in p.batch.messages if m.room_key == room_key and m.sender_key != user_key)

    def hold(self, row: MailRow, sender: Peer, ack: bytes, cid: str | None) -> None:
        self._pass.batch.mail.append(row)
        self._pass.mail_acks.append((sender, ack, cid, row))
        self.mail_pending[row[1]] = self.mail_pending.get(row[1], 0) + 1

    def held_again(self, mid: int, sender: Peer, ack: bytes, cid: str | None) -> bool:
        """A resend of a kept private message not stored yet: acknowledged with it. False if it is stored."""
        for p in (self._pass, self._in_flight):
            if p is not None and any(row[0] == mid for row in p.batch.mail):
                p.mail_acks.append((sender, ack, cid, None))
                return True
        return False

    def delivered(self, user_key: str, upto: int) -> None:
        delivered = self._pass.batch.delivered
        if upto > delivered.get(user_key, 0):
            delivered[user_key] = upto

    def has_mail_for(self, user_key: str) -> bool:
        """Private messages kept for the user, or confirmations of theirs, wait to be stored."""
        passes = [self._pass] if self._in_flight is None else [self._in_flight, self._pass]
        return user_key in self.mail_pending or any(user_key in p.batch.delivered for p in passes)

    def when_stored(self, call: Callable[[], None]) -> None:
        """Run ``call`` once everything accepted so far is stored and sent: at once when nothing waits
        (a history page or a search then sees a message acknowledged a moment ago)."""
        if not self._pass.batch and self._in_flight is None:
            self.flush()  # frames of the pass with nothing to store (notices) go out first, as they would
            call()
            return
        self._after.append(call)
        self.flush()

    # ------------------------------------------------------------ the flush

    def flush(self) -> None:
        """Store this pass, then send its frames; frames of a pass with nothing to store go out at once."""
        if self._in_flight is not None:
            return  # stored next, when the pass before is
        batches = self.rooms.take()
        work, self._pass = self._pass, _Pass()
        self.mail_pending.clear()
        if not work.batch:
            self.rooms.send(batches)
            self._run_after()
            return
        self._in_flight = work
        then(self.backend.store_pass(work.batch), lambda _: self._sent(work, batches),
             lambda exc: self._not_sent(work, batches, exc))

    def _run_after(self) -> None:
        if self._pass.batch:  # more was accepted while the pass before was stored: that first
            self.flush()
            return
        after, self._after = self._after, []
        for call in after:
            call()

    def _sent(self, work: _Pass, batches: list[Batch]) -> None:
        self._in_flight = None
        if work.batch.messages:
            by_room = {b.room.key: b for b in batches}
            for i, posted in enumerate(work.batch.messages):
                msg = Message(id=posted.id, ts=posted.ts, sender=posted.sender, text=posted.text, room=posted.room,
                              cid=posted.cid)
                frame = encode_event(msg)
                batch = by_room.get(posted.room_key)
                if batch is not None:
                    batch.frames[posted.slot] = frame
                for user in work.resends.get(i, ()):
                    self.connections.write(user.peer, frame)
                self._stored(posted, msg)
        self.rooms.send(batches)
        for sender, ack, _, _ in work.mail_acks:  # stored: now their senders hear it
            self.connections.write(sender, ack)
        self._run_after()

    def _not_sent(self, work: _Pass, batches: list[Batch], exc: BaseException) -> None:
        """A full or broken disk: refuse this pass's messages, keep serving."""
        self._in_flight = None
        batch = work.batch
        log.critical("cannot store %d messages: %s; they were not sent", len(batch.messages) + len(batch.mail), exc)
        for (user_key, room_key), mid in batch.markers.items():  # markers are not acknowledged: again next pass
            if mid > (self._pass.batch.markers.get((user_key, room_key)) or -1):
                self._pass.batch.markers[(user_key, room_key)] = mid
        for user_key, upto in batch.delivered.items():  # nor are confirmations: the held messages wait meanwhile
            self.delivered(user_key, upto)
        for sender, _, cid, row in work.mail_acks:
            if row is not None and cid is not None:
                self._forget(row[4], cid)
            self.connections.fail(sender, ProtocolError(ErrorCode.INTERNAL, NOT_STORED, ref=cid))
        if batch.messages:
            self.rooms.drop_frames(batches)  # the pass's frames, messages with them, are not sent
            for posted, user in zip(batch.messages, work.senders, strict=True):
                self.connections.fail(user.peer, ProtocolError(ErrorCode.INTERNAL, NOT_STORED, ref=posted.cid))
        else:
            self.rooms.send(batches)  # no room messages: the pass's notices can still go out
        if self._pass.batch:
            self.schedule()
        after, self._after = self._after, []
        for call in after:
            call()
