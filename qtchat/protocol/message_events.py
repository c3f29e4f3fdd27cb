"""Frames beyond version 1's chat: editing and deleting messages, reactions (and what comes next of the kind).

Declared exactly as those of ``events.py`` (whose bases, kinds and registry they use); ``events.py`` imports
this module before it derives ``CLIENT_EVENTS``/``SERVER_EVENTS``, so these are in the tables too. An old
client ignores these frame types (``UnknownEvent``) and the fields they add to ``msg``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated

from .events import DEFAULT_ROOM, MAX_ROOM_NAME, REPLY_QUOTE, ClientEvent, ServerEvent, event
from .fields import Bool, ChatText, Id, Int, Names, Str, Tally

REACTIONS = ("\N{THUMBS UP SIGN}", "\N{THUMBS DOWN SIGN}", "\N{SMILING FACE WITH OPEN MOUTH AND SMILING EYES}",
             "\N{PARTY POPPER}", "\N{CONFUSED FACE}", "\N{HEAVY BLACK HEART}\N{VARIATION SELECTOR-16}",
             "\N{ROCKET}", "\N{EYES}")
"""The reactions a message may get (GitHub's eight), in the order a client offers them."""
MAX_REACTIONS = 1000  # reactions one message may hold, all kinds and people together


@event("edit", order=("room", "id", "text"))
@dataclass(frozen=True, slots=True)
class EditMessage(ClientEvent):
    """Replace the text of your own message ``id`` in ``room`` (within the server's ``edit_window``): every
    member gets ``edited``, the editor too (its acknowledgement). Refusals carry ``ref`` "edit:<id>"."""

    id: Annotated[int, Id(required=True)]
    text: Annotated[str, ChatText()]
    room: Annotated[str, Str(MAX_ROOM_NAME)] = DEFAULT_ROOM


@event("delete", order=("room", "id"))
@dataclass(frozen=True, slots=True)
class DeleteMessage(ClientEvent):
    """Delete the message ``id`` in ``room``: your own, or any as an operator of the room or the server.
    Every member gets ``deleted``. Refusals carry ``ref`` "delete:<id>"."""

    id: Annotated[int, Id(required=True)]
    room: Annotated[str, Str(MAX_ROOM_NAME)] = DEFAULT_ROOM


@event("edited", order=("room", "id", "text", "edited", "by"))
@dataclass(frozen=True, slots=True)
class MessageEdited(ServerEvent):
    """The message ``id`` of ``room`` has a new text (``edited``: when, ms); ``by``: its author."""

    id: Annotated[int, Int()]
    text: Annotated[str, Str(1 << 30)]
    edited: Annotated[int, Int()]
    by: Annotated[str, Str()]
    room: Annotated[str, Str()] = DEFAULT_ROOM


@event("deleted", order=("room", "id", "ts", "by"))
@dataclass(frozen=True, slots=True)
class MessageDeleted(ServerEvent):
    """The message ``id`` of ``room`` was deleted (``ts``: when, ms) by ``by``: its author, or an operator."""

    id: Annotated[int, Int()]
    ts: Annotated[int, Int()]
    by: Annotated[str, Str()]
    room: Annotated[str, Str()] = DEFAULT_ROOM


def reply_quote(text: str) -> str:
    """The start of a message's text as a reply quotes it: one line, at most REPLY_QUOTE characters."""
    line = " ".join(text.split())
    return line if len(line) <= REPLY_QUOTE else line[:REPLY_QUOTE - 1] + "\N{HORIZONTAL ELLIPSIS}"


@event("react", order=("room", "id", "emoji", "on"))
@dataclass(frozen=True, slots=True)
class React(ClientEvent):
    """Give (``on``) or take back your reaction ``emoji`` (one of REACTIONS) to the message ``id`` of ``room``.
    Refusals carry ``ref`` "react:<id>"."""

    id: Annotated[int, Id(required=True)]
    emoji: Annotated[str, Str(16)]
    room: Annotated[str, Str(MAX_ROOM_NAME)] = DEFAULT_ROOM
    on: Annotated[bool, Bool()] = True


@event("reactions", order=("room", "id", "reactions", "mine", "yours"))
@dataclass(frozen=True, slots=True)
class Reactions(ServerEvent):
    """A message's reactions changed: how many gave each (``reactions``), once per message and pass, to every
    member; and to whoever changed theirs, a second frame with ``yours`` true and their own (``mine``)."""

    id: Annotated[int, Int()]
    room: Annotated[str, Str()] = DEFAULT_ROOM
    reactions: Annotated[Mapping[str, int], Tally()] = field(default_factory=dict, hash=False)
    mine: Annotated[tuple[str, ...], Names(omit_empty=True)] = ()
    yours: Annotated[bool, Bool(omit_empty=True)] = False
