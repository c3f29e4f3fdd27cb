"""Failover on a real cluster (issue 15): two nodes on one PostgreSQL database and one Redis, each announcing
both in welcome.nodes. The client's node shuts down mid-conversation: the client logs in on the other node by
itself, joins its room again, catches up after the last id it saw, resends what was not acknowledged, and
every message, before, during and after the switch, is shown exactly once (the nodes fixture is
tests/server/test_cluster.py's approach)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from qtchat.client import ChatClient, ClientState
from qtchat.protocol import JoinRoom, Message, RoomState, SendMessage
from tests.helpers import RawClient


@pytest.fixture
def nodes(cluster_nodes: Any) -> Any:
    """Factory: ``make(count)``, that many nodes sharing one new database and Redis, each announcing them all."""
    return lambda count: cluster_nodes(count, announce=True)


def test_after_its_node_shuts_down_the_client_resumes_on_the_other_and_shows_each_message_once(
        nodes: Any, client: ChatClient, qtbot: Any) -> None:
    a, b = nodes(2)
    bob = RawClient(b.port, qtbot)
    bob.login("bob")
    bob.send(JoinRoom("dev"))
    bob.wait_event(RoomState, room="dev")
    shown: list[Message] = []
    client.message_received.connect(shown.append)
    refused: list[tuple[str, str, str]] = []
    client.message_failed.connect(lambda *args: refused.append(args))
    with qtbot.waitSignal(client.logged_in, timeout=10_000) as welcome:
        client.connect_to(f"127.0.0.1:{a.port}", 4321, "alice")  # the user knows one node: a announces both
    assert set(welcome.args[0].nodes) == {f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"}
    assert client.announced == [("127.0.0.1", b.port)]
    client.join_room("dev")
    qtbot.waitUntil(lambda: client.rooms["dev"].joined, timeout=5000)

    sent_by_alice: list[str] = []
    total = 60
    for n in range(total):
        bob.send(SendMessage(f"b{n}", room="dev", cid=f"b{n}"))
        if n % 2 == 0:
            text = f"a{n}"
            client.send_text(text, room="dev")
            sent_by_alice.append(text)
        if n == 20:
            a_port = a.port
            a.shutdown("node down")  # mid-conversation: some of alice's messages are not acknowledged yet
        qtbot.wait(15)
    qtbot.waitUntil(lambda: client.state is ClientState.ONLINE and client.port == b.port, timeout=10_000)
    assert client.port != a_port
    expected = {f"b{n}" for n in range(total)} | set(sent_by_alice)
    try:
        qtbot.waitUntil(lambda: expected <= {m.text for m in shown} and not client.pending, timeout=15_000)
    except Exception:
        got = {m.text for m in shown}
        raise AssertionError(f"missing {sorted(expected - got)}, pending {[p.text for p in client.pending]}, "
                             f"refused {refused}, state {client.state}, port {client.port} (b {b.port})") from None
    qtbot.wait(300)  # anything late (a resend's second acknowledgement, a live copy after the catch-up) shows now
    counts = Counter(m.text for m in shown if m.room == "dev")
    assert {t: c for t, c in counts.items() if c != 1} == {}  # every message exactly once
    assert set(counts) == expected
    ids = [m.id for m in shown if m.room == "dev"]
    assert len(set(ids)) == len(ids)
    bob.wait_for(lambda: set(sent_by_alice) <= {m.text for m in bob.of(Message)}, timeout=10)
    theirs = Counter(m.text for m in bob.of(Message) if m.room == "dev" and m.sender == "alice")
    assert theirs == Counter(sent_by_alice)  # resent with their cids: stored once, relayed once
    bob.close()
