"""What the server asks of the other nodes of a cluster: names held once, presence, messages between nodes.

``Cluster`` is the interface, and one machine's answer to it: nothing is shared, every name is free, nobody
is remote, at once. A node of a cluster with Redis has a ``RedisCluster`` (redis_cluster.py), which tells
how leases, names, presence and messages between nodes work. The core gives the cluster a
``ClusterHost``: what the other nodes may ask of this server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from .backend import done

Handler = Callable[[dict[str, Any], str], None]  # (the message, the node that sent it)


@dataclass(frozen=True, slots=True)
class Claim:
    """The answer to ``claim()``: the name is ours (``moved_from``: the node it was held on, which is gone or
    no longer has the user), or ``holder`` has it."""

    ok: bool
    moved_from: str | None = None
    holder: str | None = None


@dataclass(frozen=True, slots=True)
class RemoteUser:
    """A user logged in on another node."""

    key: str
    name: str
    node: str
    address: str  # as the node saw it: "address:port" ("[v6 address]:port")
    since: float  # when they logged in, seconds since the epoch


def address_of(peer: str) -> str:
    """The IP address of an "address:port" ("[address]:port" for IPv6); a bare address as it is."""
    if peer.startswith("["):
        return peer[1:].partition("]")[0]
    host, colon, port = peer.rpartition(":")
    return host if colon and ":" not in host and port.isdigit() else peer


class ClusterHost:
    """What the cluster asks of the server it belongs to (core.py gives one)."""

    def holds(self, user_key: str) -> bool:
        """Is this user logged in here (or being logged in)?"""
        return False

    def taken(self, user_key: str, *, takeover: bool = False) -> None:
        """The name was taken by another node: drop its session here, if any (``takeover``: its account's owner
        logged in there with the password, as one machine lets them)."""

    def lost(self, memberships: list[tuple[str, str, str, str]]) -> None:
        """Memberships of users of a node that is gone: (room key, room name, user key, user name)."""

    def topic(self, room_key: str, topic: str) -> None:
        """Another node changed a room's topic."""


class Cluster:
    """One machine: nothing is shared, every name is free cluster-wide, nobody is remote."""

    node = ""

    def start(self, host: ClusterHost) -> None:
        pass

    def close(self) -> None:
        pass

    def claim(self, user_key: str, *, takeover: bool = False) -> Future[Claim]:
        """Hold the name in the whole cluster (``takeover``: from whichever session has it: the account's owner
        logged in with its password)."""
        return done(Claim(True))

    def release(self, user_key: str) -> None:
        pass

    def online(self, user_key: str, name: str, address: str) -> None:
        pass

    def offline(self, user_key: str) -> None:
        pass

    def joined(self, room_key: str, room: str, user_key: str, name: str) -> None:
        pass

    def left(self, room_key: str, user_key: str) -> None:
        pass

    def set_topic(self, room_key: str, topic: str) -> None:
        pass

    def topic_of(self, room_key: str) -> str | None:
        return None

    def members(self, room_key: str) -> dict[str, str]:
        """The room's members on other nodes: user key -> name."""
        return {}

    def encoded_members(self, room_key: str, here: Mapping[str, object]) -> list[bytes]:
        """The room's members on other nodes that are not in ``here`` (keys), as JSON strings (user lists)."""
        return []

    def moved(self, room_key: str, user_key: str) -> bool:
        """Was this user in the room on another node (which lost them)? Their join here is then no news."""
        return False

    def rooms(self) -> dict[str, tuple[str, int]]:
        """Rooms with members on other nodes: key -> (name, members there)."""
        return {}

    def users(self) -> dict[str, RemoteUser]:
        """Users logged in on other nodes, by key."""
        return {}

    def remote_user(self, user_key: str) -> RemoteUser | None:
        """The user of that name logged in on another node alive, if any."""
        return None

    def node_of(self, user_key: str) -> str | None:
        """The other node a user is logged in on, if any."""
        user = self.remote_user(user_key)
        return user.node if user is not None else None

    def nodes(self) -> list[str]:
        """The other nodes alive, as last seen."""
        return []

    def connections_from(self, address: str) -> int:
        """How many users of other nodes are logged in from this IP address (the per-address cap)."""
        return 0

    def send(self, node: str | None, kind: str, data: dict[str, Any]) -> None:
        """A message to another node (``None``: to all others)."""

    def on(self, kind: str, handler: Handler) -> None:
        """Receive the messages of a kind other nodes send."""
