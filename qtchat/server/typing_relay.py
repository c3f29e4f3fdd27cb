"""Typing indicators: who is typing, told to a room in one frame per pass, or to one person; never stored.

A ``typing`` frame (protocol.Typing) from a member of a room is news for the room's batch of this pass
(rooms.py ``queue``, like a join's notice): the first of the pass takes a slot in the batch, the later
ones only note each user's latest state, and when the pass's batches are taken (``Rooms.taking``) the
slot gets its one frame, naming everyone whose state changed: one ``typing`` frame per room per pass,
encoded once (a user who types again after their own message in the same pass starts a frame after
that message, which ends their typing where it is shown). The batch goes out (and to the other nodes of a cluster) with the pass's other frames;
nothing of it is stored. A room with more members than ``typing_max_members`` gets none. A private one
goes to its recipient alone (on another node through ``cluster.send``); to someone offline, nowhere. A
muted user's typing goes nowhere either.

A connection that sends typing frames faster than the protocol allows (qtchat.protocol.typing_rules) is
refused with a non-fatal ``typing_too_fast`` (``ref`` "typing"), and each refusal counts as a warning of its
rate limiter (limits.py: too many, and it is disconnected for flooding). Its other frames are not held up.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from qtchat.protocol import (
    TYPING_BURST,
    TYPING_RATE,
    ErrorCode,
    ProtocolError,
    SendMessage,
    Typing,
    TypingChanged,
    encode_event,
    name_key,
)

from .cluster import Cluster
from .config import ServerConfig
from .limits import Verdict
from .peer import Connections, Peer, User
from .rooms import Room, Rooms


class _News:
    """A room's typing news of one pass: its slot in the room's batch, each user's latest state."""

    __slots__ = ("ended", "slot", "states")

    def __init__(self, slot: int) -> None:
        self.slot = slot
        self.states: dict[str, tuple[str, bool]] = {}  # user key -> (name, typing)
        self.ended: set[str] = set()  # users who posted to the room after this slot (their message is a stop)

    def frame(self, room: str) -> bytes:
        on = tuple(name for name, typing in self.states.values() if typing)
        off = tuple(name for name, typing in self.states.values() if not typing)
        return encode_event(TypingChanged(on=on, off=off, room=room))


class TypingRelay:
    """The ``typing`` handler. ``flood(peer, why)`` disconnects a connection that kept flooding."""

    def __init__(self, config: ServerConfig, connections: Connections, rooms: Rooms, users: dict[str, User], *,
                 muted: set[str], cluster: Cluster, flood: Callable[[Peer, str], None]) -> None:
        self.config = config
        self.connections = connections
        self.rooms = rooms
        self.users = users
        self.muted = muted
        self.cluster = cluster
        self._flood = flood
        self._news: dict[Room, _News] = {}  # this pass's, by room: the latest
        self._all: list[tuple[Room, _News]] = []  # this pass's, all of them
        cluster.on("typing", self._from_node)

    def on_typing(self, user: User, event: Typing) -> None:
        if not self._within_rate(user.peer) or user.key in self.muted:
            return
        if event.to is not None:
            self._private(user, event.to, event.on)
            return
        room = self.rooms.rooms.get(name_key(event.room))
        if room is None or (user not in room.members and user not in room.joiners):
            return  # not (or no longer) in it: nothing to tell, and nothing worth an error
        limit = self.config.typing_max_members
        if limit > 0 and self.rooms.count(room) > limit:
            return
        news = self._news.get(room)
        if news is None or (event.on and user.key in news.ended):  # a place in the batch, with the notices
            news = self._news[room] = _News(self.rooms.queue(room, b"", urgent=False))
            self._all.append((room, news))
        news.states[user.key] = (user.name, event.on)

    def noting(self, on_message: Callable[[User, SendMessage], None]) -> Callable[[User, SendMessage], None]:
        """The ``msg`` handler, and then, for a room message: its sender's typing after it in this pass goes in a
        frame after it, not in the one before it (which the message ends, for its receivers)."""
        def handle(user: User, event: SendMessage) -> None:
            on_message(user, event)
            if self._news and event.to is None:
                room = self.rooms.rooms.get(name_key(event.room))
                news = self._news.get(room) if room is not None else None
                if news is not None:
                    news.ended.add(user.key)
        return handle

    def encode(self) -> None:
        """The pass's batches are about to be taken off the rooms: each news becomes its one frame."""
        for room, news in self._all:
            room.pending[news.slot] = news.frame(room.name)
        self._news, self._all = {}, []

    def _within_rate(self, peer: Peer) -> bool:
        limiter = peer.limiter
        if limiter is None:
            return True
        verdict, wait = limiter.typing(time.monotonic())
        if verdict is Verdict.OK:
            return True
        if verdict is Verdict.FLOOD:
            self._flood(peer, "You kept sending typing frames faster than the limit after being told to slow down.")
            return False
        raise ProtocolError(
            ErrorCode.TYPING_TOO_FAST,
            f"You are sending typing notices faster than the protocol allows ({TYPING_BURST} at once, then "
            f"{TYPING_RATE:g} a second); this one was not passed on.",
            ref="typing", retry_after=math.ceil(wait * 1000) / 1000)

    def _private(self, user: User, to: str, on: bool) -> None:
        to_key = name_key(to)
        if to_key == user.key:
            return
        frame = encode_event(TypingChanged(on=(user.name,)) if on else TypingChanged(off=(user.name,)))
        target = self.users.get(to_key)
        if target is not None:
            self.connections.write(target.peer, frame)
            return
        remote = self.cluster.remote_user(to_key)
        if remote is not None:
            self.cluster.send(remote.node, "typing", {"to": to_key, "frame": frame.decode()})

    def _from_node(self, data: dict[str, Any], node: str) -> None:
        """Private typing sent on another node to a user of this one (who may have left meanwhile)."""
        target = self.users.get(str(data.get("to")))
        if target is not None:
            self.connections.write(target.peer, str(data["frame"]).encode())
