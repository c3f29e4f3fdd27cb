"""Posting: chat messages to a room or a person, and resends recognised by their cid.

A room message is accepted into the pass journal and given a slot in its room's
batch; it gets its id and its frame once the pass is stored (journal.py). A private
message to someone online goes straight to them and back to its sender; to a
registered name that is offline it is kept in their mailbox (mailbox.py).

A client that lost its connection sends again what it had not seen acknowledged,
with the same cid: one with the same cid and text as a recent message (resends.py)
is acknowledged again instead of relayed twice. That cache is the fast path (no
round trip to the store); an older resend, or one whose first copy another node
stored, is found by the store as the pass is stored (``Posted.again``, backend.py
point 8) and acknowledged then, with the stored id and ts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qtchat.protocol import ErrorCode, Message, ProtocolError, SendMessage, encode_event, name_key

from .backend import Backend, Posted, RecentCid
from .journal import Journal
from .mailbox import Mailboxes
from .peer import Connections, User, now_ms
from .resends import RecentCids
from .rooms import Rooms


class Messages:
    """The ``msg`` handler. ``posted(message)`` is told of every message accepted (the server's signal);
    ``muted`` holds the name keys of muted users."""

    def __init__(self, backend: Backend, connections: Connections, rooms: Rooms, journal: Journal, *,
                 mailboxes: Mailboxes, users: dict[str, User], muted: set[str], recent: RecentCids,
                 posted: Callable[[Message], None]) -> None:
        self.backend = backend
        self.cluster = backend.cluster
        self.cluster.on("pm", self._from_node)
        self.connections = connections
        self.rooms = rooms
        self.journal = journal
        self.mailboxes = mailboxes
        self.users = users
        self.muted = muted
        self.recent = recent
        self._posted = posted
        self.total = 0  # messages accepted since start

    def on_message(self, user: User, event: SendMessage) -> None:
        if event.to is not None:
            self._private(user, event)
            return
        room = self.rooms.member_room(user, event.room, event.cid)
        cid, key = event.cid, user.key
        if key in self.muted:
            raise ProtocolError(ErrorCode.MUTED, "You are muted on this server.", ref=cid)
        if cid is not None and self._resent(user, cid, room.key, room.name, event.text):
            return
        posted = Posted(room.key, room.name, now_ms(), user.name, key, cid, event.text, reply_to=event.reply_to or 0)
        posted.slot = self.rooms.queue(room, b"")  # the frame takes this place once stored
        self.journal.post(user, room, posted)
        user.peer.msgs_in += 1
        self.total += 1

    def _resent(self, user: User, cid: str, room_key: str, room: str, text: str) -> bool:
        """A resend after a reconnect: acknowledged again, relayed nothing."""
        earlier = self.recent.get(user.key, cid)
        if earlier is not None and earlier.where == room_key and earlier.digest == hash(text):
            ack = Message(id=earlier.id, ts=earlier.ts, sender=user.name, text=text, room=room, cid=cid)
            self.connections.write(user.peer, encode_event(ack))
            return True
        return self.journal.resent(user, cid, room_key, text)  # not stored yet: acknowledged with the first

    def stored(self, posted: Posted, msg: Message) -> None:
        """A room message is stored: remember its cid, tell the server's listeners (not of a resend the store
        recognised: they were told of that message when it was first stored)."""
        if posted.cid is not None:
            self.recent.remember(posted.sender_key, RecentCid(posted.cid, posted.id, posted.ts, posted.room_key,
                                                              hash(posted.text)))
        if posted.again:
            self.total -= 1  # not a new message after all
            return
        self._posted(msg)

    def _private(self, user: User, event: SendMessage) -> None:
        """Straight to its recipient and back to its sender; for a registered name that is offline, kept."""
        assert event.to is not None
        if user.key in self.muted:
            raise ProtocolError(ErrorCode.MUTED, "You are muted on this server.", ref=event.cid)
        to_key = name_key(event.to)
        target = self.users.get(to_key)
        cid, where = event.cid, "@" + to_key
        if cid is not None:
            earlier = self.recent.get(user.key, cid)
            if earlier is not None and earlier.where == where and earlier.digest == hash(event.text):
                self._private_again(user, event, earlier, target)  # acknowledged again, not sent twice
                return
        remote = self.cluster.remote_user(to_key) if target is None else None  # online on another node
        if target is None and remote is None:
            self.mailboxes.hold(user, event, to_key)
            return
        to_name = target.name if target is not None else remote.name if remote is not None else event.to
        msg = Message(id=self.backend.next_id(), ts=now_ms(), sender=user.name, text=event.text, cid=cid,
                      to=to_name, reply_to=event.reply_to or 0)  # (private ones are not stored: no quote)
        if cid is not None:
            self.recent.remember(user.key, RecentCid(cid, msg.id, msg.ts, where, hash(msg.text)))
        user.peer.msgs_in += 1
        self.total += 1
        frame = encode_event(msg)
        if remote is not None:
            self.cluster.send(remote.node, "pm", {"to": to_key, "frame": frame.decode()})
        elif target is not None:
            self.connections.write(target.peer, frame)
        if target is not user:
            self.connections.write(user.peer, frame)
        self._posted(msg)

    def _from_node(self, data: dict[str, Any], node: str) -> None:
        """A private message sent on another node to a user of this one (they may have left meanwhile)."""
        target = self.users.get(str(data.get("to")))
        if target is not None:
            self.connections.write(target.peer, str(data["frame"]).encode())

    def _private_again(self, user: User, event: SendMessage, earlier: RecentCid, target: User | None) -> None:
        """The acknowledgement of a private message sent again (same cid and text): as the first one was."""
        to_name = target.name if target is not None else None
        if to_name is None:
            account = self.backend.account(earlier.where[1:])
            to_name = account.name if account is not None else event.to
        ack = encode_event(Message(id=earlier.id, ts=earlier.ts, sender=user.name, text=event.text, cid=event.cid,
                                   to=to_name, held=earlier.held))
        if not (earlier.held and self.journal.held_again(earlier.id, user.peer, ack, event.cid)):
            self.connections.write(user.peer, ack)
