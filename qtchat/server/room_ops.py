"""A room's operators at work: modes (invite-only, history), naming operators, invites, kicks.

The room's creator names and removes its operators; an operator (or a server admin, an account
with the admin role) sets the modes, invites and kicks. Every refusal answers with ``ref`` set to
the room's name as sent. A change goes to every member as ``room_state`` (with ``by``); a kick is a
``left`` with ``by`` and the reason, to everyone in the room and to the one removed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from qtchat.protocol import (
    HISTORY_VISIBILITY,
    ErrorCode,
    Left,
    Notice,
    ProtocolError,
    RoomInvite,
    RoomKick,
    RoomMode,
    RoomOp,
    encode_event,
    name_key,
)

from .peer import Connections, User, now_ms
from .room_state import JOINED, RoomRecord, RoomRecords
from .rooms import Room, Rooms

log = logging.getLogger("qtchat.server")


class RoomOps:
    def __init__(self, connections: Connections, rooms: Rooms, users: Mapping[str, User]) -> None:
        self.connections = connections
        self.rooms = rooms
        self.records: RoomRecords = rooms.records
        self.users = users
        rooms.presence.on("room-kick", self._kicked_elsewhere)

    def _operated(self, user: User, name: str, *, creator: bool = False) -> tuple[Room, RoomRecord]:
        """The room (the user is in it) and its record, if the user is its operator (its creator)."""
        room = self.rooms.member_room(user, name, ref=name)
        record = self.records.get(room.key)
        if room is self.rooms.lobby or record is None:
            raise ProtocolError(ErrorCode.ROOM_INVALID, "The lobby is open to all and has no operators.", ref=name)
        allowed = (user.key == record.creator or self.records.is_admin(user.key)) if creator else \
            self.records.is_operator(record, user.key)
        if not allowed:
            who = "its creator" if creator else "its operators"
            raise ProtocolError(ErrorCode.NOT_ROOM_OPERATOR, f"Only {who} may do that in {room.name}.", ref=name)
        return room, record

    def _changed(self, room: Room, record: RoomRecord, by: User) -> None:
        self.records.save(record)
        self.rooms.queue(room, encode_event(record.event(by.name)), urgent=False)

    # ------------------------------------------------------------ session handlers

    def on_mode(self, user: User, event: RoomMode) -> None:
        if event.history is not None and event.history not in HISTORY_VISIBILITY:
            raise ProtocolError(ErrorCode.BAD_FRAME, "Field 'history' must be \"joined\" or \"full\".", ref=event.room)
        room, record = self._operated(user, event.room)
        if event.invite_only is not None:
            if event.invite_only and not record.invite_only and event.history is None:
                record.history = JOINED  # the default of a room made private
            record.invite_only = event.invite_only
        if event.history is not None:
            record.history = event.history
        log.info("%s set the modes of %r: invite_only=%s history=%s", user.name, room.name, record.invite_only,
                 record.history)
        self._changed(room, record, user)

    def on_op(self, user: User, event: RoomOp) -> None:
        room, record = self._operated(user, event.room, creator=True)
        key = name_key(event.name)
        if event.op:
            target = self.users.get(key)
            account = self.records.backend.account(key)
            if target is None and account is None:
                raise ProtocolError(ErrorCode.NO_SUCH_USER, f"Nobody is online as {event.name!r} and no such "
                                    "name is registered.", ref=event.room)
            record.operators[key] = target.name if target is not None else account.name if account else event.name
        elif key == record.creator:
            raise ProtocolError(ErrorCode.NOT_ROOM_OPERATOR, "The room's creator stays its operator.", ref=event.room)
        elif record.operators.pop(key, None) is None:
            raise ProtocolError(ErrorCode.NO_SUCH_USER, f"{event.name!r} is not an operator of {room.name}.",
                                ref=event.room)
        log.info("%s %s %r as operator of %r", user.name, "named" if event.op else "removed", event.name, room.name)
        self._changed(room, record, user)

    def on_invite(self, user: User, event: RoomInvite) -> None:
        room, record = self._operated(user, event.room)
        key = name_key(event.name)
        target = self.users.get(key)
        account = self.records.backend.account(key)
        if account is not None:
            record.invites.add(key)
            self.records.save(record)
        elif target is not None:
            record.guests.add(key)  # while that name is online
        else:
            raise ProtocolError(ErrorCode.NO_SUCH_USER, f"Nobody is online as {event.name!r} and no such name is "
                                "registered.", ref=event.room)
        name = target.name if target is not None else account.name if account is not None else event.name
        log.info("%s invited %r to %r", user.name, name, room.name)
        ts = now_ms()
        self.connections.send(user.peer, Notice(f"{name} may now join {room.name}.", ts, room.name))
        if target is not None and target is not user:
            self.connections.send(target.peer, Notice(f"{user.name} invited you to {room.name}.", ts))

    def on_kick(self, user: User, event: RoomKick) -> None:
        room, record = self._operated(user, event.room)
        self.kick(room, record, event.name, by=user.name, reason=event.reason, ref=event.room,
                  admin=self.records.is_admin(user.key))

    # ------------------------------------------------------------ kicking

    def kick(self, room: Room, record: RoomRecord, name: str, *, by: str, reason: str, ref: str | None = None,
             admin: bool = True) -> str:
        """Remove the member ``key`` from the room; their invite ends. Only a server admin removes the creator."""
        key = name_key(name)
        target = self.users.get(key)
        presence = self.rooms.presence
        node = presence.node_of(key) if target is None and key in presence.members(room.key) else None
        if node is None and (target is None or (target not in room.members and target not in room.joiners)):
            raise ProtocolError(ErrorCode.NO_SUCH_USER, f"{name!r} is not in {room.name}.", ref=ref)
        if key == record.creator and not admin:
            raise ProtocolError(ErrorCode.NOT_ROOM_OPERATOR, "Nobody but a server admin removes the room's creator.",
                                ref=ref)
        record.invites.discard(key)
        record.guests.discard(key)
        self.records.save(record)
        why = f"kicked: {reason}" if reason else "kicked"
        if target is None:  # a member on another node of the cluster: that node removes them
            presence.send(node, "room-kick", {"room": room.key, "user": key, "why": why, "by": by})
            log.info("%s removed %s from %r (%s) on node %s", by, name, room.name, why, node)
            return f"{presence.members(room.key).get(key, name)} was removed from {room.name}."
        self._remove(target, room, why, by)
        log.info("%s removed %s from %r (%s)", by, target.name, room.name, why)
        return f"{target.name} was removed from {room.name}."

    def _remove(self, target: User, room: Room, why: str, by: str) -> None:
        self.connections.send(target.peer, Left(target.name, now_ms(), room.name, why, by))
        self.rooms.leave(target, room, why, by)

    def _kicked_elsewhere(self, data: dict[str, Any], node: str) -> None:
        """A room's operator on another node removed a member of it who is on this one."""
        room = self.rooms.rooms.get(str(data.get("room")))
        target = self.users.get(str(data.get("user")))
        if room is not None and target is not None and (target in room.members or target in room.joiners):
            self._remove(target, room, str(data.get("why", "kicked")), str(data.get("by", "")))
