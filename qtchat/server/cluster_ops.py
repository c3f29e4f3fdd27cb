"""The operator's actions across the nodes of a cluster (``ClusterOps``, the part of ``Operator`` that talks to
the other nodes through ``cluster.send``/``cluster.on``; on one machine it does nothing).

- **Users of other nodes** are listed from the presence mirror (``cluster.users()``), each under an id of its
  own: negative, counted down from -1 and never reused while this server runs, so it cannot be a local
  connection's id (those count up from 1). It names that session: the same name logged in again (a new
  ``since``) gets a new id.
- **Kick** of a user on another node is asked of that node (``op-kick``), which drops them exactly as a local
  kick does and answers (``op-answer``) with its sentence; no answer within ``ANSWER_MS`` is a clear error.
- **Mute** and unmute are told to every node (``op-mute``): each keeps the muted names in memory, as one
  machine does (for the server's life, not stored), and refuses their messages; the node holding the user
  tells them. A node seen for the first time (started, or back) is sent every other node's muted names
  (``op-muted``), so a user muted on A stays muted after reconnecting to a node that started later. Not in
  Redis: nothing there must survive a Redis restart (the nodes hold the list and nothing needs writing
  again), and a mute is checked on each message sent, from memory.
- **Broadcast** (``op-broadcast``): each node writes the notice to its own users, so each user gets it once.
- **Accepting and the client limit** (``op-accept``, ``op-limit``): set on every node. The limit is per node
  (each node counts its own connections, as ``--max-clients`` does): docs/SCALING.md.
"""

from __future__ import annotations

import itertools
import logging
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QTimer

from .cluster import RemoteUser, address_of

if TYPE_CHECKING:
    from .operator import Operator, UserSnapshot

log = logging.getLogger("qtchat.server")

ANSWER_MS = 2000  # a node asked to kick answers within this, or the operator is told it did not
CHECK_MS = 1000  # how often the nodes alive are looked at (a new one is sent the muted names)

KICK, ANSWER, MUTE, MUTED, BROADCAST, ACCEPT, LIMIT = (
    "op-kick", "op-answer", "op-mute", "op-muted", "op-broadcast", "op-accept", "op-limit")


class ClusterOps:
    def __init__(self, operator: Operator) -> None:
        self.operator = operator
        self.server = operator.server
        self.cluster = self.server.cluster
        self.clustered = bool(self.cluster.node)
        self._ids: dict[tuple[str, str, float], int] = {}  # (node, user key, since) -> id
        self._next_id = itertools.count(-1, -1)
        self._asks: dict[int, tuple[Future[str], QTimer]] = {}
        self._serial = itertools.count(1)
        self._known: set[str] = set()  # the other nodes alive at the last look
        if not self.clustered:
            return
        for kind, handler in ((KICK, self._on_kick), (ANSWER, self._on_answer), (MUTE, self._on_mute),
                              (MUTED, self._on_muted), (BROADCAST, self._on_broadcast),
                              (ACCEPT, self._on_accept), (LIMIT, self._on_limit)):
            self.cluster.on(kind, handler)
        self._timer = QTimer(self.server)
        self._timer.timeout.connect(self._check_nodes)
        self._timer.start(CHECK_MS)

    # ------------------------------------------------------------ the other nodes' users

    def users(self) -> list[tuple[int, RemoteUser]]:
        """The users of other nodes, each with its id (ids of sessions gone are forgotten)."""
        remote = self.cluster.users()
        ids = {}
        for user in remote.values():
            session = (user.node, user.key, user.since)
            ids[session] = self._ids.get(session) or next(self._next_id)
        self._ids = ids
        return [(ids[(u.node, u.key, u.since)], u) for u in remote.values()]

    def by_id(self, who: int) -> RemoteUser:
        for uid, user in self.users():
            if uid == who:
                return user
        raise KeyError("That user is no longer connected.")

    def by_key(self, key: str) -> RemoteUser | None:
        """The user of that name on another node alive, if any."""
        return self.cluster.remote_user(key)

    def snapshot(self, uid: int, user: RemoteUser) -> UserSnapshot:
        from .operator import UserSnapshot

        # what only their node knows (idle time, counters) is not mirrored: 0
        return UserSnapshot(uid, user.name, user.address, address_of(user.address), user.since, 0.0, 0, 0, 0,
                            user.key in self.server.muted, user.node)

    # ------------------------------------------------------------ acting on them

    def kick(self, user: RemoteUser, reason: str) -> Future[str]:
        """Asked of the user's node; the future has its sentence, or an error once it did not answer in time."""
        serial = next(self._serial)
        result: Future[str] = Future()
        timer = QTimer(self.server)
        timer.setSingleShot(True)
        timer.timeout.connect(lambda: self._on_answer({"serial": serial, "ok": False, "timeout": True, "message": (
            f"The node {user.node} that {user.name} is connected to did not answer within "
            f"{ANSWER_MS / 1000:g} s: they may still be connected.")}, user.node))
        self._asks[serial] = (result, timer)
        timer.start(ANSWER_MS)
        self.cluster.send(user.node, KICK, {"user": user.key, "reason": reason, "serial": serial})
        log.warning("admin: asked node %s to kick %s", user.node, user.name)
        return result

    def _on_kick(self, data: dict[str, Any], sender: str) -> None:
        from .operator import sentence

        key = str(data.get("user", ""))
        user = self.server.users.get(key)
        try:
            if user is None:
                raise KeyError("That user is no longer connected.")
            ok, text = True, self.operator.kick_here(user, str(data.get("reason", "")), by=f"node {sender}")
        except KeyError as exc:
            ok, text = False, sentence(exc)
        self.cluster.send(sender, ANSWER, {"serial": data.get("serial"), "ok": ok, "message": text})

    def _on_answer(self, data: dict[str, Any], sender: str) -> None:
        serial = data.get("serial")
        entry = self._asks.pop(serial, None) if isinstance(serial, int) else None
        if entry is None:
            return
        result, timer = entry
        timer.stop()
        timer.deleteLater()
        message = str(data.get("message", ""))
        if data.get("ok"):
            result.set_result(message)
        else:
            result.set_exception(TimeoutError(message) if data.get("timeout") else KeyError(message))

    def muted(self, key: str, on: bool) -> None:
        """This node muted or unmuted someone: every other node is told (the user's own node tells them)."""
        if self.clustered:
            self.cluster.send(None, MUTE, {"user": key, "on": on})

    def _on_mute(self, data: dict[str, Any], sender: str) -> None:
        key, on = str(data.get("user", "")), bool(data.get("on"))
        self.operator.mute_here(key, on, by=f"node {sender}")

    def _check_nodes(self) -> None:
        nodes = set(self.cluster.nodes())
        new, self._known = nodes - self._known, nodes
        muted = sorted(self.server.muted)
        if muted:
            for node in sorted(new):
                self.cluster.send(node, MUTED, {"users": muted})

    def _on_muted(self, data: dict[str, Any], sender: str) -> None:
        users = data.get("users")
        if isinstance(users, list):
            self.server.muted.update(str(u) for u in users)

    def broadcast(self, text: str) -> int:
        """Sent to every other node's users; how many they are, as the mirror has them."""
        if not self.clustered:
            return 0
        self.cluster.send(None, BROADCAST, {"text": text})
        return len(self.cluster.users())

    def _on_broadcast(self, data: dict[str, Any], sender: str) -> None:
        text = str(data.get("text", ""))
        here = self.operator.broadcast_here(text)
        log.warning("admin of node %s: broadcast to %d users here: %s", sender, here, text[:200])

    def accepting(self, on: bool) -> None:
        if self.clustered:
            self.cluster.send(None, ACCEPT, {"on": on})

    def _on_accept(self, data: dict[str, Any], sender: str) -> None:
        on = bool(data.get("on"))
        self.server.set_accepting(on)
        log.warning("admin of node %s: %s accepting connections", sender, "resumed" if on else "stopped")

    def limit(self, count: int) -> None:
        if self.clustered:
            self.cluster.send(None, LIMIT, {"count": count})

    def _on_limit(self, data: dict[str, Any], sender: str) -> None:
        count = data.get("count")
        if isinstance(count, int) and not isinstance(count, bool) and count >= 1:
            self.server.config.max_clients = count
            log.warning("admin of node %s: client limit set to %d", sender, count)
