"""The chat server core: a QObject on QTcpServer, driven by the Qt event loop, no threads.

It runs the same under ``qtchat-server`` (headless), under the admin window and
inside the desktop client's "host on this computer" mode. It imports QtCore and
QtNetwork only.

Hot path, for room fan-out: a chat message is decoded once, encoded once, and
appended to its room's pending batch; once per event-loop pass (a zero-time
QTimer) each room joins its batch into one buffer and writes that same buffer
to every member. Writes to each client are therefore coalesced per pass, and no
per-recipient Python work is done per message.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import cast

from PySide6.QtCore import QByteArray, QDateTime, QIODevice, QObject, QTimer, Signal
from PySide6.QtNetwork import QAbstractSocket, QHostAddress, QSslConfiguration, QSslSocket, QTcpServer

from qtchat import __version__
from qtchat.protocol import (
    DEFAULT_MAX_FRAME,
    DEFAULT_ROOM,
    NEED_DATA,
    PEER_CLOSED,
    AccountStatus,
    BanRequest,
    Bye,
    Connection,
    Delivered,
    Error,
    ErrorCode,
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
    SendableEvent,
    SendMessage,
    SetTopic,
    TopicChanged,
    UsersRequest,
    Welcome,
    check_password,
    clean_line,
    encode_event,
    encode_frame,
    encode_name,
    encode_user_lists,
    name_key,
    names_per_frame,
    validate_name,
)
from qtchat.protocol.events import UNREAD_CAP, search_result_wire
from qtchat.tls import TlsSetupError, describe_certificate, format_fingerprint, load_server_tls

from .accounts import AccountStore, Hasher, hash_password, verify_password
from .bans import Ban, BanList
from .limits import Limiter, RateLimits, Verdict
from .store import INDEX_BATCH, MailRow, MessageStore, StoredMessage

log = logging.getLogger("qtchat.server")

RECENT_CIDS_PER_USER = 64
PASSWD_REF = "passwd"  # the ``ref`` of every error that answers a ``passwd`` frame
AUTH_WINDOW = 60.0  # seconds: wrong passwords from one address are counted over this long
AUTH_FAILURES_ALLOWED = 10
RECENT_CID_USERS = 5_000
INDEX_INTERVAL_MS = 1000  # how often stored messages are added to the full-text index
INDEX_CATCH_UP_MS = 200  # ...and while it is behind (after an import or a burst) and no message came in
INDEX_BUDGET_S = 0.02  # at most this long per indexing tick
SEARCH_INDEX_BUDGET_S = 0.1  # a search first indexes for at most this long; what is left is scanned
READ_CHUNK = 256 * 1024  # bytes read from one socket per readyRead, so a flooding client cannot hog a pass
HELD_BATCH = 100  # private messages kept for an offline user: at most this many are sent at once...
HELD_BATCH_BYTES = 512 * 1024  # ...and about this many bytes; the next batch waits for the client's 'delivered'


@dataclass
class ServerConfig:
    """Everything the command line can set. Times are in seconds, sizes in bytes."""

    host: str = "127.0.0.1"
    port: int = 4321
    name: str = "qtchat"
    motd: str = ""
    max_clients: int = 10_000
    max_frame: int = DEFAULT_MAX_FRAME
    max_output: int = 8 * 1024 * 1024
    handshake_timeout: float = 10.0
    ping_interval: float = 30.0
    ping_timeout: float = 30.0
    close_timeout: float = 5.0
    data_dir: Path | None = None  # where bans.json and messages.db live; None keeps both in memory
    keep_days: float | None = None  # history retention: drop messages older than this
    keep_messages: int | None = None  # history retention: keep at most this many per room
    history: bool = True  # False: keep no history at all (history requests get empty pages)
    full_text: bool = True  # False: searches scan the messages with LIKE (slower), as without SQLite's FTS5
    max_rooms_per_user: int = 50
    mailbox_size: int = 1000  # private messages kept per offline registered user; 0 keeps none
    registration: bool = True  # anyone may register a free name with a password
    require_accounts: bool = False  # only registered names may log in
    # per-connection limits (see qtchat/server/limits.py and docs/SECURITY.md); 0 turns one off
    rate_messages: float = 10.0  # chat messages per second
    rate_burst: int = 20  # chat messages at once
    rate_bytes: int = 64 * 1024  # bytes received per second
    rate_bytes_burst: int = 512 * 1024  # bytes at once (never less than max_frame + 2)
    flood_after: int = 50  # refused messages within flood_window seconds before a 'flood' disconnect
    flood_window: float = 10.0
    max_per_address: int = 16  # simultaneous connections from one IP address
    notice_delay: float = 0.05  # joins/leaves wait this long to be sent together (scaled up for crowds)
    listen_backlog: int = 4096
    tls_cert: Path | None = None  # PEM certificate (chain); with tls_key, every connection is TLS
    tls_key: Path | None = None  # PEM private key of tls_cert


RecentCid = tuple[int, int, str, int, bool]  # id, ts, room key or "@" recipient key, hash of the text, held


class MessageIds:
    """Message ids: microseconds since the Unix epoch, bumped to stay strictly increasing.

    Unique across restarts as long as the clock does not go back by more than
    the ids ran ahead of it; the durable store will seed ``last`` from the
    highest stored id. Every id fits in JavaScript's 2**53.
    """

    __slots__ = ("last",)

    def __init__(self, last: int = 0) -> None:
        self.last = last

    def next(self) -> int:
        now = time.time_ns() // 1000
        self.last = now if now > self.last else self.last + 1
        return self.last


class Session:
    """One TCP connection and, once logged in, one user."""

    __slots__ = (
        "address",
        "bytes_in",
        "bytes_out",
        "closing_since",
        "conn",
        "connected_at",
        "connected_wall",
        "detached",
        "held_confirmed",
        "held_more",
        "held_sent",
        "key",
        "last_seen",
        "limiter",
        "logging_in",
        "msgs_in",
        "name",
        "peer",
        "pinged",
        "rooms",
        "socket",
    )

    def __init__(self, socket: QAbstractSocket, conn: Connection, address: str, port: int, now: float) -> None:
        self.socket = socket
        self.conn = conn
        self.address = address
        self.peer = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        self.name: str | None = None
        self.key: str | None = None
        self.rooms: list[Room] = []
        self.connected_at = now
        self.connected_wall = time.time()
        self.last_seen = now
        self.pinged = False
        self.closing_since: float | None = None
        self.detached = False
        self.logging_in = False  # a password is being checked
        self.msgs_in = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.limiter: Limiter | None = None
        self.held_sent = 0  # the newest private message kept for this user while offline sent on this connection
        self.held_more = False  # more of them wait for the next batch
        self.held_confirmed = 0  # the newest one the client confirmed ('delivered')

    def __repr__(self) -> str:
        return f"<Session {self.name or '?'} {self.peer}>"


class Room:
    """A room: its members and the frames waiting for this pass's flush.

    A member that joins during a pass gets only the part of the pending batch
    queued after it joined (``joiners`` keeps its offset), so nobody sees a
    message from before they arrived, and nobody misses one.
    """

    __slots__ = ("encoded_names", "joiners", "key", "members", "name", "names", "pending", "pending_len", "topic")

    def __init__(self, name: str, topic: str = "") -> None:
        self.name = name
        self.key = name_key(name)  # rooms compare like usernames; the history is kept under this
        self.topic = topic
        self.members: set[Session] = set()
        self.names: dict[str, str] = {}  # name key -> display name, in join order
        self.encoded_names: dict[str, bytes] = {}  # name key -> the name as a JSON string
        self.pending: list[bytes] = []
        self.pending_len = 0
        self.joiners: dict[Session, int] = {}


def rate_limits(cfg: ServerConfig) -> RateLimits:
    return RateLimits(
        messages=max(0.0, cfg.rate_messages), burst=max(1, cfg.rate_burst), bytes=max(0, cfg.rate_bytes),
        bytes_burst=max(cfg.rate_bytes_burst, cfg.max_frame + 2), flood_after=max(0, cfg.flood_after),
        flood_window=cfg.flood_window,
    )


def announced_limits(cfg: ServerConfig) -> dict[str, float]:
    """The limits a client is told in ``welcome`` (0: none)."""
    lim = rate_limits(cfg)
    return {
        "messages_per_s": lim.messages, "messages_burst": lim.burst if lim.messages else 0,
        "bytes_per_s": lim.bytes, "bytes_burst": lim.bytes_burst if lim.bytes else 0,
        "max_rooms": cfg.max_rooms_per_user, "max_per_address": cfg.max_per_address,
    }


class _Listener(QTcpServer):
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


class ChatServer(QObject):
    """The chat server.

    Signals:
        user_joined(name, peer): a user completed the handshake.
        user_left(name, reason): a logged-in user is gone.
        message_posted(Message): a chat message was accepted and relayed (or kept for an offline recipient: held).
        client_error(peer, text): a client broke the protocol or its connection failed.
        stopped(): shutdown() finished; every connection is closed.
    """

    user_joined = Signal(str, str)
    user_left = Signal(str, str)
    message_posted = Signal(object)
    client_error = Signal(str, str)
    stopped = Signal()

    def __init__(self, config: ServerConfig | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.config = config or ServerConfig()
        self.sessions: set[Session] = set()
        self.per_address: dict[str, int] = {}  # connections now open (closing ones too) per IP address
        self.users: dict[str, Session] = {}  # name key -> session
        self.rooms: dict[str, Room] = {DEFAULT_ROOM: Room(DEFAULT_ROOM)}
        self.bans = BanList(self.config.data_dir / "bans.json" if self.config.data_dir else None)
        cfg = self.config
        self.store = MessageStore(
            cfg.data_dir / "messages.db" if cfg.data_dir and cfg.history else None, keep_days=cfg.keep_days,
            # a history kept in memory only is bounded whatever the settings say
            keep_per_room=cfg.keep_messages if cfg.data_dir or cfg.keep_messages else 20_000,
            full_text=cfg.full_text,
        )
        self.ids = MessageIds(self.store.opened_at_id)  # the newest id stored before this run
        self.accounts = AccountStore(cfg.data_dir / "accounts.db" if cfg.data_dir else None)
        self.hasher = Hasher(parent=self)
        self._auth_failures: dict[str, list[float]] = {}  # address -> times of wrong passwords
        # accepted this pass, stored at the flush before anyone sees them: (row, session)
        self._unstored: list[tuple[tuple[int, str, int, str, str, str | None, str], Session]] = []
        # read markers moved this pass, stored with the pass's messages: (user key, room key) -> id
        self._dirty_markers: dict[tuple[str, str], int] = {}
        # private messages for offline users accepted this pass, and repeated acknowledgements of them:
        # stored at the flush, and only then acknowledged to their senders: (row or None, sender, ack, cid)
        self._unstored_mail: list[tuple[MailRow | None, Session, bytes, str | None]] = []
        self._mail_pending: dict[str, int] = {}  # recipient key -> how many of theirs are in _unstored_mail
        # held messages their recipients confirmed this pass, deleted at the flush: user key -> upto
        self._mail_delivered: dict[str, int] = {}
        self._prune_timer = QTimer(self)
        self._prune_timer.timeout.connect(self._prune)
        self._prune_timer.start(10 * 60 * 1000)
        self._prune()
        self._index_timer = QTimer(self)
        self._messages_at_index = 0  # total_messages at the last indexing tick
        self._index_timer.timeout.connect(self._index)
        if self.store.fts and cfg.history:
            self._index_timer.start(INDEX_INTERVAL_MS)
        self.muted: set[str] = set()  # name keys
        self.started = time.time()
        self.total_messages = 0
        self.total_bytes_in = 0
        self.total_bytes_out = 0
        # name key -> cid -> (id, ts, room key or "@" recipient key, hash of text, held): each user's recent
        # messages, so that a resend after a reconnect is acknowledged again instead of relayed twice
        # (small and bounded)
        self._recent_cids: OrderedDict[str, OrderedDict[str, RecentCid]] = OrderedDict()
        self._tcp = _Listener(self._on_new_connection, self)
        self.fingerprint: str | None = None  # with TLS: the certificate's SHA-256, 64 hex digits
        self._tcp.acceptError.connect(self._on_accept_error)
        self._dirty: list[Room] = []
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(0)
        self._flush_timer.timeout.connect(self.flush)
        self._notice_timer = QTimer(self)
        self._notice_timer.setSingleShot(True)
        self._notice_timer.timeout.connect(self.flush)
        self._sweep_timer = QTimer(self)
        self._sweep_timer.timeout.connect(self._sweep)
        self._ping_tokens = itertools.count(1)
        self._stopping = False
        self._stopped = False
        self.accepting = True
        self._stop_deadline = QTimer(self)
        self._stop_deadline.setSingleShot(True)
        self._stop_deadline.timeout.connect(self._abort_all)
        sessions = self.sessions

        def forget_sockets() -> None:
            # deleted without shutdown(): the sockets, our children, are deleted next and
            # would report their disconnects to this object, which no longer exists
            for session in sessions:
                session.socket.readyRead.disconnect()
                session.socket.disconnected.disconnect()
                session.socket.errorOccurred.disconnect()

        self.destroyed.connect(forget_sockets)

    # ------------------------------------------------------------ lifecycle

    def listen(self) -> None:
        """Start accepting connections; raises OSError when the address cannot be used."""
        cfg = self.config
        tls = None
        if cfg.tls_cert is not None or cfg.tls_key is not None:
            if cfg.tls_cert is None or cfg.tls_key is None:
                raise TlsSetupError("TLS needs both a certificate (--tls-cert) and its private key (--tls-key).")
            tls = load_server_tls(cfg.tls_cert, cfg.tls_key)  # raises TlsSetupError, an OSError
            self._tcp.tls = tls.configuration
        self._tcp.setListenBacklogSize(cfg.listen_backlog)
        if not self._tcp.listen(_host_address(cfg.host), cfg.port):
            raise OSError(f"cannot listen on {cfg.host}:{cfg.port}: {self._tcp.errorString()}")
        shortest = min(cfg.handshake_timeout, cfg.ping_interval, cfg.ping_timeout, cfg.close_timeout)
        self._sweep_timer.start(max(20, min(1000, int(shortest * 1000 / 4))))
        log.info("listening on %s:%d%s (protocol 1, max %d clients)", cfg.host, self.port,
                 " with TLS" if tls else "", cfg.max_clients)
        if tls is not None:
            self.fingerprint = tls.fingerprint
            cert = tls.certificate
            log.info("TLS certificate: %s", describe_certificate(cert))
            log.info("TLS certificate SHA-256 fingerprint: %s", format_fingerprint(tls.fingerprint))
            now = QDateTime.currentDateTimeUtc()
            if cert.expiryDate() < now:
                log.warning("the TLS certificate expired on %s: clients will refuse it",
                            cert.expiryDate().toString("yyyy-MM-dd"))
            elif cert.effectiveDate() > now:
                log.warning("the TLS certificate is valid only from %s", cert.effectiveDate().toString("yyyy-MM-dd"))

    @property
    def tls(self) -> bool:
        """Is every connection TLS?"""
        return self._tcp.tls is not None

    @property
    def port(self) -> int:
        return int(self._tcp.serverPort())

    @property
    def is_listening(self) -> bool:
        return bool(self._tcp.isListening())

    def shutdown(self, reason: str = "server shutting down") -> None:
        """Tell every client ``bye``, close every connection, then emit ``stopped``."""
        if self._stopping:
            return
        self._stopping = True
        self._tcp.close()
        self.flush()
        log.info("shutting down: %s (%d connections)", reason, len(self.sessions))
        for session in list(self.sessions):
            self._drop(session, f"server shutdown: {reason}", farewell=Bye(reason))
        if self.sessions:
            self._stop_deadline.start(int(self.config.close_timeout * 1000))
        else:
            self._finish_stop()

    def _abort_all(self) -> None:
        for session in list(self.sessions):
            session.socket.abort()
        self._finish_stop()

    def _finish_stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._prune_timer.stop()
        self._index_timer.stop()
        if self._dirty_markers or self._mail_delivered:
            self._store_pass()
        self.store.close()
        self.hasher.shutdown()
        self.accounts.close()
        self._stop_deadline.stop()
        self._sweep_timer.stop()
        log.info("stopped")
        self.stopped.emit()

    # ------------------------------------------------------------ connections

    def _on_accept_error(self, error: QAbstractSocket.SocketError) -> None:
        # out of file descriptors, typically: keep serving who is connected
        log.error("cannot accept a connection: %s", self._tcp.errorString())

    def _on_new_connection(self, sock: QAbstractSocket) -> None:
        cfg = self.config
        address = _peer_address(sock)
        session = Session(sock, Connection(Role.SERVER, max_frame=cfg.max_frame), address, sock.peerPort(),
                          time.monotonic())
        peer = session.peer
        self.sessions.add(session)
        count = self.per_address[address] = self.per_address.get(address, 0) + 1
        limits = rate_limits(cfg)
        if limits.enabled:
            session.limiter = Limiter(limits, session.connected_at)
        sock.setSocketOption(QAbstractSocket.SocketOption.LowDelayOption, 1)
        sock.setSocketOption(QAbstractSocket.SocketOption.KeepAliveOption, 1)
        sock.readyRead.connect(partial(self._on_ready_read, session))
        sock.disconnected.connect(partial(self._on_disconnected, session))
        if isinstance(sock, QSslSocket):
            sock.errorOccurred.connect(partial(self._on_tls_error, session))
        else:
            sock.errorOccurred.connect(partial(self._on_socket_error, session))
        log.debug("connection from %s", peer)
        if len(self.sessions) > cfg.max_clients:
            log.warning("refused %s: server full (%d clients)", peer, cfg.max_clients)
            self._drop(
                session, "server full",
                ProtocolError(ErrorCode.SERVER_FULL, f"The server is full ({cfg.max_clients} users).", fatal=True),
            )
            return
        if 0 < cfg.max_per_address < count:
            log.warning("refused %s: %d connections from that address already", peer, count - 1)
            self._drop(session, "too many connections", ProtocolError(
                ErrorCode.TOO_MANY_CONNECTIONS,
                f"Too many connections from your address ({address}): this server allows "
                f"{cfg.max_per_address} at once. Close one and try again.", fatal=True))
            return
        ban = self.bans.match(None, address)
        if ban is not None:
            log.info("refused %s: banned %s", peer, ban.describe())
            self._drop(session, "banned", _banned_error(ban))

    def _on_tls_error(self, session: Session, error: QAbstractSocket.SocketError) -> None:
        """A TLS connection failed: a handshake that went wrong (a plain-text client, garbage, no
        common protocol), or a broken connection. Only this connection is closed."""
        sock = session.socket
        if error == QAbstractSocket.SocketError.RemoteHostClosedError:
            return  # an ordinary close: disconnected() follows
        assert isinstance(sock, QSslSocket)
        if not sock.isEncrypted() and session.closing_since is None:
            log.info("TLS handshake with %s failed: %s", session.peer, sock.errorString())
            self.client_error.emit(session.peer, f"TLS handshake failed: {sock.errorString()}")
        else:
            log.debug("TLS connection %s: %s", session.peer, sock.errorString())
        if sock.state() != QAbstractSocket.SocketState.UnconnectedState:
            self._drop(session, "TLS error", graceful=False)

    def _on_disconnected(self, session: Session) -> None:
        if session not in self.sessions:
            return
        self._detach(session, "connection closed")
        self.sessions.discard(session)
        left = self.per_address.get(session.address, 1) - 1
        if left > 0:
            self.per_address[session.address] = left
        else:
            self.per_address.pop(session.address, None)
        session.socket.deleteLater()
        log.debug("closed %s", session.peer)
        if self._stopping and not self.sessions:
            self._finish_stop()

    def _on_socket_error(self, session: Session, error: QAbstractSocket.SocketError) -> None:
        # A write to a peer that closed or reset (its hello and its close can come in one read)
        # leaves the socket invalid but still "connected", and no signal follows: reap it once the
        # code that was writing (possibly looping over a room) is done.
        QTimer.singleShot(0, self, partial(self._reap_if_dead, session))

    def _reap_if_dead(self, session: Session) -> None:
        if session in self.sessions and _is_dead(session.socket):
            self._on_disconnected(session)

    def _on_ready_read(self, session: Session) -> None:
        sock = session.socket
        # at most READ_CHUNK: what is left stays in the kernel and comes with the next readyRead,
        # after the other sockets of this pass had their turn
        available = sock.bytesAvailable()  # unbuffered: what the kernel holds (0 also at end of stream)
        data = cast(bytes, (sock.read(min(available, READ_CHUNK)) if available > 0 else sock.readAll()).data())
        if _is_dead(sock):
            # an unbuffered socket reports the peer's close (or a reset) only by this
            # state after the read, never with disconnected(): act on what came first
            if data and not session.detached:
                self._handle_data(session, data)
            self._on_disconnected(session)
            return
        if not session.detached:  # a closing session's last words are not acted upon
            self._handle_data(session, data)

    def _handle_data(self, session: Session, data: bytes) -> None:
        session.bytes_in += len(data)
        self.total_bytes_in += len(data)
        session.last_seen = time.monotonic()
        session.pinged = False
        if session.limiter is not None and session.limiter.received(len(data), session.last_seen) is Verdict.FLOOD:
            self._flood(session, f"You sent more than {self.config.rate_bytes} bytes per second for too long.")
            return
        conn = session.conn
        conn.receive_data(data)
        while not session.detached:
            try:
                event = conn.next_event()
            except ProtocolError as exc:
                self._protocol_error(session, exc)
                continue
            if event is NEED_DATA or event is PEER_CLOSED:
                break
            try:
                self._dispatch(session, event)
            except Exception:  # a bug of ours must not cost the other clients their server
                log.exception("error handling %s from %s", type(event).__name__, session.peer)
                self._send(session, Error(ErrorCode.INTERNAL.value, "The server failed to handle that frame."))

    def _dispatch(self, session: Session, event: object) -> None:
        if isinstance(event, (SendMessage, SetTopic)) and session.limiter is not None and session.name is not None:
            verdict, wait = session.limiter.message(time.monotonic())
            if verdict is not Verdict.OK:
                self._refuse(session, event, verdict, wait)
                return
        if isinstance(event, SendMessage):
            self._post(session, event)
        elif isinstance(event, Ping):
            self._send(session, Pong(event.token))
        elif isinstance(event, Pong):
            pass  # any traffic counts as a sign of life
        elif isinstance(event, Hello):
            self._login(session, event)
        elif isinstance(event, HistoryRequest):
            self._send_history(session, event)
        elif isinstance(event, MarkRead):
            self._mark_read(session, event)
        elif isinstance(event, Delivered):
            self._confirm_held(session, event.upto)
        elif isinstance(event, SearchRequest):
            self._search(session, event)
        elif isinstance(event, JoinRoom):
            self._join_room(session, event.room)
        elif isinstance(event, PartRoom):
            self._part_room(session, event.room)
        elif isinstance(event, RoomsRequest):
            self._send(session, RoomList(tuple(
                RoomInfo(r.name, r.topic, len(r.names)) for r in self.rooms.values())))
        elif isinstance(event, SetTopic):
            self._set_topic(session, event)
        elif isinstance(event, UsersRequest):
            room = self._member_room(session, event.room, None)
            if room is not None:
                self._send_user_list(session, room)
        elif isinstance(event, Register):
            self._register(session, event.password)
        elif isinstance(event, PasswordChange):
            self._change_password(session, event)
        elif isinstance(event, (KickRequest, BanRequest)):
            self._operator_request(session, event)
        elif isinstance(event, Bye):
            reason = clean_line(event.reason).strip()
            self._drop(session, f"quit: {reason}" if reason else "quit")

    def _refuse(self, session: Session, event: SendMessage | SetTopic, verdict: Verdict, wait: float) -> None:
        """A chat message over the rate limit: refused (slow_down), or after too many refusals a disconnect."""
        if verdict is Verdict.FLOOD:
            self._flood(session, "You kept sending faster than the limit after being told to slow down.")
            return
        cfg = self.config
        what = f"{cfg.rate_messages:g} messages per second" if cfg.rate_messages > 0 else \
            f"{cfg.rate_bytes} bytes per second"
        self._send(session, Error(
            ErrorCode.SLOW_DOWN.value,
            f"You are sending too fast (this server allows {what}), so this was not sent. "
            f"Wait {max(wait, 0.1):.1f} s and send it again.",
            ref=event.cid if isinstance(event, SendMessage) else None,
            retry_after=math.ceil(wait * 1000) / 1000))  # rounded up: waiting that long is enough

    def _flood(self, session: Session, why: str) -> None:
        log.warning("dropping %s: flooding", session.name or session.peer)
        self.client_error.emit(session.peer, f"flood: {why}")
        self._drop(session, "flooding", ProtocolError(ErrorCode.FLOOD, f"{why} Disconnected.", fatal=True))

    def _protocol_error(self, session: Session, exc: ProtocolError) -> None:
        self.client_error.emit(session.peer, f"{exc.code.value}: {exc.message}")
        if exc.fatal:
            log.info("dropping %s: %s (%s)", session.name or session.peer, exc.message, exc.code.value)
            self._drop(session, f"protocol error: {exc.code.value}", exc)
        else:
            log.debug("%s: %s", session.peer, exc.message)
            self._send(session, Error.from_exception(exc))

    # ------------------------------------------------------------ handshake

    def _login(self, session: Session, hello: Hello) -> None:
        if session.logging_in:
            return  # a second hello while the first one's password is checked
        cfg = self.config
        try:
            name, key = validate_name(hello.user)
            ban = self.bans.match(key, session.address)
            if ban is not None:
                log.info("refused %s from %s: banned %s", name, session.peer, ban.describe())
                raise _banned_error(ban)
            account = self.accounts.get(key)
            if account is None or hello.password is None:
                self._check_free(name, key)  # the right password takes a registered name over (below)
            if account is not None:
                if hello.register:
                    raise ProtocolError(ErrorCode.NAME_REGISTERED,
                                        f"The name {name!r} is registered already: log in with its password.",
                                        fatal=True)
                if hello.password is None:
                    raise ProtocolError(ErrorCode.AUTH_REQUIRED,
                                        f"The name {name!r} is registered: log in with its password.", fatal=True)
                self._check_attempts(session)
            elif hello.register:
                if not cfg.registration:
                    raise ProtocolError(ErrorCode.REGISTRATION_CLOSED,
                                        "This server does not take registrations; ask its operator.", fatal=True)
                problem = check_password(hello.password or "")
                if problem is not None:
                    raise ProtocolError(ErrorCode.BAD_PASSWORD, problem, fatal=True)
            elif cfg.require_accounts:
                how = "register the name first" if cfg.registration else "ask its operator for an account"
                raise ProtocolError(ErrorCode.ACCOUNT_REQUIRED,
                                    f"This server admits registered names only: {how}.", fatal=True)
        except ProtocolError as exc:
            self._protocol_error(session, exc)
            return
        password = hello.password or ""
        if account is not None:
            stored = account.password_hash
            self._hash_job(session, lambda: _verify(password, stored),
                           lambda ok: self._after_password(session, name, key, bool(ok)))
        elif hello.register:
            self._hash_job(session, lambda: _hash(password),
                           lambda hashed: self._after_password(session, name, key, True, hashed))
        else:
            self._admit(session, name, key)

    def _check_free(self, name: str, key: str) -> None:
        if key in self.users:
            raise ProtocolError(ErrorCode.NAME_TAKEN, f"The name {name!r} is already in use on this server.",
                                fatal=True)

    def _check_attempts(self, session: Session, *, fatal: bool = True) -> None:
        now = time.monotonic()
        recent = [t for t in self._auth_failures.get(session.address, ()) if now - t < AUTH_WINDOW]
        if recent:
            self._auth_failures[session.address] = recent
        else:
            self._auth_failures.pop(session.address, None)
        if len(recent) >= AUTH_FAILURES_ALLOWED:
            raise ProtocolError(ErrorCode.TOO_MANY_ATTEMPTS,
                                f"Too many wrong passwords from your address; wait {AUTH_WINDOW:.0f} seconds.",
                                fatal=fatal, ref=None if fatal else PASSWD_REF)

    def _hash_job(self, session: Session, job: Callable[[], object], done: Callable[[object], None],
                  ref: str | None = None) -> None:
        """Hash or check a password in the worker pool; ``done`` runs on the event loop if the session lasts.
        Before login a full queue ends the connection (the client retries later); after, it is an error."""
        def finish(result: object) -> None:
            session.logging_in = False
            if session in self.sessions and not session.detached:
                done(result)

        session.logging_in = True
        if not self.hasher.submit(job, (), finish):
            session.logging_in = False
            self._protocol_error(session, ProtocolError(
                ErrorCode.SERVER_BUSY, "The server is busy checking passwords; try again in a moment.",
                fatal=session.name is None, ref=ref))

    def _after_password(self, session: Session, name: str, key: str, ok: bool, new_hash: object = None) -> None:
        try:
            if not ok:
                self._auth_failures.setdefault(session.address, []).append(time.monotonic())
                log.info("refused %s from %s: wrong password", name, session.peer)
                raise ProtocolError(ErrorCode.AUTH_FAILED, f"Wrong password for {name!r}.", fatal=True)
            if isinstance(new_hash, str):
                self._check_free(name, key)  # someone may have logged in meanwhile
                if self.accounts.get(key) is not None:
                    raise ProtocolError(ErrorCode.NAME_REGISTERED, f"The name {name!r} was just registered.",
                                        fatal=True)
                self.accounts.create(key, name, new_hash)
                log.info("%s registered from %s", name, session.peer)
            elif new_hash is not None or ok is not True:
                raise ProtocolError(ErrorCode.INTERNAL, "The password could not be checked.", fatal=True)
            else:
                old = self.users.get(key)
                if old is not None:  # its owner again, from elsewhere (or after a connection that hung)
                    log.info("%s logged in again from %s: closing the session from %s", name, session.peer, old.peer)
                    self._drop(old, "logged in elsewhere", farewell=Bye("logged in elsewhere"))
        except ProtocolError as exc:
            self._protocol_error(session, exc)
            return
        except Exception:
            log.exception("storing the account of %s", name)
            self._protocol_error(session, ProtocolError(ErrorCode.INTERNAL, "The account could not be stored.",
                                                        fatal=True))
            return
        self._admit(session, name, key)

    def _admit(self, session: Session, name: str, key: str) -> None:
        cfg = self.config
        if key in self._mail_pending or key in self._mail_delivered:
            # kept for them this pass, or confirmed by their last session: stored (or deleted) first
            self.flush()
        session.name, session.key = name, key
        self.users[key] = session
        if key not in self._recent_cids:  # resends after a server restart are recognised too
            recent: list[tuple[str, RecentCid]] = [
                (cid, (mid, ts, room_key, hash(text), False))
                for cid, mid, ts, room_key, text in self.store.recent_cids(key, RECENT_CIDS_PER_USER)]
            recent += [(cid, (mid, ts, "@" + to_key, hash(text), True))
                       for cid, mid, ts, to_key, text in self.store.recent_mail_cids(key, RECENT_CIDS_PER_USER)]
            recent.sort(key=lambda item: item[1][0])
            for cid, entry in recent[-RECENT_CIDS_PER_USER:]:
                self._remember_cid(key, cid, entry)
        lobby = self.rooms[DEFAULT_ROOM]
        self._send(
            session,
            Welcome(
                user=name, version=session.conn.version or 1, server=f"qtchat-server {__version__}",
                name=cfg.name, rooms=(self._room_info(key, lobby),), max_frame=cfg.max_frame,
                ping_interval=cfg.ping_interval, motd=cfg.motd, limits=announced_limits(cfg),
            ),
        )
        account = self.accounts.get(key)
        self._send(session, AccountStatus(account is not None, account is not None and account.admin))
        self._join(session, lobby)
        log.info("%s joined from %s", name, session.peer)
        self.user_joined.emit(name, session.peer)
        if account is not None:
            self._deliver_held(session)

    def _register(self, session: Session, password: str) -> None:
        """Protect the name of a logged-in user with a password."""
        name, key = session.name, session.key
        if name is None or key is None or session.logging_in:
            return
        problem = None
        if self.accounts.get(key) is not None:
            problem = (ErrorCode.NAME_REGISTERED, f"The name {name!r} is registered already.")
        elif not self.config.registration:
            problem = (ErrorCode.REGISTRATION_CLOSED, "This server does not take registrations; ask its operator.")
        elif (why := check_password(password)) is not None:
            problem = (ErrorCode.BAD_PASSWORD, why)
        if problem is not None:
            self._send(session, Error(problem[0].value, problem[1]))
            return

        def store(hashed: object) -> None:
            if not isinstance(hashed, str) or self.accounts.get(key) is not None:
                self._send(session, Error(ErrorCode.INTERNAL.value, "The name could not be registered."))
                return
            self.accounts.create(key, name, hashed)
            log.info("%s registered their name", name)
            self._send(session, AccountStatus(True, False))

        self._hash_job(session, lambda: _hash(password), store)

    def _change_password(self, session: Session, event: PasswordChange) -> None:
        """A logged-in user changes their own password: the old one is checked and the new one hashed in the
        pool (one job), the wrong-password limit applies, and every answer refers to ``passwd`` (``ref``)."""
        name, key = session.name, session.key
        if name is None or key is None:
            return

        def refuse(code: ErrorCode, text: str) -> None:
            self._send(session, Error(code.value, text, ref=PASSWD_REF))

        if session.logging_in:
            refuse(ErrorCode.SERVER_BUSY, "A password of yours is being checked already; try again in a moment.")
            return
        account = self.accounts.get(key)
        if account is None:
            refuse(ErrorCode.ACCOUNT_REQUIRED, f"The name {name!r} is not registered, so it has no password to change.")
            return
        try:
            self._check_attempts(session, fatal=False)
        except ProtocolError as exc:
            self._send(session, Error.from_exception(exc))
            return
        problem = check_password(event.new)
        if problem is None and event.new == event.old:
            problem = "The new password is the same as the old one."
        if problem is not None:
            refuse(ErrorCode.BAD_PASSWORD, problem)
            return
        old, new, stored = event.old, event.new, account.password_hash

        def check_then_hash() -> object:  # in the pool: False for a wrong old password, else the new hash
            return _hash(new) if _verify(old, stored) else False

        def store(result: object) -> None:
            now = self.accounts.get(key)
            if result is False:
                self._auth_failures.setdefault(session.address, []).append(time.monotonic())
                log.info("refused a new password for %s from %s: wrong old password", name, session.peer)
                refuse(ErrorCode.AUTH_FAILED, "The current password is wrong, so the password was not changed.")
            elif now is None or now.password_hash != stored:  # unregistered or reset by the operator meanwhile
                refuse(ErrorCode.AUTH_FAILED, "The account changed while the password was checked; try again.")
            elif not isinstance(result, str):
                refuse(ErrorCode.INTERNAL, "The new password could not be stored.")
            else:
                self.accounts.set_password(key, result)
                log.info("%s changed their password (from %s)", name, session.peer)
                self._send(session, AccountStatus(True, now.admin, password_changed=True))

        self._hash_job(session, check_then_hash, store, ref=PASSWD_REF)

    def _operator_request(self, session: Session, event: KickRequest | BanRequest) -> None:
        account = self.accounts.get(session.key) if session.key is not None else None
        if account is None or not account.admin:
            self._send(session, Error(ErrorCode.FORBIDDEN.value, "Only operators may kick or ban."))
            return
        reason = f"{event.reason} (by {session.name})" if event.reason else f"by {session.name}"
        try:
            if isinstance(event, KickRequest):
                text = self.kick(event.user, reason)
            else:
                # the name only: an address may be shared by many (a campus, a NAT); address bans are
                # for the server's own operator tools
                seconds = event.minutes * 60.0 if event.minutes is not None else None
                text = self.ban(event.user, None, seconds, reason)
        except (KeyError, ValueError) as exc:
            self._send(session, Error(ErrorCode.USER_OFFLINE.value, str(exc.args[0]) if exc.args else str(exc)))
            return
        self._send(session, Notice(text, _now_ms()))

    def _join(self, session: Session, room: Room) -> None:
        assert session.name is not None and session.key is not None
        self._queue(room, encode_event(Joined(session.name, _now_ms(), room.name)), urgent=False)
        room.names[session.key] = session.name
        room.encoded_names[session.key] = encode_name(session.name)
        room.joiners[session] = room.pending_len
        session.rooms.append(room)
        self._send_user_list(session, room)

    def _join_room(self, session: Session, raw: str) -> None:
        if session.name is None:
            return
        try:
            name, key = validate_name(raw, what="room name")
        except ProtocolError as exc:
            self._send(session, Error(ErrorCode.ROOM_INVALID.value, exc.message, ref=raw))
            return
        room = self.rooms.get(key)
        if room is not None and (session in room.members or session in room.joiners):
            return  # already there
        if len(session.rooms) >= self.config.max_rooms_per_user:
            self._send(session, Error(ErrorCode.TOO_MANY_ROOMS.value,
                                      f"You are in {len(session.rooms)} rooms already; leave one first.", ref=raw))
            return
        if room is None:
            room = self.rooms[key] = Room(name)
            log.info("%s created the room %r", session.name, name)
        assert session.key is not None
        self._send(session, RoomJoined(self._room_info(session.key, room, len(room.names) + 1)))
        self._join(session, room)

    def _part_room(self, session: Session, raw: str) -> None:
        room = self._member_room(session, raw, None)
        if room is None or session.name is None or session.key is None:
            return
        if room.name == DEFAULT_ROOM:
            self._send(session, Error(ErrorCode.ROOM_INVALID.value, "Everyone stays in the lobby."))
            return
        self._leave(session, room, "part")
        if not room.names:
            del self.rooms[name_key(room.name)]  # its history stays in the store

    def _leave(self, session: Session, room: Room, reason: str) -> None:
        assert session.name is not None and session.key is not None
        room.members.discard(session)
        room.joiners.pop(session, None)
        room.names.pop(session.key, None)
        room.encoded_names.pop(session.key, None)
        if room in session.rooms:
            session.rooms.remove(room)
        self._queue(room, encode_event(Left(session.name, _now_ms(), room.name, reason)), urgent=False)

    def _set_topic(self, session: Session, event: SetTopic) -> None:
        room = self._member_room(session, event.room, None)
        if room is None or session.name is None:
            return
        room.topic = event.topic
        self._queue(room, encode_event(TopicChanged(room.name, event.topic, session.name, _now_ms())))

    def _send_user_list(self, session: Session, room: Room) -> None:
        frames = encode_user_lists(
            room.name, list(room.encoded_names.values()), names_per_frame(self.config.max_frame)
        )
        for frame in frames:
            self._write(session, frame)

    # ------------------------------------------------------------ chat

    def _member_room(self, session: Session, name: str, ref: str | None) -> Room | None:
        room = self.rooms.get(name_key(name))
        if room is None or (session not in room.members and session not in room.joiners):
            self._send(session, Error(ErrorCode.NO_SUCH_ROOM.value, f"You are not in a room {name!r}.", ref=ref))
            return None
        return room

    def _post(self, session: Session, event: SendMessage) -> None:
        if session.name is None:
            return
        if event.to is not None:
            self._private(session, event)
            return
        room = self._member_room(session, event.room, event.cid)
        if room is None:
            return
        cid, key = event.cid, session.key
        assert key is not None
        if key in self.muted:
            self._send(session, Error(ErrorCode.MUTED.value, "You are muted on this server.", ref=cid))
            return
        if cid is not None:
            seen = self._recent_cids.get(key)
            earlier = seen.get(cid) if seen is not None else None
            if earlier is not None and earlier[2] == room.key and earlier[3] == hash(event.text):
                # a resend after a reconnect: acknowledge again, relay nothing
                ack = Message(id=earlier[0], ts=earlier[1], sender=session.name, text=event.text, room=room.name,
                              cid=cid)
                self._write(session, encode_event(ack))
                return
        msg = Message(
            id=self.ids.next(), ts=_now_ms(), sender=session.name, text=event.text, room=room.name, cid=cid,
        )
        session.msgs_in += 1
        self.total_messages += 1
        if self.config.history:
            self._unstored.append(((msg.id, room.key, msg.ts, session.name, key, cid, msg.text), session))
        frame = encode_event(msg)
        self._queue(room, frame)
        if cid is not None:
            self._remember_cid(key, cid, (msg.id, msg.ts, room.key, hash(msg.text), False))
        self.message_posted.emit(msg)

    def _private(self, session: Session, event: SendMessage) -> None:
        """A private message: straight to its recipient and back to its sender; for a registered name
        that is offline, kept in its mailbox and acknowledged (``held``) once stored."""
        assert session.name is not None and session.key is not None and event.to is not None
        if session.key in self.muted:
            self._send(session, Error(ErrorCode.MUTED.value, "You are muted on this server.", ref=event.cid))
            return
        to_key = name_key(event.to)
        target = self.users.get(to_key)
        cid, marker = event.cid, "@" + to_key
        if cid is not None:
            earlier = self._recent_cids.get(session.key, OrderedDict()).get(cid)
            if earlier is not None and earlier[2] == marker and earlier[3] == hash(event.text):
                self._private_again(session, event, earlier, target)  # a resend: acknowledged again, not sent twice
                return
        if target is not None and target.name is not None:
            msg = Message(id=self.ids.next(), ts=_now_ms(), sender=session.name, text=event.text, cid=cid,
                          to=target.name)
            if cid is not None:
                self._remember_cid(session.key, cid, (msg.id, msg.ts, marker, hash(msg.text), False))
            session.msgs_in += 1
            self.total_messages += 1
            frame = encode_event(msg)
            self._write(target, frame)
            if target is not session:
                self._write(session, frame)
            self.message_posted.emit(msg)
            return
        self._hold(session, event, to_key)

    def _hold(self, session: Session, event: SendMessage, to_key: str) -> None:
        """A private message to someone offline: into the mailbox of a registered name (stored at this
        pass's flush, acknowledged after it), else refused."""
        assert session.name is not None and session.key is not None and event.to is not None
        cfg, cid = self.config, event.cid
        account = self.accounts.get(to_key)
        cap = cfg.mailbox_size if cfg.history else 0
        if account is None or cap <= 0:
            why = ("private messages to people who are offline are kept only for registered names"
                   if account is None else "this server keeps no private messages for people who are offline")
            self._send(session, Error(
                ErrorCode.USER_OFFLINE.value,
                f"{event.to} is not online, and {why}: send it again when they are online.", ref=cid))
            return
        waiting = self._mail_pending.get(to_key, 0)
        if waiting < cap:
            waiting += self.store.mailbox_count(to_key, cap)
        if waiting >= cap:
            self._send(session, Error(
                ErrorCode.MAILBOX_FULL.value,
                f"{account.name} is offline and has {cap} messages waiting already, as many as this server "
                f"keeps: send it again once they have logged in.", ref=cid))
            return
        msg = Message(id=self.ids.next(), ts=_now_ms(), sender=session.name, text=event.text, cid=cid,
                      to=account.name, held=True)
        row: MailRow = (msg.id, to_key, msg.ts, session.name, session.key, cid, msg.text)
        self._unstored_mail.append((row, session, encode_event(msg), cid))
        self._mail_pending[to_key] = self._mail_pending.get(to_key, 0) + 1
        if cid is not None:
            self._remember_cid(session.key, cid, (msg.id, msg.ts, "@" + to_key, hash(msg.text), True))
        session.msgs_in += 1
        self.total_messages += 1
        self._flush_soon()  # stored with this pass's messages, in the same transaction
        self.message_posted.emit(msg)

    def _private_again(self, session: Session, event: SendMessage, earlier: RecentCid,
                       target: Session | None) -> None:
        """The acknowledgement of a private message sent again (same cid and text): as the first one was."""
        assert session.name is not None and event.to is not None
        mid, ts, where, _, held = earlier
        to_name = target.name if target is not None and target.name is not None else None
        if to_name is None:
            account = self.accounts.get(where[1:])
            to_name = account.name if account is not None else event.to
        ack = encode_event(Message(id=mid, ts=ts, sender=session.name, text=event.text, cid=event.cid, to=to_name,
                                   held=held))
        if held and any(row is not None and row[0] == mid for row, _, _, _ in self._unstored_mail):
            self._unstored_mail.append((None, session, ack, event.cid))  # not stored yet: acknowledged with it
        else:
            self._write(session, ack)

    # ------------------------------------------------------------ held private messages

    def _deliver_held(self, session: Session) -> None:
        """Send the next batch of the private messages kept for this user, oldest first; the next batch
        follows when the client confirms this one (``delivered``), and each is deleted only then."""
        if session.key is None or session.name is None:
            return
        try:
            held, more = self.store.mailbox_page(session.key, session.held_sent, HELD_BATCH)
        except Exception as exc:  # a broken disk: they stay where they are, for the next login
            log.error("cannot read the private messages kept for %s: %s", session.name, exc)
            return
        budget = max(1, min(HELD_BATCH_BYTES, self.config.max_output // 2))
        frames: list[bytes] = []
        size = 0
        for m in held:
            frame = encode_event(Message(id=m.id, ts=m.ts, sender=m.sender, text=m.text, cid=m.cid, to=session.name,
                                         held=True))
            if frames and size + len(frame) > budget:
                more = True
                break
            frames.append(frame)
            size += len(frame)
            session.held_sent = m.id
        session.held_more = more
        if frames:
            log.debug("sending %s %d kept private message(s)", session.name, len(frames))
            self._write(session, b"".join(frames))

    def _confirm_held(self, session: Session, upto: int) -> None:
        """The client has the held messages up to ``upto``: delete them at the flush, send the next batch."""
        key = session.key
        if key is None:
            return
        if not session.held_sent:
            self._send(session, Error(ErrorCode.BAD_FRAME.value, "No kept private message was sent to you on this "
                                      "connection, so there is nothing to confirm."))
            return
        upto = min(upto, session.held_sent)  # what was sent, no more
        if upto > session.held_confirmed:
            session.held_confirmed = upto
            if upto > self._mail_delivered.get(key, 0):
                self._mail_delivered[key] = upto
            self._flush_soon()  # deleted with this pass's messages, in the same transaction
        if upto >= session.held_sent and session.held_more:
            self._deliver_held(session)

    def _store_pass(self) -> None:
        unstored, self._unstored = self._unstored, []
        markers, self._dirty_markers = self._dirty_markers, {}
        mail, self._unstored_mail = self._unstored_mail, []
        self._mail_pending.clear()
        delivered, self._mail_delivered = self._mail_delivered, {}
        try:
            self.store.append([row for row, _ in unstored], markers, [m[0] for m in mail if m[0] is not None],
                              delivered)
        except Exception as exc:  # a full or broken disk: refuse this pass's messages, keep serving
            log.critical("cannot store %d messages: %s; they were not sent", len(unstored) + len(mail), exc)
            for mark, mid in markers.items():  # markers are not acknowledged: try them again next pass
                if mid > self._dirty_markers.get(mark, -1):
                    self._dirty_markers[mark] = mid
            for user, upto in delivered.items():  # nor are confirmations: the held messages wait meanwhile
                if upto > self._mail_delivered.get(user, -1):
                    self._mail_delivered[user] = upto
            for row, session, _, cid in mail:
                if row is not None and cid is not None:
                    self._recent_cids.get(row[4], OrderedDict()).pop(cid, None)
                self._send(session, Error(ErrorCode.INTERNAL.value,
                                          "The server could not store your message, so it was not sent.", ref=cid))
            if not unstored:
                return  # no room messages: the pass's notices can still go out
            for room in self.rooms.values():
                room.pending.clear()  # the pass's frames, messages with them, are not sent
                room.pending_len = 0
            for row, session in unstored:
                self._recent_cids.get(row[4], OrderedDict()).pop(row[5] or "", None)
                self._send(session, Error(ErrorCode.INTERNAL.value,
                                          "The server could not store your message, so it was not sent.",
                                          ref=row[5]))
            return
        for _, session, ack, _ in mail:  # stored: now their senders hear it
            self._write(session, ack)

    # ------------------------------------------------------------ read markers

    def _marker(self, user_key: str, room_key: str) -> int | None:
        mark = self._dirty_markers.get((user_key, room_key))
        return mark if mark is not None else self.store.marker(user_key, room_key)

    def _mark_read(self, session: Session, event: MarkRead) -> None:
        room = self._member_room(session, event.room, None)
        if room is None or session.key is None:
            return
        old = self._marker(session.key, room.key)
        if old is not None and old >= event.id:
            return  # markers only move forward
        self._dirty_markers[(session.key, room.key)] = event.id
        self._flush_soon()  # stored with this pass's messages, in the same transaction

    def _room_info(self, user_key: str, room: Room, members: int | None = None) -> RoomInfo:
        """A room as welcome and room frames describe it, with the user's read marker and unread count."""
        mark = self._marker(user_key, room.key)
        unread = None
        if mark is not None and self.config.history:
            unread = self.store.unread(room.key, user_key, mark, UNREAD_CAP)
            for row, _ in self._unstored:  # accepted this pass, stored at its end
                if row[1] == room.key and row[0] > mark and row[4] != user_key:
                    unread += 1
            unread = min(unread, UNREAD_CAP)
        return RoomInfo(room.name, room.topic, members, read=mark, unread=unread)

    # ------------------------------------------------------------ search

    def _index(self) -> None:
        try:
            done = self.store.index_pending(INDEX_BUDGET_S)
        except Exception as exc:
            log.error("full-text index: %s", exc)
            return
        # stopped by the time budget, most likely with more to do: catch up faster, but only while no
        # messages come in, so that indexing never competes with a busy server's fan-out
        behind = done >= INDEX_BATCH
        quiet = self.total_messages == self._messages_at_index
        self._messages_at_index = self.total_messages
        self._index_timer.setInterval(INDEX_CATCH_UP_MS if behind and quiet else INDEX_INTERVAL_MS)

    def _search(self, session: Session, request: SearchRequest) -> None:
        if session.key is None:
            return
        if request.room is not None:
            room = self._member_room(session, request.room, None)
            if room is None:
                return
            rooms = [room]
        else:
            rooms = list(session.rooms)  # only what the user may read now: the rooms they are in
        echo = rooms[0].name if request.room is not None else None
        if not self.config.history:
            self._send(session, SearchResults(request.query, (), echo, before=request.before))
            return
        self.flush()  # what was accepted this pass is stored, so a message acknowledged a moment ago is found
        self.store.index_pending(SEARCH_INDEX_BUDGET_S)  # what is still not indexed after this is scanned
        names = {r.key: r.name for r in rooms}
        rows, more = self.store.search(request.query, list(names), before=request.before, limit=request.limit)
        budget = self.config.max_frame - len(encode_event(SearchResults(request.query, (), echo, True,
                                                                        request.before))) - 16
        results: list[Message] = []
        size = 0
        for r in rows:
            msg = Message(id=r.id, ts=r.ts, sender=r.sender, text=r.text, room=names.get(r.room, r.room))
            cost = len(encode_frame(search_result_wire(msg)))  # its real size (and one for the comma)
            if results and size + cost > budget:
                more = True
                break
            results.append(msg)
            size += cost
        self._send(session, SearchResults(request.query, tuple(results), echo, more, request.before))

    def _prune(self) -> None:
        try:
            deleted = self.store.prune()
        except Exception as exc:
            log.error("history retention: %s", exc)
            return
        if deleted:
            log.info("history retention removed %d messages", deleted)

    def _send_history(self, session: Session, request: HistoryRequest) -> None:
        room = self._member_room(session, request.room, None)
        if room is None:
            return
        if not self.config.history:
            self._send(session, History((), room.name, before=request.before, after=request.after,
                                        around=request.around))
            return
        self.flush()  # what was accepted this pass is part of the history too
        if request.around is not None:
            self._send_around(session, room, request.around, request.limit)
            return
        rows, more = self.store.page(room.key, before=request.before, after=request.after, limit=request.limit)
        budget = self.config.max_frame - 200
        msgs: list[Message] = []
        size = 0
        ordered = rows if request.after is not None else list(reversed(rows))  # the side to keep first
        for r in ordered:
            msg = Message(id=r.id, ts=r.ts, sender=r.sender, text=r.text, room=room.name, cid=r.cid)
            cost = len(encode_event(msg))  # the real size, escapes and all
            if msgs and size + cost > budget:
                more = True
                break
            msgs.append(msg)
            size += cost
        if request.after is None:
            msgs.reverse()
        self._send(session, History(tuple(msgs), room.name, before=request.before, after=request.after, more=more))

    def _send_around(self, session: Session, room: Room, mid: int, limit: int) -> None:
        """A history page centred on ``mid``; cut to the frame limit, it keeps the messages nearest it."""
        older, newer, more, newer_more = self.store.around(room.key, mid, limit)
        budget = self.config.max_frame - 200
        size = 0
        taken: list[list[Message]] = [[], []]  # older (nearest first), newer (nearest first)
        sides: list[list[StoredMessage]] = [older[::-1], newer]
        cut = False
        for i in range(max(len(older), len(newer))):
            for side in (1, 0):  # the message itself first, then one older, one newer, ...
                if i >= len(sides[side]):
                    continue
                r = sides[side][i]
                msg = Message(id=r.id, ts=r.ts, sender=r.sender, text=r.text, room=room.name, cid=r.cid)
                cost = len(encode_event(msg))
                if (taken[0] or taken[1]) and size + cost > budget:
                    cut = True
                    break
                taken[side].append(msg)
                size += cost
            if cut:
                break
        more = more or len(taken[0]) < len(older)
        newer_more = newer_more or len(taken[1]) < len(newer)
        msgs = tuple(taken[0][::-1] + taken[1])
        self._send(session, History(msgs, room.name, more=more, around=mid, newer=newer_more))

    def _remember_cid(self, key: str, cid: str, entry: RecentCid) -> None:
        recent = self._recent_cids
        seen = recent.get(key)
        if seen is None:
            seen = recent[key] = OrderedDict()
            if len(recent) > RECENT_CID_USERS:
                recent.popitem(last=False)
        else:
            recent.move_to_end(key)
        seen[cid] = entry
        if len(seen) > RECENT_CIDS_PER_USER:
            seen.popitem(last=False)

    def _queue(self, room: Room, frame: bytes, *, urgent: bool = True) -> None:
        """Add a frame to the room's batch; chat goes out this pass, notices within notice_delay.

        Joins and leaves of a crowd (thousands connecting after a restart) would
        otherwise cost one write per member per event-loop pass for each few
        notices; holding notice-only batches briefly lets them go out together.
        """
        if not room.pending:
            self._dirty.append(room)
        room.pending.append(frame)
        room.pending_len += len(frame)
        if urgent:
            self._flush_soon()
        elif not self._flush_timer.isActive() and not self._notice_timer.isActive():
            # each notice flush costs one write per member: the bigger the crowd, the longer
            # notices wait to go out together (50 ms at 200 users, 1 s from 4,000)
            scale = max(1.0, len(self.sessions) / 200)
            self._notice_timer.start(int(min(1.0, self.config.notice_delay * scale) * 1000))

    def _flush_soon(self) -> None:
        """Flush at the end of this event-loop pass (store, then send), once however often it is asked."""
        if not self._flush_timer.isActive():
            self._flush_timer.start()

    def flush(self) -> None:
        """Store this pass's messages (one transaction), then write each dirty room's batch, as one
        shared buffer, to all its members: nobody sees, and no sender is acknowledged for, a message
        that is not on disk."""
        self._notice_timer.stop()
        if self._unstored or self._dirty_markers or self._unstored_mail or self._mail_delivered:
            self._store_pass()
        limit = self.config.max_output
        dirty, self._dirty = self._dirty, []
        slow: list[Session] = []
        for room in dirty:
            data = b"".join(room.pending)
            room.pending.clear()
            room.pending_len = 0
            size = len(data)
            shared = QByteArray(data)
            for member in room.members:
                sock = member.socket
                if not sock.isValid():
                    continue  # failed on an earlier write; reaped once this pass is over
                sock.write(shared)
                member.bytes_out += size
                if sock.bytesToWrite() > limit:
                    slow.append(member)
            self.total_bytes_out += size * len(room.members)
            if room.joiners:
                for member, offset in room.joiners.items():
                    if offset < size and member.socket.isValid():
                        member.socket.write(data[offset:])
                        member.bytes_out += size - offset
                    room.members.add(member)
                room.joiners.clear()
        for member in slow:
            if not member.detached:
                log.warning("dropping %s: %d bytes unsent (client not reading)", member.name,
                            member.socket.bytesToWrite())
                self._drop(member, "not reading (send queue full)", graceful=False)

    # ------------------------------------------------------------ per-client output

    def _send(self, session: Session, event: SendableEvent) -> None:
        self._write(session, session.conn.send(event))

    def _write(self, session: Session, data: bytes) -> None:
        sock = session.socket
        if sock.state() == QAbstractSocket.SocketState.ConnectedState and sock.isValid():
            session.bytes_out += len(data)
            self.total_bytes_out += len(data)
            sock.write(data)
            # replies to one client (pongs, user lists) count against its output cap too,
            # or a client that asks and never reads would grow the server without bound
            if sock.bytesToWrite() > self.config.max_output and session.closing_since is None:
                log.warning("dropping %s: %d bytes unsent (client not reading)", session.name or session.peer,
                            sock.bytesToWrite())
                self._drop(session, "not reading (send queue full)", graceful=False)

    # ------------------------------------------------------------ leaving

    def _detach(self, session: Session, reason: str) -> None:
        """Take a session out of the chat (rooms, name); its socket may still be closing."""
        if session.detached:
            return
        session.detached = True
        if session.key is not None and self.users.get(session.key) is session:
            del self.users[session.key]
            for room in list(session.rooms):
                self._leave(session, room, reason)
                if not room.names and room.name != DEFAULT_ROOM:
                    self.rooms.pop(name_key(room.name), None)
            log.info("%s left (%r)", session.name, reason)
            self.user_left.emit(session.name, reason)

    def _drop(
        self, session: Session, reason: str, error: ProtocolError | None = None, *,
        farewell: SendableEvent | None = None, graceful: bool = True,
    ) -> None:
        """Close a session: send the error or farewell first when graceful, then close the socket."""
        if session.closing_since is not None:
            return
        self._detach(session, reason)
        session.closing_since = time.monotonic()
        sock = session.socket
        if graceful:
            if error is not None:
                self._send(session, Error.from_exception(error))
            if farewell is not None:
                self._send(session, farewell)
            sock.disconnectFromHost()  # after the queued bytes are out; the sweep aborts stragglers
        else:
            sock.abort()

    # ------------------------------------------------------------ operator actions
    # Used by the admin window and the local admin channel; each is logged. Names are
    # matched like logins (case and look-alikes folded). Each returns a sentence for the
    # operator, or raises KeyError/ValueError with one.

    def find_user(self, name: str) -> Session:
        session = self.users.get(name_key(name))
        if session is None:
            raise KeyError(f"No user {name!r} is connected.")
        return session

    def kick(self, name: str, reason: str = "") -> str:
        session = self.find_user(name)
        why = f"kicked: {reason}" if reason else "kicked"
        self._drop(session, why, farewell=Bye(why))
        log.warning("admin: kicked %s (%s)%s", session.name, session.peer, f": {reason}" if reason else "")
        return f"Kicked {session.name}."

    def ban(self, name: str | None = None, address: str | None = None, seconds: float | None = None,
            reason: str = "") -> str:
        """Ban a name and/or an address (None seconds: for good); connected matches are kicked."""
        ban = self.bans.add(name, address, seconds, reason)
        log.warning("admin: banned %s", ban.describe())
        for session in list(self.users.values()):
            if ban.name_key == session.key or ban.address == session.address:
                why = f"banned: {reason}" if reason else "banned"
                self._drop(session, why, farewell=Bye(why))
        return f"Banned {ban.describe()}."

    def unban(self, target: str) -> str:
        count = self.bans.remove(target)
        if not count:
            raise KeyError(f"No ban on {target!r}.")
        log.warning("admin: lifted %d ban(s) on %s", count, target)
        return f"Lifted {count} ban(s) on {target}."

    def mute(self, name: str, on: bool = True) -> str:
        session = self.find_user(name)
        assert session.key is not None
        if on:
            self.muted.add(session.key)
        else:
            self.muted.discard(session.key)
        log.warning("admin: %s %s", "muted" if on else "unmuted", session.name)
        self._send(session, Notice(f"You have been {'muted' if on else 'unmuted'} by the operator.", _now_ms()))
        return f"{'Muted' if on else 'Unmuted'} {session.name}."

    def broadcast(self, text: str) -> str:
        if not text.strip():
            raise ValueError("The notice is empty.")
        frame = encode_event(Notice(text, _now_ms()))
        for session in self.users.values():
            self._write(session, frame)
        log.warning("admin: broadcast to %d users: %s", len(self.users), text[:200])
        return f"Sent to {len(self.users)} users."

    def register_account(self, name: str, password_hash: str, admin: bool = False) -> str:
        """Register a name with an already hashed password (the admin command line hashes it)."""
        name, key = validate_name(name) if name else ("", "")
        if not key:
            raise ValueError("A name is needed.")
        if self.accounts.get(key) is not None:
            raise ValueError(f"The name {name!r} is registered already.")
        self.accounts.create(key, name, password_hash, admin=admin)
        log.warning("admin: registered %s%s", name, " as an operator" if admin else "")
        self._account_changed(key)
        return f"Registered {name}{' as an operator' if admin else ''}."

    def unregister_account(self, name: str) -> str:
        """Delete a name's account, and the private messages kept for it."""
        key = name_key(name)
        if not self.accounts.delete(key):
            raise KeyError(f"No account {name!r}.")
        self.flush()  # what was kept for the name this pass is stored first, then dropped with the rest
        try:
            dropped = self.store.drop_mailbox(key)
        except Exception as exc:
            log.error("cannot delete the private messages kept for %s: %s", name, exc)
            dropped = 0
        log.warning("admin: unregistered %s%s", name,
                    f" and deleted {dropped} private message(s) kept for them" if dropped else "")
        self._account_changed(key)
        text = f"Unregistered {name}: the name is free for anyone again."
        if dropped:
            text += f" {dropped} private message(s) kept for them were deleted."
        return text

    def set_operator(self, name: str, on: bool) -> str:
        account = self.accounts.get(name_key(name))
        if account is None:
            raise KeyError(f"No account {name!r}: only registered names can be operators.")
        self.accounts.set_admin(account.key, on)
        log.warning("admin: %s is %s an operator", account.name, "now" if on else "no longer")
        self._account_changed(account.key)
        return f"{account.name} is {'now' if on else 'no longer'} an operator."

    def set_password_hash(self, name: str, password_hash: str) -> str:
        account = self.accounts.get(name_key(name))
        if account is None:
            raise KeyError(f"No account {name!r}.")
        self.accounts.set_password(account.key, password_hash)
        log.warning("admin: new password for %s", account.name)
        return f"New password set for {account.name}."

    def _account_changed(self, key: str) -> None:
        session = self.users.get(key)
        if session is not None:
            account = self.accounts.get(key)
            self._send(session, AccountStatus(account is not None, account is not None and account.admin))

    def set_accepting(self, on: bool) -> str:
        if on:
            self._tcp.resumeAccepting()
        else:
            self._tcp.pauseAccepting()
        self.accepting = on
        log.warning("admin: %s accepting connections", "resumed" if on else "stopped")
        return "Accepting new connections." if on else "Not accepting new connections."

    def set_max_clients(self, count: int) -> str:
        if count < 1:
            raise ValueError("The client limit must be at least 1.")
        self.config.max_clients = count
        log.warning("admin: client limit set to %d", count)
        return f"Client limit: {count}."

    # ------------------------------------------------------------ timers

    def _sweep(self) -> None:
        """Handshake timeouts, keepalive pings, dead peers, and sockets stuck closing."""
        now = time.monotonic()
        cfg = self.config
        for session in list(self.sessions):
            if _is_dead(session.socket):
                self._on_disconnected(session)  # closed without a signal (see _on_ready_read)
                continue
            if session.closing_since is not None:
                if now - session.closing_since > cfg.close_timeout:
                    session.socket.abort()
                continue
            if session.name is None:
                sock = session.socket
                if (now - session.connected_at > cfg.handshake_timeout and isinstance(sock, QSslSocket)
                        and not sock.isEncrypted()):
                    log.info("dropping %s: TLS handshake not done within %g seconds", session.peer,
                             cfg.handshake_timeout)
                    self._drop(session, "TLS handshake timeout", graceful=False)  # nothing can be said to it
                elif now - session.connected_at > cfg.handshake_timeout:
                    self._drop(session, "handshake timeout", ProtocolError(
                        ErrorCode.HANDSHAKE_TIMEOUT,
                        f"No hello within {cfg.handshake_timeout:g} seconds.", fatal=True))
                continue
            idle = now - session.last_seen
            if idle > cfg.ping_interval + cfg.ping_timeout:
                self._drop(session, "ping timeout", ProtocolError(
                    ErrorCode.PING_TIMEOUT, f"No answer for {idle:.0f} seconds.", fatal=True), graceful=False)
            elif idle > cfg.ping_interval and not session.pinged:
                session.pinged = True
                self._send(session, Ping(f"k{next(self._ping_tokens)}"))

    # ------------------------------------------------------------ queries

    def user_names(self, room: str = DEFAULT_ROOM) -> list[str]:
        r = self.rooms.get(name_key(room))
        return list(r.names.values()) if r else []


def _verify(password: str, stored: str) -> bool:
    try:
        return verify_password(password, stored)
    except Exception:  # a broken stored hash: no login, and no crash in the pool
        log.exception("cannot check a password against its stored hash")
        return False


def _hash(password: str) -> str | None:
    try:
        return hash_password(password)
    except Exception:
        log.exception("cannot hash a password")
        return None


def _is_dead(sock: QAbstractSocket) -> bool:
    """Closed, reset, or failed: an unbuffered socket whose write failed stays 'connected' but invalid."""
    return sock.state() == QAbstractSocket.SocketState.UnconnectedState or not sock.isValid()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _peer_address(sock: QAbstractSocket) -> str:
    text = str(sock.peerAddress().toString())
    return text[7:] if text.startswith("::ffff:") else text  # an IPv4 client of a dual-stack socket


def _banned_error(ban: Ban) -> ProtocolError:
    end = "" if ban.until is None else " until " + time.strftime("%Y-%m-%d %H:%M", time.localtime(ban.until))
    why = f": {ban.reason}" if ban.reason else "."
    return ProtocolError(ErrorCode.BANNED, f"You are banned from this server{end}{why}", fatal=True)


def _host_address(host: str) -> QHostAddress:
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
