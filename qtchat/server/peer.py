"""Connections: each socket as a Peer, and the one object that accepts, reads, writes and closes them.

A Peer is one TCP (or TLS) connection with its protocol state machine, counters and
rate limiter. Once its user has logged in it carries a ``User``: the type every
session handler is handed, so "logged in" is a fact of the types, not a check.

``Connections`` owns every Peer: it accepts (refusing a full server or too many
connections from one address), reads at most READ_CHUNK per socket per readyRead
(so one flooding client cannot hog a pass), writes with the per-client output cap,
closes (gracefully, with a last error or ``bye``, or at once) and sweeps (handshake
and ping timeouts, keepalive pings, sockets stuck closing). What a Peer's bytes
mean is the core's business: it is handed them through ``on_data``.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, cast

from PySide6.QtCore import QDateTime, QIODevice, QObject, QTimer
from PySide6.QtNetwork import QAbstractSocket, QHostAddress, QSslCertificate, QSslConfiguration, QSslSocket, QTcpServer

from qtchat.protocol import Connection, Error, ErrorCode, Ping, ProtocolError, Role, SendableEvent
from qtchat.tls import describe_certificate, format_fingerprint

from .config import ServerConfig, rate_limits, work_limits
from .limits import Limiter, WorkBucket

if TYPE_CHECKING:
    from .rooms import Room

log = logging.getLogger("qtchat.server")

READ_CHUNK = 256 * 1024  # bytes read from one socket per readyRead, so a flooding client cannot hog a pass


class User:
    """A logged-in user: one name on one connection, and what the server keeps for it while it lasts."""

    __slots__ = ("away", "away_changes", "held_confirmed", "held_more", "held_sent", "key", "mine", "moved", "name",
                 "peer", "rooms", "socket")

    def __init__(self, name: str, key: str, peer: Peer) -> None:
        self.name = name
        self.key = key  # protocol.names.name_key(name): how names compare
        self.peer = peer
        self.socket = peer.socket  # the fan-out writes here (one attribute less per member per pass)
        self.rooms: list[Room] = []
        self.held_sent = 0  # the newest private message kept while offline sent on this connection
        self.held_more = False  # more of them wait for the next batch
        self.held_confirmed = 0  # the newest one the client confirmed ('delivered')
        self.moved = False  # logged in on another node of the cluster since: it leaves its rooms without a word
        self.mine: dict[int, None] = {}  # the ids of its latest room messages on this connection (journal.MINE_KEPT)
        self.away: str | None = None  # away, with this message (maybe empty); None: here (presence.py)
        self.away_changes: Limiter | None = None  # how often it may change (presence.py), from its first change

    def __repr__(self) -> str:
        return f"<User {self.name} {self.peer.peer}>"


class Peer:
    """One connection and, once logged in, its ``user``."""

    __slots__ = (
        "address", "backlog", "bytes_in", "bytes_out", "closing_since", "conn", "connected_at", "connected_wall",
        "detached", "gone", "held", "id", "last_seen", "limiter", "logging_in", "msgs_in", "peer", "pinged", "socket", "user", "work",
    )

    def __init__(self, socket: QAbstractSocket, conn: Connection, address: str, port: int, now: float, *,
                 peer_id: int) -> None:
        self.id = peer_id  # stable for the connection's life: operators act on exactly the one they see
        self.socket = socket
        self.conn = conn
        self.address = address
        self.peer = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        self.user: User | None = None
        self.connected_at = now
        self.connected_wall = time.time()
        self.last_seen = now
        self.pinged = False
        self.closing_since: float | None = None
        self.detached = False
        self.gone = False  # its socket is closed and deleted: answers that come later go nowhere
        self.held = False  # its hello is being checked: what it sent after it is read once it is welcome
        self.logging_in = False  # a password is being checked
        self.msgs_in = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.limiter: Limiter | None = None
        self.work: WorkBucket | None = None  # what its requests may cost (prices.py)
        self.backlog: deque[object] | None = None  # frames waiting for work units (fakelag), oldest first

    @property
    def label(self) -> str:
        """The user's name once logged in, else the address: for log lines."""
        return self.user.name if self.user is not None else self.peer

    def __repr__(self) -> str:
        return f"<Peer {self.label} {self.peer}>"


class Listener(QTcpServer):
    """A QTcpServer that hands each new connection over as an unbuffered TCP socket, or with TLS
    as a QSslSocket starting its server handshake.

    Memory per idle client is what limits how many a server holds. A buffered
    QAbstractSocket keeps the last chunk of its read buffer (16 KiB) and of its write
    buffer (32 KiB for any write under 4 KiB) allocated for the rest of its life.
    Unbuffered, ``readAll()`` reads straight from the kernel and ``write()`` sends
    straight to it, Qt buffering only what the kernel did not take at once; the
    server drains every read anyway, and its writes are already one buffer per
    client per event-loop pass. QAbstractSocket itself cannot be opened unbuffered, so
    the socket is a QAbstractSocket of type TcpSocket, which is what QAbstractSocket is.

    A QSslSocket cannot be unbuffered (it decrypts into its own buffer); it reports
    decrypted data with readyRead and the peer's close with disconnected().
    """

    def __init__(self, on_socket: Callable[[QAbstractSocket], None], parent: QObject,
                 tls: QSslConfiguration | None = None) -> None:
        super().__init__(parent)
        self._on_socket = on_socket
        self.tls = tls

    def incomingConnection(self, handle: int) -> None:
        if self.tls is not None:
            ssl = QSslSocket(self)
            ssl.setSslConfiguration(self.tls)
            if ssl.setSocketDescriptor(handle):
                # first: whatever the server writes (even a refusal) then goes out encrypted, after
                # the handshake; the signals are connected before the event loop can deliver any
                ssl.startServerEncryption()
                self._on_socket(ssl)
            else:
                log.error("cannot take a new connection: %s", ssl.errorString())
                ssl.deleteLater()
            return
        sock = QAbstractSocket(QAbstractSocket.SocketType.TcpSocket, self)
        mode = QIODevice.OpenModeFlag.ReadWrite | QIODevice.OpenModeFlag.Unbuffered
        if sock.setSocketDescriptor(handle, QAbstractSocket.SocketState.ConnectedState, mode):
            self._on_socket(sock)
        else:
            log.error("cannot take a new connection: %s", sock.errorString())
            sock.deleteLater()


class Connections:
    """Every connection of the server: accepting, bounded reads, capped writes, closing, the sweep.

    The core is told what happens through four callables: ``admit(peer)`` may refuse a new
    connection (a ban) by returning the error to close it with; ``on_data(peer, bytes)`` gets what
    a live connection sent; ``on_detach(peer, reason)`` takes a closing connection's user out of the
    chat; ``on_gone(peer)`` follows when the socket is gone for good.
    """

    def __init__(self, config: ServerConfig, owner: QObject, *, admit: Callable[[Peer], ProtocolError | None],
                 on_data: Callable[[Peer, bytes], None], on_detach: Callable[[Peer, str], None],
                 on_gone: Callable[[Peer], None], report: Callable[[str, str], None],
                 elsewhere: Callable[[str], int] = lambda address: 0) -> None:
        self.config = config
        self.peers: set[Peer] = set()
        self.per_address: dict[str, int] = {}  # connections now open (closing ones too) per IP address
        self.total_bytes_in = 0
        self.total_bytes_out = 0
        self._owner = owner
        self._admit = admit
        self._on_data = on_data
        self._on_detach = on_detach
        self._on_gone = on_gone
        self._report = report
        self._elsewhere = elsewhere  # users of other nodes of a cluster from an address (cluster.py)
        self._ids = itertools.count(1)
        self._ping_tokens = itertools.count(1)

    # ------------------------------------------------------------ accepting

    def accept(self, sock: QAbstractSocket) -> None:
        cfg = self.config
        address = peer_address(sock)
        peer = Peer(sock, Connection(Role.SERVER, max_frame=cfg.max_frame), address, sock.peerPort(),
                    time.monotonic(), peer_id=next(self._ids))
        self.peers.add(peer)
        count = self.per_address[address] = self.per_address.get(address, 0) + 1
        limits = rate_limits(cfg)
        if limits.enabled:
            peer.limiter = Limiter(limits, peer.connected_at)
        work = work_limits(cfg)
        if work.enabled:
            peer.work = WorkBucket(work, peer.connected_at)
        sock.setSocketOption(QAbstractSocket.SocketOption.LowDelayOption, 1)
        sock.setSocketOption(QAbstractSocket.SocketOption.KeepAliveOption, 1)
        sock.readyRead.connect(partial(self._on_ready_read, peer))
        sock.disconnected.connect(partial(self.gone, peer))
        if isinstance(sock, QSslSocket):
            sock.errorOccurred.connect(partial(self._on_tls_error, peer))
        else:
            sock.errorOccurred.connect(partial(self._on_socket_error, peer))
        log.debug("connection from %s", peer.peer)
        refusal = self._refusal(peer, count)
        if refusal is not None:
            self.drop(peer, refusal.code.value, refusal)

    def _refusal(self, peer: Peer, count: int) -> ProtocolError | None:
        cfg = self.config
        if len(self.peers) > cfg.max_clients:
            log.warning("refused %s: server full (%d clients)", peer.peer, cfg.max_clients)
            return ProtocolError(ErrorCode.SERVER_FULL, f"The server is full ({cfg.max_clients} users).", fatal=True)
        others = self._elsewhere(peer.address) if cfg.max_per_address > 0 else 0
        if 0 < cfg.max_per_address < count + others:
            log.warning("refused %s: %d connections from that address already%s", peer.peer, count - 1 + others,
                        f" ({others} on other nodes)" if others else "")
            where = "this chat allows" if others else "this server allows"
            return ProtocolError(
                ErrorCode.TOO_MANY_CONNECTIONS,
                f"Too many connections from your address ({peer.address}): {where} "
                f"{cfg.max_per_address} at once. Close one and try again.", fatal=True)
        return self._admit(peer)

    # ------------------------------------------------------------ reading

    def _on_ready_read(self, peer: Peer) -> None:
        sock = peer.socket
        # at most READ_CHUNK: what is left stays in the kernel and comes with the next readyRead,
        # after the other sockets of this pass had their turn
        available = sock.bytesAvailable()  # unbuffered: what the kernel holds (0 also at end of stream)
        data = cast(bytes, (sock.read(min(available, READ_CHUNK)) if available > 0 else sock.readAll()).data())
        if is_dead(sock):
            # an unbuffered socket reports the peer's close (or a reset) only by this
            # state after the read, never with disconnected(): act on what came first
            if data and not peer.detached:
                self._received(peer, data)
            self.gone(peer)
            return
        if not peer.detached:  # a closing connection's last words are not acted upon
            self._received(peer, data)

    def _received(self, peer: Peer, data: bytes) -> None:
        peer.bytes_in += len(data)
        self.total_bytes_in += len(data)
        peer.last_seen = time.monotonic()
        peer.pinged = False
        self._on_data(peer, data)

    # ------------------------------------------------------------ writing

    def send(self, peer: Peer, event: SendableEvent) -> None:
        self.write(peer, peer.conn.send(event))

    def write(self, peer: Peer, data: bytes) -> None:
        if peer.gone:  # an answer (a page, a search) that came after the connection closed
            return
        sock = peer.socket
        if sock.state() == QAbstractSocket.SocketState.ConnectedState and sock.isValid():
            peer.bytes_out += len(data)
            self.total_bytes_out += len(data)
            sock.write(data)
            # replies to one client (pongs, user lists) count against its output cap too,
            # or a client that asks and never reads would grow the server without bound
            if sock.bytesToWrite() > self.config.max_output and peer.closing_since is None:
                self.drop_slow(peer)

    def drop_slow(self, peer: Peer) -> None:
        log.warning("dropping %s: %d bytes unsent (client not reading)", peer.label, peer.socket.bytesToWrite())
        self.drop(peer, "not reading (send queue full)", graceful=False)

    def fail(self, peer: Peer, exc: ProtocolError, *, report: bool = False) -> None:
        """The one place a ProtocolError becomes an ``error`` frame: sent, and the connection closed
        when it is fatal. Fatal errors (and with ``report``, any) are told to the server's listeners."""
        if exc.fatal or report:
            self._report(peer.peer, f"{exc.code.value}: {exc.message}")
        if exc.fatal:
            log.info("dropping %s: %s (%s)", peer.label, exc.message, exc.code.value)
            self.drop(peer, f"protocol error: {exc.code.value}", exc)
        else:
            log.debug("%s: %s", peer.peer, exc.message)
            self.send(peer, error_frame(exc))

    # ------------------------------------------------------------ closing

    def drop(self, peer: Peer, reason: str, error: ProtocolError | None = None, *,
             farewell: SendableEvent | None = None, graceful: bool = True) -> None:
        """Close a connection: send the error or farewell first when graceful, then close the socket."""
        if peer.closing_since is not None or peer.gone:
            return
        self.detach(peer, reason)
        peer.closing_since = time.monotonic()
        sock = peer.socket
        if graceful:
            if error is not None:
                self.send(peer, error_frame(error))
            if farewell is not None:
                self.send(peer, farewell)
            sock.disconnectFromHost()  # after the queued bytes are out; the sweep aborts stragglers
        else:
            sock.abort()

    def detach(self, peer: Peer, reason: str) -> None:
        """Take the connection out of the chat (its user, if any); its socket may still be closing."""
        if not peer.detached:
            peer.detached = True
            self._on_detach(peer, reason)

    def gone(self, peer: Peer) -> None:
        """The socket is closed: forget the connection."""
        if peer not in self.peers:
            return
        self.detach(peer, "connection closed")
        peer.gone = True
        self.peers.discard(peer)
        left = self.per_address.get(peer.address, 1) - 1
        if left > 0:
            self.per_address[peer.address] = left
        else:
            self.per_address.pop(peer.address, None)
        peer.socket.deleteLater()
        log.debug("closed %s", peer.peer)
        self._on_gone(peer)

    def abort_all(self) -> None:
        for peer in list(self.peers):
            peer.socket.abort()

    def forget_sockets(self) -> None:
        """Deleted without a shutdown: the sockets, children of the server, are deleted next and would
        report their disconnects to an object that no longer exists."""
        for peer in self.peers:
            peer.socket.readyRead.disconnect()
            peer.socket.disconnected.disconnect()
            peer.socket.errorOccurred.disconnect()

    def _on_tls_error(self, peer: Peer, error: QAbstractSocket.SocketError) -> None:
        """A TLS connection failed: a handshake that went wrong (a plain-text client, garbage, no
        common protocol), or a broken connection. Only this connection is closed."""
        sock = peer.socket
        if error == QAbstractSocket.SocketError.RemoteHostClosedError:
            return  # an ordinary close: disconnected() follows
        assert isinstance(sock, QSslSocket)
        if not sock.isEncrypted() and peer.closing_since is None:
            log.info("TLS handshake with %s failed: %s", peer.peer, sock.errorString())
            self._report(peer.peer, f"TLS handshake failed: {sock.errorString()}")
        else:
            log.debug("TLS connection %s: %s", peer.peer, sock.errorString())
        if sock.state() != QAbstractSocket.SocketState.UnconnectedState:
            self.drop(peer, "TLS error", graceful=False)

    def _on_socket_error(self, peer: Peer, error: QAbstractSocket.SocketError) -> None:
        # A write to a peer that closed or reset (its hello and its close can come in one read)
        # leaves the socket invalid but still "connected", and no signal follows: reap it once the
        # code that was writing (possibly looping over a room) is done.
        QTimer.singleShot(0, self._owner, partial(self._reap_if_dead, peer))

    def _reap_if_dead(self, peer: Peer) -> None:
        if peer in self.peers and is_dead(peer.socket):
            self.gone(peer)

    # ------------------------------------------------------------ the sweep

    def sweep_interval_ms(self) -> int:
        cfg = self.config
        shortest = min(cfg.handshake_timeout, cfg.ping_interval, cfg.ping_timeout, cfg.close_timeout)
        return max(20, min(1000, int(shortest * 1000 / 4)))

    def sweep(self) -> None:
        """Handshake timeouts, keepalive pings, dead peers, and sockets stuck closing."""
        now = time.monotonic()
        for peer in list(self.peers):
            if is_dead(peer.socket):
                self.gone(peer)  # closed without a signal (see _on_ready_read)
            elif peer.closing_since is not None:
                if now - peer.closing_since > self.config.close_timeout:
                    peer.socket.abort()
            elif peer.user is None:
                self._check_handshake(peer, now)
            else:
                self._check_alive(peer, now)

    def _check_handshake(self, peer: Peer, now: float) -> None:
        cfg = self.config
        if now - peer.connected_at <= cfg.handshake_timeout:
            return
        sock = peer.socket
        if isinstance(sock, QSslSocket) and not sock.isEncrypted():
            log.info("dropping %s: TLS handshake not done within %g seconds", peer.peer, cfg.handshake_timeout)
            self.drop(peer, "TLS handshake timeout", graceful=False)  # nothing can be said to it
        else:
            self.drop(peer, "handshake timeout", ProtocolError(
                ErrorCode.HANDSHAKE_TIMEOUT, f"No hello within {cfg.handshake_timeout:g} seconds.", fatal=True))

    def _check_alive(self, peer: Peer, now: float) -> None:
        cfg = self.config
        idle = now - peer.last_seen
        if idle > cfg.ping_interval + cfg.ping_timeout:
            self.drop(peer, "ping timeout", ProtocolError(
                ErrorCode.PING_TIMEOUT, f"No answer for {idle:.0f} seconds.", fatal=True), graceful=False)
        elif idle > cfg.ping_interval and not peer.pinged:
            peer.pinged = True
            self.send(peer, Ping(f"k{next(self._ping_tokens)}"))


def error_frame(exc: ProtocolError) -> Error:
    return Error(exc.code.value, exc.message, exc.fatal, exc.ref, exc.retry_after)


def is_dead(sock: QAbstractSocket) -> bool:
    """Closed, reset, or failed: an unbuffered socket whose write failed stays 'connected' but invalid."""
    return sock.state() == QAbstractSocket.SocketState.UnconnectedState or not sock.isValid()


def log_certificate(cert: QSslCertificate, fingerprint: str) -> None:
    """What a server listening with TLS logs of its certificate, and whether clients will accept it today."""
    log.info("TLS certificate: %s", describe_certificate(cert))
    log.info("TLS certificate SHA-256 fingerprint: %s", format_fingerprint(fingerprint))
    now = QDateTime.currentDateTimeUtc()
    if cert.expiryDate() < now:
        log.warning("the TLS certificate expired on %s: clients will refuse it", cert.expiryDate().toString("yyyy-MM-dd"))
    elif cert.effectiveDate() > now:
        log.warning("the TLS certificate is valid only from %s", cert.effectiveDate().toString("yyyy-MM-dd"))


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def peer_address(sock: QAbstractSocket) -> str:
    text = str(sock.peerAddress().toString())
    return text[7:] if text.startswith("::ffff:") else text  # an IPv4 client of a dual-stack socket


def host_address(host: str) -> QHostAddress:
    special = {
        "localhost": QHostAddress.SpecialAddress.LocalHost,
        "*": QHostAddress.SpecialAddress.Any,
        "any": QHostAddress.SpecialAddress.Any,
        "0.0.0.0": QHostAddress.SpecialAddress.AnyIPv4,
        "::": QHostAddress.SpecialAddress.AnyIPv6,
    }
    if host.lower() in special:
        return QHostAddress(special[host.lower()])
    addr = QHostAddress()
    if not addr.setAddress(host):
        raise OSError(f"{host!r} is not an IP address (use an address such as 127.0.0.1, 0.0.0.0 or ::)")
    return addr
