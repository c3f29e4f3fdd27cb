"""Rooms not open to all: creator and operators, invite-only, history from the join on, kicks (over real sockets)."""

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
    Notice,
    PartRoom,
    RoomInvite,
    RoomJoined,
    RoomKick,
    RoomList,
    RoomMode,
    RoomOp,
    RoomsRequest,
    RoomState,
    SearchRequest,
    SearchResults,
)
from qtchat.server.accounts import hash_password
from tests.helpers import RawClient, outcome

pytestmark = pytest.mark.backends
PASSWORD = "correct horse battery"
HASH = hash_password(PASSWORD)


def _enter(client: RawClient, room: str) -> RoomState:
    client.send(JoinRoom(room))
    client.wait_event(RoomJoined)
    state: RoomState = client.wait_event(RoomState, room=room)
    return state


def _said(client: RawClient, text: str, cid: str, room: str) -> Message:
    client.say(text, cid=cid, room=room)
    msg: Message = client.wait_event(Message, cid=cid)
    return msg


def _private(ann: RawClient, room: str = "den") -> None:
    ann.send(RoomMode(room, invite_only=True))
    state = ann.wait_event(RoomState, room=room, invite_only=True)
    assert state.history == "joined" and state.by == "ann"


def test_the_first_joiner_creates_and_an_invite_only_room_refuses_the_uninvited(server, connect):
    ann, ben = connect(), connect()
    ann.login("ann")
    ben.login("ben")
    state = _enter(ann, "den")
    assert (state.creator, state.operators, state.invite_only, state.history) == ("ann", ("ann",), False, "full")
    _private(ann)
    ben.send(JoinRoom("Den"))
    error = ben.wait_event(Error, ref="Den")
    assert error.code == "invite_only" and not error.fatal
    assert not ben.of(RoomJoined) and not [j for j in ann.of(Joined) if j.room == "den"]
    assert server.rooms.user_names("den") == ["ann"]
    ben.send(RoomsRequest())
    assert [r.name for r in ben.wait_event(RoomList).rooms] == ["lobby"]  # not listed to non-members
    ann.send(RoomsRequest())
    assert {r.name for r in ann.wait_event(RoomList).rooms} == {"lobby", "den"}
    ann.send(RoomInvite("den", "ben"))
    assert "ben may now join den" in ann.wait_event(Notice, room="den").text
    assert "ann invited you to den" in ben.wait_event(Notice).text
    joined = _enter(ben, "den")
    assert joined.invite_only and joined.creator == "ann"
    assert ann.wait_event(Joined, room="den").user == "ben"


def test_a_non_operator_cannot_set_modes_invite_kick_or_name_operators(server, connect):
    ann, ben, cat = connect(), connect(), connect()
    for c, n in ((ann, "ann"), (ben, "ben"), (cat, "cat")):
        c.login(n)
    _enter(ann, "den")
    _enter(ben, "den")
    for i, frame in enumerate((RoomMode("den", invite_only=True), RoomInvite("den", "cat"),
                               RoomKick("den", "ann"), RoomOp("den", "ben"))):
        ben.send(frame)
        ben.wait_for(lambda n=i: len([e for e in ben.of(Error) if e.ref == "den"]) == n + 1)
    assert {e.code for e in ben.of(Error)} == {"not_room_operator"}
    assert not [s for s in ann.of(RoomState) if s.by] and not ann.of(Left)
    # the creator names ben operator: now he may (but not remove the creator)
    ann.send(RoomOp("den", "ben"))
    assert ben.wait_event(RoomState, by="ann").operators == ("ann", "ben")
    ben.send(RoomKick("den", "ann", "coup"))
    assert ben.wait_event(Error, ref="den", code="not_room_operator")
    ben.send(RoomMode("den", history="joined"))
    assert ann.wait_event(RoomState, by="ben").history == "joined"
    ann.send(RoomMode("den", history="sometimes"))
    assert ann.wait_event(Error, ref="den").code == "bad_frame"
    ann.send(RoomMode("lobby", invite_only=True))
    assert ann.wait_event(Error, ref="lobby").code == "room_invalid"
    ann.send(RoomInvite("den", "nobody"))
    assert ann.wait_event(Error, ref="den", code="no_such_user")


def test_a_kick_removes_notifies_and_ends_the_invite(server, connect):
    ann, ben, cat = connect(), connect(), connect()
    for c, n in ((ann, "ann"), (ben, "ben"), (cat, "cat")):
        c.login(n)
    _enter(ann, "den")
    _private(ann)
    ann.send(RoomInvite("den", "ben"))
    ann.wait_event(Notice, room="den")
    _enter(ben, "den")
    ann.send(RoomKick("den", "ben", "spam"))
    left = ann.wait_event(Left, room="den", user="ben")
    assert (left.reason, left.by) == ("kicked: spam", "ann")
    mine = ben.wait_event(Left, room="den", user="ben")
    assert (mine.reason, mine.by) == ("kicked: spam", "ann")
    assert server.rooms.user_names("den") == ["ann"]
    ann.say("after the kick", cid="k1", room="den")
    ann.wait_event(Message, cid="k1")
    ben.say("still here?", cid="b1", room="den")
    assert ben.wait_event(Error, ref="b1").code == "no_such_room"
    assert not [m for m in ben.of(Message) if m.cid == "k1"]
    ben.send(JoinRoom("den"))  # invite-only, and the invite went with the kick
    assert ben.wait_event(Error, ref="den").code == "invite_only"
    # in an open room, the one kicked may come back
    _enter(cat, "open")
    _enter(ann, "open")
    cat.send(RoomKick("open", "ann"))
    assert ann.wait_event(Left, room="open", user="ann").reason == "kicked"
    assert _enter(ann, "open").creator == "cat"


def test_history_search_and_catch_up_start_at_the_join_point(server, connect):
    ann, ben = connect(), connect()
    ann.login("ann")
    ben.login("ben")
    _enter(ann, "den")
    _private(ann)
    old = _said(ann, "secret plans before ben", "o1", "den")
    ann.send(RoomInvite("den", "ben"))
    ann.wait_event(Notice, room="den")
    _enter(ben, "den")
    new = _said(ann, "secret plans with ben", "n1", "den")
    ben.wait_event(Message, cid="n1")
    ben.send(HistoryRequest("den"))
    assert [m.text for m in ben.wait_event(History, room="den").messages] == ["secret plans with ben"]
    ben.events.clear()
    ben.send(HistoryRequest("den", after=1))  # catch-up from long ago
    assert [m.id for m in ben.wait_event(History, room="den").messages] == [new.id]
    ben.events.clear()
    ben.send(HistoryRequest("den", around=old.id))
    page = ben.wait_event(History, room="den")
    assert [m.id for m in page.messages] == [new.id] and not page.more
    ben.send(SearchRequest("secret plans"))
    assert [m.id for m in ben.wait_event(SearchResults).results] == [new.id]
    ben.events.clear()
    ben.send(SearchRequest("secret plans", room="den"))
    assert [m.id for m in ben.wait_event(SearchResults).results] == [new.id]
    # leaving and joining again keeps the first join point
    ben.send(PartRoom("den"))
    ann.wait_event(Left, user="ben", room="den")
    ben.events.clear()
    _enter(ben, "den")
    ben.send(HistoryRequest("den"))
    assert [m.id for m in ben.wait_event(History, room="den").messages] == [new.id]
    # the creator sees it all, and with history "full" so does ben
    ann.send(HistoryRequest("den"))
    assert [m.id for m in ann.wait_event(History, room="den").messages] == [old.id, new.id]
    ann.send(RoomMode("den", history="full"))
    ben.wait_event(RoomState, history="full")
    ben.events.clear()
    ben.send(HistoryRequest("den"))
    assert [m.id for m in ben.wait_event(History, room="den").messages] == [old.id, new.id]


def test_an_open_room_keeps_its_whole_history_for_newcomers(server, connect):
    ann, ben = connect(), connect()
    ann.login("ann")
    ben.login("ben")
    _enter(ann, "pub")
    first = _said(ann, "hello world", "p1", "pub")
    _enter(ben, "pub")
    ben.send(HistoryRequest("pub"))
    assert [m.id for m in ben.wait_event(History, room="pub").messages] == [first.id]


def test_an_invite_only_room_stays_so_when_everyone_left(server, connect):
    ann, ben = connect(), connect()
    ann.login("ann")
    ben.login("ben")
    _enter(ann, "den")
    _private(ann)
    ann.send(PartRoom("den"))
    ann.wait_for(lambda: "den" not in server.rooms.rooms)
    ben.send(JoinRoom("den"))
    assert ben.wait_event(Error, ref="den").code == "invite_only"
    ann.events.clear()
    assert _enter(ann, "den").creator == "ann"  # the creator may come back


@pytest.mark.sqlite
def test_modes_invites_and_join_points_survive_a_restart(make_server, connect, tmp_path, qtbot):
    first = make_server(data_dir=tmp_path)
    ann, cat = connect(first.port), connect(first.port)
    ann.login("ann")
    cat.login("cat")
    outcome(qtbot, first.operator.register_account("ben", HASH))  # keeps its invite
    _enter(ann, "den")
    _private(ann)
    old = _said(ann, "from before", "o1", "den")
    ann.send(RoomInvite("den", "ben"))
    ann.send(RoomInvite("den", "cat"))  # unregistered: only while cat is online
    ann.wait_for(lambda: len(ann.of(Notice)) == 2)
    first.shutdown("restart")
    ann.wait_closed()
    second = make_server(data_dir=tmp_path)
    cat2 = connect(second.port)
    cat2.login("cat")
    cat2.send(JoinRoom("den"))
    assert cat2.wait_event(Error, ref="den").code == "invite_only"
    ben = connect(second.port)
    ben.login("ben", password=PASSWORD)
    state = _enter(ben, "den")
    assert state.invite_only and state.creator == "ann" and state.history == "joined"
    ben.send(HistoryRequest("den"))
    assert old.id not in [m.id for m in ben.wait_event(History, room="den").messages]


def test_the_server_operator_kicks_from_a_room_and_admins_may_always_join(server, connect, qtbot):
    ann, ben = connect(), connect()
    ann.login("ann")
    _enter(ann, "den")
    _private(ann)
    outcome(qtbot, server.operator.register_account("boss", HASH, admin=True))
    ben.login("boss", password=PASSWORD)
    _enter(ben, "den")
    ben.send(RoomMode("den", history="full"))  # a server admin acts as an operator
    ann.wait_event(RoomState, by="boss")
    assert "removed" in outcome(qtbot, server.operator.kick_from_room("den", "ann", "tidying"))
    assert ann.wait_event(Left, user="ann", room="den").by == "the server's operator"
    with pytest.raises(KeyError):
        outcome(qtbot, server.operator.kick_from_room("den", "ann"))


def test_the_admin_channel_kicks_from_a_room_by_name_or_id(server, connect, qtbot):
    from qtchat.server.admin import execute, user_rows

    ann, ben = connect(), connect()
    ann.login("ann")
    ben.login("ben")
    _enter(ann, "den")
    _enter(ben, "den")
    ids = {row["name"]: row["id"] for row in user_rows(server.operator)}
    reply = outcome(qtbot, execute(server.operator, {"cmd": "kick", "id": ids["ben"], "room": "den", "reason": "x"}))
    assert reply["ok"] and "removed" in reply["message"]
    assert ann.wait_event(Left, user="ben", room="den").by == "the server's operator"
    assert "ben" in server.users  # still connected, in the lobby
    for bad in ({"cmd": "kick", "name": "ben", "room": "den"},  # not in it any more
                {"cmd": "kick", "name": "ann", "room": "lobby"},  # everyone stays in the lobby
                {"cmd": "kick", "name": "ann", "room": 5}):
        reply = outcome(qtbot, execute(server.operator, bad))
        assert not reply["ok"] and reply["message"]
    assert [u.name for u in server.rooms.rooms["den"].members] == ["ann"]
