"""Frames beyond version 1's chat: editing and deleting messages (and what comes next of the same kind).

Declared exactly as those of ``events.py`` (whose bases, kinds and registry they use); ``events.py`` imports
this module before it derives ``CLIENT_EVENTS``/``SERVER_EVENTS``, so these are in the tables too. An old
client ignores these frame types (``UnknownEvent``) and the fields they add to ``msg``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from .events import DEFAULT_ROOM, MAX_ROOM_NAME, REPLY_QUOTE, ClientEvent, ServerEvent, event
from .fields import ChatText, Id, Int, Str


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
