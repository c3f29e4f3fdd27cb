"""Away and back: the frames of a user's presence, declared like every other (events.py lists them with the rest).

A client says it is ``away`` (with an optional short message) or ``back``; the server tells the members of every
room the user is in, in each room's batch (``away``/``back`` with the room), and a ``users`` frame carries who of
its names is away (``UserList.away``: names to messages). A version 1 client that knows none of it ignores the
frames and the field. Declared here, not in events.py, to keep that module to its size; events.py imports this
module before it derives its tables, so these are in ``DECLARED``, ``CLIENT_EVENTS`` and ``SERVER_EVENTS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from .events import MAX_AWAY_MESSAGE, ClientEvent, ServerEvent, event
from .fields import Int, Str


@event("away")
@dataclass(frozen=True, slots=True)
class SetAway(ClientEvent):
    """You are away, with an optional message for the others (one line: control characters become spaces;
    trimmed). Sent again while away: the message changes."""

    message: Annotated[str, Str(MAX_AWAY_MESSAGE, clean=True, omit_empty=True)] = ""


@event("back")
@dataclass(frozen=True, slots=True)
class SetBack(ClientEvent):
    """You are back (no longer away)."""


@event("away", order=("room", "user", "message", "ts"))
@dataclass(frozen=True, slots=True)
class UserAway(ServerEvent):
    """``user`` is away (``message``: theirs, maybe empty), told to each room they are in (and to a room they
    join while away, after its ``joined``)."""

    room: Annotated[str, Str()]
    user: Annotated[str, Str()]
    ts: Annotated[int, Int()]
    message: Annotated[str, Str(MAX_AWAY_MESSAGE, omit_empty=True)] = ""


@event("back", order=("room", "user", "ts"))
@dataclass(frozen=True, slots=True)
class UserBack(ServerEvent):
    """``user`` is back, told to each room they are in."""

    room: Annotated[str, Str()]
    user: Annotated[str, Str()]
    ts: Annotated[int, Int()]


# ----------------------------------------------------------------- the user lists' fast path


def away_entry(encoded_name: bytes, encoded_message: bytes) -> bytes:
    """One entry of a ``users`` frame's ``away`` object, from the name and the message as JSON strings."""
    return encoded_name + b":" + encoded_message


def away_frames(head: bytes, names: list[bytes], tail: bytes, away: Mapping[bytes, bytes], *, budget: int,
                out: list[bytes]) -> None:
    """The ``users`` frames of these names (one, or more when their away entries pass ``budget`` bytes:
    split in halves, every part but the last marked ``more``; ``tail`` ends the last): each with the
    ``away`` entries of its own names."""
    entries = list(filter(None, map(away.get, names)))  # (no Python loop per name: a list is joined per join)
    field = b',"away":{' + b",".join(entries) + b"}" if entries else b""
    if len(field) > budget and len(names) > 1:
        half = len(names) // 2
        away_frames(head, names[:half], b'],"more":true}\n', away, budget=budget, out=out)
        away_frames(head, names[half:], tail, away, budget=budget, out=out)
        return
    out.append(head + b",".join(names) + tail[:-2] + field + b"}\n")
