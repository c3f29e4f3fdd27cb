"""The operator's actions across a cluster (operator.py, cluster_ops.py), on in-process nodes with real
PostgreSQL and Redis: kick, mute, broadcast, accepting and the client limit from one node's operator reach the
users and settings of another node; the users of other nodes are listed with their node; the per-address cap
counts the address's users on other nodes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from qtchat.protocol import AccountStatus, Bye, Error, KickRequest, Left, Message, Notice
from qtchat.server import ChatServer, ServerConfig
from qtchat.server.accounts import hash_password
from qtchat.server.admin import execute
from qtchat.server.cluster_ops import ANSWER_MS, KICK
from qtchat.server.redis_cluster import RedisCluster
from tests.conftest import NO_LIMITS, open_postgres, stop_servers
from tests.helpers import RawClient, failure, outcome


@pytest.fixture
def clients(qtbot: Any) -> Iterator[Any]:
    made: list[RawClient] = []

    def connect(server: ChatServer, name: str | None = None, **hello: Any) -> RawClient:
        client = RawClient(server.port, qtbot)
        made.append(client)
        if name is not None:
            client.login(name, **hello)
        return client

    yield connect
    for client in made:
        client.close()


@pytest.fixture
def one_database(qtbot: Any, postgres_server: Any, redis_server: Any) -> Iterator[Any]:
    """Factory: a node of one cluster (one new database, the session's Redis), started when asked: a node may
    join later than the others."""
    database = postgres_server.new_database()
    made: list[ChatServer] = []

    def make() -> ChatServer:
        config = ServerConfig(host="127.0.0.1", port=0, **NO_LIMITS)
        config.redis = redis_server.url
        server = ChatServer(config, backend=open_postgres(qtbot, postgres_server, config, database))
        server.listen()
        made.append(server)
        return server

    yield make
    stop_servers(qtbot, made)


def mirrored(qtbot: Any, server: ChatServer, *names: str) -> None:
    """The server sees these users on another node."""
    qtbot.waitUntil(lambda: all(server.cluster.node_of(n) is not None for n in names), timeout=5000)


def test_users_lists_every_nodes_users_with_their_node_and_ids_that_cannot_collide(
        cluster_nodes: Any, clients: Any, qtbot: Any) -> None:
    a, b = cluster_nodes(2)
    clients(a, "ann")
    clients(b, "bob")
    clients(b, "bea")
    mirrored(qtbot, a, "bob", "bea")
    rows = {u.name: u for u in a.operator.users()}
    assert set(rows) == {"ann", "bob", "bea"}
    assert rows["ann"].node == "" and rows["ann"].id > 0
    assert rows["bob"].node == rows["bea"].node == b.cluster.node != ""
    assert rows["bob"].id < 0 and rows["bea"].id < 0 and rows["bob"].id != rows["bea"].id
    assert rows["bob"].address == "127.0.0.1" and rows["bob"].peer.startswith("127.0.0.1:")
    assert [u.id for u in a.operator.users() if u.name == "bob"] == [rows["bob"].id]  # stable while it lasts
    reply = outcome(qtbot, execute(a.operator, {"cmd": "users"}))
    assert reply["ok"] and reply["message"] == "1 users here, 2 on other nodes"
    assert {r["name"]: r["node"] for r in reply["users"]} == {"ann": "", "bob": b.cluster.node, "bea": b.cluster.node}
    status = outcome(qtbot, execute(a.operator, {"cmd": "status"}))
    assert (status["users"], status["remote_users"], status["nodes"]) == (1, 2, 2)
    assert status["message"].startswith("1 users here (2 more on 1 other node), ")
    assert outcome(qtbot, a.operator.mute(rows["bea"].id)) == "Muted bea."  # by the id the window has
    qtbot.waitUntil(lambda: "bea" in b.muted, timeout=5000)
    assert b.muted == {"bea"} and a.muted == {"bea"}
    with pytest.raises(KeyError, match="no longer connected"):
        outcome(qtbot, a.operator.mute(-10_000))  # an id nobody has


def test_a_kick_from_one_node_drops_the_user_on_another_as_a_local_kick_does(
        cluster_nodes: Any, clients: Any, qtbot: Any) -> None:
    a, b = cluster_nodes(2)
    ann = clients(a, "ann")
    bob = clients(b, "bob")
    bea = clients(b, "bea")
    mirrored(qtbot, a, "bob")
    assert outcome(qtbot, a.operator.kick("BOB", "flooding")) == "Kicked bob."
    bob.wait_closed()
    assert bob.of(Bye)[0].reason == "kicked: flooding"
    assert ann.wait_event(Left, user="bob", timeout=5).reason == "kicked: flooding"  # told across, as here
    assert bea.wait_event(Left, user="bob").reason == "kicked: flooding"
    assert "bea" in b.users and "ann" in a.users  # nobody else
    with pytest.raises(KeyError, match="No user 'nobody' is connected"):
        outcome(qtbot, a.operator.kick("nobody"))  # nobody has that name, on any node
    qtbot.waitUntil(lambda: a.cluster.node_of("bob") is None, timeout=5000)
    with pytest.raises(KeyError):
        outcome(qtbot, a.operator.kick("bob"))  # gone: not kicked twice


def test_the_admin_channel_kicks_a_user_of_another_node_by_their_id(cluster_nodes: Any, clients: Any,
                                                                     qtbot: Any) -> None:
    a, b = cluster_nodes(2)
    bob = clients(b, "bob")
    mirrored(qtbot, a, "bob")
    (row,) = [r for r in outcome(qtbot, execute(a.operator, {"cmd": "users"}))["users"] if r["name"] == "bob"]
    reply = outcome(qtbot, execute(a.operator, {"cmd": "kick", "id": row["id"], "reason": "spam"}), timeout=5000)
    assert reply == {"ok": True, "message": "Kicked bob."}
    bob.wait_closed()
    assert bob.of(Bye)[0].reason == "kicked: spam"
    qtbot.waitUntil(lambda: a.cluster.node_of("bob") is None, timeout=5000)
    again = outcome(qtbot, execute(a.operator, {"cmd": "kick", "id": row["id"]}))
    assert again == {"ok": False, "message": "That user is no longer connected."}  # the id named that session only
    clients(b, "bob")  # the same name logged in again: another session, another id
    mirrored(qtbot, a, "bob")
    assert [u.id for u in a.operator.users() if u.name == "bob"] != [row["id"]]
    assert outcome(qtbot, execute(a.operator, {"cmd": "kick", "id": row["id"]}))["ok"] is False
    assert "bob" in b.users


def test_an_operators_kick_frame_reaches_a_user_of_another_node(cluster_nodes: Any, clients: Any,
                                                                qtbot: Any) -> None:
    a, b = cluster_nodes(2)
    outcome(qtbot, a.operator.register_account("oper", hash_password("a long passphrase"), admin=True))
    oper = clients(a, "oper", password="a long passphrase")
    assert oper.wait_event(AccountStatus) == AccountStatus(registered=True, admin=True)
    pest = clients(b, "pest")
    mirrored(qtbot, a, "pest")
    oper.send(KickRequest("pest", "calm down"))
    pest.wait_closed()
    assert pest.of(Bye)[0].reason == "kicked: calm down (by oper)"
    assert oper.wait_event(Notice, text="Kicked pest.").text == "Kicked pest."
    oper.send(KickRequest("ghost", ""))
    assert oper.wait_event(Error).code == "user_offline"


def test_a_kick_the_other_node_does_not_answer_fails_clearly(cluster_nodes: Any, clients: Any, qtbot: Any,
                                                              monkeypatch: Any) -> None:
    a, b = cluster_nodes(2)
    clients(b, "bob")
    mirrored(qtbot, a, "bob")
    cluster = b.cluster
    assert isinstance(cluster, RedisCluster)
    monkeypatch.setitem(cluster._handlers, KICK, lambda data, sender: None)  # b hears, never answers
    started = time.monotonic()
    error = failure(qtbot, a.operator.kick("bob"), timeout=ANSWER_MS + 3000)
    assert isinstance(error, TimeoutError) and "did not answer" in str(error) and "bob" in str(error)
    assert time.monotonic() - started >= 0.9 * ANSWER_MS / 1000
    assert "bob" in b.users
    assert not a.operator.remote._asks  # nothing left waiting


def test_a_user_muted_from_one_node_cannot_send_on_another_nor_after_moving(
        cluster_nodes: Any, clients: Any, qtbot: Any) -> None:
    a, b = cluster_nodes(2)
    ann = clients(a, "ann")
    bob = clients(b, "bob")
    mirrored(qtbot, a, "bob")
    mirrored(qtbot, b, "ann")
    assert outcome(qtbot, a.operator.mute("bob")) == "Muted bob."
    assert "muted" in bob.wait_event(Notice, timeout=5).text
    assert "bob" in b.muted
    assert [u.muted for u in a.operator.users() if u.name == "bob"] == [True]
    bob.say("can you hear me", cid="m1")
    error = bob.wait_event(Error, ref="m1")
    assert error.code == "muted" and not error.fatal
    bob.close()  # and back on the other node: still muted
    qtbot.waitUntil(lambda: "bob" not in b.users and a.cluster.node_of("bob") is None, timeout=5000)
    bob = clients(a, "bob")
    bob.say("and now?", cid="m2")
    assert bob.wait_event(Error, ref="m2").code == "muted"
    ann.pump()
    assert [m for m in ann.of(Message) if m.sender == "bob"] == []
    assert outcome(qtbot, b.operator.mute("bob", on=False)) == "Unmuted bob."  # from the other node this time
    assert "unmuted" in bob.wait_event(Notice, text="You have been unmuted by the operator.", timeout=5).text
    qtbot.waitUntil(lambda: "bob" not in b.muted and "bob" not in a.muted, timeout=5000)
    bob.say("at last", cid="m3")
    assert ann.wait_event(Message, cid="m3").text == "at last"


def test_a_node_that_starts_later_learns_who_is_muted(one_database: Any, clients: Any, qtbot: Any) -> None:
    a = one_database()
    clients(a, "bob")
    outcome(qtbot, a.operator.mute("bob"))
    assert a.muted == {"bob"}
    c = one_database()
    qtbot.waitUntil(lambda: "bob" in c.muted, timeout=5000)
    assert c.muted == {"bob"}
    outcome(qtbot, a.operator.kick("bob"))
    qtbot.waitUntil(lambda: c.cluster.node_of("bob") is None and "bob" not in a.users, timeout=5000)
    bob = clients(c, "bob")
    bob.say("hello?", cid="m1")
    assert bob.wait_event(Error, ref="m1").code == "muted"


def test_a_broadcast_reaches_every_nodes_users_once(cluster_nodes: Any, clients: Any, qtbot: Any) -> None:
    a, b, c = cluster_nodes(3)
    everyone = {"ann": clients(a, "ann"), "bob": clients(b, "bob"), "bea": clients(b, "bea"),
                "cid": clients(c, "cid")}
    mirrored(qtbot, a, "bob", "bea", "cid")
    text = "restart at 18:00 <b>sharp</b>"
    assert outcome(qtbot, a.operator.broadcast(text)) == "Sent to 4 users (3 of them on other nodes)."
    for client in everyone.values():
        client.wait_event(Notice, text=text, timeout=5)
    qtbot.wait(300)
    for name, client in everyone.items():
        client.pump()
        assert [n.text for n in client.of(Notice)].count(text) == 1, name
    with pytest.raises(ValueError):
        outcome(qtbot, a.operator.broadcast("  "))  # nothing sent anywhere
    qtbot.wait(200)
    everyone["bob"].pump()
    assert len(everyone["bob"].of(Notice)) == 1


def test_the_client_limit_and_accepting_set_on_one_node_apply_on_every_node(
        cluster_nodes: Any, clients: Any, qtbot: Any) -> None:
    a, b = cluster_nodes(2)
    clients(b, "bob")
    mirrored(qtbot, a, "bob")
    assert outcome(qtbot, a.operator.set_max_clients(1)) == "Client limit: 1 on each node."
    qtbot.waitUntil(lambda: b.config.max_clients == 1, timeout=5000)
    assert clients(b).refused("bea").code == "server_full"  # bob is b's one client
    assert clients(a).login("ann").user == "ann"  # a's own count: each node its own limit
    assert failure(qtbot, a.operator.set_max_clients(0)).args[0] == "The client limit must be at least 1."
    qtbot.wait(300)
    assert b.config.max_clients == 1  # a refused limit is sent nowhere
    outcome(qtbot, b.operator.set_max_clients(50))
    qtbot.waitUntil(lambda: a.config.max_clients == 50, timeout=5000)
    assert outcome(qtbot, a.operator.set_accepting(False)) == "Not accepting new connections, on every node."
    qtbot.waitUntil(lambda: not b.accepting, timeout=5000)
    assert not a.operator.snapshot().accepting and not b.operator.snapshot().accepting
    reply = outcome(qtbot, execute(b.operator, {"cmd": "accept", "on": True}))
    assert reply["ok"] and reply["message"] == "Accepting new connections, on every node."
    qtbot.waitUntil(lambda: a.accepting, timeout=5000)
    assert clients(a).login("cat").user == "cat"


def test_the_per_address_cap_counts_the_addresss_users_on_other_nodes(cluster_nodes: Any, clients: Any,
                                                                       qtbot: Any) -> None:
    a, b = cluster_nodes(2)
    for node in (a, b):
        node.config.max_per_address = 2
    clients(a, "ann")
    bob = clients(b, "bob")
    qtbot.waitUntil(lambda: a.cluster.connections_from("127.0.0.1") == 1, timeout=5000)
    assert a.cluster.connections_from("10.9.9.9") == 0
    error = clients(a).refused("cat")  # ann here and bob there: two from 127.0.0.1 already
    assert error.code == "too_many_connections" and "this chat allows 2 at once" in error.message
    assert "cat" not in a.users
    bob.close()
    qtbot.waitUntil(lambda: a.cluster.connections_from("127.0.0.1") == 0, timeout=5000)
    assert clients(a).login("cat").user == "cat"  # bob's place is free again
