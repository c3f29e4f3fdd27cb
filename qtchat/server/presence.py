"""Away and back: a user's presence as they say it (not the cluster's online presence: cluster.py).

A user's away state lives with its ``User`` (``away``: the message, maybe empty; None: here), in memory only: it
ends with the connection. Each change is told to every room the user is in, in the room's batch of the pass
(``Rooms.queue``, so a cluster's other nodes get it too), and kept in the room's ``away`` entries that its
``users`` frames carry; a user who joins a room while away is told to it after their ``joined``. The server does
not know who has a private conversation open with whom: everyone is in the lobby, so everyone who could be
talking with them hears of it there.

A change costs a token of the message rate (``RATED`` in core.py: a flood of them is refused with ``slow_down``
and, kept up, disconnected with ``flood`` like chat), and changes that reach the rooms are limited apart as well
(``limits.AWAY_CHANGES``, announced in ``welcome.limits``: that a server announces it says it knows away):
``burst`` at once, then one every ``1 / messages`` seconds; past that, a non-fatal ``slow_down`` whose
``ref`` is the request's name (``away`` or ``back``), and nothing is told. Saying the state one is in already
(away with the same message, back while here) is no change: nothing is sent.
"""

from __future__ import annotations

import math
import time

from qtchat.protocol import (
    ErrorCode,
    ProtocolError,
    SetAway,
    SetBack,
    UserAway,
    UserBack,
    away_entry,
    encode_event,
    encode_name,
)

from .limits import AWAY_CHANGES as CHANGES
from .limits import Limiter
from .peer import User, now_ms
from .rooms import Room, Rooms


class Presence:
    """The ``away`` and ``back`` handlers, and an away user entering a room (``Rooms.entered``)."""

    def __init__(self, rooms: Rooms) -> None:
        self.rooms = rooms

    def on_away(self, user: User, event: SetAway) -> None:
        message = event.message.strip()
        if user.away != message:
            self._change(user, message, "away")

    def on_back(self, user: User, event: SetBack) -> None:
        if user.away is not None:
            self._change(user, None, "back")

    def entered(self, user: User, room: Room, moved: bool = False) -> None:
        """The user joined the room (after its ``joined``): if away, the room is told, and its list says so.
        ``moved``: they were in it on a node that lost them (no ``joined``): the room hears their state now, away
        or back (their old session may have been away)."""
        if user.away is not None or moved:
            self._tell(user, room)

    def _change(self, user: User, away: str | None, request: str) -> None:
        now = time.monotonic()
        if user.away_changes is None:
            user.away_changes = Limiter(CHANGES, now)
        _, wait = user.away_changes.message(now)
        if wait > 0:
            raise ProtocolError(
                ErrorCode.SLOW_DOWN,
                f"You changed your away state too often; this server tells the others of at most {CHANGES.burst} "
                f"changes at once, then one every {1 / CHANGES.messages:g} s. Try again in {max(wait, 0.1):.1f} s.",
                ref=request, retry_after=math.ceil(wait * 1000) / 1000)
        user.away = away
        for room in user.rooms:
            self._tell(user, room)

    def _tell(self, user: User, room: Room) -> None:
        encoded = room.encoded_names.get(user.key) or encode_name(user.name)
        if user.away is None:
            room.away.pop(encoded, None)
            frame = encode_event(UserBack(room.name, user.name, now_ms()))
        else:
            room.away[encoded] = away_entry(encoded, encode_name(user.away))
            frame = encode_event(UserAway(room.name, user.name, now_ms(), user.away))
        self.rooms.queue(room, frame, urgent=False)
