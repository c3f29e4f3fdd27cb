"""The pass journal: what one event-loop pass accepted, stored in one commit before anything is sent.

Room messages, read markers, private messages kept for offline users and the
confirmations of held ones collect in a ``PassBatch`` during the pass. At the flush
the batch goes to the backend (``store_pass``); only once it is stored do the room
messages get their frames (their ids come from the store) and go out with the
pass's other frames, and are the senders of kept private messages acknowledged. A
message the store found to be a resend of one stored before (``Posted.again``) is
acknowledged to its sender alone, with the stored id and ts, and relayed to nobody. A
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

from qtchat.protocol import ErrorCode, Message, MessageDeleted, MessageEdited, ProtocolError, Reactions, encode_event

from .backend import Backend, Change, MailRow, PassBatch, Posted, Reaction, then
from .peer import Connections, Peer, User
from .rooms import Batch, Room, Rooms

log = logging.getLogger("qtchat.server")

NOT_STORED = "The server could not store your message, so it was not sent."
NOT_CHANGED = "The server could not store that change, so nothing changed."
MINE_KEPT = 1000  # per session: the ids of its latest room messages (an unregistered name edits only those)
REFUSALS = {
    "no_such_message": (ErrorCode.NO_SUCH_MESSAGE, "That message is not in this room (or was deleted)."),
    "not_author": (ErrorCode.NOT_AUTHOR, "Only its author can change that message (or, to delete it, an operator)."),
    "too_late": (ErrorCode.TOO_LATE, "That message is too old to edit."),
}


def reaction_refusal(r: Reaction) -> ProtocolError:
    if r.result == "unknown":
        return ProtocolError(ErrorCode.INTERNAL, NOT_CHANGED, ref=f"react:{r.id}")
    if r.result == "too_many_reactions":
        return ProtocolError(ErrorCode.TOO_MANY_REACTIONS, "That message has as many reactions as it can hold.",
                             ref=f"react:{r.id}")
    return ProtocolError(ErrorCode.NO_SUCH_MESSAGE, REFUSALS["no_such_message"][1], ref=f"react:{r.id}")


def _own_reactions(work: _Pass) -> dict[tuple[User, str, int], bytes]:
    """Each user's own reactions to each message they changed this pass (the last state), to them alone."""
    own: dict[tuple[User, str, int], bytes] = {}
    for r, user in zip(work.batch.reactions, work.reactors, strict=True):
        if not r.result:
            own[(user, r.room, r.id)] = encode_event(Reactions(r.id, r.room, r.counts, r.mine, yours=True))
    return own


def change_ref(c: Change) -> str:
    """The ``ref`` of an error answering an edit or a deletion: "edit:<id>" or "delete:<id>"."""
    return f"{'edit' if c.text is not None else 'delete'}:{c.id}"


def refusal(c: Change) -> ProtocolError:
    code, text = REFUSALS.get(c.result, (ErrorCode.INTERNAL, NOT_CHANGED))
    return ProtocolError(code, text, ref=change_ref(c))


@dataclass(slots=True)
class _Pass:
    batch: PassBatch = field(default_factory=PassBatch)
    senders: list[User] = field(default_factory=list)  # batch.messages[i] was sent by senders[i]...
    rooms: list[Room] = field(default_factory=list)  # ...to rooms[i] (the object: a room can be made anew in a pass)
    # acknowledgements of kept private messages, written once stored: (sender, frame, cid, its row if it is
    # stored by this pass, None for a resend)
    mail_acks: list[tuple[Peer, bytes, str | None, MailRow | None]] = field(default_factory=list)
    mail_for: dict[str, int] = field(default_factory=dict)  # recipient key -> how many kept for them in this pass
    mail_from: dict[tuple[str, str], int] = field(default_factory=dict)  # (recipient, sender key) -> how many
    resends: dict[int, list[User]] = field(default_factory=dict)  # index in batch.messages -> more to acknowledge
    by_cid: dict[tuple[str, str], int] = field(default_factory=dict)  # (sender key, cid) -> index in batch.messages
    after: list[Callable[[], None]] = field(default_factory=list)  # run once this pass is stored (or not)
    changers: list[User] = field(default_factory=list)  # batch.changes[i] was asked for by changers[i]...
    change_rooms: list[Room] = field(default_factory=list)  # ...in change_rooms[i]
    reactors: list[User] = field(default_factory=list)  # batch.reactions[i] was given by reactors[i]...
    reaction_keys: list[tuple[int, int]] = field(default_factory=list)  # ...to the message reaction_keys[i] of reacted
    # (room object's id, message id) -> (the room, the slot of its one reactions frame of this pass)
    reacted: dict[tuple[int, int], tuple[Room, int]] = field(default_factory=dict)


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
        self._deferred = False  # a flush was asked for while a pass was being stored

    def _passes(self) -> list[_Pass]:
        """The passes not stored yet: the one being stored (if any), then this one."""
        return [self._pass] if self._in_flight is None else [self._in_flight, self._pass]

    # ------------------------------------------------------------ what a pass collects

    def post(self, user: User, room: Room, posted: Posted) -> None:
        p = self._pass
        if posted.cid is not None:
            p.by_cid[(posted.sender_key, posted.cid)] = len(p.senders)
        p.batch.messages.append(posted)
        p.senders.append(user)
        p.rooms.append(room)

    def change(self, user: User, room: Room, change: Change) -> None:
        """An edit or a deletion: the store checks it (backend.py, point 9); its frame takes ``change.slot``."""
        p = self._pass
        p.batch.changes.append(change)
        p.changers.append(user)
        p.change_rooms.append(room)

    def react(self, user: User, room: Room, reaction: Reaction) -> None:
        """A reaction: the store checks it (backend.py, point 11); the message's reactions go to the room once per
        pass (one slot, the first reaction's), and to the user their own."""
        p = self._pass
        p.batch.reactions.append(reaction)
        p.reactors.append(user)
        key = (id(room), reaction.id)
        p.reaction_keys.append(key)
        if key not in p.reacted:
            p.reacted[key] = (room, self.rooms.queue(room, b""))

    def resent(self, user: User, cid: str, room_key: str, text: str) -> bool:
        """A resend (same cid, room and text) of a room message not stored yet: it is acknowledged with the
        first one, once stored (also on another connection of the sender). False if there is none."""
        for p in self._passes():
            index = p.by_cid.get((user.key, cid))
            if index is not None:
                first = p.batch.messages[index]
                if first.room_key == room_key and first.text == text:
                    if p.senders[index] is not user:
                        p.resends.setdefault(index, []).append(user)
                    return True
        return False

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
        return sum(1 for p in self._passes() for m in p.batch.messages
                   if m.room_key == room_key and m.sender_key != user_key)

    def hold(self, row: MailRow, sender: Peer, ack: bytes, cid: str | None) -> None:
        p = self._pass
        p.batch.mail.append(row)
        p.mail_acks.append((sender, ack, cid, row))
        p.mail_for[row[1]] = p.mail_for.get(row[1], 0) + 1
        pair = (row[1], row[4])
        p.mail_from[pair] = p.mail_from.get(pair, 0) + 1

    def pending_mail(self, user_key: str) -> int:
        """How many private messages kept for the user are not stored yet."""
        return sum(p.mail_for.get(user_key, 0) for p in self._passes())

    def pending_share(self, user_key: str, sender_key: str) -> int:
        """How many of those the sender ``sender_key`` sent (their share of the user's mailbox not stored yet)."""
        return sum(p.mail_from.get((user_key, sender_key), 0) for p in self._passes())

    def held_again(self, mid: int, sender: Peer, ack: bytes, cid: str | None) -> bool:
        """A resend of a kept private message not stored yet: acknowledged with it. False if it is stored."""
        for p in self._passes():
            if any(row[0] == mid for row in p.batch.mail):
                p.mail_acks.append((sender, ack, cid, None))
                return True
        return False

    def delivered(self, user_key: str, upto: int) -> None:
        delivered = self._pass.batch.delivered
        if upto > delivered.get(user_key, 0):
            delivered[user_key] = upto

    def has_mail_for(self, user_key: str) -> bool:
        """Private messages kept for the user, or confirmations of theirs, wait to be stored."""
        return any(user_key in p.mail_for or user_key in p.batch.delivered for p in self._passes())

    def when_stored(self, call: Callable[[], None]) -> None:
        """Run ``call`` once everything accepted so far is stored (or could not be) and sent: at once when
        nothing waits (a history page or a search then sees a message acknowledged a moment ago)."""
        if not self._pass.batch and self._in_flight is None:
            self.flush()  # frames of the pass with nothing to store (notices) go out first, as they would
            call()
            return
        (self._pass if self._pass.batch else self._in_flight or self._pass).after.append(call)
        self.flush()

    # ------------------------------------------------------------ the flush

    def flush(self) -> None:
        """Store this pass, then send its frames; frames of a pass with nothing to store go out at once."""
        if self._in_flight is not None:
            self._deferred = True  # flushed when the pass before is stored
            return
        batches = self.rooms.take()
        work, self._pass = self._pass, _Pass()
        if not work.batch:
            self.rooms.send(batches)
            self._finished(work)
            return
        self._in_flight = work
        then(self.backend.store_pass(work.batch), lambda _: self._sent(work, batches),
             lambda exc: self._not_sent(work, batches, exc))

    def _finished(self, work: _Pass) -> None:
        """A pass is done (stored and sent, or refused): what waited for it runs, and a flush asked for
        meanwhile happens now."""
        for call in work.after:
            call()
        if self._deferred and self._in_flight is None:
            self._deferred = False
            self.flush()

    def _sent(self, work: _Pass, batches: list[Batch]) -> None:
        self._in_flight = None
        by_room = {id(b.room): b for b in batches}  # where the pass's stored frames take their slots
        if work.batch.messages:
            for i, posted in enumerate(work.batch.messages):
                msg = Message(id=posted.id, ts=posted.ts, sender=posted.sender, text=posted.text, room=posted.room,
                              cid=posted.cid, reply_to=posted.reply_to, reply_from=posted.reply_from,
                              reply_text=posted.reply_text)
                frame = encode_event(msg)
                if posted.again:  # a resend of a message stored before: to its sender, its slot stays empty
                    self.connections.write(work.senders[i].peer, frame)
                else:
                    batch = by_room.get(id(work.rooms[i]))
                    if batch is not None:
                        batch.frames[posted.slot] = frame
                for user in work.resends.get(i, ()):
                    self.connections.write(user.peer, frame)
                self._stored(posted, msg)
                if not posted.again:  # (a resend of someone's stored message does not make it this connection's)
                    work.senders[i].mine[posted.id] = None
                    if len(work.senders[i].mine) > MINE_KEPT:
                        del work.senders[i].mine[next(iter(work.senders[i].mine))]
        if work.batch.changes:
            self._changed(work, by_room)
        if work.batch.reactions:
            self._reactions(work, by_room)
        self.rooms.send(batches)
        for (user, _, _), frame in _own_reactions(work).items():
            self.connections.write(user.peer, frame)
        for sender, ack, _, _ in work.mail_acks:  # stored: now their senders hear it
            self.connections.write(sender, ack)
        self._finished(work)

    def _changed(self, work: _Pass, by_room: dict[int, Batch]) -> None:
        """Edits and deletions the store made take their slots; the refused ones are answered to who asked."""
        for c, user, room in zip(work.batch.changes, work.changers, work.change_rooms, strict=True):
            if c.result:
                self.connections.fail(user.peer, refusal(c))
                continue
            frame = encode_event(MessageEdited(c.id, c.text, c.ts, c.sender, c.room) if c.text is not None else
                                 MessageDeleted(c.id, c.ts, c.by, c.room))
            batch = by_room.get(id(room))
            if batch is not None:
                batch.frames[c.slot] = frame

    def _reactions(self, work: _Pass, by_room: dict[int, Batch]) -> None:
        """Each message's reactions once per pass (the last reaction's counts: the store applied them in order)
        in its slot; refusals to who gave them."""
        final: dict[tuple[int, int], Reaction] = {}
        for r, user, key in zip(work.batch.reactions, work.reactors, work.reaction_keys, strict=True):
            if r.result:
                self.connections.fail(user.peer, reaction_refusal(r))
            else:
                final[key] = r
        for key, (room, slot) in work.reacted.items():
            last = final.get(key)
            batch = by_room.get(id(room))
            if last is not None and batch is not None:
                batch.frames[slot] = encode_event(Reactions(last.id, last.room, last.counts))

    def _not_sent(self, work: _Pass, batches: list[Batch], exc: BaseException) -> None:
        """A full or broken disk: refuse this pass's messages, keep serving."""
        self._in_flight = None
        batch = work.batch
        log.critical("cannot store %d messages: %s; they were not sent", len(batch.messages) + len(batch.mail), exc)
        # markers and confirmations are not acknowledged: they go with the next pass (not a pass of their own,
        # which with a broken disk would be tried again and again)
        for (user_key, room_key), mid in batch.markers.items():
            if mid > (self._pass.batch.markers.get((user_key, room_key)) or -1):
                self._pass.batch.markers[(user_key, room_key)] = mid
        for user_key, upto in batch.delivered.items():  # the held messages wait meanwhile
            self.delivered(user_key, upto)
        for sender, _, cid, row in work.mail_acks:
            if row is not None and cid is not None:
                self._forget(row[4], cid)
            self.connections.fail(sender, ProtocolError(ErrorCode.INTERNAL, NOT_STORED, ref=cid))
        for c, user in zip(batch.changes, work.changers, strict=True):
            self.connections.fail(user.peer, ProtocolError(ErrorCode.INTERNAL, NOT_CHANGED, ref=change_ref(c)))
        for r, user in zip(batch.reactions, work.reactors, strict=True):
            self.connections.fail(user.peer, ProtocolError(ErrorCode.INTERNAL, NOT_CHANGED, ref=f"react:{r.id}"))
        if batch.messages:
            for batch_of_room in batches:  # the pass's frames, messages with them, are not sent
                batch_of_room.frames.clear()
            for i, (posted, user) in enumerate(zip(batch.messages, work.senders, strict=True)):
                for who in (user, *work.resends.get(i, ())):
                    self.connections.fail(who.peer, ProtocolError(ErrorCode.INTERNAL, NOT_STORED, ref=posted.cid))
        else:
            self.rooms.send(batches)  # no room messages: the pass's notices can still go out
        self._finished(work)
