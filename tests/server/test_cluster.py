"""Several nodes, one chat: servers on one PostgreSQL database and one Redis (pg_backend.py, fanout.py).

In-process nodes on the test's loop, with real PostgreSQL and Redis servers (tests/services.py). What is
held: clients on different nodes chat in shared rooms; every client sees every message once, in the
same order on every node, and a resume "after the last id" misses nothing; without Redis the nodes
still chat, through PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest

from qtchat.protocol import History, HistoryRequest, Joined, Message, SendMessage
from tests.helpers import RawClient


@pytest.fixture
def nodes(cluster_nodes: Any) -> Any:
    return cluster_nodes


def texts(client: RawClient, room: str = "lobby") -> list[str]:
    return [m.text for m in client.of(Message) if m.room == room]


def test_clients_on_two_nodes_chat_in_one_room(nodes: Any, clients: Any) -> None:
    a, b = nodes(2)
    ann = clients(a, "ann", "design")
    bob = clients(b, "bob", "design")
    ann.send(SendMessage("hello from a", room="design", cid="a1"))
    got = bob.wait_event(Message, text="hello from a", timeout=10)
    mine = ann.wait_event(Message, cid="a1")
    assert (got.id, got.sender, got.room) == (mine.id, "ann", "design")
    bob.send(SendMessage("and from b", room="design", cid="b1"))
    assert ann.wait_event(Message, text="and from b", timeout=10).id > got.id
    assert a.backend.fanout.filled == 0 and b.backend.fanout.filled == 0  # all came over Redis


def test_every_node_shows_one_order_and_a_resume_misses_nothing(nodes: Any, clients: Any, qtbot: Any) -> None:
    servers = nodes(3)
    writers = [clients(s, f"w{i}") for i, s in enumerate(servers)]
    readers = [clients(s, f"r{i}") for i, s in enumerate(servers)]
    per_writer = 60
    for n in range(per_writer):  # the three nodes' passes race for the room's lock
        for i, w in enumerate(writers):
            w.send(SendMessage(f"w{i}-{n}", cid=f"{i}-{n}"))
    total = per_writer * len(writers)
    for r in readers:
        r.wait_for(lambda r=r: len(texts(r)) >= total, timeout=30)
    orders = [[m.id for m in r.of(Message)] for r in readers]
    assert all(order == orders[0] for order in orders)  # the same order on every node
    assert orders[0] == sorted(orders[0]) and len(set(orders[0])) == total  # in id order, each once
    for i in range(len(writers)):  # each writer's own messages in the order it sent them
        mine = [t for t in texts(readers[0]) if t.startswith(f"w{i}-")]
        assert mine == [f"w{i}-{n}" for n in range(per_writer)]
    late = clients(servers[1], "late")
    seen: list[int] = []
    while True:  # resuming page by page on another node: the same messages, no gap, no duplicate
        late.send(HistoryRequest(after=seen[-1] if seen else 0, limit=64))
        page = late.wait_event(History)
        late.events.remove(page)
        seen += [m.id for m in page.messages]
        if not page.more:
            break
    assert seen == orders[0]


def test_without_redis_the_nodes_still_chat_through_postgresql(nodes: Any, clients: Any) -> None:
    a, b = nodes(2, redis=False)
    ann = clients(a, "ann")
    bob = clients(b, "bob")
    for n in range(5):
        ann.send(SendMessage(f"slow path {n}", cid=f"s{n}"))
    bob.wait_for(lambda: len(texts(bob)) == 5, timeout=10)
    assert texts(bob) == [f"slow path {n}" for n in range(5)]
    assert b.backend.fanout.filled == 5
    assert [m.id for m in bob.of(Message)] == [m.id for m in ann.of(Message)]


def test_joins_on_one_node_reach_the_members_on_another(nodes: Any, clients: Any) -> None:
    a, b = nodes(2)
    ann = clients(a, "ann", "design")
    clients(b, "bob", "design")
    ann.wait_event(Joined, user="bob", room="design", timeout=10)


def test_a_heavy_stream_reaches_every_node_exactly_once(nodes: Any, clients: Any, qtbot: Any) -> None:
    """Three writers on three nodes, unpaced, so that payloads come late and holes are filled from PostgreSQL
    while the nodes' own passes wait their turn (a fill once went past a node's own waiting pass, and its
    members got that pass twice; another skipped messages after a fill that read past what it delivered)."""
    servers = nodes(3)
    writers = [clients(s, f"w{i}") for i, s in enumerate(servers)]
    readers = [clients(s, f"r{i}") for i, s in enumerate(servers)]
    per_writer = 1500
    for n in range(per_writer):
        for i, w in enumerate(writers):
            w.send(SendMessage(f"w{i}-{n}", cid=f"{i}-{n}"))
        if n % 50 == 0:
            for r in readers:
                r.pump()
            qtbot.wait(1)
    total = per_writer * len(writers)
    for r in readers:
        r.wait_for(lambda r=r: len(texts(r)) >= total, timeout=60)
    qtbot.wait(200)  # a duplicate would come now
    views = [[m.id for m in r.of(Message)] for r in readers]
    assert all(len(v) == len(set(v)) == total for v in views)
    assert views[0] == views[1] == views[2] == sorted(views[0])
    assert sum(s.backend.fanout.filled for s in servers) > 0  # the holes were there, and filled


def test_the_same_resend_on_two_nodes_at_once_is_stored_once(nodes: Any, clients: Any, qtbot: Any) -> None:
    """One sender on two nodes sends the same messages (same cid and text) on both at once, as a client that
    resumed on another node while its first node's passes were still being stored: each node's pass looks under
    the room's lock, so each message is stored once and acknowledged on both with the same id and ts."""
    a, b = nodes(2, redis=False)  # (without Redis each node checks names itself: one name on both)
    senders = [clients(a, "ann"), clients(b, "ann")]
    readers = [clients(a, "ra"), clients(b, "rb")]
    count = 30
    for n in range(count):  # the two nodes' passes race for the room's lock
        for ann in senders:
            ann.send(SendMessage(f"twice {n}", cid=f"t{n}"))
    for ann in senders:
        ann.wait_for(lambda ann=ann: {m.cid for m in ann.of(Message)} >= {f"t{n}" for n in range(count)}, timeout=10)
    acks = [{(m.cid, m.id, m.ts) for m in ann.of(Message)} for ann in senders]
    assert acks[0] == acks[1] and len(acks[0]) == count  # one id and ts per cid, the same on both nodes
    readers[1].send(SendMessage("after", cid="after"))  # the room's numbers go on from where the race left them
    for r in readers:
        r.wait_event(Message, text="after", timeout=10)
    qtbot.wait(200)  # a duplicate would come now
    views = [[m.id for m in r.of(Message)] for r in readers]
    assert views[0] == views[1] and len(views[0]) == len(set(views[0])) == count + 1
    assert [m.text for m in readers[0].of(Message)] == [f"twice {n}" for n in range(count)] + ["after"]
    assert all(s.backend.fanout._feeds["lobby"].next == count + 2 for s in (a, b))  # no number was skipped
    readers[0].send(HistoryRequest(after=0, limit=500))
    assert [m.id for m in readers[0].wait_event(History, timeout=10).messages] == views[0]
