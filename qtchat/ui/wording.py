"""The sentences a person reads about the client core's codes: why a login failed or a connection ended,
what a client state is called.

The client core (qtchat/client) reports codes with their data (``Reason``, ``Failure``, ``ClientState``,
the server's ``ErrorCode``); the widgets choose the words here, so that a translation has one place to
do its work. The server's own messages (``Reason.detail`` for SERVER_ERROR and SERVER_BYE) are shown as
the server wrote them.
"""

from __future__ import annotations

from collections.abc import Callable

from qtchat.client import ClientState, Failure, Loss, Reason
from qtchat.protocol.addresses import format_address
from qtchat.tls import format_fingerprint

from .bidi import isolate

TLS_HINT = "tick \N{LEFT DOUBLE QUOTATION MARK}Encrypted (TLS)\N{RIGHT DOUBLE QUOTATION MARK}"

STATE_TEXT = {
    ClientState.OFFLINE: "\N{BLACK CIRCLE} Offline",
    ClientState.CONNECTING: "\N{BLACK CIRCLE} Connecting\N{HORIZONTAL ELLIPSIS}",
    ClientState.ONLINE: "\N{BLACK CIRCLE} Online",
    ClientState.WAITING: "\N{BLACK CIRCLE} Reconnecting\N{HORIZONTAL ELLIPSIS}",
}


def _where(r: Reason) -> str:
    return format_address(r.host, r.port)


def _certificate_changed(r: Reason) -> str:
    problem = r.certificate
    assert problem is not None and problem.pinned is not None
    return (f"The identity of the server at {_where(r)} has changed! Its certificate is not the one you "
            f"trusted before.\nTrusted before: {format_fingerprint(problem.pinned)}\n"
            f"Presented now: {format_fingerprint(problem.fingerprint)}\n"
            "This could be an attack (someone between you and the server), or the operator replaced "
            "the certificate. Ask the operator before you trust the new one.")


def _certificate_unknown(r: Reason) -> str:
    problem = r.certificate
    assert problem is not None
    return (f"The server at {_where(r)} has a certificate this computer cannot check "
            f"({problem.summary.rstrip('.')}).\nIts SHA-256 fingerprint is "
            f"{format_fingerprint(problem.fingerprint)}\nTrust it only if that is the fingerprint "
            "the server's operator gave you.")


def _because(detail: str, said: str) -> str:
    """The server's reason without the word its bye starts with (``kicked: spam`` -> `` (spam)``)."""
    rest = detail.removeprefix(said).lstrip(": ").strip()
    return f" ({rest})" if rest else ""


_REASON_TEXT: dict[Loss, Callable[[Reason], str]] = {
    Loss.SERVER_ERROR: lambda r: r.detail,
    Loss.SERVER_BYE: lambda r: f"The server closed the connection: {r.detail}",
    Loss.KICKED: lambda r: f"An operator disconnected you{_because(r.detail, 'kicked')}.",
    Loss.BANNED: lambda r: f"An operator banned you from this server{_because(r.detail, 'banned')}.",
    Loss.SERVER_SHUTDOWN: lambda r: f"The server is shutting down{_because(r.detail, '')}.",
    Loss.LOGGED_IN_ELSEWHERE: lambda r: "Your name logged in from somewhere else, which closed this connection.",
    Loss.CERTIFICATE_CHANGED: _certificate_changed,
    Loss.CERTIFICATE_UNKNOWN: _certificate_unknown,
    Loss.NOT_TLS: lambda r: (f"The server at {_where(r)} did not answer with TLS: is it a plain (unencrypted) "
                             f"server? ({r.detail})"),
    Loss.TLS_REQUIRED: lambda r: (f"The server at {_where(r)} answered with TLS: it requires an encrypted "
                                  f"connection ({TLS_HINT})."),
    Loss.NOT_QTCHAT: lambda r: (f"The server at {_where(r)} sent something that is not the qtchat protocol "
                                f"({r.detail}); it may require an encrypted connection ({TLS_HINT})."),
    Loss.CLOSED_SILENTLY: lambda r: (f"The server at {_where(r)} closed the connection without a word: it may "
                                     f"require an encrypted connection ({TLS_HINT})."),
    Loss.CLOSED: lambda r: "The server closed the connection.",
    Loss.REFUSED: lambda r: f"Nothing is listening at {_where(r)}.",
    Loss.HOST_NOT_FOUND: lambda r: f"The host {r.host!r} was not found.",
    Loss.SOCKET_ERROR: lambda r: r.detail,
    Loss.LOST: lambda r: "The connection was lost.",
    Loss.LOGIN_TIMEOUT: lambda r: f"The server at {_where(r)} did not answer the login.",
    Loss.CONNECT_TIMEOUT: lambda r: f"The server at {_where(r)} did not answer in time.",
    Loss.TLS_TIMEOUT: lambda r: (f"The server at {_where(r)} did not complete the TLS handshake: is it a plain "
                                 "(unencrypted) server?"),
    Loss.TLS_UNAVAILABLE: lambda r: ("This computer has no TLS library that Qt can use, so an encrypted "
                                     "connection is impossible here (on Linux, install OpenSSL 3: libssl3)."),
}


def reason_text(reason: Reason) -> str:
    """Why a login failed or a connection ended, as a sentence (or a few)."""
    return _REASON_TEXT[reason.loss](reason)


def connection_lost_text(reason: Reason) -> str:
    """The line every conversation shows when an established connection drops."""
    return f"Connection lost: {reason_text(reason)} Reconnecting\N{HORIZONTAL ELLIPSIS}"


def certificate_heading(code: Failure) -> str:
    """Above the connect dialog's certificate box, when a reconnect met a certificate problem."""
    if code is Failure.CERTIFICATE_CHANGED:
        return "The server's certificate changed."
    return "The server's certificate is not trusted."


PASSWORD_UNANSWERED = "The connection dropped before the server answered: the password may not have changed."


def password_failure_text(code: str, text: str) -> str:
    """The server's words on a refused password change; ours when the connection dropped before it answered."""
    return PASSWORD_UNANSWERED if code == Failure.NETWORK and not text else text


def typing_text(names: list[str]) -> str:
    """The line under a conversation saying who is typing in it (names isolated: ui/bidi.py), or nothing."""
    if not names:
        return ""
    if len(names) == 1:
        return f"{isolate(names[0])} is typing\N{HORIZONTAL ELLIPSIS}"
    if len(names) == 2:
        return f"{isolate(names[0])} and {isolate(names[1])} are typing\N{HORIZONTAL ELLIPSIS}"
    return f"{len(names)} people are typing\N{HORIZONTAL ELLIPSIS}"
