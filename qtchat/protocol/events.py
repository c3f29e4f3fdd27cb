"""Protocol events: what travels in a frame, each declared once, as a frozen dataclass.

Every frame is one JSON object with a ``"type"`` string. An event's declaration says everything
about it: its wire type (``@event("ping")``), who sends it (its base: ``ClientEvent``,
``ServerEvent`` or both), and for each field its type, its default and, in the ``Annotated`` kind
(fields.py), its limits, its name on the wire and when a sent frame leaves it out. The generic codec
(codec.py) compiles ``to_wire`` and ``from_wire`` from that, raising ProtocolError for anything that
does not fit. Unknown fields are ignored, so a later version can add fields without breaking
version 1 peers.

Some wire types exist in both directions with different fields ("msg" from a client is a
SendMessage, from the server a Message; "users" from a client is a request, from the server a list);
``CLIENT_EVENTS`` and ``SERVER_EVENTS`` map wire types to classes for each direction. They are
derived from the declarations: a new event is its declaration, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, TypeVar

from .codec import Flat, Record, Records, Wire, declare, view_encoder
from .errors import ProtocolError
from .fields import (
    Addresses,
    Bool,
    ChatText,
    Count,
    Id,
    Int,
    Limits,
    NameMap,
    Names,
    Query,
    Seconds,
    Str,
    Tally,
)
from .passwords import MAX_PASSWORD as MAX_PASSWORD_FIELD

PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})
DEFAULT_ROOM = "lobby"
MAX_CID_LENGTH = 64
MAX_ROOM_NAME = 100  # a room name a client sends (rooms' own rules are the server's)
MAX_REF = max(MAX_CID_LENGTH, MAX_ROOM_NAME)  # an error's ref: a cid, a request's name, or a room name as sent
MAX_QUERY = 200  # search query, after trimming
MAX_SEARCH_LIMIT = 100
UNREAD_CAP = 1000  # RoomInfo.unread counts no further, so it stays cheap
MAX_ROOMS_PAGE = 200  # rooms in one ``rooms`` answer
MAX_SEARCH_WORDS = 8  # words in one search query
MAX_BAN_MINUTES = 10 * 365 * 24 * 60
REPLY_QUOTE = 100  # characters of a replied-to message quoted with a reply (msg.reply_text)
MAX_AWAY_MESSAGE = 100  # code points of an away message (away.py)
HISTORY_VISIBILITY = ("joined", "full")  # a room's history: from each member's join on, or all of it


# --------------------------------------------------------------------- what an event is


class Event:
    """Anything a Connection hands back: a declared event, or an UnknownEvent."""

    __slots__ = ()


class SendableEvent(Event, Record):
    """A declared event: it has a wire ``TYPE``, and ``to_wire``/``from_wire`` compiled from its fields."""

    __slots__ = ()
    TYPE: ClassVar[str]


class ClientEvent(SendableEvent):
    """An event a client sends (and a server decodes)."""

    __slots__ = ()


class ServerEvent(SendableEvent):
    """An event a server sends (and a client decodes)."""

    __slots__ = ()


E = TypeVar("E", bound=SendableEvent)
DECLARED: list[type[SendableEvent]] = []
"""Every declared event class, in declaration order: the tables below are derived from it."""


def event(wire_type: str, **options: Any) -> Callable[[type[E]], type[E]]:
    """Declare an event: its frame's ``"type"``, and the codec options of ``codec.declare``."""

    def apply(cls: type[E]) -> type[E]:
        cls.TYPE = wire_type
        declare(wire_type, **options)(cls)
        DECLARED.append(cls)
        return cls

    return apply


# --------------------------------------------------------------------- both ways


@event("ping")
@dataclass(frozen=True, slots=True)
class Ping(ClientEvent, ServerEvent):
    """Either side checks that the other is alive; the answer is a Pong with the same token."""

    token: Annotated[str, Str()] = ""


@event("pong")
@dataclass(frozen=True, slots=True)
class Pong(ClientEvent, ServerEvent):
    token: Annotated[str, Str()] = ""


@event("bye")
@dataclass(frozen=True, slots=True)
class Bye(ClientEvent, ServerEvent):
    """The sender is about to close the connection, on purpose. ``reason`` is free text for people;
    ``code`` (the server's, optional) says why for machines: an ``errors.ByeCode`` value."""

    reason: Annotated[str, Str()] = ""
    code: Annotated[str, Str(omit_empty=True)] = ""


# ------------------------------------------------------------- client to server


@event("hello", order=("version", "user", "min_version", "client", "password", "register"))
@dataclass(frozen=True, slots=True)
class Hello(ClientEvent):
    """The first frame a client sends: who it is and which protocol versions it speaks."""

    user: Annotated[str, Str(1000)]
    version: Annotated[int, Int(required=True)] = PROTOCOL_VERSION
    min_version: Annotated[int | None, Int(default_from="version")] = None  # absent: the same as version
    client: Annotated[str, Str(omit_empty=True)] = ""
    # for a registered name (never logged)
    password: Annotated[str | None, Str(MAX_PASSWORD_FIELD)] = field(default=None, repr=False)
    register: Annotated[bool, Bool(omit_empty=True)] = False  # register the name with this password, then log in


@event("register")
@dataclass(frozen=True, slots=True)
class Register(ClientEvent):
    """Register the name you are logged in with, protecting it with a password."""

    password: Annotated[str, Str(MAX_PASSWORD_FIELD)] = field(repr=False)


@event("passwd")
@dataclass(frozen=True, slots=True)
class PasswordChange(ClientEvent):
    """Change the password of the registered name you are logged in with (``old`` proves it is you)."""

    old: Annotated[str, Str(MAX_PASSWORD_FIELD)] = field(repr=False)
    new: Annotated[str, Str(MAX_PASSWORD_FIELD)] = field(repr=False)


@event("kick")
@dataclass(frozen=True, slots=True)
class KickRequest(ClientEvent):
    """An operator (an account with the admin role) disconnects a user."""

    user: Annotated[str, Str(100)]
    reason: Annotated[str, Str(clean=True, omit_empty=True)] = ""


@event("ban")
@dataclass(frozen=True, slots=True)
class BanRequest(ClientEvent):
    """An operator bans a user's name for ``minutes``, or for good without."""

    user: Annotated[str, Str(100)]
    minutes: Annotated[int | None, Int(lo=1, hi=MAX_BAN_MINUTES)] = None
    reason: Annotated[str, Str(clean=True, omit_empty=True)] = ""


@event("msg", ref="cid", order=("text", "to", "room", "cid", "reply_to"))
@dataclass(frozen=True, slots=True)
class SendMessage(ClientEvent):
    """A client's chat message to a room. ``cid`` is the client's own id for it; ``reply_to``: the id of the
    message it answers."""

    text: Annotated[str, ChatText()]
    room: Annotated[str, Str(MAX_ROOM_NAME, omit_if="to")] = DEFAULT_ROOM
    cid: Annotated[str | None, Str(MAX_CID_LENGTH)] = None
    to: Annotated[str | None, Str(100)] = None  # a private message to this user instead of the room
    reply_to: Annotated[int | None, Id()] = None


@event("users")
@dataclass(frozen=True, slots=True)
class UsersRequest(ClientEvent):
    """Ask for the full user list of a room."""

    room: Annotated[str, Str(MAX_ROOM_NAME)] = DEFAULT_ROOM


@event("history", order=("room", "limit", "before", "after", "around"), exclusive=("before", "after", "around"))
@dataclass(frozen=True, slots=True)
class HistoryRequest(ClientEvent):
    """Ask for stored messages of a room: the newest ``limit`` before ``before`` (default: the newest),
    the oldest ``limit`` after ``after`` (to catch up after a reconnect), or ``limit`` centred on the
    message ``around`` (to open a room at a search result). At most one of the three."""

    room: Annotated[str, Str(MAX_ROOM_NAME)] = DEFAULT_ROOM
    before: Annotated[int | None, Id()] = None
    after: Annotated[int | None, Id()] = None
    limit: Annotated[int, Int(lo=1, hi=500, clamp=True)] = 50
    around: Annotated[int | None, Id()] = None


@event("read")
@dataclass(frozen=True, slots=True)
class MarkRead(ClientEvent):
    """The user has read the room up to the message ``id``: the server keeps the highest such id per
    user and room (the read marker). There is no answer."""

    room: Annotated[str, Str(MAX_ROOM_NAME, default=DEFAULT_ROOM)]
    id: Annotated[int, Id()]


@event("delivered")
@dataclass(frozen=True, slots=True)
class Delivered(ClientEvent):
    """The recipient has the private messages kept for it while it was offline (``msg`` frames with
    ``held``) up to the message ``upto``: the server deletes them. There is no answer."""

    upto: Annotated[int, Id()]


@event("search")
@dataclass(frozen=True, slots=True)
class SearchRequest(ClientEvent):
    """Full-text search of the stored messages of the rooms you are in (or of ``room`` alone), newest
    first; ``before`` pages further back. Every word must appear, each matched as a word prefix."""

    query: Annotated[str, Query(MAX_QUERY)]
    room: Annotated[str | None, Str(MAX_ROOM_NAME)] = None
    before: Annotated[int | None, Id()] = None
    limit: Annotated[int, Int(lo=1, hi=MAX_SEARCH_LIMIT, clamp=True)] = 50


@event("join")
@dataclass(frozen=True, slots=True)
class JoinRoom(ClientEvent):
    """Join a room, creating it when it does not exist yet."""

    room: Annotated[str, Str(MAX_ROOM_NAME)]


@event("part")
@dataclass(frozen=True, slots=True)
class PartRoom(ClientEvent):
    """Leave a room (not the lobby)."""

    room: Annotated[str, Str(MAX_ROOM_NAME)]


@event("rooms")
@dataclass(frozen=True, slots=True)
class RoomsRequest(ClientEvent):
    """Ask for the list of rooms with their member counts, a page at a time: the first ``limit`` (default
    and most: MAX_ROOMS_PAGE) in the order of their names' keys, or those after the room ``after``."""

    after: Annotated[str | None, Str(MAX_ROOM_NAME)] = None
    limit: Annotated[int | None, Int(lo=1, hi=MAX_ROOMS_PAGE, clamp=True)] = None


@event("topic")
@dataclass(frozen=True, slots=True)
class SetTopic(ClientEvent):
    room: Annotated[str, Str(MAX_ROOM_NAME)]
    topic: Annotated[str, Str(300, clean=True)]


@event("room_mode", order=("room", "invite_only", "history"))
@dataclass(frozen=True, slots=True)
class RoomMode(ClientEvent):
    """A room operator sets the room's modes; a field left out stays as it is (making a room invite-only
    without ``history`` also makes its history ``joined``)."""

    room: Annotated[str, Str(MAX_ROOM_NAME)]
    invite_only: Annotated[bool | None, Bool()] = None
    history: Annotated[str | None, Str(10)] = None  # one of HISTORY_VISIBILITY


@event("room_op", order=("room", "name", "op"))
@dataclass(frozen=True, slots=True)
class RoomOp(ClientEvent):
    """The room's creator makes ``name`` one of its operators (``op`` true) or no longer one."""

    room: Annotated[str, Str(MAX_ROOM_NAME)]
    name: Annotated[str, Str(100)]
    op: Annotated[bool, Bool()] = True


@event("room_invite", order=("room", "name"))
@dataclass(frozen=True, slots=True)
class RoomInvite(ClientEvent):
    """A room operator lets ``name`` join the invite-only room."""

    room: Annotated[str, Str(MAX_ROOM_NAME)]
    name: Annotated[str, Str(100)]


@event("room_kick", order=("room", "name", "reason"))
@dataclass(frozen=True, slots=True)
class RoomKick(ClientEvent):
    """A room operator removes ``name`` from the room (and takes back their invite)."""

    room: Annotated[str, Str(MAX_ROOM_NAME)]
    name: Annotated[str, Str(100)]
    reason: Annotated[str, Str(300, clean=True, omit_empty=True)] = ""


@event("typing", order=("room", "to", "on"))
@dataclass(frozen=True, slots=True)
class Typing(ClientEvent):
    """The user started (``on``) or stopped typing in a room, or to ``to`` privately (typing_rules.py)."""

    room: Annotated[str, Str(MAX_ROOM_NAME, omit_if="to")] = DEFAULT_ROOM
    to: Annotated[str | None, Str(100)] = None
    on: Annotated[bool, Bool()] = True


# ------------------------------------------------------------- server to client


@declare(not_object="A room must be an object.")
@dataclass(frozen=True, slots=True)
class RoomInfo(Record):
    """A room as ``welcome``, ``room`` and ``rooms`` describe it.

    ``read`` is your read marker in the room (the highest id you marked read) and ``unread`` how many
    stored messages of others lie after it (at most UNREAD_CAP); both only in ``welcome`` and ``room``,
    and only once you have a marker there.
    """

    name: Annotated[str, Str(100)]
    topic: Annotated[str, Str(1000)] = ""
    members: Annotated[int | None, Int()] = None
    read: Annotated[int | None, Id()] = None
    unread: Annotated[int | None, Count()] = None


@event("welcome", order=("version", "server", "name", "user", "rooms", "max_frame", "ping_interval", "motd",
                         "limits", "nodes"))
@dataclass(frozen=True, slots=True)
class Welcome(ServerEvent):
    """The server accepted the hello. The full user list of each room follows as ``users`` frames."""

    user: Annotated[str, Str()]
    version: Annotated[int, Int(required=True)] = PROTOCOL_VERSION
    server: Annotated[str, Str()] = ""
    name: Annotated[str, Str()] = ""
    rooms: Annotated[tuple[RoomInfo, ...], Records(RoomInfo)] = (RoomInfo(DEFAULT_ROOM),)
    max_frame: Annotated[int, Int()] = 65536
    ping_interval: Annotated[float, Seconds(positive=True)] = 30.0
    motd: Annotated[str, Str(10_000)] = ""
    # the server's limits for this client, by name (see docs/PROTOCOL.md); 0 means none
    limits: Annotated[Mapping[str, float], Limits(omit_empty=True)] = field(default_factory=dict, hash=False)
    # the addresses ("host:port") of the server's cluster that clients may reconnect to (see docs/PROTOCOL.md)
    nodes: Annotated[tuple[str, ...], Addresses()] = ()


@event("msg", order=("id", "ts", "room", "to", "sender", "text", "cid", "held", "edited", "deleted", "reply_to",
                     "reply_from", "reply_text", "reactions", "mine"))
@dataclass(frozen=True, slots=True)
class Message(ServerEvent):
    """A chat message as the server relays it, to every member of the room including its sender.

    ``id`` is unique and increasing across server restarts; ``ts`` is the
    server's time in milliseconds since the Unix epoch; ``cid`` is the sender's
    client message id, so the sender can take its own copy as the acknowledgement.
    ``held`` (private messages only) marks one kept for a recipient who was offline: on
    the sender's acknowledgement it says the recipient gets it at their next login; on
    the copy delivered at that login, that the recipient must confirm it (``delivered``).
    """

    id: Annotated[int, Int()]
    ts: Annotated[int, Int()]
    sender: Annotated[str, Str(key="from")]
    text: Annotated[str, Str(1 << 30)]
    room: Annotated[str, Str(omit_if="to")] = DEFAULT_ROOM
    cid: Annotated[str | None, Str(MAX_CID_LENGTH)] = None
    to: Annotated[str | None, Str()] = None  # set on a private message: its recipient (and there is no room)
    # a private message kept for an offline recipient (see above)
    held: Annotated[bool, Bool(omit_empty=True, only_with=("to", "private messages"))] = False
    edited: Annotated[int, Int(omit_empty=True)] = 0  # when its text was last replaced (ms), 0: never
    deleted: Annotated[bool, Bool(omit_empty=True)] = False  # deleted: its text is empty, show a placeholder
    # a reply: the message it answers, and (room messages) a quote of it as it is now: its sender and the start
    # of its text (REPLY_QUOTE characters, one line); both empty when it is deleted or gone
    reply_to: Annotated[int, Int(omit_empty=True)] = 0
    reply_from: Annotated[str, Str(omit_empty=True)] = ""
    reply_text: Annotated[str, Str(4 * REPLY_QUOTE, omit_empty=True)] = ""
    # pages only: its reactions (emoji -> how many gave it) and which of them are yours
    reactions: Annotated[Mapping[str, int], Tally(omit_empty=True)] = field(default_factory=dict, hash=False)
    mine: Annotated[tuple[str, ...], Names(omit_empty=True)] = ()


HISTORY_ENTRY = ("id", "ts", "sender", "text", "cid", "edited", "deleted", "reply_to", "reply_from", "reply_text",
                 "reactions", "mine")
"""The fields of a message in a ``history`` page (its room is the page's)."""
SEARCH_RESULT = ("id", "ts", "room", "sender", "text", "edited")
"""The fields of a message in a ``results`` frame."""


@event("history", order=("room", "messages", "more", "before", "after", "around", "newer", "changed",
                         "changed_more"))
@dataclass(frozen=True, slots=True)
class History(ServerEvent):
    """A page of stored messages of a room, oldest first, answering a ``history`` request.

    ``more`` says whether more messages lie beyond this page in the requested direction (for a page
    ``around`` a message: older ones before its first); ``newer`` (``around`` pages only) whether
    newer ones lie after its last.
    """

    messages: Annotated[tuple[Message, ...], Records(Message, view=HISTORY_ENTRY, inherit=("room",),
                                                     not_object="A history message must be an object.")]
    room: Annotated[str, Str()] = DEFAULT_ROOM
    before: Annotated[int | None, Int()] = None
    after: Annotated[int | None, Int()] = None
    more: Annotated[bool, Bool()] = False
    around: Annotated[int | None, Id()] = None
    newer: Annotated[bool, Bool(omit_empty=True)] = False
    # ``after`` pages only: messages up to ``after`` edited or deleted since, as they are now (newest change
    # last); ``changed_more``: more such changes than fit (the client reloads what it shows)
    changed: Annotated[tuple[Message, ...], Records(Message, view=HISTORY_ENTRY, inherit=("room",), omit_empty=True,
                                                    not_object="A history message must be an object.")] = ()
    changed_more: Annotated[bool, Bool(omit_empty=True)] = False


@event("results", order=("query", "room", "before", "results", "more"))
@dataclass(frozen=True, slots=True)
class SearchResults(ServerEvent):
    """The answer to a ``search``: matching messages, newest first, each with its room.

    ``more`` says whether older matches exist beyond the last one (ask again with ``before`` set to
    its id); ``query``, ``room`` and ``before`` repeat the request's.
    """

    query: Annotated[str, Str(10 * MAX_QUERY)]
    results: Annotated[tuple[Message, ...], Records(Message, view=SEARCH_RESULT,
                                                    not_object="A search result must be an object.")]
    room: Annotated[str | None, Str()] = None
    more: Annotated[bool, Bool()] = False
    before: Annotated[int | None, Id()] = None


search_result_wire: Callable[[Message], Wire] = view_encoder(Message, SEARCH_RESULT)
"""One entry of a ``results`` frame: a message with its room, without type and cid."""


@event("room")
@dataclass(frozen=True, slots=True)
class RoomJoined(ServerEvent):
    """You are now in this room; its user list follows as ``users`` frames."""

    info: Annotated[RoomInfo, Flat(RoomInfo)]


@event("rooms")
@dataclass(frozen=True, slots=True)
class RoomList(ServerEvent):
    """A page of the server's rooms; ``more``: more follow (ask with ``after`` set to the last one's name)."""

    rooms: Annotated[tuple[RoomInfo, ...], Records(RoomInfo)]
    more: Annotated[bool, Bool(omit_empty=True)] = False


@event("topic")
@dataclass(frozen=True, slots=True)
class TopicChanged(ServerEvent):
    room: Annotated[str, Str()]
    topic: Annotated[str, Str(1000)]
    by: Annotated[str, Str()]
    ts: Annotated[int, Int()]


@event("joined", order=("room", "user", "ts"))
@dataclass(frozen=True, slots=True)
class Joined(ServerEvent):
    user: Annotated[str, Str()]
    ts: Annotated[int, Int()]
    room: Annotated[str, Str()] = DEFAULT_ROOM


@event("left", order=("room", "user", "ts", "reason", "by"))
@dataclass(frozen=True, slots=True)
class Left(ServerEvent):
    """A user left the room; ``reason`` is free text such as "quit", "timeout" or "kicked: spam"; ``by``:
    the room operator who removed them (``room_kick``)."""

    user: Annotated[str, Str()]
    ts: Annotated[int, Int()]
    room: Annotated[str, Str()] = DEFAULT_ROOM
    reason: Annotated[str, Str()] = ""
    by: Annotated[str, Str(omit_empty=True)] = ""


@event("room_state", order=("room", "creator", "operators", "invite_only", "history", "by"))
@dataclass(frozen=True, slots=True)
class RoomState(ServerEvent):
    """A room's creator, operators and modes: to a joiner after ``room``, and to every member when they
    change (``by``: who changed them)."""

    room: Annotated[str, Str()]
    creator: Annotated[str, Str(omit_empty=True)] = ""
    operators: Annotated[tuple[str, ...], Names()] = ()
    invite_only: Annotated[bool, Bool()] = False
    history: Annotated[str, Str(10)] = "full"
    by: Annotated[str, Str(omit_empty=True)] = ""


@event("users", order=("room", "users", "more", "away"))
@dataclass(frozen=True, slots=True)
class UserList(ServerEvent):
    """Users in a room. A long list comes in several frames: all but the last have ``more`` true. ``away``: those
    of this frame's users who are away, with their messages (away.py)."""

    users: Annotated[tuple[str, ...], Names()]
    room: Annotated[str, Str()] = DEFAULT_ROOM
    more: Annotated[bool, Bool()] = False
    away: Annotated[Mapping[str, str], NameMap(MAX_AWAY_MESSAGE)] = field(default_factory=dict, hash=False)


@event("error")
@dataclass(frozen=True, slots=True)
class Error(ServerEvent):
    """The server's answer to something wrong. ``fatal`` means it closes the connection next."""

    code: Annotated[str, Str()]
    message: Annotated[str, Str(10_000)]
    fatal: Annotated[bool, Bool()] = False
    ref: Annotated[str | None, Str(MAX_REF)] = None
    retry_after: Annotated[float | None, Seconds()] = None  # slow_down: seconds to wait before sending again

    @classmethod
    def from_exception(cls, exc: ProtocolError) -> Error:
        return cls(exc.code.value, exc.message, exc.fatal, exc.ref)


@event("notice")
@dataclass(frozen=True, slots=True)
class Notice(ServerEvent):
    """A notice from the server's operator to everyone (or to you), shown apart from chat."""

    text: Annotated[str, Str(1 << 20)]
    ts: Annotated[int, Int()]
    room: Annotated[str | None, Str()] = None


@event("account")
@dataclass(frozen=True, slots=True)
class AccountStatus(ServerEvent):
    """Your name's account: sent after ``welcome`` and whenever it changes."""

    registered: Annotated[bool, Bool(default=False)]
    admin: Annotated[bool, Bool()] = False
    # the answer to your ``passwd``: the new password is in force
    password_changed: Annotated[bool, Bool(omit_empty=True)] = False


@event("typing", order=("room", "on", "off"))
@dataclass(frozen=True, slots=True)
class TypingChanged(ServerEvent):
    """Who started (``on``) and stopped (``off``) typing in ``room``: one frame per room per pass; without
    ``room``, the one named is typing to you privately (or stopped)."""

    on: Annotated[tuple[str, ...], Names()] = ()
    off: Annotated[tuple[str, ...], Names()] = ()
    room: Annotated[str | None, Str()] = None


@dataclass(frozen=True, slots=True)
class UnknownEvent(Event):
    """A server frame of a type this version does not know: clients ignore it."""

    type: str
    data: Mapping[str, Any]


# --------------------------------------------------------------------- derived tables

D = TypeVar("D", bound=SendableEvent)


def wire_table(direction: type[D], declared: list[type[SendableEvent]]) -> dict[str, type[D]]:
    """The declared events one side sends, by wire type; a wire type taken twice is an error."""
    table: dict[str, type[D]] = {}
    for cls in declared:
        if issubclass(cls, direction):
            if cls.TYPE in table:
                raise TypeError(f"{cls.__name__} and {table[cls.TYPE].__name__} both are {cls.TYPE!r} frames")
            table[cls.TYPE] = cls
    return table


# frames declared in modules of their own (they import this one's bases): declared before the tables are made
from . import away, message_events  # noqa: E402, F401

CLIENT_EVENTS: dict[str, type[ClientEvent]] = wire_table(ClientEvent, DECLARED)
SERVER_EVENTS: dict[str, type[ServerEvent]] = wire_table(ServerEvent, DECLARED)
