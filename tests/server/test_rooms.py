"""Rooms on the server: join (creating), part, list, topic; messages reach exactly a room's members."""

from __future__ import annotations

import pytest

from qtchat.protocol import (
    Error,
    History,
    HistoryRequest,
    Joined,
    JoinRoom,
    Left,
    Message,
    PartRoom,
    RoomJoined,
    RoomList,
    RoomsRequest,
    SetTopic,
    TopicChanged,
    UserList,
)

pytestmark = pytest.mark.backends


def test_rooms_reach_exactly_their_members(server, connect):
    ann, ben, cat = connect(), connect(), connect()
    for c, n in ((ann, "ann"), (ben, "ben"), (cat, "cat")):
        c.login(n)
    ann.send(JoinRoom("Dev Team"))
    joined = ann.wait_event(RoomJoined)
    assert joined.info.name == "Dev Team" and joined.info.members == 1
    ann.wait_for(lambda: any(isinstance(e, UserList) and e.room == "Dev Team" for e in ann.events))
    ben.send(JoinRoom("dev team"))  # the same room, names compare like usernames
    assert ben.wait_event(RoomJoined).info.name == "Dev Team"
    assert ann.wait_event(Joined, room="Dev Team").user == "ben"
    ann.say("only for dev", cid="d1", room="dev team")
    assert ben.wait_event(Message, cid="d1").room == "Dev Team"
    ann.wait_event(Message, cid="d1")  # the acknowledgement
    cat.say("am I in?", cid="c1", room="Dev Team")
    assert cat.wait_event(Error, ref="c1").code == "no_such_room"
    ann.say("for everyone", cid="l1")
    assert cat.wait_event(Message, cid="l1").room == "lobby"
    assert not [m for m in cat.of(Message) if m.room == "Dev Team"]


def test_rooms_list_topic_part_and_cleanup(server, connect):
    ann, ben = connect(), connect()
    ann.login("ann")
    ben.login("ben")
    ann.send(JoinRoom("ops"))
    ann.wait_event(RoomJoined)
    ben.send(RoomsRequest())
    rooms = {r.name: r.members for r in ben.wait_event(RoomList).rooms}
    assert rooms == {"lobby": 2, "ops": 1}
    ben.send(JoinRoom("ops"))
    ben.wait_event(RoomJoined)
    ann.send(SetTopic("ops", "deploy at 5\nmaybe"))
    topic = ben.wait_event(TopicChanged)
    assert topic.topic == "deploy at 5 maybe" and topic.by == "ann"
    ben.send(PartRoom("ops"))
    assert ann.wait_event(Left, room="ops").reason == "part"
    ann.send(PartRoom("ops"))
    ann.send(PartRoom("lobby"))
    assert "lobby" in ann.wait_event(Error).message
    ann.send(RoomsRequest())
    ann.wait_event(RoomList)
    assert {r.name for r in ann.of(RoomList)[-1].rooms} == {"lobby"}


def test_bad_room_names_and_per_room_history(server, connect):
    ann = connect()
    ann.login("ann")
    ann.send(JoinRoom("   "))
    assert ann.wait_event(Error).code == "room_invalid"
    ann.send(JoinRoom("books"))
    ann.wait_event(RoomJoined)
    ann.say("in books", cid="b1", room="books")
    ann.say("in lobby", cid="l1")
    ann.wait_event(Message, cid="l1")
    ann.wait_event(Message, cid="b1")
    ann.send(HistoryRequest("books"))
    page = ann.wait_event(History)
    assert [m.text for m in page.messages] == ["in books"] and page.room == "books"


def test_leaving_the_server_leaves_every_room(server, connect):
    ann, ben = connect(), connect()
    ann.login("ann")
    ben.login("ben")
    for c in (ann, ben):
        c.send(JoinRoom("music"))
        c.wait_event(RoomJoined)
    ann.close()
    ben.wait_event(Left, room="music", user="ann")
    ben.wait_event(Left, room="lobby", user="ann")
    assert server.user_names("lobby") == ["ben"]


def test_private_messages_reach_only_the_two_people(server, connect):
    from qtchat.protocol import SendMessage

    ann, ben, cat = connect(), connect(), connect()
    for c, n in ((ann, "ann"), (ben, "ben"), (cat, "cat")):
        c.login(n)
    ann.send(SendMessage("psst ~ ben", cid="p1", to="BEN"))
    got = ben.wait_event(Message, cid="p1")
    assert got.to == "ben" and got.sender == "ann" and got.text == "psst ~ ben"
    assert ann.wait_event(Message, cid="p1").id == got.id  # the sender's acknowledgement
    ann.say("public", cid="x")
    cat.wait_event(Message, cid="x")
    assert not [m for m in cat.of(Message) if m.to is not None]
    ann.send(SendMessage("hello?", cid="p2", to="nobody"))
    error = ann.wait_event(Error, ref="p2")
    assert error.code == "user_offline" and "nobody" in error.message


def test_room_history_survives_the_room_emptying_under_another_spelling(server, connect):
    ann = connect()
    ann.login("ann")
    ann.send(JoinRoom("Dev"))
    ann.wait_event(RoomJoined)
    ann.say("kept", cid="k1", room="Dev")
    ann.wait_event(Message, cid="k1")
    ann.send(PartRoom("Dev"))
    ann.send(JoinRoom("dev"))
    ann.wait_for(lambda: len(ann.of(RoomJoined)) == 2)
    ann.send(HistoryRequest("dev"))
    assert [m.text for m in ann.wait_event(History).messages] == ["kept"]


def test_a_resent_private_message_is_delivered_once(server, connect):
    from qtchat.protocol import SendMessage

    ann, ben = connect(), connect()
    ann.login("ann")
    ben.login("ben")
    ann.send(SendMessage("once", cid="pm1", to="ben"))
    first = ann.wait_event(Message, cid="pm1")
    ann.close()
    again = connect()
    again.login("ann")
    again.send(SendMessage("once", cid="pm1", to="ben"))
    assert again.wait_event(Message, cid="pm1").id == first.id
    again.say("after", cid="z")
    ben.wait_event(Message, cid="z")
    assert [m.text for m in ben.of(Message) if m.to] == ["once"]


def test_history_request_with_an_absurd_id_is_a_clear_error(server, connect):
    ann = connect()
    ann.login("ann")
    ann.send_raw(b'{"type":"history","before":' + b"9" * 40 + b"}\n")
    assert ann.wait_event(Error).code == "bad_frame"
    ann.say("still fine", cid="ok")
    ann.wait_event(Message, cid="ok")


def test_history_pages_stay_under_the_frame_limit_whatever_the_text(make_server, connect):
    server = make_server(max_frame=4096)
    ann = connect(server.port)
    ann.login("ann")
    for i in range(6):
        ann.say('"' * 1500 + str(i), cid=str(i))  # every quote doubles when encoded
    ann.wait_for(lambda: len(ann.of(Message)) == 6)
    ann.send(HistoryRequest(limit=6))
    page = ann.wait_event(History)
    assert page.more and 1 <= len(page.messages) < 6
    from qtchat.protocol import encode_event

    assert len(encode_event(page)) <= 4096


def test_a_message_sent_right_after_a_join_waits_for_it(server, connect):
    """Join and message in one write: the message waits until the join is answered (a backend reads the room's
    state first), never refused with no_such_room; what comes after the join waits too, in order."""
    from qtchat.protocol import Error, JoinRoom, Message, RoomJoined, SendMessage

    ann, bob = connect(), connect()
    ann.login("ann")
    bob.login("bob")
    bob.send(JoinRoom("atelier"))
    bob.wait_event(RoomJoined)
    ann.send_raw(ann.conn.send(JoinRoom("atelier")) + ann.conn.send(SendMessage("first", room="atelier", cid="f"))
                 + ann.conn.send(JoinRoom("kiln")) + ann.conn.send(SendMessage("second", room="kiln", cid="s")))
    ann.wait_event(Message, cid="f")
    ann.wait_event(Message, cid="s")
    assert not ann.of(Error)
    assert bob.wait_event(Message, room="atelier").text == "first"
