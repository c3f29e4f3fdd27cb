"""What the other nodes of a cluster ask of this server (``cluster.ClusterHost``): whether a name is held here,
dropping a session another node took over, the users of a node that is gone, a topic changed elsewhere."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from qtchat.protocol import Bye, ByeCode, ErrorCode, Left, ProtocolError, encode_event

from .cluster import ClusterHost
from .peer import now_ms

if TYPE_CHECKING:
    from .core import ChatServer

log = logging.getLogger("qtchat.server")

LOST = "server lost"  # the reason of a Left for a user whose node is gone


class ServerHost(ClusterHost):
    def __init__(self, server: ChatServer) -> None:
        self.server = server

    def holds(self, user_key: str) -> bool:
        return self.server.name_taken(user_key)

    def taken(self, user_key: str, *, takeover: bool = False) -> None:
        s = self.server
        user = s.users.get(user_key)
        peer = user.peer if user is not None else s._admitting.get(user_key)
        if peer is None or peer.detached:
            return
        if user is not None:
            user.moved = True  # the other node shows them in their rooms now: no "left" from here
        if takeover:  # as auth.py does when the owner logs in again on this node
            log.info("%s logged in again on another node: closing the session from %s", user_key, peer.peer)
            s.connections.drop(peer, "logged in elsewhere",
                               farewell=Bye("logged in elsewhere", ByeCode.LOGGED_IN_ELSEWHERE))
        else:
            s.connections.fail(peer, ProtocolError(
                ErrorCode.NAME_TAKEN, "You logged in with this name on another server of this chat, so this "
                "connection was closed.", fatal=True))

    def lost(self, memberships: list[tuple[str, str, str, str]]) -> None:
        rooms = self.server.rooms
        now = now_ms()
        for room_key, room_name, user_key, name in memberships:
            room = rooms.rooms.get(room_key)
            if room is not None and user_key not in room.names:
                rooms.send_remote(room, [encode_event(Left(name, now, room.name or room_name, LOST))])

    def topic(self, room_key: str, topic: str) -> None:
        room = self.server.rooms.rooms.get(room_key)
        if room is not None:
            room.topic = topic
