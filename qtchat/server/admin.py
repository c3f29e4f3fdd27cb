"""The local admin channel: operator commands for a running server, with or without a display.

A QLocalServer (a Unix socket, a named pipe on Windows) that only the user who
runs the server may open (``UserAccessOption``). Each request is one JSON
object on a line, in the same framing as the chat protocol; each reply is
one JSON object: ``{"ok": true|false, "message": "...", ...}``.

    {"cmd": "kick", "name": "alice", "reason": "flooding"}
    {"cmd": "ban", "name": "alice", "address": "10.0.0.7", "seconds": 3600, "reason": "spam"}
    {"cmd": "unban", "target": "alice"}      {"cmd": "bans"}
    {"cmd": "mute", "name": "alice"}         {"cmd": "unmute", "name": "alice"}
    {"cmd": "broadcast", "text": "restart at noon"}
    {"cmd": "accept", "on": false}           {"cmd": "limit", "count": 500}
    {"cmd": "users"}                         {"cmd": "status"}

``qtchat-server admin ...`` (see cli.py) is the command-line client.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any, cast

from PySide6.QtCore import QObject
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from qtchat.protocol import FrameDecoder, ProtocolError, decode_frame, encode_frame

from .core import ChatServer

log = logging.getLogger("qtchat.server")

Reply = dict[str, Any]


def channel_name(port: int) -> str:
    """The local socket name of the server listening on ``port``."""
    return f"qtchat-server-admin-{port}"


def user_rows(server: ChatServer) -> list[dict[str, Any]]:
    now = time.monotonic()
    return [
        {
            "name": s.name, "peer": s.peer, "since": round(s.connected_wall), "idle_s": round(now - s.last_seen, 1),
            "messages": s.msgs_in, "bytes_in": s.bytes_in, "bytes_out": s.bytes_out,
            "muted": s.key in server.muted,
        }
        for s in server.users.values()
    ]


def _text(request: Reply, key: str, default: str | None = None) -> str:
    value = request.get(key, default)
    if not isinstance(value, str):
        raise ValueError(f"{key!r} must be a string.")
    return value


def execute(server: ChatServer, request: Reply) -> Reply:
    """Run one admin request against the server; never raises."""
    cmd = request.get("cmd")
    actions: dict[str, Callable[[], Reply]] = {
        "status": lambda: {"message": (
            f"{len(server.users)} users, {len(server.sessions)} connections, "
            f"{server.total_messages} messages since start, "
            f"{'accepting' if server.accepting else 'not accepting'}, limit {server.config.max_clients}"),
            "users": len(server.users), "messages": server.total_messages},
        "users": lambda: {"message": f"{len(server.users)} users", "users": user_rows(server)},
        "kick": lambda: {"message": server.kick(_text(request, "name"), _text(request, "reason", ""))},
        "ban": lambda: {"message": server.ban(
            request.get("name") or None, request.get("address") or None,
            _seconds(request.get("seconds")), _text(request, "reason", ""))},
        "unban": lambda: {"message": server.unban(_text(request, "target"))},
        "bans": lambda: {"message": f"{len(server.bans.bans)} bans",
                         "bans": [b.describe() for b in server.bans.bans]},
        "mute": lambda: {"message": server.mute(_text(request, "name"), True)},
        "unmute": lambda: {"message": server.mute(_text(request, "name"), False)},
        "broadcast": lambda: {"message": server.broadcast(_text(request, "text"))},
        "accept": lambda: {"message": server.set_accepting(bool(request.get("on", True)))},
        "accounts": lambda: {"message": f"{len(server.accounts.all())} accounts", "accounts": [
            {"name": a.name, "admin": a.admin, "created": a.created} for a in server.accounts.all()]},
        "register": lambda: {"message": server.register_account(
            _text(request, "name"), _text(request, "hash"), bool(request.get("admin", False)))},
        "unregister": lambda: {"message": server.unregister_account(_text(request, "name"))},
        "op": lambda: {"message": server.set_operator(_text(request, "name"), True)},
        "deop": lambda: {"message": server.set_operator(_text(request, "name"), False)},
        "passwd": lambda: {"message": server.set_password_hash(_text(request, "name"), _text(request, "hash"))},
        "limit": lambda: {"message": server.set_max_clients(_count(request.get("count")))},
    }
    action = actions.get(cmd) if isinstance(cmd, str) else None
    if action is None:
        return {"ok": False, "message": f"Unknown command {cmd!r}; known: {', '.join(sorted(actions))}."}
    try:
        reply = action()
    except (KeyError, ValueError) as exc:
        return {"ok": False, "message": str(exc.args[0]) if exc.args else str(exc)}
    reply["ok"] = True
    return reply


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise ValueError("'seconds' must be a positive number (or left out for a ban for good).")
    return float(value)


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
        """Raises OSError when the channel cannot be opened (another server owns the name)."""
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
                reply = execute(self.server, decode_frame(frame))
            except ProtocolError as exc:
                reply = {"ok": False, "message": exc.message}
                if exc.fatal:
                    sock.write(encode_frame(reply))
                    sock.disconnectFromServer()
                    return
            sock.write(encode_frame(reply))
