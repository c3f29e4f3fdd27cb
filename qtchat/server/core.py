"""The chat server: a QObject on QTcpServer, driven by the Qt event loop, no threads.

It runs the same under ``qtchat-server`` (headless), under the admin window and
inside the desktop client's "host on this computer" mode. It imports QtCore and
QtNetwork only. This module holds the lifecycle, the signals and the dispatch
tables; each job lives in a module of its own (docs/ARCHITECTURE.md has the map):

- peer.py: connections (accepting, bounded reads, capped writes, closing, pings)
- auth.py: hello, registering, passwords, the limits on guessing
- rooms.py: rooms, membership, user lists, the per-pass shared-buffer fan-out
- room_state.py, room_ops.py: what a room keeps (creator, operators, modes, invites, join points); its operators' work
- messages.py, resends.py: posting to rooms and people, resends recognised by cid
- journal.py: the pass, stored in one commit before anything of it is sent
- lanes.py: fakelag: frames past their price held back and served in turns
- mailbox.py: private messages kept for offline users
- typing_relay.py: typing indicators, one frame per room per pass, never stored
- history.py: pages, pages around a message, search, read markers
- operator.py: kick, ban, mute, broadcast, accounts; snapshots for the admin window
- backend.py: the storage seam (sqlite_backend.py on one machine)
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtNetwork import QAbstractSocket

from qtchat import __version__
from qtchat.protocol import (
    DEFAULT_ROOM,
    AccountStatus,
    BanRequest,
    Bye,
    ByeCode,
    DeleteMessage,
    Delivered,
    EditMessage,
    ErrorCode,
    Hello,
    HistoryRequest,
    JoinRoom,
    KickRequest,
    MarkRead,
    PartRoom,
    PasswordChange,
    Ping,
    Pong,
    ProtocolError,
    React,
    Register,
    RoomInfo,
    RoomInvite,
    RoomKick,
    RoomMode,
    RoomOp,
    RoomsRequest,
    SearchRequest,
    SendMessage,
    SetAway,
    SetBack,
    SetTopic,
    Typing,
    UsersRequest,
    Welcome,
    clean_line,
)
from qtchat.tls import TlsSetupError, load_server_tls

from .accounts import Hasher
from .auth import Authenticator, banned_error, name_taken
from .backend import Backend, RecentCid, then
from .cluster import Claim
from .cluster_host import ServerHost
from .config import ServerConfig, announced_limits, work_limits
from .edits import Edits
from .history import HistoryService
from .journal import Journal
from .lanes import Lanes
from .limits import Verdict
from .mailbox import Mailboxes
from .messages import Messages
from .operator import NodeSink, Operator
from .peer import Connections, Listener, Peer, User, host_address, log_certificate
from .presence import Presence
from .prices import price
from .reactions import ReactionsPart
from .resends import RECENT_CIDS_PER_USER, RecentCids
from .room_ops import RoomOps
from .room_state import RoomRecords
from .rooms import Rooms
from .sqlite_backend import SqliteBackend
from .typing_relay import TypingRelay

log = logging.getLogger("qtchat.server")

Handler = Callable[[Any, Any], None]  # (Peer or User, event)
RATED = (SendMessage, SetTopic, EditMessage, DeleteMessage, React, SetAway, SetBack)  # what the message rate counts
Rated = SendMessage | SetTopic | EditMessage | DeleteMessage | React | SetAway | SetBack


def own_bytes(event: Rated) -> int:
    """About the bytes a rated frame took on the wire (its text), not counted in its own rate check."""
    text = event.text if isinstance(event, (SendMessage, EditMessage)) else event.topic if isinstance(event, SetTopic) \
        else event.message if isinstance(event, SetAway) else ""
    return len(text.encode("utf-8", "surrogatepass"))


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

    def __init__(self, config: ServerConfig | None = None, parent: QObject | None = None, *,
                 backend: Backend | None = None) -> None:
        super().__init__(parent)
        cfg = self.config = config or ServerConfig()
        self.backend: Backend = backend or SqliteBackend(
            cfg.data_dir, history=cfg.history, keep_days=cfg.keep_days, keep_messages=cfg.keep_messages,
            full_text=cfg.full_text, parent=self)
        if isinstance(self.backend, QObject) and self.backend.parent() is None:
            self.backend.setParent(self)  # its timers live and die with the server
        self.started = time.time()
        self.accepting = True
        self.users: dict[str, User] = {}  # name key -> user
        self._admitting: dict[str, Peer] = {}  # name key -> a checked login whose welcome is on its way
        self.muted: set[str] = set()  # name keys
        self._build()
        self._init_timers()
        self._init_dispatch()
        self.backend.attach(NodeSink(self.rooms, self.operator))
        self.cluster.start(ServerHost(self))
        self.destroyed.connect(self.connections.forget_sockets)

    def _build(self) -> None:
        """The parts, each with one job, wired to each other."""
        cfg, backend = self.config, self.backend
        self.cluster = backend.cluster
        self.connections = Connections(cfg, self, admit=self._may_connect, on_data=self._on_data,
                                       on_detach=self._detach, on_gone=self._on_gone, report=self.client_error.emit,
                                       elsewhere=self.cluster.connections_from)
        # (the lambdas: history and messages are made below, and need the rooms and the journal)
        self.rooms = Rooms(cfg, self.connections, schedule=self._schedule,
                           describe=lambda user, room, members: self.history.describe(user, room, members),  # noqa: PLW0108
                           publish=backend.publish, records=RoomRecords(backend), presence=backend.cluster)
        self.rooms.settled = lambda user: self.lanes.release(user.peer)
        self.presence = Presence(self.rooms)
        self.rooms.entered = self.presence.entered
        self.room_ops = RoomOps(self.connections, self.rooms, self.users)
        self.recent = RecentCids()
        self.journal = Journal(backend, self.rooms, self.connections, schedule=self._flush_soon,
                               stored=lambda posted, msg: self.messages.stored(posted, msg),  # noqa: PLW0108
                               forget=self.recent.forget)
        self.mailboxes = Mailboxes(cfg, backend, self.connections, self.journal, self.recent,
                                   posted=self.message_posted.emit)
        self.messages = Messages(backend, self.connections, self.rooms, self.journal, mailboxes=self.mailboxes,
                                 users=self.users, muted=self.muted, recent=self.recent,
                                 posted=self.message_posted.emit)
        self.history = HistoryService(cfg, backend, self.connections, self.rooms, self.journal)
        self.edits = Edits(cfg, backend, self.rooms, self.journal, self.muted)
        self.reactions = ReactionsPart(self.rooms, self.journal, self.muted)
        self.typing = TypingRelay(cfg, self.connections, self.rooms, self.users, muted=self.muted,
                                  cluster=self.cluster, flood=self._flood)
        self.rooms.taking = self.typing.encode  # each room's typing news of the pass in one frame
        self.hasher = Hasher(parent=self)
        self.auth = Authenticator(cfg, backend, self.connections, self.users, self.hasher, admit=self._admit,
                                  taken=self.name_taken)
        self.operator = Operator(self)
        self._tcp = Listener(self.connections.accept, self)
        self._tcp.acceptError.connect(self._on_accept_error)
        self.fingerprint: str | None = None  # with TLS: the certificate's SHA-256, 64 hex digits

    def _init_timers(self) -> None:
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(0)
        self._flush_timer.timeout.connect(self.flush)
        self._notice_timer = QTimer(self)
        self._notice_timer.setSingleShot(True)
        self._notice_timer.timeout.connect(self.flush)
        self._sweep_timer = QTimer(self)
        self._sweep_timer.timeout.connect(self.connections.sweep)
        self.lanes = Lanes(self.connections, self, dispatch=self._dispatch, holds=self._holds, flood=self._flood,
                           price=lambda event: price(event, self.rooms),
                           backlog=lambda: work_limits(self.config).backlog)
        self._stopping = False
        self._stopped = False
        self._stop_deadline = QTimer(self)
        self._stop_deadline.setSingleShot(True)
        self._stop_deadline.timeout.connect(self._abort_all)

    def _init_dispatch(self) -> None:
        """What each event does, per phase: before login the handler gets the Peer, after it the User."""
        self._before_login: dict[type, Handler] = {
            Hello: self.auth.on_hello, Ping: self._on_ping, Pong: _ignore, Bye: self._on_bye,
        }
        self._logged_in: dict[type, Handler] = {
            SendMessage: self.typing.noting(self.messages.on_message),
            Typing: self.typing.on_typing,
            HistoryRequest: self.history.on_history,
            SearchRequest: self.history.on_search,
            MarkRead: self.history.on_read,
            Delivered: self.mailboxes.on_delivered,
            JoinRoom: self.rooms.on_join,
            PartRoom: self.rooms.on_part,
            SetTopic: self.rooms.on_topic,
            UsersRequest: self.rooms.on_users,
            RoomsRequest: self.rooms.on_rooms,
            RoomMode: self.room_ops.on_mode,
            RoomOp: self.room_ops.on_op,
            RoomInvite: self.room_ops.on_invite,
            RoomKick: self.room_ops.on_kick,
            SetAway: self.presence.on_away,
            SetBack: self.presence.on_back,
            Register: self.auth.on_register,
            PasswordChange: self.auth.on_passwd,
            KickRequest: self.operator.on_request,
            BanRequest: self.operator.on_request,
            Ping: lambda user, event: self._on_ping(user.peer, event),
            Pong: _ignore,
            Bye: lambda user, event: self._on_bye(user.peer, event),
            **self.edits.handlers(),
            **self.reactions.handlers(),
        }

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
        if not self._tcp.listen(host_address(cfg.host), cfg.port):
            raise OSError(f"cannot listen on {cfg.host}:{cfg.port}: {self._tcp.errorString()}")
        self._sweep_timer.start(self.connections.sweep_interval_ms())
        log.info("listening on %s:%d%s (protocol 1, max %d clients)", cfg.host, self.port,
                 " with TLS" if tls else "", cfg.max_clients)
        if tls is not None:
            self.fingerprint = tls.fingerprint
            log_certificate(tls.certificate, tls.fingerprint)

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

    @property
    def peers(self) -> set[Peer]:
        """Every connection, logged in or not (closing ones too)."""
        return self.connections.peers

    @property
    def total_messages(self) -> int:
        return self.messages.total + self.mailboxes.total

    def set_accepting(self, on: bool) -> None:
        if on:
            self._tcp.resumeAccepting()
        else:
            self._tcp.pauseAccepting()
        self.accepting = on

    def user_names(self, room: str = DEFAULT_ROOM) -> list[str]:
        return self.rooms.user_names(room)

    def shutdown(self, reason: str = "server shutting down") -> None:
        """Tell every client ``bye``, close every connection, then emit ``stopped``."""
        if self._stopping:
            return
        self._stopping = True
        self._tcp.close()
        # what was accepted is stored and acknowledged first, then everyone is told
        self.journal.when_stored(lambda: self._say_bye(reason))

    def _say_bye(self, reason: str) -> None:
        log.info("shutting down: %s (%d connections)", reason, len(self.peers))
        for peer in list(self.peers):
            self.connections.drop(peer, f"server shutdown: {reason}", farewell=Bye(reason, ByeCode.SHUTDOWN))
        if self.peers:
            self._stop_deadline.start(int(self.config.close_timeout * 1000))
        else:
            self._finish_stop()

    def _abort_all(self) -> None:
        self.connections.abort_all()
        self._finish_stop()

    def _finish_stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.journal.when_stored(self._close_backend)  # markers and confirmations of the last pass first

    def _close_backend(self) -> None:
        self.backend.close()
        self.hasher.shutdown()
        self._stop_deadline.stop()
        self._sweep_timer.stop()
        log.info("stopped")
        self.stopped.emit()

    # ------------------------------------------------------------ connections and dispatch

    def _on_accept_error(self, error: QAbstractSocket.SocketError) -> None:
        # out of file descriptors, typically: keep serving who is connected
        log.error("cannot accept a connection: %s", self._tcp.errorString())

    def _may_connect(self, peer: Peer) -> ProtocolError | None:
        ban = self.backend.bans.match(None, peer.address)
        if ban is None:
            return None
        log.info("refused %s: banned %s", peer.peer, ban.describe())
        return banned_error(ban)

    def _on_gone(self, peer: Peer) -> None:
        if self._stopping and not self.peers:
            self._finish_stop()

    def _on_data(self, peer: Peer, data: bytes) -> None:
        if peer.limiter is not None and peer.limiter.received(len(data), peer.last_seen) is Verdict.FLOOD:
            self._flood(peer, f"You sent more than {self.config.rate_bytes} bytes per second for too long.")
            return
        peer.conn.receive_data(data)
        self.lanes.take(peer)

    def _holds(self, peer: Peer, event: object) -> bool:
        """A hello or a join was acted upon: the frames after it wait while it is answered (a password checked,
        the backend read: they may depend on it, a message to the room joined), released by ``lanes.release``."""
        if isinstance(event, Hello):
            return peer.user is None and not peer.detached and (peer.logging_in or peer in self._admitting.values())
        return isinstance(event, JoinRoom) and peer.user is not None and peer.user in self.rooms.joining

    def _dispatch(self, peer: Peer, event: object) -> None:
        """One lookup in the table of the connection's phase; a ProtocolError a handler raises is answered."""
        user = peer.user
        try:
            if user is None:
                handler = self._before_login.get(type(event))
                if handler is not None:
                    handler(peer, event)
                return
            handler = self._logged_in.get(type(event))
            if handler is None:
                return
            if isinstance(event, RATED) and peer.limiter is not None and not self._within_rate(peer, event):
                return
            handler(user, event)
        except ProtocolError as exc:
            self.connections.fail(peer, exc)
        except Exception:  # a bug of ours must not cost the other clients their server
            log.exception("error handling %s from %s", type(event).__name__, peer.peer)
            self.connections.fail(peer, ProtocolError(ErrorCode.INTERNAL, "The server failed to handle that frame."))

    def _within_rate(self, peer: Peer, event: Rated) -> bool:
        """A chat message over the rate limit: refused (slow_down), or after too many refusals a disconnect."""
        assert peer.limiter is not None
        verdict, wait = peer.limiter.message(time.monotonic(), own_bytes(event))
        if verdict is Verdict.OK:
            return True
        if verdict is Verdict.FLOOD:
            self._flood(peer, "You kept sending faster than the limit after being told to slow down.")
            return False
        cfg = self.config
        what = f"{cfg.rate_messages:g} messages per second" if cfg.rate_messages > 0 else \
            f"{cfg.rate_bytes} bytes per second"
        raise ProtocolError(
            ErrorCode.SLOW_DOWN,
            f"You are sending too fast (this server allows {what}), so this was not sent. "
            f"Wait {max(wait, 0.1):.1f} s and send it again.",
            ref=event.cid if isinstance(event, SendMessage) else None if isinstance(event, SetTopic) else
            f"{event.TYPE}:{event.id}" if isinstance(event, (EditMessage, DeleteMessage, React)) else event.TYPE,
            retry_after=math.ceil(wait * 1000) / 1000)  # rounded up: waiting that long is enough

    def _flood(self, peer: Peer, why: str) -> None:
        log.warning("dropping %s: flooding", peer.label)
        self.client_error.emit(peer.peer, f"flood: {why}")
        self.connections.drop(peer, "flooding", ProtocolError(ErrorCode.FLOOD, f"{why} Disconnected.", fatal=True))

    def _on_ping(self, peer: Peer, event: Ping) -> None:
        self.connections.send(peer, Pong(event.token))

    def _on_bye(self, peer: Peer, event: Bye) -> None:
        reason = clean_line(event.reason).strip()
        self.connections.drop(peer, f"quit: {reason}" if reason else "quit")

    # ------------------------------------------------------------ joining and leaving

    def name_taken(self, key: str) -> bool:
        """Is the name in use, or being logged in with (its welcome on its way)?"""
        return key in self.users or key in self._admitting

    def _admit(self, peer: Peer, name: str, key: str, *, waited: bool = False, claimed: bool = False,
               takeover: bool = False) -> None:
        """A login checked: the user is in, told ``welcome`` and put in the lobby. The name is held from now
        on (in a cluster: once every node agrees, cluster.py); the user is listed (and reachable) once its
        welcome is sent."""
        if peer.detached:
            return
        if self.name_taken(key) and self._admitting.get(key) is not peer:
            self.connections.fail(peer, name_taken(name))
            return
        self._admitting[key] = peer
        if not claimed:
            then(self.cluster.claim(key, takeover=takeover), lambda claim: self._claimed(peer, name, key, claim),
                 self._admit_failed(User(name, key, peer)))
            return
        if not waited and self.journal.has_mail_for(key):
            # kept for them this pass, or confirmed by their last session: stored (or deleted) first, once
            self.journal.when_stored(lambda: self._admit(peer, name, key, waited=True, claimed=True))
            return
        user = User(name, key, peer)
        recent = self.backend.recent_cids(key, RECENT_CIDS_PER_USER) if key not in self.recent else None
        then(self.history.describe(user, self.rooms.lobby), lambda info: self._welcome(user, info, recent),
             self._admit_failed(user))

    def _claimed(self, peer: Peer, name: str, key: str, claim: Claim) -> None:
        if claim.ok and peer.detached and key not in self.users and key not in self._admitting:
            self.cluster.release(key)  # closed meanwhile
        elif not claim.ok:
            if self._admitting.get(key) is peer:
                del self._admitting[key]
            self.connections.fail(peer, name_taken(name))
        else:
            self._admit(peer, name, key, claimed=True)

    def _welcome(self, user: User, lobby: RoomInfo, recent: Any) -> None:
        if recent is not None and not recent.done():  # known before anything it sends is read (its resends)
            then(recent, lambda _: self._welcome(user, lobby, recent), lambda _: self._welcome(user, lobby, recent))
            return
        peer = user.peer
        if self._admitting.get(user.key) is peer:
            del self._admitting[user.key]
        if peer.detached:
            return
        peer.user = user
        self.users[user.key] = user
        if recent is not None:  # resends after a server restart (or from a node that died) are recognised too
            then(recent, lambda found: self._remember(user.key, found), lambda exc: log.error(
                "cannot read the recent messages of %s: %s", user.name, exc))
        cfg = self.config
        self.connections.send(peer, Welcome(
            user=user.name, version=peer.conn.version or 1, server=f"qtchat-server {__version__}",
            name=cfg.name, rooms=(lobby,), max_frame=cfg.max_frame, ping_interval=cfg.ping_interval,
            motd=cfg.motd, limits=announced_limits(cfg), nodes=cfg.nodes))
        account = self.backend.account(user.key)
        self.connections.send(peer, AccountStatus(account is not None, account is not None and account.admin))
        self.cluster.online(user.key, user.name, peer.peer)
        self.rooms.join(user, self.rooms.lobby)
        log.info("%s joined from %s", user.name, peer.peer)
        self.user_joined.emit(user.name, peer.peer)
        if account is not None:
            self.mailboxes.deliver(user)
        self.lanes.release(peer)  # what it sent after its hello

    def _remember(self, key: str, found: list[RecentCid]) -> None:
        if key not in self.recent:
            for entry in found:
                self.recent.remember(key, entry)

    def _admit_failed(self, user: User) -> Callable[[BaseException], None]:
        def failed(exc: BaseException) -> None:
            if self._admitting.get(user.key) is user.peer:
                del self._admitting[user.key]
            log.error("cannot read the state of %s: %s", user.name, exc)
            self.connections.fail(user.peer, ProtocolError(
                ErrorCode.INTERNAL, "The server could not read your state; try again in a moment.", fatal=True))
        return failed

    def _detach(self, peer: Peer, reason: str) -> None:
        """A connection is closing: its user (if any) leaves every room and frees the name."""
        user = peer.user
        if user is None:
            for key in [k for k, p in self._admitting.items() if p is peer]:  # closed before its welcome
                del self._admitting[key]
                self.cluster.release(key)
        elif self.users.get(user.key) is user:
            del self.users[user.key]
            self.rooms.leave_all(user, reason)
            self.cluster.offline(user.key)
            self.cluster.release(user.key)
            log.info("%s left (%r)", user.name, reason)
            self.user_left.emit(user.name, reason)

    # ------------------------------------------------------------ the flush

    def _schedule(self, urgent: bool) -> None:
        """A room has frames to send: chat this pass, notices within notice_delay.

        Joins and leaves of a crowd (thousands connecting after a restart) would otherwise
        cost one write per member per event-loop pass for each few notices; holding
        notice-only batches briefly lets them go out together.
        """
        if urgent:
            self._flush_soon()
        elif not self._flush_timer.isActive() and not self._notice_timer.isActive():
            # each notice flush costs one write per member: the bigger the crowd, the longer
            # notices wait to go out together (50 ms at 200 users, 1 s from 4,000)
            scale = max(1.0, len(self.peers) / 200)
            self._notice_timer.start(int(min(1.0, self.config.notice_delay * scale) * 1000))

    def _flush_soon(self) -> None:
        """Flush at the end of this event-loop pass (store, then send), once however often it is asked."""
        if not self._flush_timer.isActive():
            self._flush_timer.start()

    def flush(self) -> None:
        """Store this pass (one transaction), then write each dirty room's batch, as one shared buffer, to
        all its members: nobody sees, and no sender is acknowledged for, a message that is not stored."""
        self._notice_timer.stop()
        self.journal.flush()


def _ignore(who: object, event: object) -> None:
    """Pongs: any traffic already counted as a sign of life."""


__all__ = ["ChatServer", "ServerConfig"]
