"""The client's connection: connect, log in, reconnect with backoff, keep an outbox, measure latency.

``ChatClient`` is a QObject around one QTcpSocket (a QSslSocket with TLS) at a
time and the sans-I/O protocol Connection; it holds no widgets and no
presentation. Everything it learns it reports through signals.

TLS is trust on first use: a certificate that verifies against the system's
certificate authorities and names the host is accepted silently; any other is
accepted only when its SHA-256 fingerprint is the one pinned for that host and
port (``PinStore``). Unknown or changed certificates end the attempt without a retry.
"""

from __future__ import annotations

import enum
import logging
import random
import re
import secrets
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import cast

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtNetwork import QAbstractSocket, QSslConfiguration, QSslError, QSslSocket, QTcpSocket

from qtchat import __version__
from qtchat.protocol import (
    DEFAULT_ROOM,
    MAX_QUERY,
    NEED_DATA,
    PEER_CLOSED,
    AccountStatus,
    BanRequest,
    Bye,
    Connection,
    Delivered,
    Error,
    Hello,
    History,
    HistoryRequest,
    Joined,
    JoinRoom,
    KickRequest,
    Left,
    MarkRead,
    Message,
    Notice,
    PartRoom,
    PasswordChange,
    Ping,
    Pong,
    ProtocolError,
    Register,
    Role,
    RoomInfo,
    RoomJoined,
    RoomList,
    RoomsRequest,
    SearchRequest,
    SearchResults,
    SendMessage,
    SetTopic,
    TopicChanged,
    UserList,
    Welcome,
    check_text,
    name_key,
    validate_name,
)
from qtchat.tls import certificate_fingerprint, describe_certificate, format_fingerprint

from .pins import PinStore

log = logging.getLogger("qtchat.client")

# error codes after which trying the same login again cannot help
_FINAL_LOGIN_ERRORS = frozenset({
    "name_invalid", "name_reserved", "bad_version", "banned", "auth_required", "auth_failed", "too_many_attempts",
    "account_required", "name_registered", "registration_closed", "bad_password",
})
TLS_HINT = "tick \N{LEFT DOUBLE QUOTATION MARK}Encrypted (TLS)\N{RIGHT DOUBLE QUOTATION MARK}"


class ClientState(enum.StrEnum):
    OFFLINE = "offline"  # not connected and not trying
    CONNECTING = "connecting"  # a connection or login is under way
    ONLINE = "online"  # logged in
    WAITING = "waiting"  # lost the connection; the next attempt is scheduled


@dataclass(slots=True)
class RoomState:
    """What the client knows of one room it is in (or wants to be in after the next login)."""

    name: str  # as the server spells it, once it said
    topic: str = ""
    users: list[str] = field(default_factory=list)
    joined: bool = False  # confirmed on the current connection
    last_id: int = 0  # the newest message id seen here: a reconnect asks for everything after it
    held: list[Message] | None = None  # live messages held while catching up
    collecting: list[str] | None = None  # a user list arriving in parts
    # pages asked for with request_context, by what the answer repeats: ("around" | "before" | "after", id)
    context_requests: set[tuple[str, int]] = field(default_factory=set)


def _page_anchor(around: int | None, before: int | None, after: int | None) -> tuple[str, int] | None:
    """Which message a history page is anchored at, as its request said and its answer repeats:
    ("around" | "before" | "after", id), or None for the newest page."""
    return next(((k, v) for k, v in (("around", around), ("before", before), ("after", after)) if v is not None),
                None)


@dataclass(frozen=True, slots=True)
class CertificateProblem:
    """Why the last TLS attempt was refused on our side: the login_failed code, and the certificate."""

    code: str  # "certificate_unknown" or "certificate_changed"
    host: str
    port: int
    fingerprint: str  # what the server presented: SHA-256, 64 lowercase hex digits
    pinned: str | None  # what was pinned for host:port (certificate_changed)
    summary: str  # the certificate and what the system's check said about it, one plain-text line


class ChatClient(QObject):
    """One user's connection to one server.

    Signals:
        state_changed(state): a ClientState value.
        logged_in(Welcome): the server accepted us (again, after a reconnect).
        login_failed(code, text): the first login was refused or the server could not be
            reached; no retry follows. ``code`` is the protocol's error code, "network",
            "tls_unavailable", or (at any attempt, reconnects included) "certificate_unknown" /
            "certificate_changed".
        certificate_unknown(host, port, fingerprint, summary): with TLS, the server's certificate
            cannot be verified and nothing is pinned for host:port; trust_certificate() and connect
            again to go on. login_failed follows.
        certificate_changed(host, port, pinned, presented): with TLS, the server presented another
            certificate than the one pinned: its identity changed. login_failed follows.
        connection_lost(reason): an established connection dropped; a reconnect follows.
        reconnect_scheduled(seconds): the next attempt is this far away.
        message_received(Message): a chat message, own ones included, each id once. A private one with
            ``held`` set was kept for its recipient while offline: to us, it comes after a login, and
            the server is told it arrived once every slot connected to this signal has handled it (a
            redelivered one is confirmed again, not reported twice); from us, it is the acknowledgement
            of a message the recipient gets at their next login.
        message_acked(cid, Message): the server accepted one of our messages.
        message_failed(cid, code, text): the server refused one of our messages.
        room_joined(RoomInfo): we are in this room (the lobby after each login, others as joined).
        room_left(name): we left a room (or the server refused it: see join_failed).
        join_failed(name, text): the server refused to let us into a room.
        room_list(list[RoomInfo]): the server's rooms, as asked for with request_rooms.
        topic_changed(room, topic, by): a room's topic changed.
        account_changed(registered, operator): what the server says of our name's account.
        password_changed(): the server took our new password (change_password); reconnects use it.
        password_change_failed(code, text): it did not (``auth_failed``: the old password is wrong;
            ``bad_password``, ``account_required``, ``too_many_attempts``, ``server_busy``, or
            ``network`` when the connection dropped before the answer).
        users_reset(room, list): a room's full user list (after each login or join).
        user_joined(room, name), user_left(room, name, reason).
        server_error(code, text): a non-fatal error not tied to a message.
        notice_received(text): a notice from the server's operator.
        history_received(History): a page of older messages (the latest page after the first login,
            or one asked for with request_older), messages already shown left out. Messages missed
            while disconnected arrive as message_received instead, in order.
        context_received(History): a page asked for with request_context (around a search result, or
            before/after such a page), not filtered: it is shown apart from the live conversation.
        search_results(SearchResults): the answer to search().
        pending_changed(count): messages waiting for their acknowledgement.
        latency_changed(ms): round trip of the last ping.
        closed(): quit() finished.
    """

    state_changed = Signal(str)
    logged_in = Signal(object)
    login_failed = Signal(str, str)
    certificate_unknown = Signal(str, int, str, str)
    certificate_changed = Signal(str, int, str, str)
    connection_lost = Signal(str)
    reconnect_scheduled = Signal(float)
    message_received = Signal(object)
    message_acked = Signal(str, object)
    message_failed = Signal(str, str, str)
    room_joined = Signal(object)
    room_left = Signal(str)
    join_failed = Signal(str, str)
    room_list = Signal(list)
    topic_changed = Signal(str, str, str)
    account_changed = Signal(bool, bool)
    password_changed = Signal()
    password_change_failed = Signal(str, str)
    users_reset = Signal(str, list)
    user_joined = Signal(str, str)
    user_left = Signal(str, str, str)
    server_error = Signal(str, str)
    notice_received = Signal(str)
    history_received = Signal(object)
    context_received = Signal(object)
    search_results = Signal(object)
    pending_changed = Signal(int)
    latency_changed = Signal(int)
    closed = Signal()

    PING_INTERVAL = 10.0  # seconds between our latency pings
    LOGIN_TIMEOUT = 15.0  # connected, but no welcome this long after our hello: give up on this attempt
    STABLE_AFTER = 30.0  # online this long: the next loss starts the backoff from the beginning
    DEAD_AFTER = 35.0  # no byte from the server for this long: the connection is dead
    BACKOFF_BASE = 0.5
    BACKOFF_CAP = 30.0

    def __init__(self, parent: QObject | None = None, pins: PinStore | None = None) -> None:
        super().__init__(parent)
        self.state = ClientState.OFFLINE
        self.host = ""
        self.port = 0
        self.tls = False  # connect with TLS
        self.pins = pins if pins is not None else PinStore()
        # the TLS settings for every connection (Qt's default, with the system's CAs, when None)
        self.ssl_configuration: QSslConfiguration | None = None
        self.certificate_problem: CertificateProblem | None = None  # of the last failed attempt
        self._rx_head = b""  # the first bytes of this connection, to recognise a TLS server
        self._bad_frame: str | None = None
        self.user = ""  # the name we ask for
        self.me = ""  # the name the server gave us
        self.password: str | None = None  # for a registered name; kept in memory only, for reconnects
        self.register_on_login = False  # the next login registers the name with the password
        self.registered = False
        self.operator = False
        self._new_password: str | None = None  # sent in a passwd frame, not answered yet
        self._mention: re.Pattern[str] | None = None
        self.welcome: Welcome | None = None
        # the rooms we are in, by name key; the lobby always, others joined by the user and
        # joined again after every login
        self.rooms: dict[str, RoomState] = {name_key(DEFAULT_ROOM): RoomState(DEFAULT_ROOM)}
        self.latency_ms: int | None = None
        self._socket: QTcpSocket | None = None
        self._conn = Connection(Role.CLIENT)
        self._ever_online = False
        self._quitting = False
        self._attempt = 0
        self._fatal: Error | None = None
        self._bye: str | None = None
        self._outbox: OrderedDict[str, SendMessage] = OrderedDict()
        self._seen_ids: set[int] = set()
        self._seen_order: deque[int] = deque()
        self._cid_prefix = secrets.token_hex(4)
        self._cid_counter = 0
        self._last_rx = 0.0
        self._online_since = 0.0
        self._ping_sent: dict[str, float] = {}
        self._reconnect_timer = QTimer(self)
        self._reconnect_timer.setSingleShot(True)
        self._reconnect_timer.timeout.connect(self._open)
        self._held_upto = 0  # the newest private message kept for us while offline received on this connection
        self._held_confirmed = 0  # ...and the newest we confirmed
        self._confirm_timer = QTimer(self)  # confirms once per batch of held messages, after they are handled
        self._confirm_timer.setSingleShot(True)
        self._confirm_timer.setInterval(0)
        self._confirm_timer.timeout.connect(self._confirm_held)
        self._ping_timer = QTimer(self)
        self._ping_timer.timeout.connect(self._on_ping_timer)
        self._login_timer = QTimer(self)
        self._login_timer.setSingleShot(True)
        self._login_timer.timeout.connect(self._on_login_timeout)
        self._quit_timer = QTimer(self)
        self._quit_timer.setSingleShot(True)
        self._quit_timer.timeout.connect(self._abort_quit)

    # ------------------------------------------------------------ public API

    def connect_to(self, host: str, port: int, user: str, tls: bool = False) -> None:
        """Connect and log in (inside TLS with ``tls``); on success the client stays connected,
        reconnecting as needed (with TLS and the same pin)."""
        self._close_socket()
        if (host, port) != (self.host, self.port) and self._outbox:
            log.info("dropping %d unsent message(s) meant for %s:%d", len(self._outbox), self.host, self.port)
            self._outbox.clear()
            self.pending_changed.emit(0)
        if (host, port) != (self.host, self.port):
            self._seen_ids.clear()
            self._seen_order.clear()
            # another server: its rooms are other rooms
            self.rooms = {name_key(DEFAULT_ROOM): RoomState(DEFAULT_ROOM)}
        self.host, self.port, self.user, self.tls = host, port, user, tls
        self.certificate_problem = None
        self._ever_online = False
        self._quitting = False
        self._attempt = 0
        self._open()

    def send_text(self, text: str, room: str = DEFAULT_ROOM, to: str | None = None) -> str:
        """Queue a chat message and send it as soon as we are online; returns its cid.

        Raises ValueError (with a sentence for the user) for text the server would refuse.
        With ``to``, a private message to that user instead of the room.
        """
        try:
            check_text(text)
        except ProtocolError as exc:
            raise ValueError(exc.message) from None
        limit = self.welcome.max_frame if self.welcome else 65536
        size = len(text.encode("utf-8", "surrogatepass"))
        if size + 200 > limit:
            raise ValueError(f"The message is too long: {size:,} bytes; this server takes about {limit - 200:,}.")
        self._cid_counter += 1
        cid = f"{self._cid_prefix}-{self._cid_counter}"
        event = SendMessage(text=text, room=room, cid=cid, to=to)
        self._outbox[cid] = event
        if self.state is ClientState.ONLINE:
            self._write(self._conn.send(event))
        self.pending_changed.emit(len(self._outbox))
        return cid

    @property
    def pending(self) -> list[SendMessage]:
        return list(self._outbox.values())

    @property
    def users(self) -> list[str]:
        """Who is in the lobby."""
        return self.rooms[name_key(DEFAULT_ROOM)].users

    @property
    def last_id(self) -> int:
        """The newest room message id seen, in any room."""
        return max(room.last_id for room in self.rooms.values())

    def is_mention(self, text: str) -> bool:
        """Does the text name us (as a word, in any case)?"""
        return self._mention is not None and self._mention.search(text) is not None

    def room(self, name: str) -> RoomState | None:
        return self.rooms.get(name_key(name))

    def join_room(self, name: str) -> str:
        """Enter a room (creating it on the server if nobody is in it); it is joined again after every
        login. Returns its name key; raises ValueError (a sentence for the user) for a name the server
        would refuse."""
        try:
            name, key = validate_name(name, what="room name")
        except ProtocolError as exc:
            raise ValueError(exc.message) from None
        if key not in self.rooms:
            self.rooms[key] = RoomState(name)
            if self.state is ClientState.ONLINE:
                self._write(self._conn.send(JoinRoom(name)))
        return key

    def part_room(self, name: str) -> None:
        """Leave a room (not the lobby: everyone stays there)."""
        key = name_key(name)
        room = self.rooms.get(key)
        if room is None or key == name_key(DEFAULT_ROOM):
            return
        del self.rooms[key]
        if self.state is ClientState.ONLINE and room.joined:
            self._write(self._conn.send(PartRoom(room.name)))
        self.room_left.emit(room.name)

    def register_name(self, password: str) -> None:
        """Protect our name with a password; account_changed follows (or server_error says why not).
        Raises ValueError (a sentence for the user) while offline."""
        if self.state is not ClientState.ONLINE:
            raise ValueError("Not connected.")
        self.password = password
        self._write(self._conn.send(Register(password)))

    def change_password(self, old: str, new: str) -> None:
        """Change our registered name's password; password_changed or password_change_failed follows.
        Raises ValueError (a sentence for the user) while offline, unregistered, or already changing it."""
        if self.state is not ClientState.ONLINE:
            raise ValueError("Not connected.")
        if not self.registered:
            raise ValueError(f"The name {self.me} is not registered: there is no password to change.")
        if self._new_password is not None:
            raise ValueError("A password change is under way already.")
        if not old or not new:
            raise ValueError("Both the current and the new password are needed.")
        self._new_password = new
        self._write(self._conn.send(PasswordChange(old, new)))

    @property
    def changing_password(self) -> bool:
        """A password change was sent and not answered yet."""
        return self._new_password is not None

    def kick(self, user: str, reason: str = "") -> None:
        """An operator's kick; raises ValueError while offline or without the operator role."""
        self._operator_request(KickRequest(user, reason))

    def ban(self, user: str, minutes: int | None = None, reason: str = "") -> None:
        """An operator's ban of a name (for good without minutes)."""
        self._operator_request(BanRequest(user, minutes, reason))

    def _operator_request(self, event: KickRequest | BanRequest) -> None:
        if self.state is not ClientState.ONLINE:
            raise ValueError("Not connected.")
        if not self.operator:
            raise ValueError("Only operators may kick or ban.")
        self._write(self._conn.send(event))

    def set_topic(self, room: str, topic: str) -> None:
        """Raises ValueError (a sentence for the user) while offline."""
        if self.state is not ClientState.ONLINE:
            raise ValueError("Not connected.")
        self._write(self._conn.send(SetTopic(room, topic)))

    def request_rooms(self) -> bool:
        """Ask for the server's list of rooms; it arrives as room_list. False while offline."""
        if self.state is not ClientState.ONLINE:
            return False
        self._write(self._conn.send(RoomsRequest()))
        return True

    def quit(self, reason: str = "") -> None:
        """Say bye and close; emits closed() when done (within a second at most)."""
        self._quitting = True
        self._reconnect_timer.stop()
        self._ping_timer.stop()
        sock = self._socket
        if sock is not None and sock.state() == QAbstractSocket.SocketState.ConnectedState:
            sock.write(self._conn.send(Bye(reason)))
            sock.disconnectFromHost()
            if sock.state() != QAbstractSocket.SocketState.UnconnectedState:
                self._quit_timer.start(1000)
                return
        self._finish_quit()

    def trust_certificate(self, host: str, port: int, fingerprint: str) -> None:
        """Pin a certificate's SHA-256 fingerprint for host:port (then connect again to use it).
        Raises ValueError for a string that is not a SHA-256 fingerprint."""
        self.pins.set(host, port, fingerprint)
        log.info("trusting the certificate %s for %s:%d", format_fingerprint(fingerprint), host, port)

    def forget_certificate(self, host: str, port: int) -> None:
        """Remove the pin for host:port: the next connection asks again (certificate_unknown)."""
        self.pins.remove(host, port)
        log.info("forgot the trusted certificate of %s:%d", host, port)

    @property
    def is_encrypted(self) -> bool:
        """Is the current connection inside TLS (handshake done)?"""
        sock = self._socket
        return isinstance(sock, QSslSocket) and sock.isEncrypted()

    def tls_summary(self) -> str:
        """A plain-text line about the current TLS connection: protocol, certificate, fingerprint."""
        sock = self._socket
        if not isinstance(sock, QSslSocket) or not sock.isEncrypted():
            return ""
        cert = sock.peerCertificate()
        cipher = sock.sessionCipher()
        proto = cipher.protocolString() if not cipher.isNull() else "TLS"
        how = "pinned" if self.pins.get(self.host, self.port) == certificate_fingerprint(cert) else "verified"
        return (f"Encrypted ({proto}, {cipher.name()}). Certificate ({how}): {describe_certificate(cert)}. "
                f"SHA-256: {format_fingerprint(certificate_fingerprint(cert))}")

    def reconnect_now(self) -> None:
        """Skip the wait before the next attempt."""
        if self.state is ClientState.WAITING:
            self._reconnect_timer.stop()
            self._open()

    # ------------------------------------------------------------ connection

    def _set_state(self, state: ClientState) -> None:
        if state is not self.state:
            self.state = state
            self.state_changed.emit(state.value)

    def _open(self) -> None:
        self._close_socket()
        self._conn = Connection(Role.CLIENT, max_frame=1 << 20)
        self._held_upto = self._held_confirmed = 0  # confirmations are per connection
        self._confirm_timer.stop()
        for room in self.rooms.values():
            room.joined, room.held, room.collecting = False, None, None
        self._fatal = None
        self._bye = None
        self._rx_head = b""
        self._bad_frame = None
        self.certificate_problem = None
        if self.tls and not QSslSocket.supportsSsl():
            self._set_state(ClientState.CONNECTING)
            QTimer.singleShot(0, self._tls_unavailable)
            return
        sock: QTcpSocket
        if self.tls:
            ssl = QSslSocket(self)
            if self.ssl_configuration is not None:
                ssl.setSslConfiguration(self.ssl_configuration)
            ssl.encrypted.connect(self._on_encrypted)
            ssl.sslErrors.connect(self._on_ssl_errors)
            sock = ssl
        else:
            sock = QTcpSocket(self)
        sock.connected.connect(self._on_connected)
        sock.readyRead.connect(self._on_ready_read)
        sock.disconnected.connect(self._on_socket_gone)
        sock.errorOccurred.connect(self._on_socket_gone)
        self._socket = sock
        self._set_state(ClientState.CONNECTING)
        if isinstance(sock, QSslSocket):
            sock.connectToHostEncrypted(self.host, self.port)  # checks the certificate against this name
        else:
            sock.connectToHost(self.host, self.port)

    def _tls_unavailable(self) -> None:
        if self._socket is not None or self.state is not ClientState.CONNECTING:
            return
        self._set_state(ClientState.OFFLINE)
        self.login_failed.emit("tls_unavailable", "This computer has no TLS library that Qt can use, so an "
                               "encrypted connection is impossible here (on Linux, install OpenSSL 3: libssl3).")

    def _close_socket(self) -> None:
        sock, self._socket = self._socket, None
        if sock is not None:
            for signal in (sock.connected, sock.readyRead, sock.disconnected, sock.errorOccurred):
                signal.disconnect()
            if isinstance(sock, QSslSocket):
                sock.encrypted.disconnect()
                sock.sslErrors.disconnect()
            sock.abort()
            sock.deleteLater()

    def _write(self, data: bytes) -> None:
        if self._socket is not None:
            self._socket.write(data)

    def _on_connected(self) -> None:
        sock = self._socket
        if sock is None:
            return
        sock.setSocketOption(QAbstractSocket.SocketOption.LowDelayOption, 1)
        sock.setSocketOption(QAbstractSocket.SocketOption.KeepAliveOption, 1)
        self._last_rx = time.monotonic()
        self._login_timer.start(int(self.LOGIN_TIMEOUT * 1000))  # with TLS it bounds the handshake too
        if not isinstance(sock, QSslSocket):
            self._send_hello()

    def _send_hello(self) -> None:
        self._write(self._conn.send(Hello(user=self.user, client=f"qtchat {__version__}", password=self.password,
                                          register=self.register_on_login)))

    def _on_encrypted(self) -> None:
        if self._socket is not None and self.sender() is self._socket:
            self._send_hello()

    def _on_ssl_errors(self, errors: list[QSslError]) -> None:
        """The certificate did not verify (unknown authority, self-signed, another name, expired):
        go on only if it is the one pinned for this server; otherwise note why, and let the
        handshake fail (which ends in _on_socket_gone)."""
        sock = self._socket
        if not isinstance(sock, QSslSocket) or self.sender() is not sock:
            return
        cert = sock.peerCertificate()
        if cert.isNull():
            return  # nothing to pin: the handshake fails with Qt's own reason
        presented = certificate_fingerprint(cert)
        pinned = self.pins.get(self.host, self.port)
        if pinned == presented:
            sock.ignoreSslErrors(errors)
            return
        reasons = "; ".join(dict.fromkeys(e.errorString() for e in errors))
        self.certificate_problem = CertificateProblem(
            "certificate_changed" if pinned else "certificate_unknown", self.host, self.port, presented, pinned,
            f"{describe_certificate(cert)}. {reasons}.")

    def _on_ready_read(self) -> None:
        sock = self._socket
        if sock is None:
            return
        self._last_rx = time.monotonic()
        data = cast(bytes, sock.readAll().data())
        if len(self._rx_head) < 3:
            self._rx_head += data[:3]
        self._conn.receive_data(data)
        while self._socket is sock:
            try:
                event = self._conn.next_event()
            except ProtocolError as exc:
                log.warning("bad data from the server: %s", exc.message)
                if exc.fatal:
                    self._bad_frame = exc.message
                    sock.abort()
                    return
                continue
            if event is NEED_DATA or event is PEER_CLOSED:
                return
            self._dispatch(event)

    def _dispatch(self, event: object) -> None:
        if isinstance(event, Message):
            room = self.rooms.get(name_key(event.room)) if event.to is None else None
            if room is not None and room.held is not None:
                room.held.append(event)
            elif room is not None or event.to is not None:
                self._on_message(event)
                if event.held and event.to is not None and name_key(event.to) == name_key(self.me):
                    # kept for us while we were offline: confirmed once handled (a redelivered one too)
                    self._held_upto = max(self._held_upto, event.id)
                    if not self._confirm_timer.isActive():
                        self._confirm_timer.start()
        elif isinstance(event, Joined):
            room = self.rooms.get(name_key(event.room))
            if room is not None:
                if event.user not in room.users:
                    room.users.append(event.user)
                self.user_joined.emit(room.name, event.user)
        elif isinstance(event, Left):
            room = self.rooms.get(name_key(event.room))
            if room is not None:
                if event.user in room.users:
                    room.users.remove(event.user)
                self.user_left.emit(room.name, event.user, event.reason)
        elif isinstance(event, Welcome):
            self._on_welcome(event)
        elif isinstance(event, UserList):
            room = self.rooms.get(name_key(event.room))
            if room is not None:
                if room.collecting is None:
                    room.collecting = []
                room.collecting.extend(event.users)
                if not event.more:
                    room.users = list(dict.fromkeys(room.collecting))
                    room.collecting = None
                    self.users_reset.emit(room.name, list(room.users))
        elif isinstance(event, RoomJoined):
            self._on_room_joined(event.info)
        elif isinstance(event, TopicChanged):
            room = self.rooms.get(name_key(event.room))
            if room is not None:
                room.topic = event.topic
                self.topic_changed.emit(room.name, event.topic, event.by)
        elif isinstance(event, SearchResults):
            self.search_results.emit(event)
        elif isinstance(event, RoomList):
            self.room_list.emit(list(event.rooms))
        elif isinstance(event, AccountStatus):
            self.register_on_login = False  # done: from now on the name logs in with its password
            self.registered, self.operator = event.registered, event.admin
            if event.password_changed and self._new_password is not None:
                self.password, self._new_password = self._new_password, None  # for the next reconnect
                self.password_changed.emit()
            self.account_changed.emit(event.registered, event.admin)
        elif isinstance(event, Ping):
            self._write(self._conn.send(Pong(event.token)))
        elif isinstance(event, Pong):
            sent = self._ping_sent.pop(event.token, None)
            if time.monotonic() - self._online_since > self.STABLE_AFTER:
                self._attempt = 0  # a connection that lasts: the next loss starts the backoff afresh
            if sent is not None:
                self.latency_ms = round((time.monotonic() - sent) * 1000)
                self.latency_changed.emit(self.latency_ms)
        elif isinstance(event, Error):
            self._on_error(event)
        elif isinstance(event, History):
            self._on_history(event)
        elif isinstance(event, Notice):
            self.notice_received.emit(event.text)
        elif isinstance(event, Bye):
            self._bye = event.reason

    def _on_welcome(self, welcome: Welcome) -> None:
        self._login_timer.stop()
        self.welcome = welcome
        self.me = welcome.user
        self._mention = re.compile(rf"(?<!\w){re.escape(welcome.user)}(?!\w)", re.IGNORECASE)
        # relayed frames are a little larger than the largest a client may send
        self._conn.max_frame = max(1 << 20, welcome.max_frame + 4096)
        self._online_since = time.monotonic()
        self._ever_online = True
        self._set_state(ClientState.ONLINE)
        self._ping_timer.start(int(self.PING_INTERVAL * 1000))
        self.logged_in.emit(welcome)
        for info in welcome.rooms:
            self._on_room_joined(info)
        for room in self.rooms.values():
            if not room.joined:
                self._write(self._conn.send(JoinRoom(room.name)))
        # what was typed offline, or never acknowledged: the server answers in order, so each
        # room's join (and catch-up request) is ahead of its messages
        for event in self._outbox.values():
            self._write(self._conn.send(event))
        self._send_ping()

    def _on_room_joined(self, info: RoomInfo) -> None:
        room = self.rooms.get(name_key(info.name))
        if room is None:  # left again before the server answered: nothing to show
            if self.state is ClientState.ONLINE:
                self._write(self._conn.send(PartRoom(info.name)))
            return
        room.name, room.topic, room.joined = info.name, info.topic, True
        room.context_requests.clear()  # asked on a connection that is gone
        self.room_joined.emit(info)
        # history first: a page to start with, or everything missed while away (which may
        # acknowledge messages of ours that were stored before the connection dropped)
        if room.last_id:
            # live messages wait until the missed ones are in, so the conversation stays in order
            room.held = []
            self._write(self._conn.send(HistoryRequest(room.name, after=room.last_id, limit=200)))
        else:
            self._write(self._conn.send(HistoryRequest(room.name, limit=50)))

    def request_older(self, before: int, limit: int = 50, room: str = DEFAULT_ROOM) -> bool:
        """Ask for the page of a room's messages before id ``before``; it arrives as history_received.
        False (and nothing asked) while not online."""
        state = self.rooms.get(name_key(room))
        if self.state is not ClientState.ONLINE or state is None or not state.joined:
            return False
        self._write(self._conn.send(HistoryRequest(state.name, before=before, limit=limit)))
        return True

    def request_context(self, room: str, *, around: int | None = None, before: int | None = None,
                        after: int | None = None, limit: int = 50) -> bool:
        """Ask for a page of a room's history apart from the live conversation: ``limit`` messages
        around the message ``around`` (a search result), or before/after such a page. It arrives as
        context_received. False (and nothing asked) while not online."""
        state = self.rooms.get(name_key(room))
        if self.state is not ClientState.ONLINE or state is None or not state.joined:
            return False
        anchor = _page_anchor(around, before, after)
        if anchor is None:
            raise ValueError("give around, before or after")
        kind, mid = anchor
        if (kind, mid) in state.context_requests:
            return True  # asked already: one answer serves both
        state.context_requests.add((kind, mid))
        self._write(self._conn.send(HistoryRequest(state.name, limit=limit, **{kind: mid})))
        return True

    def search(self, query: str, room: str | None = None, before: int | None = None, limit: int = 50) -> bool:
        """Search the stored messages of the rooms we are in (or of ``room``), newest first; ``before`` pages
        on. The answer arrives as search_results. False (and nothing asked) while not online; ValueError
        for a query the server would refuse."""
        query = query.strip()
        if not query:
            raise ValueError("the search is empty")
        if len(query) > MAX_QUERY:
            raise ValueError(f"a search may be at most {MAX_QUERY} characters long")
        if self.state is not ClientState.ONLINE:
            return False
        self._write(self._conn.send(SearchRequest(query, room, before, limit)))
        return True

    def _on_history(self, page: History) -> None:
        room = self.rooms.get(name_key(page.room))
        if room is None:
            return  # a room left meanwhile
        asked = _page_anchor(page.around, page.before, page.after)
        if asked is not None and asked in room.context_requests:
            room.context_requests.discard(asked)
            self.context_received.emit(page)
            return
        if page.around is not None:
            return  # a context page nobody waits for (asked on a connection since replaced): not history
        if page.after is not None:  # catching up after a reconnect: these are simply messages
            for msg in page.messages:
                self._on_message(msg)
            if page.more and page.messages:
                self._write(self._conn.send(HistoryRequest(room.name, after=page.messages[-1].id, limit=200)))
                return
            held, room.held = room.held, None
            for msg in held or ():
                self._on_message(msg)  # those the catch-up already brought are skipped as seen
            return
        fresh = []
        for m in page.messages:
            if m.sender == self.me and m.cid is not None and m.cid in self._outbox:
                self._on_message(m)  # stored before the connection dropped: this is its acknowledgement
            elif m.id not in self._seen_ids:
                self._remember_id(m.id, room)
                fresh.append(m)
        self.history_received.emit(History(tuple(fresh), room.name, before=page.before, more=page.more))

    def _remember_id(self, mid: int, room: RoomState | None) -> None:
        self._seen_ids.add(mid)
        self._seen_order.append(mid)
        if len(self._seen_order) > 10_000:
            self._seen_ids.discard(self._seen_order.popleft())
        if room is not None and mid > room.last_id:
            room.last_id = mid

    def _on_message(self, msg: Message) -> None:
        if msg.id in self._seen_ids:
            return  # already shown (a resend's repeated acknowledgement, or history seen live)
        self._remember_id(msg.id, self.rooms.get(name_key(msg.room)) if msg.to is None else None)
        if msg.cid is not None and msg.sender == self.me and msg.cid in self._outbox:
            del self._outbox[msg.cid]
            self.message_acked.emit(msg.cid, msg)
            self.pending_changed.emit(len(self._outbox))
        self.message_received.emit(msg)

    def _on_error(self, error: Error) -> None:
        if error.fatal:
            self._fatal = error
        elif error.ref == "passwd" and self._new_password is not None:
            self._new_password = None
            self.password_change_failed.emit(error.code, error.message)
        elif error.code in ("room_invalid", "too_many_rooms") and error.ref is not None:
            room = self.rooms.pop(name_key(error.ref), None)
            if room is not None:
                self.join_failed.emit(room.name, error.message)
                self.room_left.emit(room.name)
            else:
                self.server_error.emit(error.code, error.message)
        elif error.code == "slow_down" and error.ref is not None and error.ref in self._outbox:
            # the server wants us to wait: the message stays queued and goes again when allowed
            delay = max(0.2, min(error.retry_after or 1.0, 30.0))
            cid = error.ref
            QTimer.singleShot(int(delay * 1000), self, lambda: self._resend(cid))
        elif error.ref is not None and error.ref in self._outbox:
            del self._outbox[error.ref]
            self.message_failed.emit(error.ref, error.code, error.message)
            self.pending_changed.emit(len(self._outbox))
        else:
            self.server_error.emit(error.code, error.message)

    def _resend(self, cid: str) -> None:
        event = self._outbox.get(cid)
        if event is not None and self.state is ClientState.ONLINE:
            self._write(self._conn.send(event))

    def _confirm_held(self) -> None:
        """Tell the server we have the held messages received so far: it deletes them, and sends the next batch."""
        if self.state is ClientState.ONLINE and self._held_upto > self._held_confirmed:
            self._held_confirmed = self._held_upto
            self._write(self._conn.send(Delivered(self._held_upto)))

    def mark_read(self, room: str, message_id: int) -> None:
        """Tell the server we read the room up to this message (its read marker follows us across machines)."""
        state = self.rooms.get(name_key(room))
        if self.state is ClientState.ONLINE and state is not None and state.joined:
            self._write(self._conn.send(MarkRead(state.name, message_id)))

    def _on_socket_gone(self, *args: object) -> None:
        sock = self._socket
        if sock is None or self.sender() is not sock:
            return
        self._login_timer.stop()
        reason = self._loss_reason(sock)
        self._close_socket()
        self._ping_timer.stop()
        self._ping_sent.clear()
        if self._new_password is not None:
            self._new_password = None
            self.password_change_failed.emit(
                "network", "The connection dropped before the server answered: the password may not have changed.")
        if self._quitting:
            self._finish_quit()
            return
        problem = self.certificate_problem
        if problem is not None:  # never retried: the user decides
            self._set_state(ClientState.OFFLINE)
            if problem.code == "certificate_changed":
                assert problem.pinned is not None
                self.certificate_changed.emit(problem.host, problem.port, problem.pinned, problem.fingerprint)
            else:
                self.certificate_unknown.emit(problem.host, problem.port, problem.fingerprint, problem.summary)
            self.login_failed.emit(problem.code, reason)
            return
        fatal = self._fatal
        final = fatal is not None and (
            fatal.code in _FINAL_LOGIN_ERRORS or (fatal.code == "name_taken" and not self._ever_online)
        )
        kicked = self._bye is not None and self._bye.startswith(("kicked", "banned", "logged in elsewhere"))
        if final or kicked or not self._ever_online:
            self._set_state(ClientState.OFFLINE)
            code = fatal.code if fatal is not None else ("kicked" if kicked else "network")
            self.login_failed.emit(code, reason)
            return
        if self.state is ClientState.ONLINE:
            self.connection_lost.emit(reason)
        self._schedule_reconnect()

    def _loss_reason(self, sock: QTcpSocket) -> str:
        where = f"{self.host}:{self.port}"
        problem = self.certificate_problem
        if problem is not None and problem.code == "certificate_changed":
            assert problem.pinned is not None
            return (f"The identity of the server at {where} has changed! Its certificate is not the one you "
                    f"trusted before.\nTrusted before: {format_fingerprint(problem.pinned)}\n"
                    f"Presented now: {format_fingerprint(problem.fingerprint)}\n"
                    "This could be an attack (someone between you and the server), or the operator replaced "
                    "the certificate. Ask the operator before you trust the new one.")
        if problem is not None:
            return (f"The server at {where} has a certificate this computer cannot check "
                    f"({problem.summary.rstrip('.')}).\nIts SHA-256 fingerprint is "
                    f"{format_fingerprint(problem.fingerprint)}\nTrust it only if that is the fingerprint "
                    "the server's operator gave you.")
        if self._fatal is not None:
            return self._fatal.message
        if self._bye:
            return f"The server closed the connection: {self._bye}"
        error = sock.error()
        encrypted = isinstance(sock, QSslSocket) and sock.isEncrypted()
        if self.tls and not encrypted and error in (QAbstractSocket.SocketError.SslHandshakeFailedError,
                                                    QAbstractSocket.SocketError.RemoteHostClosedError):
            return (f"The server at {where} did not answer with TLS: is it a plain (unencrypted) server? "
                    f"({sock.errorString()})")
        if not self.tls and self.state is not ClientState.ONLINE:  # not logged in on this connection
            if self._rx_head[:1] in (b"\x15", b"\x16") and self._rx_head[1:2] == b"\x03":
                return f"The server at {where} answered with TLS: it requires an encrypted connection ({TLS_HINT})."
            if self._bad_frame is not None:
                return (f"The server at {where} sent something that is not the qtchat protocol "
                        f"({self._bad_frame}); it may require an encrypted connection ({TLS_HINT}).")
            if not self._rx_head and error == QAbstractSocket.SocketError.RemoteHostClosedError:
                return (f"The server at {where} closed the connection without a word: it may require an "
                        f"encrypted connection ({TLS_HINT}).")
        if error == QAbstractSocket.SocketError.RemoteHostClosedError:
            return "The server closed the connection."
        if error == QAbstractSocket.SocketError.ConnectionRefusedError:
            return f"Nothing is listening at {self.host}:{self.port}."
        if error == QAbstractSocket.SocketError.HostNotFoundError:
            return f"The host {self.host!r} was not found."
        text = sock.errorString()
        return text if text and text != "Unknown error" else "The connection was lost."

    def _schedule_reconnect(self) -> None:
        delay = min(self.BACKOFF_CAP, self.BACKOFF_BASE * 2**self._attempt) * random.uniform(0.5, 1.0)
        self._attempt += 1
        self._set_state(ClientState.WAITING)
        self.reconnect_scheduled.emit(delay)
        self._reconnect_timer.start(int(delay * 1000))

    # ------------------------------------------------------------ liveness

    def _send_ping(self) -> None:
        token = f"p{time.monotonic_ns()}"
        self._ping_sent = {token: time.monotonic()}
        self._write(self._conn.send(Ping(token)))

    def _on_ping_timer(self) -> None:
        if self._socket is None:
            return
        if time.monotonic() - self._last_rx > self.DEAD_AFTER:
            log.info("no data from the server for %.0f s: reconnecting", self.DEAD_AFTER)
            self._socket.abort()
            return
        self._send_ping()

    def _on_login_timeout(self) -> None:
        if self._socket is not None and self.state is not ClientState.ONLINE:
            if self.tls and not self.is_encrypted:
                text = (f"The server at {self.host}:{self.port} did not complete the TLS handshake: "
                        "is it a plain (unencrypted) server?")
            else:
                text = f"The server at {self.host}:{self.port} did not answer the login."
            self._fatal = Error("timeout", text, True)
            self._socket.abort()

    def _abort_quit(self) -> None:
        if self._socket is not None:
            self._socket.abort()
        self._finish_quit()

    def _finish_quit(self) -> None:
        self._quit_timer.stop()
        self._close_socket()
        self._set_state(ClientState.OFFLINE)
        if self._quitting:
            self._quitting = False
            self.closed.emit()
