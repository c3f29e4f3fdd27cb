"""The protocol as a state machine with no I/O (in the manner of h11).

A ``Connection`` is fed the bytes its transport received (``receive_data``),
hands back events one at a time (``next_event``), and turns events into the
bytes to send (``send``). It never touches a socket, a timer or Qt, so every
rule below is testable in plain Python.

States (the same names on both sides)::

    HANDSHAKE --(server sends / client receives Welcome)--> OPEN
    HANDSHAKE or OPEN --(fatal error, or bye sent)--> CLOSED

Rules enforced here:
- a server accepts only ``hello``, ``ping``, ``pong`` and ``bye`` before the
  handshake, and every error there is fatal (a stranger speaking another
  protocol is told so and dropped);
- the hello's version range is negotiated: the highest version both speak,
  or a fatal ``bad_version``;
- a malformed frame in the OPEN state is a non-fatal error: the frame is lost,
  the stream stays in step (frames are lines), and the peer is told why; more
  than ``max_consecutive_errors`` bad frames in a row turn fatal;
- a frame over the size limit is fatal (the rest of the line cannot be trusted);
- clients ignore server frames of unknown types (later versions may add some).
"""

from __future__ import annotations

import enum
from typing import Any

from .errors import ErrorCode, ProtocolError
from .events import (
    CLIENT_EVENTS,
    SERVER_EVENTS,
    SUPPORTED_VERSIONS,
    Bye,
    Error,
    Event,
    Hello,
    Ping,
    Pong,
    SendableEvent,
    UnknownEvent,
    Welcome,
)
from .framing import DEFAULT_MAX_FRAME, FrameDecoder, decode_frame, encode_frame


class Role(enum.Enum):
    CLIENT = "client"
    SERVER = "server"


class State(enum.Enum):
    HANDSHAKE = "handshake"
    OPEN = "open"
    CLOSED = "closed"


class _Sentinel:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


NEED_DATA: Any = _Sentinel("NEED_DATA")
"""next_event(): no whole frame is buffered; feed more bytes."""
PEER_CLOSED: Any = _Sentinel("PEER_CLOSED")
"""next_event(): the peer closed its side (receive_data(b"") was called) and every frame was taken."""

_ANYTIME = (Ping, Pong, Bye)
_SERVER_SENDS = tuple(c for c in SERVER_EVENTS.values())
_CLIENT_SENDS = tuple(c for c in CLIENT_EVENTS.values())


def encode_event(event: SendableEvent) -> bytes:
    """The frame for one event, for when the same bytes go to many peers."""
    return encode_frame(event.to_wire())


def negotiate_version(hello: Hello) -> int:
    low = hello.min_version if hello.min_version is not None else hello.version
    common = [v for v in SUPPORTED_VERSIONS if low <= v <= hello.version]
    if not common:
        ours = ", ".join(str(v) for v in sorted(SUPPORTED_VERSIONS))
        theirs = str(hello.version) if low == hello.version else f"{low}-{hello.version}"
        raise ProtocolError(
            ErrorCode.BAD_VERSION,
            f"This server speaks protocol version {ours}; the client speaks {theirs}. "
            "Update the older of the two.",
            fatal=True,
        )
    return max(common)


class Connection:
    """One side of one qtchat connection."""

    def __init__(
        self, our_role: Role, max_frame: int = DEFAULT_MAX_FRAME, max_consecutive_errors: int = 20
    ) -> None:
        self.our_role = our_role
        self.state = State.HANDSHAKE
        self.version: int | None = None
        self.max_consecutive_errors = max_consecutive_errors
        self._decoder = FrameDecoder(max_frame)
        self._table: dict[str, Any] = CLIENT_EVENTS if our_role is Role.SERVER else SERVER_EVENTS
        self._may_send = _SERVER_SENDS if our_role is Role.SERVER else _CLIENT_SENDS
        self._eof = False
        self._errors = 0
        self._fatal: ProtocolError | None = None

    @property
    def max_frame(self) -> int:
        return self._decoder.max_frame

    @max_frame.setter
    def max_frame(self, value: int) -> None:
        self._decoder.max_frame = value

    @property
    def buffered(self) -> int:
        return self._decoder.buffered

    # ------------------------------------------------------------ receiving

    def receive_data(self, data: bytes) -> None:
        """Feed received bytes; ``b""`` means the peer closed its side."""
        if not data:
            self._eof = True
        else:
            self._decoder.feed(data)

    def next_event(self) -> Any:
        """The next event, NEED_DATA, or PEER_CLOSED; raises ProtocolError.

        After a non-fatal error the caller may go on calling; after a fatal one
        every call raises it again.
        """
        if self._fatal is not None:
            raise self._fatal
        try:
            frame = self._decoder.next_frame()
            if frame is None:
                return PEER_CLOSED if self._eof else NEED_DATA
            event = self._decode(frame)
        except ProtocolError as exc:
            self._errors += 1
            if self.state is State.HANDSHAKE and self.our_role is Role.SERVER:
                exc.fatal = True
            elif not exc.fatal and self._errors > self.max_consecutive_errors:
                exc = ProtocolError(
                    ErrorCode.TOO_MANY_ERRORS,
                    f"More than {self.max_consecutive_errors} bad frames in a row.",
                    fatal=True,
                )
            if exc.fatal:
                self._fatal = exc
                self.state = State.CLOSED
            raise exc
        self._errors = 0
        return event

    def _decode(self, frame: bytes) -> Event:
        d = decode_frame(frame)
        kind = d.get("type")
        if not isinstance(kind, str):
            what = "has no" if kind is None else "has a non-string"
            raise ProtocolError(ErrorCode.BAD_FRAME, f'The frame {what} "type" field (a string is required).')
        cls = self._table.get(kind)
        if cls is None:
            if self.our_role is Role.CLIENT:
                return UnknownEvent(kind, d)
            raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"Unknown frame type {kind[:100]!r}.")
        try:
            event: SendableEvent = cls.from_wire(d)
        except (ValueError, TypeError, OverflowError) as exc:  # a field no check above foresaw
            raise ProtocolError(ErrorCode.BAD_FRAME, f"A field of this {kind!r} frame is unusable: {exc}.") from None
        if self.state is State.HANDSHAKE:
            return self._handshake_event(event)
        if isinstance(event, (Hello, Welcome)):
            raise ProtocolError(ErrorCode.ALREADY_LOGGED_IN, "The handshake is already done.")
        return event

    def _handshake_event(self, event: SendableEvent) -> Event:
        if self.our_role is Role.SERVER:
            if isinstance(event, Hello):
                self.version = negotiate_version(event)
                return event
            if isinstance(event, _ANYTIME):
                return event
            raise ProtocolError(
                ErrorCode.HANDSHAKE_REQUIRED,
                "This is a qtchat server: the first frame must be a hello "
                '(see docs/PROTOCOL.md), e.g. {"type":"hello","version":1,"user":"alice"}.',
                fatal=True,
            )
        if isinstance(event, Welcome):
            if event.version not in SUPPORTED_VERSIONS:
                raise ProtocolError(
                    ErrorCode.BAD_VERSION, f"The server chose protocol version {event.version}.", fatal=True
                )
            self.version = event.version
            self.state = State.OPEN
            return event
        if isinstance(event, (Error, *_ANYTIME)):
            return event
        raise ProtocolError(ErrorCode.HANDSHAKE_REQUIRED, f"The server sent {event.TYPE!r} before welcome.")

    # ------------------------------------------------------------ sending

    def send(self, event: SendableEvent) -> bytes:
        """The bytes to write for ``event``; updates the state for welcome, bye and fatal errors."""
        if not isinstance(event, self._may_send):
            raise TypeError(f"a {self.our_role.value} does not send {type(event).__name__}")
        if isinstance(event, Welcome):
            self.state = State.OPEN
            self.version = event.version
        elif isinstance(event, Bye) or (isinstance(event, Error) and event.fatal):
            self.state = State.CLOSED
        return encode_frame(event.to_wire())
