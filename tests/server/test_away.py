"""Away and back on the server (presence.py): told to the rooms, carried in user lists, ended by leaving, limited."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Annotated

import pytest

from qtchat.protocol import (
    Error,
    JoinRoom,
    Message,
    RoomState,
    SetAway,
    SetBack,
    UserAway,
    UserBack,
    UserList,
    UsersRequest,
)
from qtchat.protocol.codec import Record, declare
from qtchat.protocol.fields import Bool, Names, Str
from qtchat.server.limits import AWAY_CHANGES as CHANGES

pytestmark = pytest.mark.backends


@declare("users")
@dataclass(frozen=True, slots=True)
class OldUserList(Record):
    """``users`` as a version 1 client declared it, before ``away``."""

    users: Annotated[tuple[str, ...], Names()]
    room: Annotated[str, Str()] = "lobby"
    more: Annotated[bool, Bool()] = False


def lists(client, room="lobby"):
    """The away maps of the room's complete user lists so far (one per list, its frames joined)."""
    done, away = [], {}
    for e in client.of(UserList):
        if e.room == room:
            away.update(e.away)
            if not e.more:
                done.append(away)
                away = {}
    return done


def test_away_is_told_to_the_rooms_carried_in_user_lists_and_cleared_on_back(server, connect):
    ann, ben = connect(), connect()
    ann.login("ann")
    ben.login("ben")
    for c in (ann, ben):
        c.send(JoinRoom("ops"))
        c.wait_event(RoomState, room="ops")
    ann.send(SetAway("  lunch\nbrb  "))  # one line, trimmed
    lobby = ben.wait_event(UserAway, room="lobby")
    assert (lobby.user, lobby.message) == ("ann", "lunch brb")
    assert ben.wait_event(UserAway, room="ops").message == "lunch brb"
    assert ann.wait_event(UserAway, room="ops").user == "ann"  # the sender hears it too: its acknowledgement
    ben.send(UsersRequest("ops"))
    ben.wait_for(lambda: len(lists(ben, "ops")) == 2)
    assert lists(ben, "ops")[-1] == {"ann": "lunch brb"}
    cat = connect()
    cat.login("cat")  # a newcomer's list says who is away
    assert lists(cat) == [{"ann": "lunch brb"}]
    ann.send(SetAway("lunch brb"))  # the same again: no news
    ann.send(SetBack())
    assert ben.wait_event(UserBack, room="lobby").user == "ann"
    ben.wait_event(UserBack, room="ops")
    assert len(ben.of(UserAway)) == 2  # the repeat told nobody
    dan = connect()
    dan.login("dan")
    assert lists(dan) == [{}]
    ben.send(SetBack())  # back while here: nothing
    ben.say("still here", cid="s1")
    ben.wait_event(Message, cid="s1")
    assert not ben.of(Error) and not [e for e in dan.of(UserBack) if e.user == "ben"]


def test_an_away_user_joining_a_room_is_told_to_it_and_away_ends_with_the_connection(server, connect):
    ann, ben = connect(), connect()
    ann.login("ann")
    ben.login("ben")
    ben.send(JoinRoom("ops"))
    ben.wait_event(RoomState, room="ops")
    ann.send(SetAway())
    ben.wait_event(UserAway, room="lobby")
    ann.send(JoinRoom("ops"))
    told = ben.wait_event(UserAway, room="ops")
    assert (told.user, told.message) == ("ann", "")
    ann.wait_for(lambda: lists(ann, "ops") == [{"ann": ""}])  # its own list says so too
    ann.close()
    ben.wait_for(lambda: "ann" not in server.user_names())
    cat = connect()
    cat.login("cat")
    assert lists(cat) == [{}]
    ann2 = connect()
    ann2.login("ann")  # a new session is here
    assert lists(ann2) == [{}]


def test_a_flood_of_away_changes_is_refused_with_slow_down_and_others_are_undisturbed(server, connect):
    ann, ben = connect(), connect()
    ann.login("ann")
    ben.login("ben")
    for i in range(CHANGES.burst + 5):
        ann.send(SetAway(f"m{i}") if i % 2 else SetBack() if i % 4 == 2 else SetAway(f"m{i}"))
    ann.say("after the flood", cid="a1")
    ann.wait_event(Message, cid="a1")
    refused = ann.of(Error)
    assert refused and {e.code for e in refused} == {"slow_down"} and not any(e.fatal for e in refused)
    assert {e.ref for e in refused} <= {"away", "back"} and all(e.retry_after and e.retry_after > 0 for e in refused)
    ben.wait_event(Message, cid="a1")
    told = [e for e in ben.events if isinstance(e, UserAway | UserBack)]
    assert 0 < len(told) <= CHANGES.burst and not ann.closed  # what was refused told nobody
    assert not ben.of(Error)


def test_away_changes_count_against_the_message_rate(make_server, connect):
    server = make_server(rate_messages=1, rate_burst=2)
    ann = connect(server.port)
    ann.login("ann")
    ann.send(SetAway("one"))
    ann.send(SetBack())
    ann.send(SetAway("three"))  # the third within the burst of two: the message rate refuses it
    error = ann.wait_event(Error)
    assert (error.code, error.ref, error.fatal) == ("slow_down", "away", False)
    assert "too fast" in error.message


def test_a_version_1_client_parses_user_lists_with_away(server, connect, qtbot):
    """A client that knows nothing of away: its declaration of ``users`` (no ``away``) reads the frames."""
    ann = connect()
    ann.login("ann")
    ann.send(SetAway("out"))
    ann.wait_event(UserAway)
    old = connect()  # a plain socket: its bytes read as they come, not through our Connection
    old.send_raw(b'{"type":"hello","version":1,"user":"old"}\n')
    raw = bytearray()

    def listed() -> bool:
        with contextlib.suppress(BlockingIOError):
            raw.extend(old.sock.recv(65536))
        return b'"type":"users"' in raw and raw.endswith(b"\n")

    qtbot.waitUntil(listed, timeout=5000)
    users = [f for f in map(json.loads, bytes(raw).splitlines()) if f["type"] == "users"]
    assert users[-1]["users"] == ["ann", "old"] and users[-1]["away"] == {"ann": "out"}  # beside the v1 list
    assert OldUserList.from_wire(users[-1]) == OldUserList(("ann", "old"), "lobby", False)
    ann.send(SetBack())
    qtbot.waitUntil(lambda: listed() and b'"type":"back"' in raw, timeout=5000)  # a frame type it ignores
    backs = [f for f in map(json.loads, bytes(raw).splitlines()) if f["type"] == "back"]
    assert backs[0].items() >= {"room": "lobby", "user": "ann"}.items()


def test_away_reaches_the_members_on_other_nodes_of_a_cluster(cluster_nodes, clients, qtbot):
    a, b = cluster_nodes(2)
    ann = clients(a, "ann", "ops")
    ben = clients(b, "ben", "ops")
    qtbot.waitUntil(lambda: "ann" in b.rooms.user_names("ops"), timeout=5000)
    ann.send(SetAway("in the other building"))
    assert ben.wait_event(UserAway, room="ops").message == "in the other building"
    assert ben.wait_event(UserAway, room="lobby").user == "ann"
    ann.send(SetBack())
    ben.wait_event(UserBack, room="ops")
    ben.wait_event(UserBack, room="lobby")
    assert sorted(e.room for e in ben.of(UserAway)) == ["lobby", "ops"]  # each room's once, not twice


def test_a_user_who_moved_to_another_node_is_told_here_again(cluster_nodes, clients, qtbot):
    from tests.server.test_cluster_presence import vanish

    a, b = cluster_nodes(2)
    ann = clients(a, "ann")
    carol = clients(b, "carol")
    qtbot.waitUntil(lambda: "ann" in b.rooms.user_names(), timeout=5000)
    ann.send(SetAway("gone"))
    carol.wait_event(UserAway, user="ann")
    vanish(a)  # her node is gone without a word; she logs in on b, here (no joined, no left: she moved)
    clients(b, "ann")
    assert carol.wait_event(UserBack, user="ann", room="lobby", timeout=5).ts > 0
