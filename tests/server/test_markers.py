"""Read markers: kept per user and room, only moving forward, across restarts; unread counts with them."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from qtchat.protocol import (
    Error,
    JoinRoom,
    MarkRead,
    Message,
    PartRoom,
    Ping,
    Pong,
    RoomJoined,
    UserList,
)
from qtchat.server.store import MessageStore
from tests.helpers import RawClient

pytestmark = pytest.mark.backends

def sync(client: RawClient) -> None:
    """Wait until the server has handled everything this client sent (frames are handled in order)."""
    token = f"sync{len(client.events)}"
    client.send(Ping(token))
    client.wait_event(Pong, token=token)


def join(client: RawClient, room: str) -> RoomJoined:
    count = len(client.of(RoomJoined))
    client.send(JoinRoom(room))
    client.wait_for(lambda: len(client.of(RoomJoined)) > count)
    joined: RoomJoined = client.of(RoomJoined)[-1]
    client.wait_for(lambda: any(isinstance(e, UserList) and e.room == joined.info.name and not e.more
                                for e in client.events[client.events.index(joined):]))
    return joined


_cids = itertools.count()


def say_all(client: RawClient, texts: list[str], room: str = "lobby") -> list[Message]:
    """Send messages and return their acknowledgements."""
    cids = [f"s{next(_cids)}" for _ in texts]
    for text, cid in zip(texts, cids, strict=True):
        client.say(text, cid=cid, room=room)
    return [client.wait_event(Message, cid=cid) for cid in cids]


@pytest.mark.sqlite
def test_markers_move_forward_only_are_per_user_and_room_and_survive_a_restart(make_server, connect, tmp_path):
    first = make_server(data_dir=tmp_path)
    ann, ben = connect(first.port), connect(first.port)
    welcome = ann.login("ann")
    assert welcome.rooms[0].read is None and welcome.rooms[0].unread is None  # no marker yet
    ben.login("ben")
    join(ann, "Dev")
    join(ben, "dev")
    lobby = say_all(ben, [f"l{i}" for i in range(5)])
    own = say_all(ann, ["a0", "a1"])
    dev = say_all(ben, ["d0", "d1", "d2"], room="Dev")
    ann.send(MarkRead("lobby", lobby[1].id))
    ann.send(MarkRead("lobby", lobby[0].id))  # backwards: ignored
    ann.send(MarkRead("DEV", dev[0].id))  # room names compare like usernames
    ben.send(MarkRead("lobby", lobby[4].id))
    sync(ann)
    sync(ben)
    assert not ann.of(Error) and not ben.of(Error)  # no answer, no error
    # the marker is in the room frame of a later join, with what came after it
    ann.send(PartRoom("Dev"))
    again = join(ann, "Dev")
    assert (again.info.read, again.info.unread) == (dev[0].id, 2)
    first.shutdown("restart")
    ann.wait_closed()
    ben.wait_closed()

    second = make_server(data_dir=tmp_path)
    ann, ben, cat = connect(second.port), connect(second.port), connect(second.port)
    room = ann.login("ann").rooms[0]
    assert (room.name, room.read, room.unread) == ("lobby", lobby[1].id, 3)  # l2-l4; her own a0, a1 not
    room = ben.login("ben").rooms[0]
    assert (room.read, room.unread) == (lobby[4].id, 2)  # ann's a0 and a1
    room = cat.login("cat").rooms[0]
    assert (room.read, room.unread) == (None, None)  # per user
    dev_room = join(ann, "dev").info
    assert (dev_room.name, dev_room.read, dev_room.unread) == ("dev", dev[0].id, 2)  # per room
    assert join(cat, "dev").info.read is None
    ann.send(MarkRead("dev", dev[2].id))
    ann.send(MarkRead("lobby", own[1].id))
    sync(ann)
    ann.send(PartRoom("dev"))
    assert join(ann, "dev").info.unread == 0


def test_a_marker_for_a_room_you_are_not_in_is_refused(server, connect):
    ann, ben = connect(), connect()
    ann.login("ann")
    ben.login("ben")
    join(ben, "secret")
    ann.send(MarkRead("secret", 5))
    error = ann.wait_event(Error)
    assert error.code == "no_such_room" and not error.fatal and "secret" in error.message
    ann.send(MarkRead("nowhere", 5))
    ann.wait_for(lambda: len(ann.of(Error)) == 2)
    assert ann.of(Error)[1].code == "no_such_room"
    ann.say("still fine", cid="ok")
    ann.wait_event(Message, cid="ok")


@pytest.mark.sqlite
def test_unread_stops_counting_at_1000(make_server, connect, tmp_path):
    store = MessageStore(tmp_path / "messages.db")
    rows: list[Any] = [(1000 + i, "lobby", i, "bob", "bob", None, f"m{i}") for i in range(1500)]
    store.append(rows, {("ann", "lobby"): 1000 + 10})
    store.close()
    server = make_server(data_dir=tmp_path)
    ann = connect(server.port)
    room = ann.login("Ann").rooms[0]  # the marker is kept under the name's key
    assert (room.read, room.unread) == (1010, 1000)


def test_markers_without_a_data_dir_last_as_long_as_the_server(server, connect):
    ann, ben = connect(), connect()
    ann.login("ann")
    ben.login("ben")
    msgs = say_all(ben, ["x", "y", "z"])
    ann.send(MarkRead("lobby", msgs[0].id))
    sync(ann)
    ann.close()
    ben.wait_for(lambda: "ann" not in server.user_names())
    again = connect()
    room = again.login("ann").rooms[0]
    assert (room.read, room.unread) == (msgs[0].id, 2)


@pytest.mark.sqlite
def test_with_no_history_markers_are_kept_but_nothing_is_counted(make_server, connect, tmp_path):
    server = make_server(history=False, data_dir=tmp_path)
    ann = connect(server.port)
    ann.login("ann")
    ann.send(MarkRead("lobby", 42))
    sync(ann)
    ann.close()
    again = connect(server.port)
    room = again.login("ann").rooms[0]
    assert (room.read, room.unread) == (42, None)
    assert not (tmp_path / "messages.db").exists()
