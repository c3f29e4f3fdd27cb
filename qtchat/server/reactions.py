"""Reactions to room messages (``react``): one of the protocol's few (REACTIONS), given or taken back.

A reaction is accepted into the pass journal; the store checks and applies it in the pass's transaction
(backend.py, point 11). Once stored, each message's reactions go to the room once per pass, whatever many
were given (``reactions``: how many gave each, in the room's order), and each user who changed theirs gets
their own (the same frame with ``yours`` and ``mine``). History pages carry the totals and the reader's own
(``HistoryService``: ``Backend.tallies``), never who gave what.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qtchat.protocol import REACTIONS, ErrorCode, ProtocolError, React

from .backend import Reaction
from .journal import Journal
from .peer import User
from .rooms import Rooms


class ReactionsPart:
    def __init__(self, rooms: Rooms, journal: Journal, muted: set[str]) -> None:
        self.rooms = rooms
        self.journal = journal
        self.muted = muted

    def handlers(self) -> dict[type, Callable[[User, Any], None]]:
        return {React: self.on_react}

    def on_react(self, user: User, event: React) -> None:
        ref = f"react:{event.id}"
        if event.emoji not in REACTIONS:
            raise ProtocolError(ErrorCode.BAD_REACTION, f"A reaction is one of {' '.join(REACTIONS)}.", ref=ref)
        room = self.rooms.member_room(user, event.room, ref=ref)
        floor = self.rooms.records.floor(user.key, room.key)  # history "joined": nothing from before they came
        if floor is not None and event.id <= floor:
            raise ProtocolError(ErrorCode.NO_SUCH_MESSAGE, "That message is not in this room (or was deleted).",
                                ref=ref)
        if user.key in self.muted:
            raise ProtocolError(ErrorCode.MUTED, "You are muted on this server.", ref=ref)
        self.journal.react(user, room, Reaction(room.key, room.name, event.id, user.key, event.emoji, event.on))
