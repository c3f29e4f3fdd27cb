"""Editing and deleting room messages (``edit``, ``delete``).

A change is accepted into the pass journal like a message, with an empty slot in its room's batch; the store
checks it in the pass's transaction (the message is in that room and not deleted; it is the asker's; an edit
within the edit window) and applies it, the search index with it (backend.py, point 9). Once stored, every
member gets ``edited`` or ``deleted`` in the room's order, the asker too (its acknowledgement); a refusal
answers the asker alone (``no_such_message``, ``not_author``, ``too_late``, with ``ref`` "edit:<id>").

Who may: the author, that is the same account (any of its sessions) for a registered name; for an
unregistered one the same connection (``User.mine``: its latest room messages), since another person may
use the name later. An operator of the room, or a server admin, may delete anyone's message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qtchat.protocol import DeleteMessage, EditMessage, ErrorCode, ProtocolError

from .backend import Backend, Change
from .config import ServerConfig
from .journal import Journal
from .peer import User, now_ms
from .rooms import Room, Rooms

NOBODY = "\x1f"  # an author key no name has (names have no control characters)


class Edits:
    def __init__(self, config: ServerConfig, backend: Backend, rooms: Rooms, journal: Journal, muted: set[str]) -> None:
        self.config = config
        self.backend = backend
        self.rooms = rooms
        self.journal = journal
        self.muted = muted

    def handlers(self) -> dict[type, Callable[[User, Any], None]]:
        return {EditMessage: self.on_edit, DeleteMessage: self.on_delete}

    def on_edit(self, user: User, event: EditMessage) -> None:
        ref = f"edit:{event.id}"
        if self.config.edit_window <= 0:
            raise ProtocolError(ErrorCode.TOO_LATE, "This server does not allow editing messages.", ref=ref)
        now = now_ms()
        room = self.rooms.member_room(user, event.room, ref=ref)
        self._accept(user, room, Change(
            "", "", event.id, event.text, now, user.name, author_key=user.key,
            not_before=now - int(self.config.edit_window * 1000)), ref)

    def on_delete(self, user: User, event: DeleteMessage) -> None:
        ref = f"delete:{event.id}"
        room = self.rooms.member_room(user, event.room, ref=ref)
        records = self.rooms.records
        record = records.get(room.key)
        operator = records.is_admin(user.key) or (record is not None and records.is_operator(record, user.key))
        self._accept(user, room, Change("", "", event.id, None, now_ms(), user.name,
                                        author_key=None if operator else user.key), ref)

    def _accept(self, user: User, room: Room, change: Change, ref: str) -> None:
        if user.key in self.muted:
            raise ProtocolError(ErrorCode.MUTED, "You are muted on this server.", ref=ref)
        if change.author_key is not None and self.backend.account(user.key) is None and change.id not in user.mine:
            change.author_key = NOBODY  # an unregistered name: not its message (the store still tells unknown ones)
        change.room_key, change.room = room.key, room.name
        change.slot = self.rooms.queue(room, b"")  # the frame takes this place once stored
        self.journal.change(user, room, change)
