"""Why a login failed or a connection ended, as codes with their data (no words: the widgets choose those).

``ChatClient.login_failed`` reports a code (the server's ``ErrorCode``, or one of ``Failure`` for what the
client itself decided) and a ``Reason``; ``connection_lost`` reports a ``Reason``. A ``Reason`` says what
happened (``Loss``) and carries what a sentence about it needs: the server's address, the server's own
message or Qt's description of a socket error (``detail``), the certificate at fault. The sentences are
in ``qtchat.ui.wording``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from qtchat.protocol import Bye, ByeCode, ErrorCode


class Failure(enum.StrEnum):
    """login_failed's codes for what the client decided itself (the others are the server's ErrorCode)."""

    NETWORK = "network"  # the server could not be reached, or the first connection dropped
    KICKED = "kicked"  # the server said bye: kicked, banned, or logged in elsewhere
    TIMEOUT = "timeout"  # no welcome in time (or, with TLS, no handshake)
    TLS_UNAVAILABLE = "tls_unavailable"  # this computer has no TLS library Qt can use
    CERTIFICATE_UNKNOWN = "certificate_unknown"  # with TLS: unverifiable and not pinned
    CERTIFICATE_CHANGED = "certificate_changed"  # with TLS: not the certificate pinned for this server


class Loss(enum.StrEnum):
    """What ended an attempt or a connection."""

    SERVER_ERROR = "server_error"  # the server's fatal error: detail is its own message
    SERVER_BYE = "server_bye"  # the server said bye, with no code this version knows: detail is its reason
    KICKED = "kicked"  # an operator disconnected you (bye code kicked): detail is the bye's reason
    BANNED = "banned"  # an operator banned you (bye code banned): detail is the bye's reason
    SERVER_SHUTDOWN = "server_shutdown"  # the server is stopping (bye code shutdown): detail is its reason
    LOGGED_IN_ELSEWHERE = "logged_in_elsewhere"  # your name logged in on another connection
    CERTIFICATE_CHANGED = "certificate_changed"  # Reason.certificate says which
    CERTIFICATE_UNKNOWN = "certificate_unknown"  # Reason.certificate says which
    NOT_TLS = "not_tls"  # TLS asked for, the server did not answer with it: detail is Qt's error
    TLS_REQUIRED = "tls_required"  # plain, and the server answered with TLS
    NOT_QTCHAT = "not_qtchat"  # plain, and the server sent something else: detail is the decoder's complaint
    CLOSED_SILENTLY = "closed_silently"  # plain, and the server closed before sending a byte
    CLOSED = "closed"  # the server closed the connection
    REFUSED = "refused"  # nothing listens at the address
    HOST_NOT_FOUND = "host_not_found"
    SOCKET_ERROR = "socket_error"  # any other socket error: detail is Qt's description
    LOST = "lost"  # the connection went, nobody said why
    LOGIN_TIMEOUT = "login_timeout"  # connected, no welcome in time
    CONNECT_TIMEOUT = "connect_timeout"  # no connection in time (the address drops what is sent to it)
    TLS_TIMEOUT = "tls_timeout"  # with TLS: the handshake did not complete in time
    TLS_UNAVAILABLE = "tls_unavailable"


# the server's codes after which trying the same login again cannot help
FINAL_LOGIN_ERRORS = frozenset({
    ErrorCode.NAME_INVALID, ErrorCode.NAME_RESERVED, ErrorCode.BAD_VERSION, ErrorCode.BANNED,
    ErrorCode.AUTH_REQUIRED, ErrorCode.AUTH_FAILED, ErrorCode.TOO_MANY_ATTEMPTS, ErrorCode.ACCOUNT_REQUIRED,
    ErrorCode.NAME_REGISTERED, ErrorCode.REGISTRATION_CLOSED, ErrorCode.BAD_PASSWORD,
})
# the server's bye codes after which reconnecting by ourselves would be unwelcome or refused
FINAL_BYES = frozenset({ByeCode.KICKED, ByeCode.BANNED, ByeCode.LOGGED_IN_ELSEWHERE})
BYE_LOSSES = {ByeCode.KICKED: Loss.KICKED, ByeCode.BANNED: Loss.BANNED, ByeCode.SHUTDOWN: Loss.SERVER_SHUTDOWN,
              ByeCode.LOGGED_IN_ELSEWHERE: Loss.LOGGED_IN_ELSEWHERE}
# a server from before bye codes said it only in words: how its bye's reason started
_LEGACY_BYES = (("kicked", ByeCode.KICKED), ("banned", ByeCode.BANNED),
                ("logged in elsewhere", ByeCode.LOGGED_IN_ELSEWHERE))


def bye_code(bye: Bye) -> ByeCode | None:
    """Why the server said bye: its code, or (a server without codes) what its reason starts with."""
    code = ByeCode.parse(bye.code)
    if code is None and not bye.code:
        code = next((c for start, c in _LEGACY_BYES if bye.reason.startswith(start)), None)
    return code


def bye_loss(bye: Bye) -> Loss:
    """The Loss a server's bye reports: one per known code, SERVER_BYE for any other."""
    code = bye_code(bye)
    return BYE_LOSSES[code] if code is not None else Loss.SERVER_BYE


@dataclass(frozen=True, slots=True)
class CertificateProblem:
    """Why the last TLS attempt was refused on our side: the login_failed code, and the certificate."""

    code: Failure  # CERTIFICATE_UNKNOWN or CERTIFICATE_CHANGED
    host: str
    port: int
    fingerprint: str  # what the server presented: SHA-256, 64 lowercase hex digits
    pinned: str | None  # what was pinned for host:port (certificate_changed)
    summary: str  # the certificate and what the system's check said about it, one plain-text line


@dataclass(frozen=True, slots=True)
class Reason:
    """Why an attempt or a connection ended, with what a sentence about it needs."""

    loss: Loss
    host: str
    port: int
    detail: str = ""  # the server's message or bye reason, Qt's socket error, the decoder's complaint
    certificate: CertificateProblem | None = None  # for CERTIFICATE_CHANGED and CERTIFICATE_UNKNOWN


def login_code(code: str) -> ErrorCode | Failure:
    """login_failed's code as an enum member: the server's ErrorCode, one of Failure, or (an error code this
    version does not know) ErrorCode.INTERNAL."""
    try:
        return Failure(code)
    except ValueError:
        return ErrorCode.parse(code) or ErrorCode.INTERNAL
