"""Operator actions: the one facade for the admin window, the admin channel and in-protocol kick/ban.

Each action is logged and answers with a future of a sentence for the operator (done at
once on one machine), or fails with KeyError/ValueError carrying one. Names are matched
like logins (case and look-alikes folded); a connection id (``UserSnapshot.id``) names
exactly the connection an operator sees. Readers get immutable snapshots
(``snapshot()``, ``users()``), never the server's live objects.

In a cluster every action reaches the whole cluster (cluster_ops.py): users of other nodes are listed with
their node (and negative ids), kicked by their node, muted on every node; a broadcast, accepting and the
client limit go to every node. Bans are the backend's, in force on every node (pg_mirror.py).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qtchat.protocol import (
    AccountStatus,
    BanRequest,
    Bye,
    ByeCode,
    ErrorCode,
    KickRequest,
    Notice,
    ProtocolError,
    encode_event,
    name_key,
    validate_name,
)

from .backend import Account, answer, done, failed, mapped, then
from .bans import Ban
from .cluster import RemoteUser
from .cluster_ops import ClusterOps
from .peer import User, now_ms
from .rooms import Rooms, RoomSink

if TYPE_CHECKING:
    from .core import ChatServer

log = logging.getLogger("qtchat.server")


@dataclass(frozen=True, slots=True)
class UserSnapshot:
    """A connected user as the operator sees them, at one moment."""

    id: int  # the connection's id: stable while it lasts, never reused by this server
    name: str
    peer: str  # address:port
    address: str
    since: float  # Unix time of the connection
    idle_s: float
    messages: int
    bytes_in: int
    bytes_out: int
    muted: bool
    node: str = ""  # the other node of the cluster they are connected to ("": this one; their id is negative,
    # and idle time and counters, which only their node knows, are 0)


@dataclass(frozen=True, slots=True)
class ServerSnapshot:
    """The server's figures at one moment."""

    port: int
    users: int
    connections: int
    max_clients: int
    accepting: bool
    messages: int  # accepted since start
    bytes_in: int
    bytes_out: int
    started: float  # Unix time
    remote_users: int = 0  # logged in on the other nodes of the cluster
    nodes: int = 1  # of the cluster, alive (this one included)


class Operator:
    def __init__(self, server: ChatServer) -> None:
        self.server = server
        self.remote = ClusterOps(self)

    # ------------------------------------------------------------ reading

    def snapshot(self) -> ServerSnapshot:
        s = self.server
        c = s.connections
        return ServerSnapshot(s.port, len(s.users), len(c.peers), s.config.max_clients, s.accepting,
                              s.total_messages, c.total_bytes_in, c.total_bytes_out + s.rooms.total_bytes_out,
                              s.started, len(s.cluster.users()), 1 + len(s.cluster.nodes()))

    def users(self) -> list[UserSnapshot]:
        """This node's users, then those of the other nodes of the cluster (with their node)."""
        now = time.monotonic()
        muted = self.server.muted
        here = [_snapshot(u, now, u.key in muted) for u in self.server.users.values()]
        return here + [self.remote.snapshot(uid, u) for uid, u in self.remote.users()]

    def user(self, who: str | int) -> UserSnapshot:
        u = self._target(who)
        if isinstance(u, RemoteUser):
            return next(s for s in self.users() if s.node == u.node and s.name == u.name)
        return _snapshot(u, time.monotonic(), u.key in self.server.muted)

    def bans(self) -> list[Ban]:
        return list(self.server.backend.bans.bans)

    def accounts(self) -> list[Account]:
        return self.server.backend.accounts()

    def _target(self, who: str | int) -> User | RemoteUser:
        """The user a connection id (negative: on another node) or a name names, here or on another node."""
        if isinstance(who, int):
            if who < 0:
                return self.remote.by_id(who)
            for u in self.server.users.values():
                if u.peer.id == who:
                    return u
            raise KeyError("That user is no longer connected.")
        key = name_key(who)
        found = self.server.users.get(key) or self.remote.by_key(key)
        if found is None:
            raise KeyError(f"No user {who!r} is connected.")
        return found

    # ------------------------------------------------------------ acting on users

    def kick(self, who: str | int, reason: str = "") -> Future[str]:
        """Disconnect a user; one on another node is kicked there (the future has its node's answer)."""
        try:
            user = self._target(who)
        except KeyError as exc:
            return failed(exc)
        if isinstance(user, RemoteUser):
            return self.remote.kick(user, reason)
        return answer(lambda: self.kick_here(user, reason))

    def kick_here(self, user: User, reason: str, by: str = "") -> str:
        """A user of this node kicked (``by``: the node that asked, for the log)."""
        why = f"kicked: {reason}" if reason else "kicked"
        self.server.connections.drop(user.peer, why, farewell=Bye(why, ByeCode.KICKED))
        log.warning("admin%s: kicked %s (%s)%s", f" of {by}" if by else "", user.name, user.peer.peer,
                    f": {reason}" if reason else "")
        return f"Kicked {user.name}."

    def kick_from_room(self, room: str, who: str, reason: str = "") -> Future[str]:
        """Remove a user from a room (not the lobby), as its operators can; their invite to it ends."""
        return answer(lambda: self._kick_from_room(room, who, reason))

    def _kick_from_room(self, room: str, who: str, reason: str) -> str:
        rooms = self.server.rooms
        found = rooms.rooms.get(name_key(room))
        record = rooms.records.get(found.key) if found is not None else None
        if found is None or record is None:
            raise KeyError(f"No room {room!r} has anyone in it." if found is None else "Everyone stays in the lobby.")
        try:
            return self.server.room_ops.kick(found, record, who, by="the server's operator", reason=reason)
        except ProtocolError as exc:
            raise KeyError(exc.message) from None

    def ban(self, name: str | None = None, address: str | None = None, seconds: float | None = None,
            reason: str = "") -> Future[str]:
        """Ban a name and/or an address (None seconds: for good); connected matches are kicked."""
        return answer(lambda: self._ban(name, address, seconds, reason))

    def _ban(self, name: str | None, address: str | None, seconds: float | None, reason: str) -> str:
        ban = self.server.backend.bans.add(name, address, seconds, reason)
        log.warning("admin: banned %s", ban.describe())
        self.enforce(ban)
        return f"Banned {ban.describe()}."

    def enforce(self, ban: Ban) -> None:
        """A ban made here or on another node of the cluster: the users here it matches are disconnected."""
        why = f"banned: {ban.reason}" if ban.reason else "banned"
        for user in list(self.server.users.values()):
            if ban.name_key == user.key or ban.address == user.peer.address:
                self.server.connections.drop(user.peer, why, farewell=Bye(why, ByeCode.BANNED))

    def unban(self, target: str) -> Future[str]:
        def lift() -> str:
            count = self.server.backend.bans.remove(target)
            if not count:
                raise KeyError(f"No ban on {target!r}.")
            log.warning("admin: lifted %d ban(s) on %s", count, target)
            return f"Lifted {count} ban(s) on {target}."
        return answer(lift)

    def mute(self, who: str | int, on: bool = True) -> Future[str]:
        """Mute (or unmute) a user on every node: they cannot send, wherever they are or reconnect."""
        def act() -> str:
            user = self._target(who)
            self.mute_here(user.key, on)
            self.remote.muted(user.key, on)
            return f"{'Muted' if on else 'Unmuted'} {user.name}."
        return answer(act)

    def mute_here(self, key: str, on: bool, by: str = "") -> None:
        """The name muted (or unmuted) on this node; its user, if here, is told."""
        if on:
            self.server.muted.add(key)
        else:
            self.server.muted.discard(key)
        user = self.server.users.get(key)
        log.warning("admin%s: %s %s", f" of {by}" if by else "", "muted" if on else "unmuted",
                    user.name if user is not None else key)
        if user is not None:
            self.server.connections.send(user.peer, Notice(
                f"You have been {'muted' if on else 'unmuted'} by the operator.", now_ms()))

    def broadcast(self, text: str) -> Future[str]:
        """A notice to every user of every node."""
        def act() -> str:
            if not text.strip():
                raise ValueError("The notice is empty.")
            here = self.broadcast_here(text)
            remote = self.remote.broadcast(text)
            log.warning("admin: broadcast to %d users: %s", here + remote, text[:200])
            if self.remote.clustered:
                return f"Sent to {here + remote} users ({remote} of them on other nodes)."
            return f"Sent to {here} users."
        return answer(act)

    def broadcast_here(self, text: str) -> int:
        """The notice to every user of this node (a broadcast made here or on another node); how many."""
        frame = encode_event(Notice(text, now_ms()))
        users = self.server.users
        for user in users.values():
            self.server.connections.write(user.peer, frame)
        return len(users)

    # ------------------------------------------------------------ accounts

    def register_account(self, name: str, password_hash: str, admin: bool = False) -> Future[str]:
        """Register a name with an already hashed password (the admin command line hashes it)."""
        try:
            name, key = validate_name(name) if name else ("", "")
            if not key:
                raise ValueError("A name is needed.")
            if self.server.backend.account(key) is not None:
                raise ValueError(f"The name {name!r} is registered already.")
        except (ValueError, ProtocolError) as exc:
            return failed(exc if isinstance(exc, ValueError) else ValueError(exc.message))
        role = " as an operator" if admin else ""

        def created(account: Account) -> str:
            log.warning("admin: registered %s%s", account.name, role)
            self._account_changed(key)
            return f"Registered {account.name}{role}."

        return mapped(self.server.backend.create_account(key, name, password_hash, admin=admin), created)

    def unregister_account(self, name: str) -> Future[str]:
        """Delete a name's account, and the private messages kept for it."""
        key = name_key(name)
        result: Future[str] = Future()

        def deleted(dropped: int | None) -> None:
            if dropped is None:
                result.set_exception(KeyError(f"No account {name!r}."))
                return
            log.warning("admin: unregistered %s%s", name,
                        f" and deleted {dropped} private message(s) kept for them" if dropped else "")
            self._account_changed(key)
            text = f"Unregistered {name}: the name is free for anyone again."
            if dropped:
                text += f" {dropped} private message(s) kept for them were deleted."
            result.set_result(text)

        # what was kept for the name this pass is stored first, then dropped with the rest
        self.server.journal.when_stored(
            lambda: then(self.server.backend.delete_account(key), deleted, result.set_exception))
        return result

    def set_operator(self, name: str, on: bool) -> Future[str]:
        account = self.server.backend.account(name_key(name))
        if account is None:
            return failed(KeyError(f"No account {name!r}: only registered names can be operators."))

        def changed(_: None) -> str:
            log.warning("admin: %s is %s an operator", account.name, "now" if on else "no longer")
            self._account_changed(account.key)
            return f"{account.name} is {'now' if on else 'no longer'} an operator."

        return mapped(self.server.backend.set_admin(account.key, on), changed)

    def set_password_hash(self, name: str, password_hash: str) -> Future[str]:
        account = self.server.backend.account(name_key(name))
        if account is None:
            return failed(KeyError(f"No account {name!r}."))

        def changed(_: None) -> str:
            log.warning("admin: new password for %s", account.name)
            return f"New password set for {account.name}."

        return mapped(self.server.backend.set_password(account.key, password_hash), changed)

    def account_changed_elsewhere(self, key: str, before: Account | None, after: Account | None) -> None:
        """Another node of the cluster registered, changed or deleted the account (the backend holds ``after``
        already). A user here under the name who has not proved that account's password (a guest, or the
        owner of an account deleted since) loses the name, as if it had been registered while they were
        away: the next login needs the password. Anyone else is told when the account is deleted or its
        operator role changes, as here (a new password applies from their next login, as here)."""
        user = self.server.users.get(key)
        if user is None:
            return
        if after is not None and (before is None or before.created != after.created):
            log.warning("%s (%s) loses the name: it was registered on another node", user.name, user.peer.peer)
            self.server.connections.fail(user.peer, ProtocolError(
                ErrorCode.NAME_REGISTERED, f"The name {user.name!r} has just been registered by someone else: "
                "log in with its password, or choose another name.", fatal=True))
        elif after is None or before is None or before.admin != after.admin:
            self._account_changed(key)  # unregistered, or made an operator or no longer one

    def _account_changed(self, key: str) -> None:
        user = self.server.users.get(key)
        if user is not None:
            account = self.server.backend.account(key)
            self.server.connections.send(user.peer, AccountStatus(account is not None,
                                                                  account is not None and account.admin))

    # ------------------------------------------------------------ the server

    def set_accepting(self, on: bool) -> Future[str]:
        """Accept new connections or not, on every node."""
        self.server.set_accepting(on)
        self.remote.accepting(on)
        log.warning("admin: %s accepting connections", "resumed" if on else "stopped")
        everywhere = ", on every node" if self.remote.clustered else ""
        return done(f"Accepting new connections{everywhere}." if on else f"Not accepting new connections{everywhere}.")

    def set_max_clients(self, count: int) -> Future[str]:
        """The client limit of each node (each counts its own connections), set on every node."""
        if count < 1:
            return failed(ValueError("The client limit must be at least 1."))
        self.server.config.max_clients = count
        self.remote.limit(count)
        log.warning("admin: client limit set to %d", count)
        return done(f"Client limit: {count} on each node." if self.remote.clustered else f"Client limit: {count}.")

    # ------------------------------------------------------------ from the protocol

    def on_request(self, user: User, event: KickRequest | BanRequest) -> None:
        """``kick`` and ``ban`` frames from a client with the operator role."""
        account = self.server.backend.account(user.key)
        if account is None or not account.admin:
            raise ProtocolError(ErrorCode.FORBIDDEN, "Only operators may kick or ban.", ref=event.TYPE)
        reason = f"{event.reason} (by {user.name})" if event.reason else f"by {user.name}"
        if isinstance(event, KickRequest):
            outcome = self.kick(event.user, reason)
        else:
            # the name only: an address may be shared by many (a campus, a NAT); address bans are
            # for the server's own operator tools
            seconds = event.minutes * 60.0 if event.minutes is not None else None
            outcome = self.ban(event.user, None, seconds, reason)

        def refused(exc: BaseException) -> None:
            self.server.connections.fail(user.peer, ProtocolError(ErrorCode.USER_OFFLINE, sentence(exc),
                                                                  ref=event.TYPE))

        then(outcome, lambda text: self.server.connections.send(user.peer, Notice(text, now_ms())), refused)


def sentence(exc: BaseException) -> str:
    """The operator's sentence a failed action carries."""
    return str(exc.args[0]) if isinstance(exc, KeyError | ValueError) and exc.args else str(exc)


def _snapshot(u: User, now: float, muted: bool) -> UserSnapshot:
    p = u.peer
    return UserSnapshot(p.id, u.name, p.peer, p.address, p.connected_wall, round(now - p.last_seen, 1), p.msgs_in,
                        p.bytes_in, p.bytes_out, muted)


class NodeSink(RoomSink):
    """The backend's ``RemoteSink`` (backend.py): rooms' frames from other nodes to this node's members, and
    what other nodes changed in accounts, bans and room records, acted upon here as the change would be."""

    def __init__(self, rooms: Rooms, operator: Operator) -> None:
        super().__init__(rooms)
        self.operator = operator

    def account_changed(self, key: str, before: Account | None, after: Account | None) -> None:
        self.operator.account_changed_elsewhere(key, before, after)

    def bans_added(self, bans: list[Ban]) -> None:
        for ban in bans:
            log.warning("banned on another node: %s", ban.describe())
            self.operator.enforce(ban)
