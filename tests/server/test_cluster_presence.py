"""A cluster's names, presence and private messages (cluster.py), on in-process nodes with real PostgreSQL and
Redis: a name is held once in the whole cluster, user lists and room lists show every node's members, a node
that vanishes takes its users out of every room within 5 s, and a user who moved to another node does not
"leave" or "join" again."""

from __future__ import annotations

import time
from typing import Any

from qtchat.protocol import (
    Bye,
    Error,
    Joined,
    JoinRoom,
    Left,
    Message,
    RoomJoined,
    RoomKick,
    RoomList,
    RoomsRequest,
    SendMessage,
    SetTopic,
    UserList,
    UsersRequest,
)
from qtchat.server import ChatServer
from qtchat.server.cluster_host import LOST
from qtchat.server.redis_cluster import LEASE_MS, PROBE_MS, RedisCluster
from tests.helpers import RawClient


def users(client: RawClient, room: str = "lobby") -> set[str]:
    """The room's user list, asked now."""
    before = len(client.of(UserList))
    client.send(UsersRequest(room))
    client.wait_for(lambda: any(not u.more for u in client.of(UserList)[before:]))
    return {name for u in client.of(UserList)[before:] for name in u.users}


def sees(qtbot: Any, server: ChatServer, name: str, room: str = "lobby") -> None:
    qtbot.waitUntil(lambda: name in server.rooms.user_names(room), timeout=5000)


def vanish(server: ChatServer) -> None:
    """The node stops taking part without a word, as a killed one does: no lease renewed, no goodbye."""
    cluster = server.backend.cluster
    assert isinstance(cluster, RedisCluster)
    cluster._closed = True
    cluster._renew_timer.stop()
    cluster._link.close()
    cluster._sub.close()


def test_a_name_is_held_once_in_the_whole_cluster(cluster_nodes: Any, clients: Any, qtbot: Any) -> None:
    a, b = cluster_nodes(2)
    ann = clients(a, "ann")
    started = time.monotonic()
    error = clients(b).refused("Ann")  # the same name, written otherwise, on another node
    assert error.code == "name_taken" and time.monotonic() - started < 2  # asked and answered, no lease waited
    assert "ann" not in b.users
    ann.close()
    qtbot.waitUntil(lambda: "ann" not in a.users, timeout=5000)
    again = clients(b, "ann")  # free once ann quit on a
    assert again.of(Error) == [] and "ann" in b.users


def test_user_lists_and_counts_show_every_nodes_members(cluster_nodes: Any, clients: Any, qtbot: Any) -> None:
    a, b = cluster_nodes(2)
    ann = clients(a, "ann", "design")
    bob = clients(b, "bob")
    sees(qtbot, b, "ann")
    assert users(bob) == {"ann", "bob"}
    sees(qtbot, a, "bob")
    assert users(ann) == {"ann", "bob"}
    sees(qtbot, b, "ann", "design")
    bob.send(JoinRoom("design"))
    joined = bob.wait_event(RoomJoined)
    assert joined.info.members == 2
    assert users(bob, "design") == {"ann", "bob"}
    ann.wait_event(Joined, user="bob", room="design", timeout=10)  # the join notice crossed over once
    assert len([j for j in ann.of(Joined) if j.user == "bob" and j.room == "design"]) == 1


def test_a_room_used_only_on_another_node_is_listed_with_its_topic(cluster_nodes: Any, clients: Any,
                                                                    qtbot: Any) -> None:
    a, b = cluster_nodes(2)
    ann = clients(a, "ann", "Design")
    ann.send(SetTopic("Design", "mockups <b>v2</b>"))
    bob = clients(b, "bob")
    sees(qtbot, b, "ann", "design")
    qtbot.waitUntil(lambda: b.backend.cluster.topic_of("design") is not None, timeout=5000)
    bob.send(RoomsRequest())
    listed = {r.name: r for r in bob.wait_event(RoomList).rooms}
    assert listed["Design"].members == 1 and listed["Design"].topic == "mockups <b>v2</b>"
    bob.send(JoinRoom("design"))
    joined = bob.wait_event(RoomJoined)
    assert (joined.info.name, joined.info.topic, joined.info.members) == ("Design", "mockups <b>v2</b>", 2)


def test_a_private_message_reaches_a_user_on_another_node(cluster_nodes: Any, clients: Any, qtbot: Any) -> None:
    a, b = cluster_nodes(2)
    ann = clients(a, "ann")
    bob = clients(b, "bob")
    qtbot.waitUntil(lambda: a.backend.cluster.node_of("bob") is not None, timeout=5000)
    ann.send(SendMessage("psst", to="Bob", cid="p1"))
    got = bob.wait_event(Message, text="psst", timeout=5)
    ack = ann.wait_event(Message, cid="p1")
    assert (got.sender, got.to, got.id) == ("ann", "bob", ack.id) and not ack.held  # live, not kept
    assert bob.of(Error) == []


def test_a_vanished_nodes_users_leave_every_room_within_5_s(cluster_nodes: Any, clients: Any, qtbot: Any) -> None:
    a, b = cluster_nodes(2)
    clients(a, "ann", "design")
    bob = clients(b, "bob", "design")
    sees(qtbot, b, "ann", "design")
    vanish(a)
    started = time.monotonic()
    bob.wait_event(Left, user="ann", room="design", reason=LOST, timeout=6)
    bob.wait_event(Left, user="ann", room="lobby", reason=LOST, timeout=1)
    assert time.monotonic() - started < 5
    assert users(bob, "design") == {"bob"}
    assert "ann" not in b.rooms.user_names()


def test_a_user_who_moved_to_another_node_neither_leaves_nor_joins(cluster_nodes: Any, clients: Any,
                                                                   qtbot: Any) -> None:
    a, b = cluster_nodes(2)
    clients(a, "ann")
    carol = clients(b, "carol")
    sees(qtbot, b, "ann")
    qtbot.wait(1200)  # a's notice of ann's first join (held up to the notice delay) has reached carol
    joins_before = len([e for e in carol.of(Joined) if e.user == "ann"])
    vanish(a)  # ann's node is gone (its connection to her stays open here: it says nothing), its lease still runs
    started = time.monotonic()
    moved = clients(b, "ann")
    assert time.monotonic() - started < 0.4  # its connections to Redis are closed: no lease nor probe waited for
    assert "ann" in b.users and moved.of(Error) == []
    qtbot.wait(LEASE_MS + 2000)  # the old node's lease ran out and was noticed
    carol.pump()
    assert [e for e in carol.of(Left) if e.user == "ann"] == []
    assert len([e for e in carol.of(Joined) if e.user == "ann"]) == joins_before
    assert users(carol) == {"ann", "carol"}



def test_a_node_that_holds_a_name_but_does_not_answer_loses_it_after_half_a_second(
        cluster_nodes: Any, clients: Any, qtbot: Any, monkeypatch: Any) -> None:
    a, b = cluster_nodes(2)
    ann = clients(a, "ann")
    cluster = a.backend.cluster
    assert isinstance(cluster, RedisCluster)
    apply = cluster._apply

    def stuck(message: dict[str, Any], sender: str) -> None:  # connected, lease renewed, probes unanswered
        if message.get("kind") != "probe":
            apply(message, sender)

    monkeypatch.setattr(cluster, "_apply", stuck)
    started = time.monotonic()
    clients(b, "ann")
    waited = time.monotonic() - started
    assert 0.9 * PROBE_MS / 1000 <= waited < PROBE_MS / 1000 + 1.5  # (a coarse timer may fire 5% early)
    assert "ann" in b.users
    error = ann.wait_event(Error, timeout=5)  # told the name was taken over, a closes her old session
    assert error.code == "name_taken" and error.fatal
    ann.wait_closed()
    qtbot.waitUntil(lambda: "ann" not in a.users, timeout=5000)
    assert "ann" in b.users  # and its release did not free the name b holds now
    assert clients(a).refused("ann").code == "name_taken"


def test_an_account_logged_in_again_on_another_node_takes_its_session_over_quietly(
        cluster_nodes: Any, clients: Any, qtbot: Any) -> None:
    a, b, c = cluster_nodes(3)
    first = clients(a)
    first.login("ann", password="correct horse battery", register=True)
    carol = clients(c, "carol")
    sees(qtbot, c, "ann")
    qtbot.wait(1200)  # the notices of the first login have reached carol
    seen = len([e for e in carol.of(Joined) + carol.of(Left) if e.user == "ann"])
    second = clients(b)
    second.login("ann", password="correct horse battery")  # its owner, on another node: as on one machine
    assert first.wait_event(Bye, timeout=5).code == "logged_in_elsewhere"
    first.wait_closed()
    qtbot.waitUntil(lambda: "ann" not in a.users and "ann" in b.users, timeout=5000)
    qtbot.wait(1500)  # any notice of it would have arrived
    assert len([e for e in carol.of(Joined) + carol.of(Left) if e.user == "ann"]) == seen  # she moved, no news
    assert users(carol) == {"ann", "carol"}
    assert second.of(Error) == []


def test_a_room_operator_removes_a_member_who_is_on_another_node(cluster_nodes: Any, clients: Any,
                                                                  qtbot: Any) -> None:
    a, b = cluster_nodes(2)
    ann = clients(a, "ann", "den")  # its creator: an operator of it
    ben = clients(b, "ben", "den")
    cat = clients(b, "cat")
    sees(qtbot, a, "ben", "den")
    ann.send(RoomKick("den", "cat"))  # not in it, on any node
    assert ann.wait_event(Error, ref="den").code == "no_such_user"
    assert not [e for e in cat.of(Left) if e.room == "den"]
    ann.send(RoomKick("den", "ben", "spam"))
    mine = ben.wait_event(Left, room="den", user="ben", timeout=5)
    assert (mine.reason, mine.by) == ("kicked: spam", "ann")
    left = ann.wait_event(Left, room="den", user="ben", timeout=5)  # and everyone in the room saw it
    assert (left.reason, left.by) == ("kicked: spam", "ann")
    qtbot.waitUntil(lambda: a.rooms.user_names("den") == ["ann"], timeout=5000)
    ben.say("still here?", cid="b1", room="den")
    assert ben.wait_event(Error, ref="b1").code == "no_such_room"
