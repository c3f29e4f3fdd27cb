"""The storage seam's side toward other nodes: what a pass sends is published, what another node published
reaches this node's members, and nothing is published twice."""

from __future__ import annotations

from qtchat.protocol import Joined, Message
from qtchat.server import ChatServer, MemoryBackend, ServerConfig
from qtchat.server.backend import RemoteSink
from tests.conftest import NO_LIMITS
from tests.helpers import RawClient


class LinkedBackend(MemoryBackend):
    """An in-memory node joined straight to another: what it publishes the other delivers (the simplest link
    a cluster could have; each keeps its own history)."""

    def __init__(self) -> None:
        super().__init__()
        self.sink: RemoteSink | None = None
        self.other: LinkedBackend | None = None
        self.published: list[tuple[str, bytes]] = []

    def attach(self, sink: RemoteSink) -> None:
        super().attach(sink)
        self.sink = sink

    def publish(self, room_key: str, frames: bytes) -> None:
        self.published.append((room_key, frames))
        if self.other is not None and self.other.sink is not None:
            self.other.sink.deliver_remote(room_key, frames)


def test_a_pass_published_by_one_node_reaches_the_members_of_another(qtbot):
    a, b = LinkedBackend(), LinkedBackend()
    a.other, b.other = b, a
    servers = [ChatServer(ServerConfig(host="127.0.0.1", port=0, **NO_LIMITS), backend=x) for x in (a, b)]
    for s in servers:
        s.listen()
    bob = RawClient(servers[1].port, qtbot)
    alice = RawClient(servers[0].port, qtbot)
    try:
        bob.login("bob")
        alice.login("alice")
        assert bob.wait_event(Joined, user="alice").room == "lobby"  # alice's join, from the other node
        alice.say("hello from node a", cid="c1")
        got = bob.wait_event(Message, text="hello from node a")
        assert got.sender == "alice" and got.room == "lobby"
        ack = alice.wait_event(Message, cid="c1")
        assert ack.id == got.id  # the same frame: stored by node a, its id with it
        # node b delivered it to its members as it came, without publishing it back
        qtbot.wait(100)
        assert not any(b"hello from node a" in frames for _, frames in b.published)
        assert sum(b"hello from node a" in frames for _, frames in a.published) == 1
        assert len(alice.of(Message)) == 1  # no echo came back to node a
    finally:
        for c in (alice, bob):
            c.close()
        for s in servers:
            s.shutdown("test over")
            qtbot.waitUntil(lambda s=s: not s.peers, timeout=5000)
            s.deleteLater()
