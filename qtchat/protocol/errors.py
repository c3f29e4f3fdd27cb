"""The protocol's one error family and its machine-readable codes."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Machine-readable error codes, sent on the wire as their string value.

    A client must treat an unknown code like ``internal`` (show the human message).
    """

    # framing and decoding
    FRAME_TOO_LARGE = "frame_too_large"
    BAD_UTF8 = "bad_utf8"
    BAD_JSON = "bad_json"
    BAD_FRAME = "bad_frame"
    UNKNOWN_TYPE = "unknown_type"
    # handshake
    BAD_VERSION = "bad_version"
    NAME_INVALID = "name_invalid"
    NAME_RESERVED = "name_reserved"
    NAME_TAKEN = "name_taken"
    SERVER_FULL = "server_full"
    BANNED = "banned"
    HANDSHAKE_REQUIRED = "handshake_required"
    HANDSHAKE_TIMEOUT = "handshake_timeout"
    ALREADY_LOGGED_IN = "already_logged_in"
    AUTH_REQUIRED = "auth_required"  # the name is registered: a password is needed
    AUTH_FAILED = "auth_failed"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    ACCOUNT_REQUIRED = "account_required"  # this server admits registered names only
    NAME_REGISTERED = "name_registered"  # registering a name that is taken
    REGISTRATION_CLOSED = "registration_closed"
    BAD_PASSWORD = "bad_password"  # a new password that is too short or too long
    SERVER_BUSY = "server_busy"
    # session
    BAD_TEXT = "bad_text"
    NO_SUCH_ROOM = "no_such_room"
    MUTED = "muted"
    FORBIDDEN = "forbidden"  # an operator's command from someone without the admin role
    USER_OFFLINE = "user_offline"  # a private message to an unregistered name nobody uses now
    MAILBOX_FULL = "mailbox_full"  # a private message to an offline user who has too many waiting
    ROOM_INVALID = "room_invalid"
    TOO_MANY_ROOMS = "too_many_rooms"
    NOT_ROOM_OPERATOR = "not_room_operator"  # a room's modes, operators, invites or kicks from a non-operator
    INVITE_ONLY = "invite_only"  # joining an invite-only room without an invite
    NO_SUCH_USER = "no_such_user"  # inviting, naming or kicking a name that is not there
    NO_SUCH_MESSAGE = "no_such_message"  # editing or deleting a message the room does not have (or deleted)
    NOT_AUTHOR = "not_author"  # editing someone else's message, or deleting it without being an operator
    TOO_LATE = "too_late"  # editing a message older than the server's edit window
    BAD_REACTION = "bad_reaction"  # a reaction that is not one of the protocol's (REACTIONS)
    TOO_MANY_REACTIONS = "too_many_reactions"  # a message that holds as many reactions as it may
    PING_TIMEOUT = "ping_timeout"
    TOO_MANY_ERRORS = "too_many_errors"
    # limits
    SLOW_DOWN = "slow_down"
    FLOOD = "flood"
    TOO_MANY_CONNECTIONS = "too_many_connections"
    SEARCH_TOO_BROAD = "search_too_broad"  # a search with too many words, or one that ran past its time budget
    TYPING_TOO_FAST = "typing_too_fast"  # typing frames faster than the protocol allows (typing_rules.py)
    INTERNAL = "internal"

    @classmethod
    def parse(cls, code: str) -> ErrorCode | None:
        """The code a peer sent, or None for one this version does not know (treat it as ``internal``)."""
        try:
            return cls(code)
        except ValueError:
            return None


class ByeCode(StrEnum):
    """Why the server says ``bye`` (its optional ``code``), so a client need not read the free text.

    A client treats an unknown code (or none) as a plain close: it may reconnect.
    """

    KICKED = "kicked"  # an operator disconnected you; reconnecting at once is unwelcome
    BANNED = "banned"  # an operator banned your name or address: a new login is refused
    SHUTDOWN = "shutdown"  # the server is stopping (or restarting): try again later
    LOGGED_IN_ELSEWHERE = "logged_in_elsewhere"  # your registered name logged in on another connection

    @classmethod
    def parse(cls, code: str) -> ByeCode | None:
        """The code a server sent, or None for none or one this version does not know."""
        try:
            return cls(code)
        except ValueError:
            return None


class ProtocolError(Exception):
    """Something in the byte stream or an event broke the protocol.

    ``fatal`` says whether the connection can go on: after a fatal error the
    sender replies with an ``error`` event and closes; after a non-fatal one
    (a single malformed frame, say) it replies and keeps reading.
    ``ref`` is the client message id the error refers to, when there is one;
    ``retry_after`` how many seconds to wait before sending it again (``slow_down``).
    """

    def __init__(self, code: ErrorCode, message: str, *, fatal: bool = False, ref: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fatal = fatal
        self.ref = ref
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"ProtocolError({self.code.value!r}, {self.message!r}, fatal={self.fatal})"
