"""A server with several addresses (issue 15): the client tries them in turn, and after its node goes away it
logs in on another one by itself and resumes there: rooms joined again, the outbox resent, nothing twice.

Real servers on real sockets (SQLite, one per address: the rooms and messages that matter here are the
client's own, joined again and resent); tests/client/test_failover_cluster.py does it on two PostgreSQL nodes.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

from qtchat.client import ChatClient, ClientState, Failure, Loss
from qtchat.protocol import Joined, JoinRoom, Message, RoomState
from tests.helpers import RawClient


def dead_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_refused_first_address_moves_on_to_the_next_at_once(server: Any, client: ChatClient, qtbot: Any) -> None:
    dead = dead_port()
    failures: list[object] = []
    client.login_failed.connect(lambda *args: failures.append(args))
    scheduled: list[float] = []
    client.reconnect_scheduled.connect(scheduled.append)
    with qtbot.waitSignal(client.logged_in, timeout=5000):
        client.connect_to(f"127.0.0.1:{dead}, 127.0.0.1:{server.port}", 4321, "alice")
    assert (client.host, client.port) == ("127.0.0.1", server.port)
    assert client.address == f"127.0.0.1:{server.port}"
    assert client.addresses == [("127.0.0.1", dead), ("127.0.0.1", server.port)]
    assert client.server_address == ("127.0.0.1", dead)  # the server as the user named it
    assert not failures and not scheduled  # no backoff before the second address of the first round


def test_when_no_address_answers_the_login_fails_once(client: ChatClient, qtbot: Any) -> None:
    first, second = dead_port(), dead_port()
    failures: list[Any] = []
    client.login_failed.connect(lambda *args: failures.append(args))
    with qtbot.waitSignal(client.login_failed, timeout=5000) as failed:
        client.connect_to(f"127.0.0.1:{first},127.0.0.1:{second}", 4321, "alice")
    assert failed.args[0] == Failure.NETWORK
    assert failed.args[1].loss is Loss.REFUSED and failed.args[1].port == second  # both were tried, in order
    qtbot.wait(300)
    assert len(failures) == 1 and client.state is ClientState.OFFLINE  # and it stops there


def test_a_bad_address_is_refused_before_connecting(client: ChatClient) -> None:
    with pytest.raises(ValueError, match="from 1 to 65535"):
        client.connect_to("127.0.0.1,127.0.0.1:99999", 4321, "alice")
    assert client.state is ClientState.OFFLINE and client.addresses == []


def _resumes_on(b: Any, client: ChatClient, qtbot: Any, lose: Any) -> RawClient:
    """The client is on its first node; ``lose()`` ends that connection: it logs in on node b by itself."""
    client.join_room("dev")
    qtbot.waitUntil(lambda: client.rooms["dev"].joined, timeout=5000)
    watcher = RawClient(b.port, qtbot)
    watcher.login("watcher")
    watcher.send(JoinRoom("dev"))
    watcher.wait_event(RoomState, room="dev")
    lost: list[Any] = []
    client.connection_lost.connect(lost.append)
    with qtbot.waitSignal(client.logged_in, timeout=10_000):
        lose()
        pending = client.send_text("typed while it switched", room="dev")
    assert lost and (client.host, client.port) == ("127.0.0.1", b.port)
    watcher.wait_event(Joined, room="dev", user="alice")  # the room joined again on the new node
    qtbot.waitUntil(lambda: not client.pending, timeout=5000)  # the outbox resent and acknowledged there
    assert [m.text for m in watcher.of(Message) if m.cid == pending] == ["typed while it switched"]
    return watcher


def test_after_its_node_shuts_down_the_client_resumes_on_the_next(make_server: Any, client: ChatClient,
                                                                 qtbot: Any) -> None:
    a, b = make_server(), make_server()
    with qtbot.waitSignal(client.logged_in, timeout=5000):
        client.connect_to(f"127.0.0.1:{a.port},127.0.0.1:{b.port}", 4321, "alice")
    scheduled: list[float] = []
    client.reconnect_scheduled.connect(scheduled.append)
    watcher = _resumes_on(b, client, qtbot, lambda: a.shutdown("maintenance"))
    assert not scheduled  # the next address at once, no backoff
    watcher.close()


def test_after_its_connection_is_aborted_the_client_resumes_on_the_next(make_server: Any, client: ChatClient,
                                                                       qtbot: Any) -> None:
    a, b = make_server(), make_server()
    with qtbot.waitSignal(client.logged_in, timeout=5000):
        client.connect_to(f"127.0.0.1:{a.port},127.0.0.1:{b.port}", 4321, "alice")

    def abort() -> None:
        for peer in list(a.peers):
            peer.socket.abort()

    watcher = _resumes_on(b, client, qtbot, abort)
    watcher.close()


def test_the_last_address_wraps_around_to_the_first(make_server: Any, client: ChatClient, qtbot: Any) -> None:
    a, b = make_server(), make_server()
    with qtbot.waitSignal(client.logged_in, timeout=5000):
        client.connect_to(f"127.0.0.1:{b.port},127.0.0.1:{a.port}", 4321, "alice")
    assert client.port == b.port
    with qtbot.waitSignal(client.logged_in, timeout=10_000):
        b.shutdown("gone")
    assert client.port == a.port
    with qtbot.waitSignal(client.reconnect_scheduled, timeout=10_000):
        a.shutdown("gone too")  # the whole round (a, then b) fails: now the backoff waits
    assert client.state is ClientState.WAITING


def test_the_nodes_a_server_announces_are_tried_after_the_users_own(make_server: Any, client: ChatClient,
                                                                   qtbot: Any) -> None:
    b = make_server()
    a = make_server(nodes=("no port here", f"127.0.0.1:{b.port}", "[::1]:x"))
    with qtbot.waitSignal(client.logged_in, timeout=5000) as welcome:
        client.connect_to(f"127.0.0.1:{a.port}", 4321, "alice")
    assert welcome.args[0].nodes == ("no port here", f"127.0.0.1:{b.port}", "[::1]:x")  # as the server sent them
    assert client.announced == [("127.0.0.1", b.port)]  # the usable ones
    assert client.addresses == [("127.0.0.1", a.port)]  # not taken as the user's
    assert client.addresses_text == f"127.0.0.1:{a.port}"
    mine = ("127.0.0.1", a.port)
    watcher = _resumes_on(b, client, qtbot, lambda: a.shutdown("maintenance"))
    assert client.addresses == [mine] and client.server_address == mine  # still the user's, on node b
    watcher.close()


def test_a_node_announcing_the_users_own_address_adds_nothing(make_server: Any, client: ChatClient,
                                                             qtbot: Any) -> None:
    a = make_server()
    a.config.nodes = (f"127.0.0.1:{a.port}",)
    with qtbot.waitSignal(client.logged_in, timeout=5000):
        client.connect_to(f"127.0.0.1:{a.port}", 4321, "alice")
    assert client.announced == [] and client.targets == [("127.0.0.1", a.port)]


def test_with_tls_an_announced_node_must_show_a_certificate_the_user_trusts(make_server: Any, make_cert: Any,
                                                                           client: ChatClient, qtbot: Any) -> None:
    """The user trusted a's certificate. b shares it: accepted. c has another one: passed over, never asked about."""
    shared, other = make_cert("shared"), make_cert("other")
    b = make_server(tls_cert=shared.cert_path, tls_key=shared.key_path)
    c = make_server(tls_cert=other.cert_path, tls_key=other.key_path)
    a = make_server(tls_cert=shared.cert_path, tls_key=shared.key_path,
                    nodes=(f"127.0.0.1:{c.port}", f"127.0.0.1:{b.port}"))
    asked: list[Any] = []
    client.certificate_unknown.connect(lambda *args: asked.append(args))
    client.trust_certificate("127.0.0.1", a.port, shared.fingerprint)
    with qtbot.waitSignal(client.logged_in, timeout=5000):
        client.connect_to(f"127.0.0.1:{a.port}", 4321, "alice", tls=True)
    assert client.announced == [("127.0.0.1", c.port), ("127.0.0.1", b.port)]
    with qtbot.waitSignal(client.logged_in, timeout=10_000):
        a.shutdown("maintenance")  # c comes first, and is passed over: then b, with a's certificate
    assert client.port == b.port and client.is_encrypted
    assert not asked and client.pins.get("127.0.0.1", c.port) is None and client.pins.get("127.0.0.1", b.port) is None
