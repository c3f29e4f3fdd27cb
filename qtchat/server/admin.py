"""The local admin channel: operator commands for a running server, with or without a display.

A QLocalServer (a Unix socket, a named pipe on Windows) that only the user who
runs the server may open (``UserAccessOption``). Each request is one JSON
object on a line, in the same framing as the chat protocol; each reply is
one JSON object: ``{"ok": true|false, "message": "...", ...}``.

    {"cmd": "kick", "name": "alice", "reason": "flooding"}
    {"cmd": "kick", "name": "alice", "room": "design"}   (out of that room only, as its operators can)
    {"cmd": "ban", "name": "alice", "address": "10.0.0.7", "seconds": 3600, "reason": "spam"}
    {"cmd": "unban", "target": "alice"}      {"cmd": "bans"}
    {"cmd": "mute", "name": "alice"}         {"cmd": "unmute", "name": "alice"}
    (kick, ban, mute and unmute take "id": N instead of "name", the connection id `users` lists)
    In a cluster every command acts on the whole cluster: `users` lists every node's users, those of other
    nodes with their "node" (and a negative id), which kick, mute and broadcast reach; accept and limit
    are set on every node (the limit is each node's own: docs/SCALING.md).
    {"cmd": "broadcast", "text": "restart at noon"}
    {"cmd": "accept", "on": false}           {"cmd": "limit", "count": 500}
    {"cmd": "users"}                         {"cmd": "status"}

``qtchat-server admin ...`` (see cli.py) is the command-line client.

Where it lives: on POSIX a socket in the user's runtime folder (``$XDG_RUNTIME_DIR``,
Qt's RuntimeLocation: a folder only its owner may write to), never in the shared
temporary folder, where another local user could create the name first and stop
the server from starting, or take the operator's commands and answer them. Both
ends check that the folder is the user's own and private, and that a socket found
there is the user's; anything else is refused, never removed. On Windows it is a
named pipe, which only this user may open (``UserAccessOption``, as Qt does).
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from typing import Any, cast

from PySide6.QtCore import QObject, QStandardPaths
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from qtchat.protocol import FrameDecoder, ProtocolError, decode_frame, encode_frame

from .backend import done, then
from .bans import check_ban_seconds
from .core import ChatServer
from .operator import Operator, sentence

log = logging.getLogger("qtchat.server")

Reply = dict[str, Any]


def channel_name(port: int) -> str:
    """The admin channel of the server listening on ``port``: a socket's full path in the user's runtime folder
    (POSIX), a pipe's name (Windows). OSError when that folder is not private to this user."""
    name = f"qtchat-server-admin-{port}"
    if os.name == "nt":
        return name
    return str(runtime_dir() / name)


def runtime_dir() -> Path:
    """The user's runtime folder (Qt's RuntimeLocation), checked to be the user's own and private; without one,
    a private folder in the home folder."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.RuntimeLocation)
    folder = Path(base) if base else Path.home() / ".qtchat-server-run"
    if not base:
        folder.mkdir(mode=0o700, exist_ok=True)
    check_private(folder)
    return folder


def check_private(folder: Path) -> None:
    """OSError unless ``folder`` is a real folder of this user's that no one else may write to."""
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise OSError(f"the admin channel's folder {folder} is not yours: refusing to use it")
    if info.st_mode & 0o022:
        raise OSError(f"the admin channel's folder {folder} can be written by others "
                      f"(mode {stat.S_IMODE(info.st_mode):o}): refusing to use it")


def check_socket(path: str) -> bool:
    """Whether a socket of ours is at ``path`` (False: nothing there); OSError when something else is."""
    if os.name == "nt":
        return False
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISSOCK(info.st_mode) or info.st_uid != os.getuid():
        raise OSError(f"{path} is in the way of the admin channel and is not a socket of yours: refusing it "
                      f"(remove it if it is no one's)")
    return True


def user_rows(op: Operator) -> list[dict[str, Any]]:
    return [
        {"id": u.id, "name": u.name, "peer": u.peer, "since": round(u.since), "idle_s": u.idle_s,
         "messages": u.messages, "bytes_in": u.bytes_in, "bytes_out": u.bytes_out, "muted": u.muted, "node": u.node}
        for u in op.users()
    ]


def _text(request: Reply, key: str, default: str | None = None) -> str:
    value = request.get(key, default)
    if not isinstance(value, str):
        raise ValueError(f"{key!r} must be a string.")
    return value


def _who(request: Reply) -> str | int:
    """The user a command names: by connection id ("id", as `users` lists it: exactly the one the operator
    saw) or by name."""
    who = request.get("id")
    if who is None:
        return _text(request, "name")
    if not isinstance(who, int) or isinstance(who, bool):
        raise ValueError("'id' must be a connection id, as 'users' lists them.")
    return who


def _ban_name(op: Operator, request: Reply) -> str | None:
    who = _who(request) if request.get("id") is not None else request.get("name") or None
    if not isinstance(who, int):
        return who
    for u in op.users():
        if u.id == who:
            return u.name
    raise KeyError("That user is no longer connected.")


def _kick(op: Operator, request: Reply) -> Future[str]:
    """Disconnect a user, or with "room" only remove them from that room (as its operators can)."""
    room = request.get("room")
    if room is None:
        return op.kick(_who(request), _text(request, "reason", ""))
    name = _ban_name(op, request)
    if not isinstance(room, str) or name is None:
        raise ValueError("'room' must be a room's name, with the user's name or id.")
    return op.kick_from_room(room, name, _text(request, "reason", ""))


def _status(op: Operator) -> Reply:
    s = op.snapshot()
    others = "1 other node" if s.nodes == 2 else f"{s.nodes - 1} other nodes"
    cluster = f" here ({s.remote_users} more on {others})" if s.nodes > 1 else ""
    return {"message": (
        f"{s.users} users{cluster}, {s.connections} connections, {s.messages} messages since start, "
        f"{'accepting' if s.accepting else 'not accepting'}, limit {s.max_clients}"),
        "users": s.users, "messages": s.messages, "remote_users": s.remote_users, "nodes": s.nodes}


def _users(op: Operator) -> Reply:
    rows = user_rows(op)
    here = sum(1 for row in rows if not row["node"])
    more = f" here, {len(rows) - here} on other nodes" if len(rows) > here else ""
    return {"message": f"{here} users{more}", "users": rows}


def _commands(op: Operator, request: Reply) -> dict[str, Callable[[], Future[str] | Reply]]:
    """Each command: a reply at once, or the operator's sentence to come."""
    return {
        "status": lambda: _status(op),
        "users": lambda: _users(op),
        "kick": lambda: _kick(op, request),
        "ban": lambda: op.ban(_ban_name(op, request), request.get("address") or None,
                              _seconds(request.get("seconds")), _text(request, "reason", "")),
        "unban": lambda: op.unban(_text(request, "target")),
        "bans": lambda: {"message": f"{len(op.bans())} bans", "bans": [b.describe() for b in op.bans()]},
        "mute": lambda: op.mute(_who(request), True),
        "unmute": lambda: op.mute(_who(request), False),
        "broadcast": lambda: op.broadcast(_text(request, "text")),
        "accept": lambda: op.set_accepting(bool(request.get("on", True))),
        "accounts": lambda: {"message": f"{len(op.accounts())} accounts", "accounts": [
            {"name": a.name, "admin": a.admin, "created": a.created} for a in op.accounts()]},
        "register": lambda: op.register_account(_text(request, "name"), _text(request, "hash"),
                                                bool(request.get("admin", False))),
        "unregister": lambda: op.unregister_account(_text(request, "name")),
        "op": lambda: op.set_operator(_text(request, "name"), True),
        "deop": lambda: op.set_operator(_text(request, "name"), False),
        "passwd": lambda: op.set_password_hash(_text(request, "name"), _text(request, "hash")),
        "limit": lambda: op.set_max_clients(_count(request.get("count"))),
    }


def execute(op: Operator, request: Reply) -> Future[Reply]:
    """Run one admin request; the reply, ``{"ok": ..., "message": ...}``, as a future that never fails."""
    cmd = request.get("cmd")
    commands = _commands(op, request)
    action = commands.get(cmd) if isinstance(cmd, str) else None
    if action is None:
        return done({"ok": False, "message": f"Unknown command {cmd!r}; known: {', '.join(sorted(commands))}."})
    try:
        outcome = action()
    except (KeyError, ValueError) as exc:
        return done({"ok": False, "message": sentence(exc)})
    if isinstance(outcome, dict):
        return done({**outcome, "ok": True})
    reply: Future[Reply] = Future()
    then(outcome, lambda text: reply.set_result({"message": text, "ok": True}),
         lambda exc: reply.set_result({"ok": False, "message": sentence(exc)}))
    return reply


def _seconds(value: Any) -> float | None:
    """A ban's 'seconds': checked as every ban's length is (bans.check_ban_seconds)."""
    return check_ban_seconds(value)


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError("'count' must be a whole number.")
    return value


class AdminChannel(QObject):
    """Serves admin requests for ``server`` on a local socket only its owner can open."""

    def __init__(self, server: ChatServer, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent or server)
        self.server = server
        self.name = name
        self._local = QLocalServer(self)
        self._local.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self._local.newConnection.connect(self._on_new_connection)
        self._clients: dict[QLocalSocket, FrameDecoder] = {}

    def listen(self) -> None:
        """Raises OSError when the channel cannot be opened (another server owns the name, or something not
        ours is in its place)."""
        check_socket(self.name)
        probe = QLocalSocket()
        probe.connectToServer(self.name)
        if probe.waitForConnected(200):
            probe.abort()
            raise OSError(f"another server already answers on the admin channel {self.name!r}")
        QLocalServer.removeServer(self.name)  # a socket file left by a server that crashed
        if not self._local.listen(self.name):
            raise OSError(f"cannot open the admin channel {self.name!r}: {self._local.errorString()}")
        log.info("admin channel: %s", self._local.fullServerName())

    def close(self) -> None:
        self._local.close()

    def _on_new_connection(self) -> None:
        while self._local.hasPendingConnections():
            sock = self._local.nextPendingConnection()
            self._clients[sock] = FrameDecoder()
            sock.readyRead.connect(partial(self._on_ready_read, sock))
            sock.disconnected.connect(partial(self._on_disconnected, sock))

    def _on_disconnected(self, sock: QLocalSocket) -> None:
        self._clients.pop(sock, None)
        sock.deleteLater()

    def _on_ready_read(self, sock: QLocalSocket) -> None:
        decoder = self._clients.get(sock)
        if decoder is None:
            return
        decoder.feed(cast(bytes, sock.readAll().data()))
        while True:
            try:
                frame = decoder.next_frame()
                if frame is None:
                    return
                request = decode_frame(frame)
            except ProtocolError as exc:
                sock.write(encode_frame({"ok": False, "message": exc.message}))
                if exc.fatal:
                    sock.disconnectFromServer()
                    return
                continue
            then(execute(self.server.operator, request), partial(self._reply, sock), log.error)

    def _reply(self, sock: QLocalSocket, reply: Reply) -> None:
        if sock in self._clients:
            sock.write(encode_frame(reply))
