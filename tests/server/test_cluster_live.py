"""Accounts, bans and room records made on one node are in force on the others at once (pg_mirror.py).

Two (or three) in-process nodes on one PostgreSQL database (tests/conftest.py ``cluster_nodes``): what one
node writes reaches the others through LISTEN/NOTIFY; a node whose listening connection broke reads
everything again once it listens again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest

from qtchat.protocol import (
    AccountStatus,
    Bye,
    Error,
    Hello,
    JoinRoom,
    KickRequest,
    Notice,
    PasswordChange,
    Register,
    RoomInvite,
    RoomMode,
    RoomOp,
    RoomState,
)
from qtchat.server import ChatServer
from qtchat.server.accounts import hash_password
from qtchat.server.pg_backend import PostgresBackend
from tests.helpers import RawClient, outcome

PASSWORD = "correct horse battery"
NEW_PASSWORD = "staple of the battery"
LIVE_S = 0.5  # "at once": what another node wrote is in force here within this


@pytest.fixture
def connect(qtbot: Any) -> Iterator[Callable[..., RawClient]]:
    made: list[RawClient] = []

    def make(server: ChatServer, source: str | None = None) -> RawClient:
        client = RawClient(server.port, qtbot, source=source)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def pg(server: ChatServer) -> PostgresBackend:
    backend = server.backend
    assert isinstance(backend, PostgresBackend)
    return backend


def database_of(qtbot: Any, server: ChatServer) -> str:
    """The name of the database the node is on (for psql)."""
    return str(outcome(qtbot, pg(server)._read.query("SELECT current_database()"), timeout=10_000)[0][0])


def knows(server: ChatServer, key: str) -> bool:
    return pg(server).account(key) is not None


def bans_are(server: ChatServer, keys: set[str]) -> bool:
    return {ban.name_key for ban in server.backend.bans.bans} == keys


def within(qtbot: Any, what: Callable[[], bool], seconds: float = LIVE_S) -> float:
    """Wait until ``what()``, at most ``seconds``; how long it took."""
    started = time.monotonic()
    qtbot.waitUntil(what, timeout=int(seconds * 1000))
    return time.monotonic() - started


def never(qtbot: Any, what: Callable[[], bool], ms: int = 300) -> None:
    """``what()`` stays false for ``ms`` of the loop running."""
    deadline = time.monotonic() + ms / 1000
    while time.monotonic() < deadline:
        assert not what()
        qtbot.wait(20)


def test_a_name_registered_on_one_node_needs_its_password_on_the_others(qtbot: Any, cluster_nodes: Any,
                                                                          connect: Any) -> None:
    a, b, c = cluster_nodes(3)
    registrant = connect(a)
    registrant.send(Hello(user="ann", password=PASSWORD, register=True))
    qtbot.waitUntil(lambda: pg(a).account("ann") is not None, timeout=10_000)  # stored (and notified)
    took = max(within(qtbot, partial(knows, node, "ann")) for node in (b, c))
    print(f"\nthe account reached the other nodes {took * 1000:.1f} ms after its node had it")
    for node in (b, c):
        assert connect(node).refused("ann").code == "auth_required"
        assert connect(node).refused("ann", password="not the password").code == "auth_failed"
        assert connect(node).refused("Ann", password=PASSWORD, register=True).code == "name_registered"
    connect(b).login("ann", password=PASSWORD)  # the owner, on another node: its session on a ends, as on one machine
    bye = registrant.wait_event(Bye, timeout=5)
    assert bye.code == "logged_in_elsewhere"
    registrant.wait_closed()
    qtbot.waitUntil(lambda: "ann" not in a.users and "ann" in b.users, timeout=5000)


def test_a_name_a_guest_holds_on_another_node_cannot_be_registered_by_a_client(qtbot: Any, cluster_nodes: Any,
                                                                                connect: Any) -> None:
    a, b = cluster_nodes(2)
    guest = connect(b)
    guest.login("ann")
    qtbot.waitUntil(lambda: a.backend.cluster.node_of("ann") is not None, timeout=5000)
    assert connect(a).refused("Ann", password=PASSWORD, register=True).code == "name_taken"  # as on one machine
    assert pg(a).account("ann") is None and not guest.closed and guest.of(Error) == []


def test_a_guest_holding_a_name_on_another_node_loses_it_when_the_operator_registers_it(
        qtbot: Any, cluster_nodes: Any, connect: Any) -> None:
    a, b = cluster_nodes(2)
    guest = connect(b)
    guest.login("ann")
    bystander = connect(b)
    bystander.login("bob")
    outcome(qtbot, a.operator.register_account("ann", hash_password(PASSWORD)))  # from a's admin channel
    error = guest.wait_event(Error, timeout=LIVE_S + 1)
    assert (error.code, error.fatal) == ("name_registered", True)
    assert "log in with its password" in error.message
    guest.wait_closed()
    assert not bystander.closed and "bob" in b.users
    assert connect(b).refused("ann").code == "auth_required"
    connect(a).login("ann", password=PASSWORD)  # the owner, on the other node


def test_a_password_changed_on_one_node_is_the_one_the_others_take(qtbot: Any, cluster_nodes: Any,
                                                                    connect: Any) -> None:
    a, b = cluster_nodes(2)
    ann = connect(a)
    ann.login("ann", password=PASSWORD, register=True)
    within(qtbot, lambda: pg(b).account("ann") is not None)
    before = pg(b).account("ann")
    ann.send(PasswordChange(PASSWORD, NEW_PASSWORD))
    ann.wait_event(AccountStatus, password_changed=True, timeout=10)
    within(qtbot, lambda: pg(b).account("ann") != before)
    assert connect(b).refused("ann", password=PASSWORD).code == "auth_failed"
    assert connect(b).refused("ann", password=PASSWORD).code == "auth_failed"
    ann.close()
    connect(b).login("ann", password=NEW_PASSWORD)


def test_a_name_unregistered_on_one_node_is_free_on_the_others(qtbot: Any, cluster_nodes: Any, connect: Any) -> None:
    a, b = cluster_nodes(2)
    outcome(qtbot, a.operator.register_account("cat", hash_password(PASSWORD)), timeout=10_000)
    outcome(qtbot, a.operator.register_account("dan", hash_password(PASSWORD)), timeout=10_000)
    within(qtbot, lambda: pg(b).account("cat") is not None and pg(b).account("dan") is not None)
    dan = connect(b)
    dan.login("dan", password=PASSWORD)
    dan.wait_event(AccountStatus, registered=True)
    outcome(qtbot, a.operator.unregister_account("cat"), timeout=10_000)
    outcome(qtbot, a.operator.unregister_account("dan"), timeout=10_000)
    within(qtbot, lambda: pg(b).account("cat") is None and pg(b).account("dan") is None)
    connect(b).login("cat")  # no password needed now
    dan.wait_event(AccountStatus, registered=False, timeout=LIVE_S)  # told, as on one machine
    assert not dan.closed


def test_the_operator_role_given_on_one_node_is_in_force_on_the_others(qtbot: Any, cluster_nodes: Any,
                                                                        connect: Any) -> None:
    a, b = cluster_nodes(2)
    outcome(qtbot, a.operator.register_account("oper", hash_password(PASSWORD)), timeout=10_000)
    within(qtbot, lambda: pg(b).account("oper") is not None)
    oper = connect(b)
    oper.login("oper", password=PASSWORD)
    pest = connect(b)
    pest.login("pest")
    oper.send(KickRequest("pest"))
    assert oper.wait_event(Error, ref="kick").code == "forbidden"
    assert not pest.of(Bye)
    outcome(qtbot, a.operator.set_operator("oper", True), timeout=10_000)
    oper.wait_event(AccountStatus, registered=True, admin=True, timeout=LIVE_S)
    oper.send(KickRequest("pest", "enough"))
    assert pest.wait_event(Bye).code == "kicked"
    oper.wait_event(Notice)
    outcome(qtbot, a.operator.set_operator("oper", False), timeout=10_000)
    oper.wait_event(AccountStatus, registered=True, admin=False, timeout=LIVE_S)
    again = connect(b)
    again.login("pest2")
    oper.events.clear()
    oper.send(KickRequest("pest2"))
    assert oper.wait_event(Error, ref="kick").code == "forbidden"
    assert not again.of(Bye)


def test_a_ban_made_on_one_node_is_in_force_on_the_others_at_once(qtbot: Any, cluster_nodes: Any,
                                                                   connect: Any) -> None:
    a, b = cluster_nodes(2)
    pest = connect(b)
    pest.login("pest")
    far = connect(b, source="127.0.0.2")
    far.login("far")
    near = connect(b)
    near.login("near")
    outcome(qtbot, a.operator.ban("Pest", None, None, "spam"))
    bye = pest.wait_event(Bye, timeout=LIVE_S)
    assert (bye.code, bye.reason) == ("banned", "banned: spam")  # what a ban made here says
    pest.wait_closed()
    error = connect(b).refused("pest")
    assert error.code == "banned" and "spam" in error.message
    outcome(qtbot, a.operator.ban(None, "127.0.0.2", 3600))
    assert far.wait_event(Bye, timeout=LIVE_S).code == "banned"
    far.wait_closed()
    refused = connect(b, source="127.0.0.2")
    assert refused.wait_event(Error).code == "banned"  # at the connection, before any hello
    refused.wait_closed()
    assert not near.closed and near.of(Bye) == []  # neither name nor address matched
    assert [x.reason for x in b.operator.bans()] == ["spam", ""]
    outcome(qtbot, a.operator.unban("pest"))
    outcome(qtbot, a.operator.unban("127.0.0.2"))
    within(qtbot, lambda: b.operator.bans() == [])
    connect(b).login("pest")
    connect(b, source="127.0.0.2").login("far")


def test_bans_made_on_two_nodes_at_once_are_both_kept(qtbot: Any, cluster_nodes: Any, postgres_server: Any) -> None:
    a, b = cluster_nodes(2)
    for n in range(5):  # in the same loop turn: each node's change sent before it heard of the other's
        a.backend.bans.add(f"from-a-{n}", None, None)
        b.backend.bans.add(f"from-b-{n}", None, None)
    b.backend.bans.remove("from-a-0")  # before it has even heard of that ban: nothing happens
    everyone = {f"from-{x}-{n}" for x in "ab" for n in range(5)}
    for node in (a, b):
        within(qtbot, partial(bans_are, node, everyone), 5)
    outcome(qtbot, a.operator.unban("from-b-3"))
    for node in (a, b):
        within(qtbot, partial(bans_are, node, everyone - {"from-b-3"}))
    row = json.loads(postgres_server.psql("SELECT state FROM bans", database_of(qtbot, a)))
    assert sorted(ban["name_key"] for ban in row["bans"]) == sorted(everyone - {"from-b-3"})


def test_room_records_changed_on_one_node_are_known_on_the_others(qtbot: Any, cluster_nodes: Any,
                                                                   connect: Any) -> None:
    a, b = cluster_nodes(2)
    outcome(qtbot, a.operator.register_account("dan", hash_password(PASSWORD)), timeout=10_000)
    ann = connect(a)
    ann.login("ann")
    ann.send(JoinRoom("design"))
    ann.wait_event(RoomState, room="design")
    within(qtbot, lambda: pg(b).room_record("design") is not None)
    cat = connect(b)
    cat.login("cat")
    cat.send(JoinRoom("design"))
    cat.wait_event(RoomState, room="design")  # open: B knows (and caches) its record
    dan = connect(b)
    dan.login("dan", password=PASSWORD)
    ann.send(RoomMode("design", invite_only=True))
    ann.wait_event(RoomState, room="design", invite_only=True)
    record = b.rooms.records.get("design")
    assert record is not None
    within(qtbot, lambda: record.invite_only)
    dan.send(JoinRoom("design"))
    assert dan.wait_event(Error, ref="design").code == "invite_only"
    ann.send(RoomInvite("design", "dan"))
    within(qtbot, lambda: "dan" in record.invites)
    dan.events.clear()
    dan.send(JoinRoom("design"))
    dan.wait_event(RoomState, room="design")
    dan.send(RoomMode("design", invite_only=False))  # invited, not an operator
    assert dan.wait_event(Error, ref="design").code == "not_room_operator"
    assert record.invite_only
    ann.send(RoomOp("design", "dan"))
    within(qtbot, lambda: "dan" in record.operators)
    dan.events.clear()
    dan.send(RoomMode("design", invite_only=False))  # an operator now, on B too
    dan.wait_event(RoomState, room="design", invite_only=False)
    a_record = a.rooms.records.get("design")
    assert a_record is not None
    within(qtbot, lambda: not a_record.invite_only)  # and back to A
    assert pg(b).room_record("design") is not None


def test_a_node_that_stopped_listening_reads_everything_again(qtbot: Any, cluster_nodes: Any, connect: Any,
                                                              postgres_server: Any) -> None:
    a, b = cluster_nodes(2)
    database = database_of(qtbot, a)
    pest = connect(b)
    pest.login("pest")
    ann = connect(a)
    ann.login("ann")
    ann.send(JoinRoom("design"))
    ann.wait_event(RoomState, room="design")
    within(qtbot, lambda: pg(b).room_record("design") is not None)
    # changes B is not told about (as while it was not listening): written without a notification
    postgres_server.psql(f"INSERT INTO accounts (key, name, password_hash, admin, created) VALUES "
                         f"('gil', 'Gil', '{hash_password(PASSWORD)}', false, 1)", database)
    postgres_server.psql("INSERT INTO bans (one, state) VALUES (1, '{\"version\": 1, \"bans\": [{\"name_key\": "
                         "\"pest\", \"address\": null, \"until\": null, \"reason\": \"\", \"created\": 1}]}')",
                         database)
    postgres_server.psql("UPDATE rooms SET state = jsonb_set(state, '{invite_only}', 'true') WHERE key = 'design'",
                         database)
    never(qtbot, lambda: pg(b).account("gil") is not None or pest.closed)
    assert pg(b).mirror.reloads == 0
    pid = pg(b).mirror.listen_pid
    assert pid is not None
    postgres_server.psql(f"SELECT pg_terminate_backend({pid})", database)
    within(qtbot, lambda: pg(b).mirror.reloads == 1, 5)
    assert pg(b).mirror.listen_pid not in (None, pid)
    assert pg(b).account("gil") is not None
    assert pest.wait_event(Bye).code == "banned"
    record = b.rooms.records.get("design")
    assert record is not None and record.invite_only
    assert pg(a).mirror.reloads == 0 and pg(a).account("gil") is None  # A listened all along: not told
    outcome(qtbot, a.operator.register_account("hal", hash_password(PASSWORD)), timeout=10_000)
    within(qtbot, lambda: pg(b).account("hal") is not None)  # and B hears the next change again


def test_a_ban_that_ended_leaves_the_row_at_the_next_change(qtbot: Any, cluster_nodes: Any,
                                                            postgres_server: Any) -> None:
    a, b = cluster_nodes(2)
    database = database_of(qtbot, a)
    a.backend.bans.add("brief", None, 0.5)
    within(qtbot, partial(bans_are, b, {"brief"}))
    qtbot.wait(600)
    assert b.backend.bans.match("brief", None) is None  # ended: no longer in force, on either node
    assert "brief" in postgres_server.psql("SELECT state FROM bans", database)  # nothing written for that
    b.backend.bans.add("next", None, None)
    within(qtbot, partial(bans_are, a, {"next"}))
    row = json.loads(postgres_server.psql("SELECT state FROM bans", database))
    assert [ban["name_key"] for ban in row["bans"]] == ["next"]


def test_notifications_that_are_not_ours_change_nothing(qtbot: Any, cluster_nodes: Any, connect: Any,
                                                        postgres_server: Any) -> None:
    a, b = cluster_nodes(2)
    database = database_of(qtbot, a)
    for payload in ("garbage", "[]", '{"node": "x"}', '{"node": "x", "what": "nothing", "key": "ann"}',
                    '{"node": "x", "what": "account", "key": "nobody"}', '{"node": "x", "what": "room", "key": "no"}'):
        postgres_server.psql(f"SELECT pg_notify('qtchat_changes', '{payload}')", database)
    bob = connect(b)
    bob.login("bob")
    qtbot.wait(200)
    assert pg(b).accounts() == [] and pg(b).room_record("no") is None and not bob.closed
    outcome(qtbot, a.operator.register_account("ann", hash_password(PASSWORD)), timeout=10_000)
    within(qtbot, partial(knows, b, "ann"))  # B still listens


def test_registering_ones_own_name_keeps_the_session_on_its_node(qtbot: Any, cluster_nodes: Any, connect: Any,
                                                                  ) -> None:
    a, b = cluster_nodes(2)
    ann = connect(a)
    ann.login("ann")
    ann.send(Register(PASSWORD))
    ann.wait_event(AccountStatus, registered=True, timeout=10)
    within(qtbot, partial(knows, b, "ann"))
    never(qtbot, lambda: ann.closed or bool(ann.of(Error)))  # its own node's notification is not about a guest
    assert connect(b).refused("ann").code == "auth_required"
