"""The client's link to one server: connect (with TLS), log in, notice a loss and why, reconnect with backoff,
measure latency, quit.

``ClientLink`` is the part of ``ChatClient`` that owns the QTcpSocket (a QSslSocket with TLS) and the
sans-I/O protocol Connection. It knows nothing of rooms or messages: ``ChatClient`` (qtchat/client/session.py)
adds those, handles the events (``_dispatch``) and resets its own state through the ``_forget_server``,
``_new_connection`` and ``_link_down`` hooks.

TLS is trust on first use: a certificate that verifies against the system's certificate authorities and
names the host is accepted silently; any other is accepted only when its SHA-256 fingerprint is the one
pinned for that host and port (``PinStore``). Unknown or changed certificates end the attempt without a retry.

A server may have several addresses (the nodes of a cluster): the user's own (``connect_to("a,b:4322", ...)``),
then those the server announces in ``welcome.nodes``. They are tried in turn: a failed attempt moves to the next
at once, the backoff waits only after a whole round failed, and after a loss the next attempt starts with the
address after the one that died. A reconnect to another address is a reconnect like any other (rooms joined
again, catch-up after the last id seen, the outbox resent with its cids). An announced node's certificate is
accepted when it verifies or is pinned for it or for one of the user's addresses; any other is passed over.
"""

from __future__ import annotations

import enum
import logging
import random
import time
from collections.abc import Callable
from typing import cast

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtNetwork import QAbstractSocket, QSslConfiguration, QSslError, QSslSocket, QTcpSocket

from qtchat import __version__
from qtchat.protocol import (
    NEED_DATA,
    PEER_CLOSED,
    Bye,
    Connection,
    Error,
    ErrorCode,
    Event,
    Hello,
    Ping,
    Pong,
    ProtocolError,
    Role,
    SendableEvent,
    Welcome,
)
from qtchat.protocol.addresses import Address, format_address, format_addresses, parse_address, parse_addresses
from qtchat.tls import certificate_fingerprint, describe_certificate, format_fingerprint

from .pins import PinStore
from .reasons import FINAL_BYES, FINAL_LOGIN_ERRORS, CertificateProblem, Failure, Loss, Reason, bye_code, bye_loss

log = logging.getLogger("qtchat.client")

SocketError = QAbstractSocket.SocketError
# socket errors that say it all, whatever the protocol
_SOCKET_LOSSES = {
    SocketError.RemoteHostClosedError: Loss.CLOSED,
    SocketError.ConnectionRefusedError: Loss.REFUSED,
    SocketError.HostNotFoundError: Loss.HOST_NOT_FOUND,
}


class ClientState(enum.StrEnum):
    OFFLINE = "offline"  # not connected and not trying
    CONNECTING = "connecting"  # a connection or login is under way
    ONLINE = "online"  # logged in
    WAITING = "waiting"  # lost the connection; the next attempt is scheduled


class ClientLink(QObject):
    """One user's link to one server; see ChatClient for the signals (these are declared here)."""

    state_changed = Signal(str)
    logged_in = Signal(object)
    login_failed = Signal(str, object)
    certificate_unknown = Signal(str, int, str, str)
    certificate_changed = Signal(str, int, str, str)
    connection_lost = Signal(object)
    reconnect_scheduled = Signal(float)
    latency_changed = Signal(int)
    closed = Signal()

    PING_INTERVAL = 10.0  # seconds between our latency pings
    LOGIN_TIMEOUT = 15.0  # connected, but no welcome this long after our hello: give up on this attempt
    CONNECT_TIMEOUT = 10.0  # no TCP connection this long (an address that drops what is sent to it): the next one
    STABLE_AFTER = 30.0  # online this long: the next loss starts the backoff from the beginning
    DEAD_AFTER = 35.0  # no byte from the server for this long: the connection is dead
    BACKOFF_BASE = 0.5
    BACKOFF_CAP = 30.0

    def __init__(self, parent: QObject | None = None, pins: PinStore | None = None) -> None:
        super().__init__(parent)
        self.state = ClientState.OFFLINE
        self.host = ""  # the address of the current (or last) attempt
        self.port = 0
        self.addresses: list[Address] = []  # the user's addresses for this server, in order
        self.announced: list[Address] = []  # the server's other nodes (welcome.nodes) not among them
        self._index = 0  # the address of the current attempt, in self.targets
        self._round_left = 0  # attempts left before the backoff, the current one included
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
        self.welcome: Welcome | None = None
        self.latency_ms: int | None = None
        self._socket: QTcpSocket | None = None
        self._conn = Connection(Role.CLIENT)
        self._ever_online = False
        self._quitting = False
        self._attempt = 0
        self._fatal: Error | None = None
        self._timed_out: Loss | None = None  # the login did not complete in time (LOGIN_TIMEOUT or TLS_TIMEOUT)
        self._bye: Bye | None = None  # the server's, before it closed
        self._last_rx = 0.0
        self._online_since = 0.0
        self._ping_sent: dict[str, float] = {}
        self._reconnect_timer = self._timer(self._open, single=True)
        self._ping_timer = self._timer(self._on_ping_timer)
        self._login_timer = self._timer(self._on_login_timeout, single=True)
        self._quit_timer = self._timer(self._abort_quit, single=True)

    def _timer(self, slot: Callable[[], object], single: bool = False) -> QTimer:
        timer = QTimer(self)
        timer.setSingleShot(single)
        timer.timeout.connect(slot)
        return timer

    # ------------------------------------------------------------ what ChatClient adds

    def _dispatch(self, event: Event) -> None:
        """Handle one event from the server."""
        raise NotImplementedError

    def _forget_server(self) -> None:
        """connect_to() another server: what was kept for the last one does not apply."""

    def _new_connection(self) -> None:
        """A new connection opens: state tied to the old one goes."""

    def _link_down(self) -> None:
        """The connection is gone (before any retry is decided)."""

    # ------------------------------------------------------------ public API

    def connect_to(self, host: str, port: int, user: str, tls: bool = False) -> None:
        """Connect and log in (inside TLS with ``tls``); on success the client stays connected,
        reconnecting as needed (with TLS and the same pin).

        ``host`` is one address or several of the same server, comma-separated: ``host``, ``host:port``,
        ``[IPv6]:port`` (``port`` for those without one). Raises ValueError (a sentence for the user) for
        text that is not that."""
        addresses = parse_addresses(host, port)
        self._close_socket()
        if addresses != self.addresses:
            self._forget_server()
            self.announced = []
        self.addresses, self.user, self.tls = addresses, user, tls
        self.certificate_problem = None
        self._ever_online = False
        self._quitting = False
        self._attempt = 0
        self._index = 0
        self._round_left = len(self.targets)
        self.host, self.port = self.targets[0]
        self._open()

    @property
    def targets(self) -> list[Address]:
        """Every address tried, in order: the user's, then the announced ones."""
        return self.addresses + self.announced

    @property
    def server_address(self) -> Address:
        """The server as the user named it (its first address): what settings are kept under."""
        return self.addresses[0] if self.addresses else (self.host, self.port)

    @property
    def addresses_text(self) -> str:
        """The user's addresses, as connect_to() takes them back."""
        return format_addresses(self.addresses)

    @property
    def address(self) -> str:
        """The address of the current (or last) connection, ``host:port``."""
        return format_address(self.host, self.port) if self.host else ""

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

    # ------------------------------------------------------------ the connection

    def _set_state(self, state: ClientState) -> None:
        if state is not self.state:
            self.state = state
            self.state_changed.emit(state.value)

    def _open(self) -> None:
        self._close_socket()
        self._conn = Connection(Role.CLIENT, max_frame=1 << 20)
        self._new_connection()
        self._fatal = None
        self._timed_out = None
        self._bye = None
        self._rx_head = b""
        self._bad_frame = None
        self.certificate_problem = None
        if self.tls and not QSslSocket.supportsSsl():
            self._set_state(ClientState.CONNECTING)
            QTimer.singleShot(0, self._tls_unavailable)
            return
        sock = self._new_socket()
        sock.connected.connect(self._on_connected)
        sock.readyRead.connect(self._on_ready_read)
        sock.disconnected.connect(self._on_socket_gone)
        sock.errorOccurred.connect(self._on_socket_gone)
        self._socket = sock
        self._set_state(ClientState.CONNECTING)
        self._login_timer.start(int(self.CONNECT_TIMEOUT * 1000))  # restarted with LOGIN_TIMEOUT once connected
        if isinstance(sock, QSslSocket):
            sock.connectToHostEncrypted(self.host, self.port)  # checks the certificate against this name
        else:
            sock.connectToHost(self.host, self.port)

    def _new_socket(self) -> QTcpSocket:
        if not self.tls:
            return QTcpSocket(self)
        ssl = QSslSocket(self)
        if self.ssl_configuration is not None:
            ssl.setSslConfiguration(self.ssl_configuration)
        ssl.encrypted.connect(self._on_encrypted)
        ssl.sslErrors.connect(self._on_ssl_errors)
        return ssl

    def _tls_unavailable(self) -> None:
        if self._socket is not None or self.state is not ClientState.CONNECTING:
            return
        self._set_state(ClientState.OFFLINE)
        self.login_failed.emit(Failure.TLS_UNAVAILABLE, Reason(Loss.TLS_UNAVAILABLE, self.host, self.port))

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

    def _send(self, event: SendableEvent) -> None:
        self._write(self._conn.send(event))

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
        self._send(Hello(user=self.user, client=f"qtchat {__version__}", password=self.password,
                         register=self.register_on_login))

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
        if pinned == presented or (self._announced_target() and presented in self._user_pins()):
            sock.ignoreSslErrors(errors)
            return
        reasons = "; ".join(dict.fromkeys(e.errorString() for e in errors))
        self.certificate_problem = CertificateProblem(
            Failure.CERTIFICATE_CHANGED if pinned else Failure.CERTIFICATE_UNKNOWN, self.host, self.port,
            presented, pinned, f"{describe_certificate(cert)}. {reasons}.")

    def _announced_target(self) -> bool:
        return (self.host, self.port) not in self.addresses

    def _user_pins(self) -> set[str]:
        return {pin for host, port in self.addresses if (pin := self.pins.get(host, port)) is not None}

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

    # ------------------------------------------------------------ the handshake's events

    def _login_done(self, welcome: Welcome) -> None:
        """The server accepted us: online (ChatClient then joins the rooms and sends the outbox)."""
        self._login_timer.stop()
        self.welcome = welcome
        self.me = welcome.user
        self._learn_nodes(welcome.nodes)
        self._round_left = len(self.targets)  # a loss from here starts a new round
        # relayed frames are a little larger than the largest a client may send
        self._conn.max_frame = max(1 << 20, welcome.max_frame + 4096)
        self._online_since = time.monotonic()
        self._ever_online = True
        self._set_state(ClientState.ONLINE)
        self._ping_timer.start(int(self.PING_INTERVAL * 1000))
        self.logged_in.emit(welcome)

    def _learn_nodes(self, nodes: tuple[str, ...]) -> None:
        """The server's announced nodes become the addresses tried after the user's (not the user's own)."""
        announced: list[Address] = []
        for node in nodes:
            try:
                address = parse_address(node)
            except ValueError:
                log.info("the server announced a node address that is not one: %r", node)
                continue
            if address not in self.addresses and address not in announced:
                announced.append(address)
        self.announced = announced
        current = (self.host, self.port)
        # the next attempt after a loss is the address after this one (the first if this one is no longer listed)
        self._index = self.targets.index(current) if current in self.targets else -1

    def _on_ping(self, event: Ping) -> None:
        self._send(Pong(event.token))

    def _on_pong(self, event: Pong) -> None:
        sent = self._ping_sent.pop(event.token, None)
        if time.monotonic() - self._online_since > self.STABLE_AFTER:
            self._attempt = 0  # a connection that lasts: the next loss starts the backoff afresh
        if sent is not None:
            self.latency_ms = round((time.monotonic() - sent) * 1000)
            self.latency_changed.emit(self.latency_ms)

    def _on_bye(self, event: Bye) -> None:
        self._bye = event

    # ------------------------------------------------------------ losing it

    def _on_socket_gone(self, *args: object) -> None:
        sock = self._socket
        if sock is None or self.sender() is not sock:
            return
        self._socket_gone(sock)

    def _socket_gone(self, sock: QTcpSocket) -> None:
        self._login_timer.stop()
        reason = self._loss_reason(sock)
        self._close_socket()
        self._ping_timer.stop()
        self._ping_sent.clear()
        self._link_down()
        if self._quitting:
            self._finish_quit()
            return
        code = self._final_code()
        if code is None:
            if self.state is ClientState.ONLINE:
                self.connection_lost.emit(reason)
            self._next_attempt()
            return
        self._set_state(ClientState.OFFLINE)
        problem = self.certificate_problem
        if problem is not None and problem.code is Failure.CERTIFICATE_CHANGED:
            assert problem.pinned is not None
            self.certificate_changed.emit(problem.host, problem.port, problem.pinned, problem.fingerprint)
        elif problem is not None:
            self.certificate_unknown.emit(problem.host, problem.port, problem.fingerprint, problem.summary)
        self.login_failed.emit(code, reason)

    def _final_code(self) -> str | None:
        """login_failed's code when this loss ends the trying; None when another attempt follows."""
        if self.certificate_problem is not None and self._announced_target():
            log.info("passing over %s: its certificate is not trusted", self.address)
            self.certificate_problem = None  # the user is not asked about a node the server announced
        if self.certificate_problem is not None:  # never retried: the user decides
            return self.certificate_problem.code
        fatal = self._fatal
        code = ErrorCode.parse(fatal.code) if fatal is not None else None
        final = code in FINAL_LOGIN_ERRORS or (code is ErrorCode.NAME_TAKEN and not self._ever_online)
        kicked = self._bye is not None and bye_code(self._bye) in FINAL_BYES
        # never logged in: the other addresses of this round are still tried, then it ends
        if not (final or kicked or (not self._ever_online and self._round_left <= 1)):
            return None
        if self._timed_out is not None:
            return Failure.TIMEOUT
        if fatal is not None:
            return fatal.code  # as the server sent it (one this version does not know included)
        return Failure.KICKED if kicked else Failure.NETWORK

    def _loss_reason(self, sock: QTcpSocket) -> Reason:
        problem = self.certificate_problem
        if problem is not None:
            return Reason(Loss(problem.code.value), self.host, self.port, certificate=problem)
        if self._timed_out is not None:
            return Reason(self._timed_out, self.host, self.port)
        if self._fatal is not None:
            return Reason(Loss.SERVER_ERROR, self.host, self.port, self._fatal.message)
        if self._bye is not None and (self._bye.reason or self._bye.code):
            return Reason(bye_loss(self._bye), self.host, self.port, self._bye.reason)
        return self._socket_loss(sock)

    def _socket_loss(self, sock: QTcpSocket) -> Reason:
        """What the socket says of the loss (nobody said why)."""
        error = sock.error()
        encrypted = isinstance(sock, QSslSocket) and sock.isEncrypted()
        loss: Loss | None = None
        if self.tls and not encrypted and error in (SocketError.SslHandshakeFailedError,
                                                    SocketError.RemoteHostClosedError):
            return Reason(Loss.NOT_TLS, self.host, self.port, sock.errorString())
        if not self.tls and self.state is not ClientState.ONLINE:  # not logged in on this connection
            loss = self._plain_loss(error)
            if loss is Loss.NOT_QTCHAT:
                return Reason(loss, self.host, self.port, self._bad_frame or "")
        loss = loss or _SOCKET_LOSSES.get(error)
        if loss is not None:
            return Reason(loss, self.host, self.port)
        text = sock.errorString()
        if text and text != "Unknown error":
            return Reason(Loss.SOCKET_ERROR, self.host, self.port, text)
        return Reason(Loss.LOST, self.host, self.port)

    def _plain_loss(self, error: QAbstractSocket.SocketError) -> Loss | None:
        """A plain connection lost before the login: signs that the server wants TLS."""
        if self._rx_head[:1] in (b"\x15", b"\x16") and self._rx_head[1:2] == b"\x03":
            return Loss.TLS_REQUIRED
        if self._bad_frame is not None:
            return Loss.NOT_QTCHAT
        if not self._rx_head and error == SocketError.RemoteHostClosedError:
            return Loss.CLOSED_SILENTLY
        return None

    def _next_attempt(self) -> None:
        """Move on to the next address: at once while this round has addresses left, else after the backoff."""
        targets = self.targets
        self._index = (self._index + 1) % len(targets)
        self.host, self.port = targets[self._index]
        self._round_left -= 1
        if self._round_left > 0:
            log.info("trying the next address of the server: %s", self.address)
            self._open()
            return
        self._round_left = len(targets)
        self._schedule_reconnect()

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
        self._send(Ping(token))

    def _on_ping_timer(self) -> None:
        if self._socket is None:
            return
        if time.monotonic() - self._last_rx > self.DEAD_AFTER:
            log.info("no data from the server for %.0f s: reconnecting", self.DEAD_AFTER)
            self._socket.abort()
            return
        self._send_ping()

    def _on_login_timeout(self) -> None:
        sock = self._socket
        if sock is None or self.state is ClientState.ONLINE:
            return
        if sock.state() != QAbstractSocket.SocketState.ConnectedState:
            self._timed_out = Loss.CONNECT_TIMEOUT
        else:
            self._timed_out = Loss.TLS_TIMEOUT if self.tls and not self.is_encrypted else Loss.LOGIN_TIMEOUT
        sock.abort()
        if self._socket is sock:  # aborting a connection not yet made says nothing: its loss is handled here
            self._socket_gone(sock)

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
