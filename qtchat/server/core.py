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
    Bye,
    Connection,
    Error,
    ErrorCode,
    Hello,
    History,
    HistoryRequest,
    Joined,
    JoinRoom,
    Left,
    Message,
    Notice,
    PartRoom,
    Ping,
    Pong,
    ProtocolError,
    Role,
    RoomInfo,
    RoomJoined,
    RoomList,
    RoomsRequest,
    SendableEvent,
    SendMessage,
    SetTopic,
    TopicChanged,
    UsersRequest,
    Welcome,
    clean_line,
    encode_event,
    encode_name,
    encode_user_lists,
    name_key,
    names_per_frame,
    validate_name,
)
from qtchat.tls import TlsSetupError, describe_certificate, format_fingerprint, load_server_tls

from .bans import Ban, BanList
from .store import MessageStore

log = logging.getLogger("qtchat.server")

RECENT_CIDS_PER_USER = 64
RECENT_CID_USERS = 5_000


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
    max_rooms_per_user: int = 50
    notice_delay: float = 0.05  # joins/leaves wait this long to be sent together (scaled up for crowds)
    listen_backlog: int = 4096
    tls_cert: Path | None = None  # PEM certificate (chain); with tls_key, every connection is TLS
    tls_key: Path | None = None  # PEM private key of tls_cert


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
        "key",
        "last_seen",
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
        self.msgs_in = 0
        self.bytes_in = 0
        self.bytes_out = 0

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

    def info(self) -> RoomInfo:
        return RoomInfo(self.name, self.topic)


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
        message_posted(Message): a chat message was accepted and relayed.
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
        self.users: dict[str, Session] = {}  # name key -> session
        self.rooms: dict[str, Room] = {DEFAULT_ROOM: Room(DEFAULT_ROOM)}
        self.bans = BanList(self.config.data_dir / "bans.json" if self.config.data_dir else None)
        cfg = self.config
        self.store = MessageStore(
            cfg.data_dir / "messages.db" if cfg.data_dir and cfg.history else None, keep_days=cfg.keep_days,
            # a history kept in memory only is bounded whatever the settings say
            keep_per_room=cfg.keep_messages if cfg.data_dir or cfg.keep_messages else 20_000,
        )
        self.ids = MessageIds(self.store.max_id())
        # accepted this pass, stored at the flush before anyone sees them: (row, session)
        self._unstored: list[tuple[tuple[int, str, int, str, str, str | None, str], Session]] = []
        self._prune_timer = QTimer(self)
        self._prune_timer.timeout.connect(self._prune)
        self._prune_timer.start(10 * 60 * 1000)
        self._prune()
        self.muted: set[str] = set()  # name keys
        self.started = time.time()
        self.total_messages = 0
        self.total_bytes_in = 0
        self.total_bytes_out = 0
        # name key -> cid -> (id, ts, room, hash of text): each user's recent messages, so that a
        # resend after a reconnect is acknowledged again instead of relayed twice (small and bounded)
        self._recent_cids: OrderedDict[str, OrderedDict[str, tuple[int, int, str, int]]] = OrderedDict()
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
                if isinstance(session.socket, QSslSocket):
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
        self.store.close()
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
        sock.setSocketOption(QAbstractSocket.SocketOption.LowDelayOption, 1)
        sock.setSocketOption(QAbstractSocket.SocketOption.KeepAliveOption, 1)
        sock.readyRead.connect(partial(self._on_ready_read, session))
        sock.disconnected.connect(partial(self._on_disconnected, session))
        if isinstance(sock, QSslSocket):
            sock.errorOccurred.connect(partial(self._on_tls_error, session))
        log.debug("connection from %s", peer)
        if len(self.sessions) > cfg.max_clients:
            log.warning("refused %s: server full (%d clients)", peer, cfg.max_clients)
            self._drop(
                session, "server full",
                ProtocolError(ErrorCode.SERVER_FULL, f"The server is full ({cfg.max_clients} users).", fatal=True),
            )
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
        session.socket.deleteLater()
        log.debug("closed %s", session.peer)
        if self._stopping and not self.sessions:
            self._finish_stop()

    def _on_ready_read(self, session: Session) -> None:
        sock = session.socket
        data = cast(bytes, sock.readAll().data())
        if sock.state() == QAbstractSocket.SocketState.UnconnectedState:
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
        elif isinstance(event, Bye):
            reason = clean_line(event.reason).strip()
            self._drop(session, f"quit: {reason}" if reason else "quit")

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
        cfg = self.config
        try:
            name, key = validate_name(hello.user)
            ban = self.bans.match(key, session.address)
            if ban is not None:
                log.info("refused %s from %s: banned %s", name, session.peer, ban.describe())
                raise _banned_error(ban)
            if key in self.users:
                raise ProtocolError(
                    ErrorCode.NAME_TAKEN, f"The name {name!r} is already in use on this server.", fatal=True
                )
        except ProtocolError as exc:
            self._protocol_error(session, exc)
            return
        session.name, session.key = name, key
        self.users[key] = session
        if key not in self._recent_cids:  # resends after a server restart are recognised too
            for cid, mid, ts, room_name, text in self.store.recent_cids(key, RECENT_CIDS_PER_USER):
                self._remember_cid(key, cid, (mid, ts, room_name, hash(text)))
        lobby = self.rooms[DEFAULT_ROOM]
        self._send(
            session,
            Welcome(
                user=name, version=session.conn.version or 1, server=f"qtchat-server {__version__}",
                name=cfg.name, rooms=(lobby.info(),), max_frame=cfg.max_frame,
                ping_interval=cfg.ping_interval, motd=cfg.motd,
            ),
        )
        self._join(session, lobby)
        log.info("%s joined from %s", name, session.peer)
        self.user_joined.emit(name, session.peer)

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
        self._send(session, RoomJoined(RoomInfo(room.name, room.topic, len(room.names) + 1)))
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
            self._remember_cid(key, cid, (msg.id, msg.ts, room.key, hash(msg.text)))
        self.message_posted.emit(msg)

    def _private(self, session: Session, event: SendMessage) -> None:
        """A private message: straight to its recipient and back to its sender (not kept: no accounts yet)."""
        assert session.name is not None and session.key is not None and event.to is not None
        if session.key in self.muted:
            self._send(session, Error(ErrorCode.MUTED.value, "You are muted on this server.", ref=event.cid))
            return
        target = self.users.get(name_key(event.to))
        if target is None or target.name is None:
            self._send(session, Error(
                ErrorCode.USER_OFFLINE.value,
                f"{event.to} is not online; private messages to people who are offline are not kept (yet).",
                ref=event.cid))
            return
        cid, marker = event.cid, "@" + (target.key or "")
        if cid is not None:
            earlier = self._recent_cids.get(session.key, OrderedDict()).get(cid)
            if earlier is not None and earlier[2] == marker and earlier[3] == hash(event.text):
                ack = Message(id=earlier[0], ts=earlier[1], sender=session.name, text=event.text, cid=cid,
                              to=target.name)
                self._write(session, encode_event(ack))  # a resend: acknowledged again, not delivered twice
                return
        msg = Message(id=self.ids.next(), ts=_now_ms(), sender=session.name, text=event.text, cid=event.cid,
                      to=target.name)
        if cid is not None:
            self._remember_cid(session.key, cid, (msg.id, msg.ts, marker, hash(msg.text)))
        session.msgs_in += 1
        self.total_messages += 1
        frame = encode_event(msg)
        self._write(target, frame)
        if target is not session:
            self._write(session, frame)
        self.message_posted.emit(msg)

    def _store_pass(self) -> None:
        unstored, self._unstored = self._unstored, []
        try:
            self.store.append([row for row, _ in unstored])
        except Exception as exc:  # a full or broken disk: refuse this pass's messages, keep serving
            log.critical("cannot store %d messages: %s; they were not sent", len(unstored), exc)
            for room in self.rooms.values():
                room.pending.clear()  # the pass's frames, messages with them, are not sent
                room.pending_len = 0
            for row, session in unstored:
                self._recent_cids.get(row[4], OrderedDict()).pop(row[5] or "", None)
                self._send(session, Error(ErrorCode.INTERNAL.value,
                                          "The server could not store your message, so it was not sent.",
                                          ref=row[5]))

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
            self._send(session, History((), room.name, before=request.before, after=request.after))
            return
        self.flush()  # what was accepted this pass is part of the history too
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

    def _remember_cid(self, key: str, cid: str, entry: tuple[int, int, str, int]) -> None:
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
            if not self._flush_timer.isActive():
                self._flush_timer.start()
        elif not self._flush_timer.isActive() and not self._notice_timer.isActive():
            # each notice flush costs one write per member: the bigger the crowd, the longer
            # notices wait to go out together (50 ms at 200 users, 1 s from 4,000)
            scale = max(1.0, len(self.sessions) / 200)
            self._notice_timer.start(int(min(1.0, self.config.notice_delay * scale) * 1000))

    def flush(self) -> None:
        """Store this pass's messages (one transaction), then write each dirty room's batch, as one
        shared buffer, to all its members: nobody sees, and no sender is acknowledged for, a message
        that is not on disk."""
        self._notice_timer.stop()
        if self._unstored:
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
                sock.write(shared)
                member.bytes_out += size
                if sock.bytesToWrite() > limit:
                    slow.append(member)
            self.total_bytes_out += size * len(room.members)
            if room.joiners:
                for member, offset in room.joiners.items():
                    if offset < size:
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
        if sock.state() == QAbstractSocket.SocketState.ConnectedState:
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
            if session.socket.state() == QAbstractSocket.SocketState.UnconnectedState:
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
