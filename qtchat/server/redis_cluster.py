"""A cluster's live state in Redis (``RedisCluster``, the ``cluster.Cluster`` of a node with ``--redis``):
node leases, names held once, presence, and messages between nodes. Every key and channel begins with the
cluster's prefix, ``qtchat:<cluster id>:`` (the id is made once in the database: pg_schema.py), written
below as ``qtchat:``.

- **Leases.** Every ``RENEW_MS`` a node sets ``qtchat:node:<id>`` with a lease of ``LEASE_MS`` and asks which
  nodes still hold theirs (one Lua script, which also forgets the nodes whose lease ran out). A node that
  is gone takes its users with it: every other node removes them from its rooms (``Left``, reason "server
  lost", to its own members) within ``LEASE_MS`` + ``RENEW_MS``, about 4 s (scale-out.md measured 2.6-3.7
  s). Users who logged in again on another node meanwhile are not removed: their new node's entries
  replaced the old ones.
- **Names.** ``qtchat:name:<key>`` holds the node a name is logged in on. ``claim()`` takes it when it is
  free, held by this node, or held by a node without a lease; held by a live node, that node is asked
  (``probe``) whether its user is still there: yes is ``name_taken``; no, or no answer within
  ``PROBE_MS`` (a node dying, whose lease still runs), and the name moves here (that node is told,
  ``taken``, and drops its session if it still has one). A lease names its node's two connections to Redis:
  when Redis has closed both (a node killed, or its machine gone with a reset), the name moves at once. A
  client whose node was killed so logs in on another at once, and within half a second otherwise.
- **Presence.** Each node keeps its own part in two hashes (``qtchat:where:<id>``: room and user of each
  membership; ``qtchat:conn:<id>``: its users, with their address) and tells every change on the channel
  ``qtchat:all``; every node mirrors all others' parts (loaded whole after each (re)subscription,
  changes applied in order after), so user lists, member counts and the admin window show the whole
  cluster without asking Redis.
- **Messages between nodes.** ``send(node, kind, data)`` to one node (channel ``qtchat:to:<id>``) or to all
  (``node=None``); ``on(kind, handler)`` receives them: the operator's actions, private messages.

When Redis is lost everything here waits and retries every ``RETRY_MS``; names are then checked on this
node only (logged), and once Redis is back every node writes its whole part again (Redis may have
restarted empty) and reloads the others'. A node absent from the leases just after that is given a
lease's time before it counts as gone.
"""


from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer

from qtchat.protocol import encode_name

from .backend import done
from .cluster import Claim, Cluster, ClusterHost, Handler, RemoteUser, address_of

if TYPE_CHECKING:
    from .redis_link import RedisLink, RedisSubscriber

log = logging.getLogger("qtchat.server.cluster")

LEASE_MS = 3000
RENEW_MS = 1000
PROBE_MS = 500
RETRY_MS = 1000

# every key and channel begins with the cluster's prefix, "qtchat:<cluster id>:" (pg_backend.py: the id is
# made once in the database, so clusters on one Redis never meet)
NODE = "node:"  # + node: its lease
NODES = "nodes"  # the nodes that announced themselves
NAME = "name:"  # + user key: the node that name is logged in on
WHERE = "where:"  # + node: hash "room key\0user key" -> JSON [room name, user name]
CONN = "conn:"  # + node: hash user key -> JSON [name, address, since (s)]
ALL = "all"  # the channel every node listens on
TO = "to:"  # + node: the channel of one node

# the live nodes; those without a lease are forgotten with their parts
LIVE = """
local live = {}
for _, n in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. n) == 1 then
    table.insert(live, n)
  else
    redis.call('SREM', KEYS[1], n)
    redis.call('DEL', ARGV[2] .. n, ARGV[3] .. n)
  end
end
return live
"""
# take a name that is free, ours, or held by a node without a lease: {1, previous holder}; else {0, holder}
CLAIM = """
local v = redis.call('GET', KEYS[1])
if (not v) or v == ARGV[1] or redis.call('EXISTS', ARGV[2] .. v) == 0 then
  redis.call('SET', KEYS[1], ARGV[1])
  return {1, v or ''}
end
return {0, v}
"""
# take a name from the holder that was asked about it, if nobody else took it meanwhile
TAKE = """
if redis.call('GET', KEYS[1]) == ARGV[2] then redis.call('SET', KEYS[1], ARGV[1]) return 1 end
return 0
"""
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


class _Mirror:
    """The other nodes' parts, as told: memberships and users, each entry under the node that told it."""

    def __init__(self) -> None:
        self.where: dict[str, dict[tuple[str, str], tuple[str, str]]] = {}  # node -> (room, user) -> names
        self.conn: dict[str, dict[str, RemoteUser]] = {}  # node -> user key -> user
        # room key -> user key -> (name, node, the name as a JSON string: user lists are made of them)
        self.rooms: dict[str, dict[str, tuple[str, str, bytes]]] = {}
        self.room_names: dict[str, str] = {}
        self.users: dict[str, RemoteUser] = {}
        self.addresses: dict[str, int] = {}  # IP address -> how many of ``users`` are logged in from it

    def join(self, node: str, room: str, room_name: str, user: str, name: str) -> None:
        self.where.setdefault(node, {})[(room, user)] = (room_name, name)
        self.rooms.setdefault(room, {})[user] = (name, node, encode_name(name))
        self.room_names[room] = room_name

    def leave(self, node: str, room: str, user: str) -> None:
        self.where.get(node, {}).pop((room, user), None)
        members = self.rooms.get(room)
        held = members.get(user) if members is not None else None
        if members is not None and held is not None and held[1] == node:
            del members[user]
            if not members:
                del self.rooms[room]
                self.room_names.pop(room, None)

    def online(self, node: str, user: RemoteUser) -> None:
        self.conn.setdefault(node, {})[user.key] = user
        self._unlist(user.key)
        self.users[user.key] = user
        address = address_of(user.address)
        self.addresses[address] = self.addresses.get(address, 0) + 1

    def _unlist(self, user: str) -> None:
        known = self.users.pop(user, None)
        if known is not None:
            address = address_of(known.address)
            left = self.addresses.get(address, 1) - 1
            if left > 0:
                self.addresses[address] = left
            else:
                self.addresses.pop(address, None)

    def offline(self, node: str, user: str) -> None:
        self.conn.get(node, {}).pop(user, None)
        known = self.users.get(user)
        if known is not None and known.node == node:
            self._unlist(user)

    def forget_user(self, user: str) -> None:
        """A user logged in here: whatever other nodes still list of them is stale (they moved here)."""
        self._unlist(user)

    def drop(self, node: str) -> list[tuple[str, str, str, str]]:
        """A node is gone: its entries go; the memberships nobody else took over are answered."""
        lost = []
        for (room, user), (room_name, name) in self.where.pop(node, {}).items():
            members = self.rooms.get(room)
            held = members.get(user) if members is not None else None
            if held is not None and held[1] == node:
                lost.append((room, room_name, user, name))
            self.leave(node, room, user)
        for user in list(self.conn.pop(node, {})):
            known = self.users.get(user)
            if known is not None and known.node == node:
                self._unlist(user)
        return lost

    def nodes(self) -> set[str]:
        return set(self.where) | set(self.conn)


class RedisCluster(QObject, Cluster):
    """A node's share of the cluster's live state, in Redis (see the module's text)."""

    def __init__(self, url: str, node: str, parent: QObject | None = None) -> None:
        QObject.__init__(self, parent)
        from .redis_link import RedisLink, RedisSubscriber

        self.node = node
        self.set_prefix("qtchat:")
        self._link: RedisLink = RedisLink(url, self)
        self._sub: RedisSubscriber = RedisSubscriber(url, self._received, self)
        self._link.on_lost = self._lost
        self._sub.on_lost = self._lost
        self._host = ClusterHost()
        self._handlers: dict[str, Handler] = {}
        self._mirror = _Mirror()
        self._live: set[str] = set()
        self._loading: list[tuple[dict[str, Any], str]] | None = None  # messages while the mirror loads
        self._grace_until = 0.0  # no node counts as gone before this (Redis came back: they announce again)
        self._closed = False
        self._probes: dict[int, tuple[Future[Claim], str, str, QTimer]] = {}
        self._probe_serial = 0
        # this node's own part, to write again when Redis comes back
        self._names: set[str] = set()
        # users who came from a node that lost them (or that they were taken from) -> the rooms they were in there
        self._moved: dict[str, set[str]] = {}
        self._where: dict[tuple[str, str], tuple[str, str]] = {}
        self._conn: dict[str, tuple[str, str, float]] = {}
        self._topics: dict[str, str] = {}  # every room's topic, as told
        self._renew_timer = QTimer(self)
        self._renew_timer.timeout.connect(self._renew)
        self._down = False

    def set_prefix(self, prefix: str) -> None:
        """What begins every key and channel: the cluster's own (pg_backend.py sets it before ``start``)."""
        self._node, self._nodes, self._name = prefix + NODE, prefix + NODES, prefix + NAME
        self._kwhere, self._kconn, self._all, self._to = prefix + WHERE, prefix + CONN, prefix + ALL, prefix + TO

    # ------------------------------------------------------------ lifecycle

    def start(self, host: ClusterHost) -> None:
        self._sub.channels.clear()
        self._sub.channels.update((self._all, self._to + self.node))  # subscribed as it opens, and after each loss
        self._host = host
        self._open()
        self._renew_timer.start(RENEW_MS)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._renew_timer.stop()
        if self._link.is_open:  # a node that stops says so: its users go at once, not a lease later
            commands: list[list[Any]] = [["DEL", self._node + self.node], ["SREM", self._nodes, self.node],
                                         ["DEL", self._kwhere + self.node, self._kconn + self.node]]
            commands += [["EVAL", RELEASE, 1, self._name + key, self.node] for key in self._names]
            commands.append(["PUBLISH", self._all, _dumps({"from": self.node, "kind": "bye"})])
            self._link.pipeline(commands).add_done_callback(_ignore)
            self._link.flush()
        for probe in self._probes.values():
            probe[3].stop()
            if not probe[0].done():
                probe[0].set_result(Claim(True))
        self._probes.clear()
        self._link.close()
        self._sub.close()

    def _open(self) -> None:
        if self._closed:
            return
        if not self._link.is_open:
            self._link.open().add_done_callback(self._link_opened)
        if not self._sub.is_open:
            self._loading = []
            self._sub.open().add_done_callback(self._sub_opened)

    def _link_opened(self, future: Future[None]) -> None:
        if future.exception() is not None:
            self._lost(str(future.exception()))
            return
        if self._down:
            log.warning("Redis is back: this node's users, names and rooms are written again")
            self._down = False
        self._grace_until = time.monotonic() + LEASE_MS / 1000
        self._announce()

    def _sub_opened(self, future: Future[None]) -> None:
        if future.exception() is not None:
            self._lost(str(future.exception()))
            return
        if self._link.is_open:  # the lease names the new connection at once
            self._link.command("SET", self._node + self.node, self._lease(), "PX", LEASE_MS).add_done_callback(_ignore)
        self._load()

    def _lost(self, why: str) -> None:
        if self._closed:
            return
        if not self._down:
            log.warning("Redis: %s; names are checked on this node only until it is back (retried every %d ms)",
                        why, RETRY_MS)
            self._down = True
        QTimer.singleShot(RETRY_MS, self, self._open)

    def _announce(self) -> None:
        """This node's whole part, written (again): its lease, names, users and memberships."""
        commands: list[list[Any]] = [["SET", self._node + self.node, self._lease(), "PX", LEASE_MS], ["SADD", self._nodes, self.node]]
        for key in self._names:
            commands.append(["SET", self._name + key, self.node, "NX"])
        if self._conn:
            commands.append(["HSET", self._kconn + self.node,
                             *(x for k, v in self._conn.items() for x in (k, _dumps(list(v))))])
        if self._where:
            commands.append(["HSET", self._kwhere + self.node,
                             *(x for (r, u), v in self._where.items() for x in (f"{r}\0{u}", _dumps(list(v))))])
        commands.append(["PUBLISH", self._all, _dumps({"from": self.node, "kind": "hello"})])
        self._link.pipeline(commands).add_done_callback(_ignore)

    # ------------------------------------------------------------ the mirror

    def _load(self) -> None:
        """The other nodes' parts, read whole (subscribed already: what changes meanwhile is applied after)."""
        def got_nodes(future: Future[Any]) -> None:
            if future.exception() is not None:
                return  # lost: loaded again once open
            nodes = [n.decode() for n in future.result() if n.decode() != self.node]
            commands: list[list[Any]] = []
            for node in nodes:
                commands += [["HGETALL", self._kwhere + node], ["HGETALL", self._kconn + node]]
            self._link.pipeline(commands).add_done_callback(lambda f: got_parts(nodes, f))

        def got_parts(nodes: list[str], future: Future[list[Any]]) -> None:
            if future.exception() is not None:
                return
            mirror = _Mirror()
            replies = future.result()
            for i, node in enumerate(nodes):
                where, conn = replies[2 * i], replies[2 * i + 1]
                if isinstance(where, list):
                    for field, value in zip(where[::2], where[1::2], strict=True):
                        room, _, user = field.decode().partition("\0")
                        room_name, name = json.loads(value)
                        mirror.join(node, room, room_name, user, name)
                if isinstance(conn, list):
                    for field, value in zip(conn[::2], conn[1::2], strict=True):
                        name, address, since = json.loads(value)
                        mirror.online(node, RemoteUser(field.decode(), name, node, address, float(since)))
            for user in list(mirror.users):
                if user in self._names:
                    mirror.forget_user(user)
            self._mirror = mirror
            self._live.update(nodes)
            waiting, self._loading = self._loading or [], None
            for message, sender in waiting:
                self._apply(message, sender)

        self._link.command("SMEMBERS", self._nodes).add_done_callback(got_nodes)

    def _renew(self) -> None:
        if not self._link.is_open:
            return
        self._link.pipeline([["SET", self._node + self.node, self._lease(), "PX", LEASE_MS, "GET"], ["SADD", self._nodes, self.node],
                             ["EVAL", LIVE, 1, self._nodes, self._node, self._kwhere, self._kconn]]).add_done_callback(self._renewed)

    def _renewed(self, future: Future[list[Any]]) -> None:
        if future.exception() is not None or self._closed:
            return
        previous, _, live = future.result()
        if previous is None:  # our lease had run out: Redis restarted, or we could not reach it for a while
            self._grace_until = time.monotonic() + LEASE_MS / 1000
            self._announce()
            if self._sub.is_open and self._loading is None:
                self._loading = []
                self._load()
            return
        if not isinstance(live, list):
            return
        self._live = {n.decode() for n in live} - {self.node}
        if time.monotonic() < self._grace_until or self._loading is not None:
            return
        for node in self._mirror.nodes() - self._live:
            self._node_gone(node)

    def _node_gone(self, node: str) -> None:
        lost = self._mirror.drop(node)
        log.warning("node %s is gone: %d of its users' memberships end", node, len(lost))
        if lost:
            self._host.lost(lost)

    # ------------------------------------------------------------ names

    def claim(self, user_key: str, *, takeover: bool = False) -> Future[Claim]:
        result: Future[Claim] = Future()
        if not self._link.is_open:
            self._names.add(user_key)  # written once Redis is back
            return done(Claim(True))

        def answered(future: Future[Any]) -> None:
            if future.exception() is not None:
                self._names.add(user_key)
                result.set_result(Claim(True))
                return
            ok, holder = future.result()
            holder = holder.decode()
            if ok:
                moved = holder if holder and holder != self.node else None  # from a node without a lease
                self._took(user_key, moved)
                result.set_result(Claim(True, moved_from=moved))
                return
            if takeover:  # the account's owner again: the session on the other node ends ("logged in elsewhere")
                self._take_over(user_key, holder, result)
                return
            self._probe(user_key, holder, result)

        self._link.command("EVAL", CLAIM, 1, self._name + user_key, self.node, self._node).add_done_callback(answered)
        return result

    def _take_over(self, user_key: str, holder: str, result: Future[Claim]) -> None:
        def taken(future: Future[Any]) -> None:
            if future.exception() is not None or future.result() == 1:
                self._took(user_key, holder)  # moved here: its joins are no news, its old session leaves quietly
                self.send(holder, "taken", {"user": user_key, "takeover": True})
                result.set_result(Claim(True, moved_from=holder))
                return
            self.claim(user_key, takeover=True).add_done_callback(lambda again: result.set_result(again.result()))

        self._link.command("EVAL", TAKE, 1, self._name + user_key, self.node, holder).add_done_callback(taken)

    def _took(self, user_key: str, moved_from: str | None) -> None:
        self._names.add(user_key)
        self._mirror.forget_user(user_key)
        if moved_from is not None:
            self._moved[user_key] = {room for room, members in self._mirror.rooms.items()
                                     if members.get(user_key, ("", ""))[1] == moved_from}
        else:
            self._moved.pop(user_key, None)

    def _lease(self) -> str:
        """A lease's value: this node's connections to Redis (their CLIENT IDs), so that the others can see at
        once that a node which was killed is gone: Redis closed its connections, though its lease runs."""
        return f"{self._link.client_id or 0} {self._sub.client_id or 0}"

    def _probe(self, user_key: str, holder: str, result: Future[Claim]) -> None:
        """The name is held on a live node: ask it whether its user is still there; if its connections to
        Redis are closed (it was killed), it is gone already: the name is taken without waiting for the probe."""
        self._probe_serial += 1
        serial = self._probe_serial
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.timeout.connect(lambda: self._probe_answered(serial, None))
        timer.start(PROBE_MS)
        self._probes[serial] = (result, user_key, holder, timer)
        self.send(holder, "probe", {"user": user_key, "serial": serial})

        def leased(future: Future[Any]) -> None:
            value = future.result() if future.exception() is None else None
            ids = [i for i in (value or b"").decode().split() if i.isdigit() and i != "0"]
            if len(ids) == 2 and serial in self._probes:
                self._link.command("CLIENT", "LIST", "ID", *ids).add_done_callback(listed)

        def listed(future: Future[Any]) -> None:
            if future.exception() is None and b"id=" not in (future.result() or b""):
                self._probe_answered(serial, None)  # neither of its connections is open: it is gone

        self._link.command("GET", self._node + holder).add_done_callback(leased)

    def _probe_answered(self, serial: int, held: bool | None) -> None:
        probe = self._probes.pop(serial, None)
        if probe is None:
            return
        result, user_key, holder, timer = probe
        timer.stop()
        if held:
            result.set_result(Claim(False, holder=holder))
            return

        def taken(future: Future[Any]) -> None:
            if future.exception() is not None or future.result() == 1:
                # no answer: that node is dying (or may still think it has them: told so); an answer: it had
                # let them go, with their leaves told as usual
                moved = holder if held is None else None
                self._took(user_key, moved)
                if moved is not None:
                    self.send(holder, "taken", {"user": user_key})
                result.set_result(Claim(True, moved_from=moved))
                return
            self.claim(user_key).add_done_callback(lambda again: result.set_result(again.result()))

        self._link.command("EVAL", TAKE, 1, self._name + user_key, self.node, holder).add_done_callback(taken)

    def release(self, user_key: str) -> None:
        self._names.discard(user_key)
        self._moved.pop(user_key, None)
        if self._link.is_open:
            self._link.command("EVAL", RELEASE, 1, self._name + user_key, self.node).add_done_callback(_ignore)

    # ------------------------------------------------------------ presence

    def online(self, user_key: str, name: str, address: str) -> None:
        since = time.time()
        self._conn[user_key] = (name, address, since)
        self._tell(["HSET", self._kconn + self.node, user_key, _dumps([name, address, since])],
                   {"kind": "online", "user": user_key, "name": name, "address": address, "since": since})

    def offline(self, user_key: str) -> None:
        self._conn.pop(user_key, None)
        self._tell(["HDEL", self._kconn + self.node, user_key], {"kind": "offline", "user": user_key})

    def joined(self, room_key: str, room: str, user_key: str, name: str) -> None:
        self._where[(room_key, user_key)] = (room, name)
        before = self._mirror.rooms.get(room_key, {}).get(user_key)
        if before is not None:  # listed under the node they came from: here now
            self._mirror.leave(before[1], room_key, user_key)
        self._tell(["HSET", self._kwhere + self.node, f"{room_key}\0{user_key}", _dumps([room, name])],
                   {"kind": "join", "room": room_key, "room_name": room, "user": user_key, "name": name})

    def left(self, room_key: str, user_key: str) -> None:
        self._where.pop((room_key, user_key), None)
        self._tell(["HDEL", self._kwhere + self.node, f"{room_key}\0{user_key}"],
                   {"kind": "leave", "room": room_key, "user": user_key})

    def set_topic(self, room_key: str, topic: str) -> None:
        self._topics[room_key] = topic
        self.send(None, "topic", {"room": room_key, "topic": topic})

    def topic_of(self, room_key: str) -> str | None:
        return self._topics.get(room_key)

    def _tell(self, command: list[Any], message: dict[str, Any]) -> None:
        """A change of this node's part: written, then told (in that order, on one connection: a node that
        loads the part after the write finds it; one that loaded it before gets the message)."""
        if self._link.is_open:
            message["from"] = self.node
            self._link.pipeline([command, ["PUBLISH", self._all, _dumps(message)]]).add_done_callback(_ignore)

    def members(self, room_key: str) -> dict[str, str]:
        return {user: entry[0] for user, entry in self._mirror.rooms.get(room_key, {}).items()}

    def encoded_members(self, room_key: str, here: Mapping[str, object]) -> list[bytes]:
        return [entry[2] for user, entry in self._mirror.rooms.get(room_key, {}).items() if user not in here]

    def moved(self, room_key: str, user_key: str) -> bool:
        return room_key in self._moved.get(user_key, ())  # (whatever their old node has told since)

    def rooms(self) -> dict[str, tuple[str, int]]:
        return {key: (self._mirror.room_names.get(key, key), len(members))
                for key, members in self._mirror.rooms.items()}

    def users(self) -> dict[str, RemoteUser]:
        return dict(self._mirror.users)

    def remote_user(self, user_key: str) -> RemoteUser | None:
        user = self._mirror.users.get(user_key)
        return user if user is not None and user.node in self._live else None

    def nodes(self) -> list[str]:
        return sorted(self._live)

    def connections_from(self, address: str) -> int:
        return self._mirror.addresses.get(address, 0)

    # ------------------------------------------------------------ messages between nodes

    def send(self, node: str | None, kind: str, data: dict[str, Any]) -> None:
        if not self._link.is_open:
            return
        message = dict(data, kind=kind)
        message["from"] = self.node
        channel = self._all if node is None else self._to + node
        self._link.command("PUBLISH", channel, _dumps(message)).add_done_callback(_ignore)

    def on(self, kind: str, handler: Handler) -> None:
        self._handlers[kind] = handler

    def _received(self, channel: bytes, payload: bytes) -> None:
        try:
            message = json.loads(payload)
            sender = str(message["from"])
        except (ValueError, KeyError, TypeError):
            log.warning("a message on %s that is not ours: ignored", channel[:80])
            return
        if sender == self.node or self._closed:
            return
        if self._loading is not None and message.get("kind") in _STATE:
            self._loading.append((message, sender))
            return
        self._apply(message, sender)

    def _apply(self, message: dict[str, Any], sender: str) -> None:
        kind = message.get("kind")
        m = self._mirror
        if kind == "join":
            m.join(sender, message["room"], message["room_name"], message["user"], message["name"])
        elif kind == "leave":
            m.leave(sender, message["room"], message["user"])
        elif kind == "online":
            m.online(sender, RemoteUser(message["user"], message["name"], sender, message["address"],
                                        float(message["since"])))
        elif kind == "offline":
            m.offline(sender, message["user"])
        elif kind == "hello":  # (again) after Redis came back: its part is read whole
            self._live.add(sender)
            if self._loading is None:
                self._loading = []
                self._load()
        elif kind == "bye":
            self._live.discard(sender)
            self._node_gone(sender)
        elif kind == "topic":
            self._topics[message["room"]] = message["topic"]
            self._host.topic(message["room"], message["topic"])
        elif kind == "probe":
            held = self._host.holds(message["user"])
            if not held:
                self._names.discard(message["user"])
            self.send(sender, "probed", {"user": message["user"], "serial": message["serial"], "held": held})
        elif kind == "probed":
            self._probe_answered(int(message["serial"]), bool(message["held"]))
        elif kind == "taken":
            self._names.discard(message["user"])
            self._host.taken(message["user"], takeover=bool(message.get("takeover")))
        else:
            handler = self._handlers.get(str(kind))
            if handler is not None:
                handler(message, sender)


_STATE = frozenset({"join", "leave", "online", "offline", "hello", "bye"})


def _ignore(future: Future[Any]) -> None:
    """Writes whose failure is handled where the connection's loss is (``on_lost``): nothing to do here."""
    future.exception()
