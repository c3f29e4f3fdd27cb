"""Protocol events: what travels in a frame, as frozen dataclasses.

Every frame is one JSON object with a ``"type"`` string. Each event class knows
its wire type, how to turn itself into a JSON-ready dict (``to_wire``) and how
to check and build itself from a decoded dict (``from_wire``), raising
ProtocolError for anything that does not fit. Unknown fields are ignored, so a
later version can add fields without breaking version 1 peers.

Some wire types exist in both directions with different fields ("msg" from a
client is a SendMessage, from the server a Message; "users" from a client is a
request, from the server a list); ``CLIENT_EVENTS`` and ``SERVER_EVENTS`` map
wire types to classes for each direction.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .errors import ErrorCode, ProtocolError
from .passwords import MAX_PASSWORD as MAX_PASSWORD_FIELD

PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})
DEFAULT_ROOM = "lobby"
MAX_CID_LENGTH = 64
MAX_SHORT_TEXT = 200  # reasons, tokens, client strings
MAX_QUERY = 200  # search query, after trimming
MAX_SEARCH_LIMIT = 100
UNREAD_CAP = 1000  # RoomInfo.unread counts no further, so it stays cheap
MAX_MESSAGE_ID = (1 << 63) - 1  # what SQLite's INTEGER holds; real ids stay below 2**53

_C0_ALLOWED = frozenset("\t\n")

Wire = dict[str, Any]


def _bad(message: str, ref: str | None = None) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_FRAME, message, ref=ref)


def _check_unicode(value: str, key: str) -> str:
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ProtocolError(ErrorCode.BAD_UTF8, f"Field {key!r} holds a lone surrogate.") from None
    return value


def _str(d: Mapping[str, Any], key: str, *, max_len: int = MAX_SHORT_TEXT, default: str | None = None) -> str:
    value = d.get(key, default)
    if not isinstance(value, str):
        if value is None:
            raise _bad(f"Field {key!r} is missing.")
        raise _bad(f"Field {key!r} must be a string.")
    if len(value) > max_len:
        raise _bad(f"Field {key!r} is longer than {max_len} characters.")
    return _check_unicode(value, key)


def _opt_str(d: Mapping[str, Any], key: str, *, max_len: int = MAX_SHORT_TEXT) -> str | None:
    if d.get(key) is None:
        return None
    return _str(d, key, max_len=max_len)


def _int(d: Mapping[str, Any], key: str, *, default: int | None = None) -> int:
    value = d.get(key)
    if value is None:  # absent, or null: the same on the wire
        value = default
    # bool is an int subclass in Python, not on the wire
    if not isinstance(value, int) or isinstance(value, bool):
        if value is None:
            raise _bad(f"Field {key!r} is missing.")
        raise _bad(f"Field {key!r} must be an integer.")
    return value


def _opt_id(d: Mapping[str, Any], key: str) -> int | None:
    """An optional message id: absent or null is None; anything else is an integer from 0 to 2**63-1."""
    if d.get(key) is None:
        return None
    value = _int(d, key)
    if not 0 <= value <= MAX_MESSAGE_ID:
        raise _bad("Message ids are from 0 to 2**63-1.")
    return value


def _opt_count(d: Mapping[str, Any], key: str) -> int | None:
    if d.get(key) is None:
        return None
    value = _int(d, key)
    if value < 0:
        raise _bad(f"Field {key!r} must not be negative.")
    return value


def _bool(d: Mapping[str, Any], key: str, default: bool) -> bool:
    value = d.get(key, default)
    if not isinstance(value, bool):
        raise _bad(f"Field {key!r} must be true or false.")
    return value


def _opt_seconds(d: Mapping[str, Any], key: str) -> float | None:
    value = d.get(key)
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < 1e6:
        raise _bad(f"Field {key!r} must be a number of seconds.")
    return float(value)


def _limits(d: Mapping[str, Any], key: str) -> dict[str, float]:
    """A map of limit names to numbers; entries of other kinds are left out (later versions may add some)."""
    value = d.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(f"Field {key!r} must be an object.")
    return {
        k: float(v) for k, v in value.items()
        if isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1e18
    }


def _str_list(d: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = d.get(key)
    if not isinstance(value, list):
        raise _bad(f"Field {key!r} must be a list of strings.")
    for item in value:
        if not isinstance(item, str):
            raise _bad(f"Field {key!r} must be a list of strings.")
        _check_unicode(item, key)
    return tuple(value)


_FORBIDDEN_IN_TEXT = frozenset({"Cc", "Zl", "Zp"})


def check_text(text: str, ref: str | None = None) -> None:
    """A chat text must have something visible and no control character (C0, DEL, C1) but tab and
    line feed, and no line or paragraph separator (U+2028, U+2029): lines end with a line feed."""
    if not text.strip():
        raise ProtocolError(ErrorCode.BAD_TEXT, "The message is empty.", ref=ref)
    if not text.isprintable():
        for ch in text:
            if not ch.isprintable() and ch not in _C0_ALLOWED and unicodedata.category(ch) in _FORBIDDEN_IN_TEXT:
                raise ProtocolError(
                    ErrorCode.BAD_TEXT,
                    f"The message contains the control character U+{ord(ch):04X}.",
                    ref=ref,
                )


def clean_line(text: str) -> str:
    """Free text for one line (a bye or kick reason): control characters and line breaks become spaces."""
    if text.isprintable():
        return text
    return "".join(
        " " if not ch.isprintable() and unicodedata.category(ch) in _FORBIDDEN_IN_TEXT else ch for ch in text
    )


# --------------------------------------------------------------------- both ways


@dataclass(frozen=True, slots=True)
class Ping:
    """Either side checks that the other is alive; the answer is a Pong with the same token."""

    TYPE: ClassVar[str] = "ping"
    token: str = ""

    def to_wire(self) -> Wire:
        return {"type": "ping", "token": self.token}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> Ping:
        return cls(_str(d, "token", default=""))


@dataclass(frozen=True, slots=True)
class Pong:
    TYPE: ClassVar[str] = "pong"
    token: str = ""

    def to_wire(self) -> Wire:
        return {"type": "pong", "token": self.token}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> Pong:
        return cls(_str(d, "token", default=""))


@dataclass(frozen=True, slots=True)
class Bye:
    """The sender is about to close the connection, on purpose."""

    TYPE: ClassVar[str] = "bye"
    reason: str = ""

    def to_wire(self) -> Wire:
        return {"type": "bye", "reason": self.reason}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> Bye:
        return cls(_str(d, "reason", default=""))


# ------------------------------------------------------------- client to server


@dataclass(frozen=True, slots=True)
class Hello:
    """The first frame a client sends: who it is and which protocol versions it speaks."""

    TYPE: ClassVar[str] = "hello"
    user: str
    version: int = PROTOCOL_VERSION
    min_version: int | None = None
    client: str = ""
    password: str | None = field(default=None, repr=False)  # for a registered name (never logged)
    register: bool = False  # register the name with this password, then log in

    def to_wire(self) -> Wire:
        d: Wire = {"type": "hello", "version": self.version, "user": self.user}
        if self.min_version is not None:
            d["min_version"] = self.min_version
        if self.client:
            d["client"] = self.client
        if self.password is not None:
            d["password"] = self.password
        if self.register:
            d["register"] = True
        return d

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> Hello:
        version = _int(d, "version")
        min_version = _int(d, "min_version", default=version)
        return cls(
            user=_str(d, "user", max_len=1000),
            version=version,
            min_version=min_version,
            client=_str(d, "client", default=""),
            password=_opt_str(d, "password", max_len=MAX_PASSWORD_FIELD),
            register=_bool(d, "register", False),
        )


@dataclass(frozen=True, slots=True)
class Register:
    """Register the name you are logged in with, protecting it with a password."""

    TYPE: ClassVar[str] = "register"
    password: str = field(repr=False)

    def to_wire(self) -> Wire:
        return {"type": "register", "password": self.password}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> Register:
        return cls(password=_str(d, "password", max_len=MAX_PASSWORD_FIELD))


@dataclass(frozen=True, slots=True)
class PasswordChange:
    """Change the password of the registered name you are logged in with (``old`` proves it is you)."""

    TYPE: ClassVar[str] = "passwd"
    old: str = field(repr=False)
    new: str = field(repr=False)

    def to_wire(self) -> Wire:
        return {"type": "passwd", "old": self.old, "new": self.new}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> PasswordChange:
        return cls(old=_str(d, "old", max_len=MAX_PASSWORD_FIELD), new=_str(d, "new", max_len=MAX_PASSWORD_FIELD))


@dataclass(frozen=True, slots=True)
class KickRequest:
    """An operator (an account with the admin role) disconnects a user."""

    TYPE: ClassVar[str] = "kick"
    user: str
    reason: str = ""

    def to_wire(self) -> Wire:
        d: Wire = {"type": "kick", "user": self.user}
        if self.reason:
            d["reason"] = self.reason
        return d

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> KickRequest:
        return cls(user=_str(d, "user", max_len=100), reason=clean_line(_str(d, "reason", default="")))


@dataclass(frozen=True, slots=True)
class BanRequest:
    """An operator bans a user's name for ``minutes``, or for good without."""

    TYPE: ClassVar[str] = "ban"
    user: str
    minutes: int | None = None
    reason: str = ""

    def to_wire(self) -> Wire:
        d: Wire = {"type": "ban", "user": self.user}
        if self.minutes is not None:
            d["minutes"] = self.minutes
        if self.reason:
            d["reason"] = self.reason
        return d

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> BanRequest:
        minutes = None if d.get("minutes") is None else _int(d, "minutes")
        if minutes is not None and not 1 <= minutes <= 10 * 365 * 24 * 60:
            raise _bad("Field 'minutes' must be between 1 and 5256000.")
        return cls(user=_str(d, "user", max_len=100), minutes=minutes,
                   reason=clean_line(_str(d, "reason", default="")))


@dataclass(frozen=True, slots=True)
class SendMessage:
    """A client's chat message to a room. ``cid`` is the client's own id for it."""

    TYPE: ClassVar[str] = "msg"
    text: str
    room: str = DEFAULT_ROOM
    cid: str | None = None
    to: str | None = None  # a private message to this user instead of the room

    def to_wire(self) -> Wire:
        d: Wire = {"type": "msg", "text": self.text}
        if self.to is not None:
            d["to"] = self.to
        else:
            d["room"] = self.room
        if self.cid is not None:
            d["cid"] = self.cid
        return d

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> SendMessage:
        cid = _opt_str(d, "cid", max_len=MAX_CID_LENGTH)
        try:
            text = d.get("text")
            if not isinstance(text, str):
                raise _bad("Field 'text' must be a string.")
            _check_unicode(text, "text")
            check_text(text)
            return cls(text=text, room=_str(d, "room", max_len=100, default=DEFAULT_ROOM), cid=cid,
                       to=_opt_str(d, "to", max_len=100))
        except ProtocolError as exc:
            exc.ref = cid  # every error about a message names it
            raise


@dataclass(frozen=True, slots=True)
class UsersRequest:
    """Ask for the full user list of a room."""

    TYPE: ClassVar[str] = "users"
    room: str = DEFAULT_ROOM

    def to_wire(self) -> Wire:
        return {"type": "users", "room": self.room}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> UsersRequest:
        return cls(_str(d, "room", max_len=100, default=DEFAULT_ROOM))


@dataclass(frozen=True, slots=True)
class HistoryRequest:
    """Ask for stored messages of a room: the newest ``limit`` before ``before`` (default: the newest),
    the oldest ``limit`` after ``after`` (to catch up after a reconnect), or ``limit`` centred on the
    message ``around`` (to open a room at a search result). At most one of the three."""

    TYPE: ClassVar[str] = "history"
    room: str = DEFAULT_ROOM
    before: int | None = None
    after: int | None = None
    limit: int = 50
    around: int | None = None

    def to_wire(self) -> Wire:
        d: Wire = {"type": "history", "room": self.room, "limit": self.limit}
        if self.before is not None:
            d["before"] = self.before
        if self.after is not None:
            d["after"] = self.after
        if self.around is not None:
            d["around"] = self.around
        return d

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> HistoryRequest:
        before = _opt_id(d, "before")
        after = _opt_id(d, "after")
        around = _opt_id(d, "around")
        if (before is not None) + (after is not None) + (around is not None) > 1:
            raise _bad("Give at most one of 'before', 'after' and 'around'.")
        limit = _int(d, "limit", default=50)
        return cls(room=_str(d, "room", max_len=100, default=DEFAULT_ROOM), before=before, after=after,
                   limit=max(1, min(limit, 500)), around=around)


@dataclass(frozen=True, slots=True)
class MarkRead:
    """The user has read the room up to the message ``id``: the server keeps the highest such id per
    user and room (the read marker). There is no answer."""

    TYPE: ClassVar[str] = "read"
    room: str
    id: int

    def to_wire(self) -> Wire:
        return {"type": "read", "room": self.room, "id": self.id}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> MarkRead:
        mid = _opt_id(d, "id")
        if mid is None:
            raise _bad("Field 'id' is missing.")
        return cls(_str(d, "room", max_len=100, default=DEFAULT_ROOM), mid)


@dataclass(frozen=True, slots=True)
class Delivered:
    """The recipient has the private messages kept for it while it was offline (``msg`` frames with
    ``held``) up to the message ``upto``: the server deletes them. There is no answer."""

    TYPE: ClassVar[str] = "delivered"
    upto: int

    def to_wire(self) -> Wire:
        return {"type": "delivered", "upto": self.upto}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> Delivered:
        upto = _opt_id(d, "upto")
        if upto is None:
            raise _bad("Field 'upto' is missing.")
        return cls(upto)


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """Full-text search of the stored messages of the rooms you are in (or of ``room`` alone), newest
    first; ``before`` pages further back. Every word must appear, each matched as a word prefix."""

    TYPE: ClassVar[str] = "search"
    query: str
    room: str | None = None
    before: int | None = None
    limit: int = 50

    def to_wire(self) -> Wire:
        d: Wire = {"type": "search", "query": self.query}
        if self.room is not None:
            d["room"] = self.room
        if self.before is not None:
            d["before"] = self.before
        d["limit"] = self.limit
        return d

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> SearchRequest:
        query = _str(d, "query", max_len=10 * MAX_QUERY).strip()
        if not query:
            raise _bad("The search query is empty.")
        if len(query) > MAX_QUERY:
            raise _bad(f"The search query is longer than {MAX_QUERY} characters.")
        limit = _int(d, "limit", default=50)
        return cls(query=query, room=_opt_str(d, "room", max_len=100), before=_opt_id(d, "before"),
                   limit=max(1, min(limit, MAX_SEARCH_LIMIT)))


@dataclass(frozen=True, slots=True)
class JoinRoom:
    """Join a room, creating it when it does not exist yet."""

    TYPE: ClassVar[str] = "join"
    room: str

    def to_wire(self) -> Wire:
        return {"type": "join", "room": self.room}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> JoinRoom:
        return cls(_str(d, "room", max_len=100))


@dataclass(frozen=True, slots=True)
class PartRoom:
    """Leave a room (not the lobby)."""

    TYPE: ClassVar[str] = "part"
    room: str

    def to_wire(self) -> Wire:
        return {"type": "part", "room": self.room}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> PartRoom:
        return cls(_str(d, "room", max_len=100))


@dataclass(frozen=True, slots=True)
class RoomsRequest:
    """Ask for the list of rooms with their member counts."""

    TYPE: ClassVar[str] = "rooms"

    def to_wire(self) -> Wire:
        return {"type": "rooms"}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> RoomsRequest:
        return cls()


@dataclass(frozen=True, slots=True)
class SetTopic:
    TYPE: ClassVar[str] = "topic"
    room: str
    topic: str

    def to_wire(self) -> Wire:
        return {"type": "topic", "room": self.room, "topic": self.topic}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> SetTopic:
        return cls(_str(d, "room", max_len=100), clean_line(_str(d, "topic", max_len=300)))


# ------------------------------------------------------------- server to client


@dataclass(frozen=True, slots=True)
class RoomInfo:
    """A room as ``welcome``, ``room`` and ``rooms`` describe it.

    ``read`` is your read marker in the room (the highest id you marked read) and ``unread`` how many
    stored messages of others lie after it (at most UNREAD_CAP); both only in ``welcome`` and ``room``,
    and only once you have a marker there.
    """

    name: str
    topic: str = ""
    members: int | None = None
    read: int | None = None
    unread: int | None = None

    def to_wire(self) -> Wire:
        d: Wire = {"name": self.name, "topic": self.topic}
        if self.members is not None:
            d["members"] = self.members
        if self.read is not None:
            d["read"] = self.read
        if self.unread is not None:
            d["unread"] = self.unread
        return d

    @classmethod
    def from_wire(cls, d: Any) -> RoomInfo:
        if not isinstance(d, dict):
            raise _bad("A room must be an object.")
        return cls(_str(d, "name", max_len=100), _str(d, "topic", max_len=1000, default=""),
                   _int(d, "members") if d.get("members") is not None else None, _opt_id(d, "read"),
                   _opt_count(d, "unread"))


@dataclass(frozen=True, slots=True)
class Welcome:
    """The server accepted the hello. The full user list of each room follows as ``users`` frames."""

    TYPE: ClassVar[str] = "welcome"
    user: str
    version: int = PROTOCOL_VERSION
    server: str = ""
    name: str = ""
    rooms: tuple[RoomInfo, ...] = (RoomInfo(DEFAULT_ROOM),)
    max_frame: int = 65536
    ping_interval: float = 30.0
    motd: str = ""
    # the server's limits for this client, by name (see docs/PROTOCOL.md); 0 means none
    limits: Mapping[str, float] = field(default_factory=dict, hash=False)

    def to_wire(self) -> Wire:
        d: Wire = {
            "type": "welcome",
            "version": self.version,
            "server": self.server,
            "name": self.name,
            "user": self.user,
            "rooms": [r.to_wire() for r in self.rooms],
            "max_frame": self.max_frame,
            "ping_interval": self.ping_interval,
            "motd": self.motd,
        }
        if self.limits:
            d["limits"] = dict(self.limits)
        return d

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> Welcome:
        rooms = d.get("rooms")
        if not isinstance(rooms, list):
            raise _bad("Field 'rooms' must be a list.")
        interval = d.get("ping_interval", 30.0)
        if not isinstance(interval, (int, float)) or isinstance(interval, bool) or not 0 < interval < 1e6:
            raise _bad("Field 'ping_interval' must be a number of seconds.")
        return cls(
            user=_str(d, "user"),
            version=_int(d, "version"),
            server=_str(d, "server", default=""),
            name=_str(d, "name", default=""),
            rooms=tuple(RoomInfo.from_wire(r) for r in rooms),
            max_frame=_int(d, "max_frame", default=65536),
            ping_interval=float(interval),
            motd=_str(d, "motd", max_len=10_000, default=""),
            limits=_limits(d, "limits"),
        )


@dataclass(frozen=True, slots=True)
class Message:
    """A chat message as the server relays it, to every member of the room including its sender.

    ``id`` is unique and increasing across server restarts; ``ts`` is the
    server's time in milliseconds since the Unix epoch; ``cid`` is the sender's
    client message id, so the sender can take its own copy as the acknowledgement.
    ``held`` (private messages only) marks one kept for a recipient who was offline: on
    the sender's acknowledgement it says the recipient gets it at their next login; on
    the copy delivered at that login, that the recipient must confirm it (``delivered``).
    """

    TYPE: ClassVar[str] = "msg"
    id: int
    ts: int
    sender: str
    text: str
    room: str = DEFAULT_ROOM
    cid: str | None = None
    to: str | None = None  # set on a private message: its recipient (and there is no room)
    held: bool = False  # a private message kept for an offline recipient (see above)

    def to_wire(self) -> Wire:
        d: Wire = {"type": "msg", "id": self.id, "ts": self.ts}
        if self.to is None:
            d["room"] = self.room
        else:
            d["to"] = self.to
        d["from"] = self.sender
        d["text"] = self.text
        if self.cid is not None:
            d["cid"] = self.cid
        if self.held:
            d["held"] = True
        return d

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> Message:
        to = _opt_str(d, "to")
        held = _bool(d, "held", False)
        if held and to is None:
            raise _bad("Field 'held' is only for private messages (with 'to').")
        return cls(
            id=_int(d, "id"),
            ts=_int(d, "ts"),
            sender=_str(d, "from"),
            text=_str(d, "text", max_len=1 << 30),
            room=_str(d, "room", default=DEFAULT_ROOM),
            cid=_opt_str(d, "cid", max_len=MAX_CID_LENGTH),
            to=to,
            held=held,
        )


@dataclass(frozen=True, slots=True)
class History:
    """A page of stored messages of a room, oldest first, answering a ``history`` request.

    ``more`` says whether more messages lie beyond this page in the requested direction (for a page
    ``around`` a message: older ones before its first); ``newer`` (``around`` pages only) whether
    newer ones lie after its last.
    """

    TYPE: ClassVar[str] = "history"
    messages: tuple[Message, ...]
    room: str = DEFAULT_ROOM
    before: int | None = None
    after: int | None = None
    more: bool = False
    around: int | None = None
    newer: bool = False

    def to_wire(self) -> Wire:
        msgs = []
        for m in self.messages:
            entry: Wire = {"id": m.id, "ts": m.ts, "from": m.sender, "text": m.text}
            if m.cid is not None:
                entry["cid"] = m.cid
            msgs.append(entry)
        d: Wire = {"type": "history", "room": self.room, "messages": msgs, "more": self.more}
        if self.before is not None:
            d["before"] = self.before
        if self.after is not None:
            d["after"] = self.after
        if self.around is not None:
            d["around"] = self.around
        if self.newer:
            d["newer"] = True
        return d

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> History:
        room = _str(d, "room", default=DEFAULT_ROOM)
        raw = d.get("messages")
        if not isinstance(raw, list):
            raise _bad("Field 'messages' must be a list.")
        msgs = []
        for entry in raw:
            if not isinstance(entry, dict):
                raise _bad("A history message must be an object.")
            msgs.append(Message.from_wire({**entry, "room": room}))
        before = _int(d, "before") if d.get("before") is not None else None
        after = _int(d, "after") if d.get("after") is not None else None
        return cls(messages=tuple(msgs), room=room, before=before, after=after, more=_bool(d, "more", False),
                   around=_opt_id(d, "around"), newer=_bool(d, "newer", False))


@dataclass(frozen=True, slots=True)
class SearchResults:
    """The answer to a ``search``: matching messages, newest first, each with its room.

    ``more`` says whether older matches exist beyond the last one (ask again with ``before`` set to
    its id); ``query``, ``room`` and ``before`` repeat the request's.
    """

    TYPE: ClassVar[str] = "results"
    query: str
    results: tuple[Message, ...]
    room: str | None = None
    more: bool = False
    before: int | None = None

    def to_wire(self) -> Wire:
        d: Wire = {"type": "results", "query": self.query}
        if self.room is not None:
            d["room"] = self.room
        if self.before is not None:
            d["before"] = self.before
        d["results"] = [search_result_wire(m) for m in self.results]
        d["more"] = self.more
        return d

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> SearchResults:
        raw = d.get("results")
        if not isinstance(raw, list):
            raise _bad("Field 'results' must be a list.")
        results = []
        for entry in raw:
            if not isinstance(entry, dict):
                raise _bad("A search result must be an object.")
            results.append(Message.from_wire(entry))
        return cls(query=_str(d, "query", max_len=10 * MAX_QUERY), results=tuple(results),
                   room=_opt_str(d, "room"), more=_bool(d, "more", False), before=_opt_id(d, "before"))


def search_result_wire(m: Message) -> Wire:
    """One entry of a ``results`` frame: a message with its room, without type and cid."""
    return {"id": m.id, "ts": m.ts, "room": m.room, "from": m.sender, "text": m.text}


@dataclass(frozen=True, slots=True)
class RoomJoined:
    """You are now in this room; its user list follows as ``users`` frames."""

    TYPE: ClassVar[str] = "room"
    info: RoomInfo

    def to_wire(self) -> Wire:
        return {"type": "room", **self.info.to_wire()}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> RoomJoined:
        return cls(RoomInfo.from_wire(dict(d)))


@dataclass(frozen=True, slots=True)
class RoomList:
    TYPE: ClassVar[str] = "rooms"
    rooms: tuple[RoomInfo, ...]

    def to_wire(self) -> Wire:
        return {"type": "rooms", "rooms": [r.to_wire() for r in self.rooms]}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> RoomList:
        rooms = d.get("rooms")
        if not isinstance(rooms, list):
            raise _bad("Field 'rooms' must be a list.")
        return cls(tuple(RoomInfo.from_wire(r) for r in rooms))


@dataclass(frozen=True, slots=True)
class TopicChanged:
    TYPE: ClassVar[str] = "topic"
    room: str
    topic: str
    by: str
    ts: int

    def to_wire(self) -> Wire:
        return {"type": "topic", "room": self.room, "topic": self.topic, "by": self.by, "ts": self.ts}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> TopicChanged:
        return cls(_str(d, "room"), _str(d, "topic", max_len=1000), _str(d, "by"), _int(d, "ts"))


@dataclass(frozen=True, slots=True)
class Joined:
    TYPE: ClassVar[str] = "joined"
    user: str
    ts: int
    room: str = DEFAULT_ROOM

    def to_wire(self) -> Wire:
        return {"type": "joined", "room": self.room, "user": self.user, "ts": self.ts}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> Joined:
        return cls(user=_str(d, "user"), ts=_int(d, "ts"), room=_str(d, "room", default=DEFAULT_ROOM))


@dataclass(frozen=True, slots=True)
class Left:
    """A user left the room; ``reason`` is free text such as "quit", "timeout" or "kicked: spam"."""

    TYPE: ClassVar[str] = "left"
    user: str
    ts: int
    room: str = DEFAULT_ROOM
    reason: str = ""

    def to_wire(self) -> Wire:
        return {"type": "left", "room": self.room, "user": self.user, "ts": self.ts, "reason": self.reason}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> Left:
        return cls(
            user=_str(d, "user"), ts=_int(d, "ts"), room=_str(d, "room", default=DEFAULT_ROOM),
            reason=_str(d, "reason", default=""),
        )


@dataclass(frozen=True, slots=True)
class UserList:
    """Users in a room. A long list comes in several frames: all but the last have ``more`` true."""

    TYPE: ClassVar[str] = "users"
    users: tuple[str, ...]
    room: str = DEFAULT_ROOM
    more: bool = False

    def to_wire(self) -> Wire:
        return {"type": "users", "room": self.room, "users": list(self.users), "more": self.more}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> UserList:
        return cls(
            users=_str_list(d, "users"), room=_str(d, "room", default=DEFAULT_ROOM),
            more=_bool(d, "more", False),
        )


@dataclass(frozen=True, slots=True)
class Error:
    """The server's answer to something wrong. ``fatal`` means it closes the connection next."""

    TYPE: ClassVar[str] = "error"
    code: str
    message: str
    fatal: bool = False
    ref: str | None = None
    retry_after: float | None = None  # slow_down: seconds to wait before sending again

    def to_wire(self) -> Wire:
        d: Wire = {"type": "error", "code": self.code, "message": self.message, "fatal": self.fatal}
        if self.ref is not None:
            d["ref"] = self.ref
        if self.retry_after is not None:
            d["retry_after"] = self.retry_after
        return d

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> Error:
        return cls(
            code=_str(d, "code"), message=_str(d, "message", max_len=10_000),
            fatal=_bool(d, "fatal", False), ref=_opt_str(d, "ref", max_len=MAX_CID_LENGTH),
            retry_after=_opt_seconds(d, "retry_after"),
        )

    @classmethod
    def from_exception(cls, exc: ProtocolError) -> Error:
        return cls(exc.code.value, exc.message, exc.fatal, exc.ref)


@dataclass(frozen=True, slots=True)
class Notice:
    """A notice from the server's operator to everyone (or to you), shown apart from chat."""

    TYPE: ClassVar[str] = "notice"
    text: str
    ts: int
    room: str | None = None

    def to_wire(self) -> Wire:
        d: Wire = {"type": "notice", "text": self.text, "ts": self.ts}
        if self.room is not None:
            d["room"] = self.room
        return d

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> Notice:
        return cls(text=_str(d, "text", max_len=1 << 20), ts=_int(d, "ts"), room=_opt_str(d, "room"))


@dataclass(frozen=True, slots=True)
class AccountStatus:
    """Your name's account: sent after ``welcome`` and whenever it changes."""

    TYPE: ClassVar[str] = "account"
    registered: bool
    admin: bool = False
    password_changed: bool = False  # the answer to your ``passwd``: the new password is in force

    def to_wire(self) -> Wire:
        d: Wire = {"type": "account", "registered": self.registered, "admin": self.admin}
        if self.password_changed:
            d["password_changed"] = True
        return d

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> AccountStatus:
        return cls(registered=_bool(d, "registered", False), admin=_bool(d, "admin", False),
                   password_changed=_bool(d, "password_changed", False))


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """A server frame of a type this version does not know: clients ignore it."""

    type: str
    data: Mapping[str, Any]


ClientEvent = (
    Hello | SendMessage | UsersRequest | HistoryRequest | JoinRoom | PartRoom | RoomsRequest | SetTopic | MarkRead
    | Delivered | SearchRequest | Register | PasswordChange | KickRequest | BanRequest | Ping | Pong | Bye
)
ServerEvent = (
    Welcome | Message | History | Joined | Left | UserList | Error | Notice | RoomJoined | RoomList | TopicChanged
    | SearchResults | AccountStatus | Ping | Pong | Bye | UnknownEvent
)
Event = ClientEvent | ServerEvent
SendableEvent = (
    Hello | SendMessage | UsersRequest | HistoryRequest | JoinRoom | PartRoom | RoomsRequest | SetTopic | MarkRead
    | Delivered | SearchRequest | Register | PasswordChange | KickRequest | BanRequest | Ping | Pong | Bye | Welcome | Message
    | History | Joined | Left | UserList | Error | Notice | RoomJoined | RoomList | TopicChanged | SearchResults
    | AccountStatus
)

CLIENT_EVENTS: dict[str, Any] = {
    c.TYPE: c for c in (Hello, SendMessage, UsersRequest, HistoryRequest, JoinRoom, PartRoom, RoomsRequest, SetTopic,
                        MarkRead, Delivered, SearchRequest, Register, PasswordChange, KickRequest, BanRequest, Ping, Pong, Bye)
}
SERVER_EVENTS: dict[str, Any] = {
    c.TYPE: c for c in (Welcome, Message, History, Joined, Left, UserList, Error, Notice, RoomJoined, RoomList,
                        TopicChanged, SearchResults, AccountStatus, Ping, Pong, Bye)
}



# ----------------------------------------------------------------- fast paths
# The server sends a room's whole user list to every user who joins it; with
# thousands of members that is its busiest encoding job. These build the same
# bytes as encode_frame(UserList(...).to_wire()) from names encoded once each.

MAX_ENCODED_NAME = 32 * 4 + 3  # 32 code points of up to 4 UTF-8 bytes, two quotes, a comma


def encode_name(name: str) -> bytes:
    """A name as a JSON string, for ``encode_user_lists``."""
    return _json_str(name)


def encode_user_lists(room: str, encoded_names: list[bytes], per_frame: int) -> list[bytes]:
    """The ``users`` frames for a room: ``per_frame`` names each, all but the last marked ``more``."""
    head = b'{"type":"users","room":' + _json_str(room) + b',"users":['
    frames = []
    count = len(encoded_names)
    for start in range(0, max(count, 1), per_frame):
        more = start + per_frame < count
        body = b",".join(encoded_names[start : start + per_frame])
        frames.append(head + body + (b'],"more":true}\n' if more else b'],"more":false}\n'))
    return frames


def names_per_frame(max_frame: int) -> int:
    """How many names fit in one ``users`` frame of at most half the frame limit, whatever the names."""
    return max(1, (max_frame // 2 - 64) // MAX_ENCODED_NAME)


def _json_str(text: str) -> bytes:
    return json.dumps(text, ensure_ascii=False).encode("utf-8")
