"""The client core with rooms not open to all: modes and operators as the server says them, the commands,
a refused join, being removed from a room (real server, real sockets)."""

from __future__ import annotations

from qtchat.client import Workspace
from qtchat.protocol import Error, JoinRoom, Left, Notice, RoomInvite, RoomJoined, RoomMode, RoomState

from .test_session import login


def notices(conv) -> list[str]:
    conv.log.flush()
    return [ln.text for ln in conv.log.lines]


def test_private_invite_op_and_kick_from_the_commands(server, connect, client, qtbot):
    ws = Workspace(client)
    bob = connect()
    bob.login("bob")
    login(qtbot, client, server.port, "alice")
    den = ws.join("den")
    assert den is not None
    qtbot.waitUntil(lambda: den.modes is not None)
    assert den.modes is not None and den.modes.creator == "alice" and client.is_room_operator("den", "alice") and not den.invite_only
    ws.submit("/private")
    qtbot.waitUntil(lambda: den.invite_only)
    assert den.modes is not None and den.modes.history == "joined"
    assert "alice made this room private: only those invited may join" in notices(den)
    bob.send(JoinRoom("den"))
    assert bob.wait_event(Error, ref="den").code == "invite_only"
    ws.submit("/invite bob")
    bob.wait_event(Notice)
    bob.send(JoinRoom("den"))
    bob.wait_event(RoomJoined)
    qtbot.waitUntil(lambda: den.users.names == ["alice", "bob"])
    ws.submit("/op bob")
    qtbot.waitUntil(lambda: client.is_room_operator("den", "bob"))
    assert den.users.data(den.users.index(1), den.users.OperatorRole) is True
    assert "alice made bob an operator of this room" in notices(den)
    ws.submit("/deop bob")
    qtbot.waitUntil(lambda: not client.is_room_operator("den", "bob"))
    ws.submit("/history full")
    qtbot.waitUntil(lambda: den.modes is not None and den.modes.history == "full")
    ws.submit("/kick bob enough")
    left = bob.wait_event(Left, room="den", user="bob")
    assert (left.by, left.reason) == ("alice", "kicked: enough")
    qtbot.waitUntil(lambda: den.users.names == ["alice"])
    assert bob.of(RoomState)[-1].history == "full"


def test_removed_from_a_room_and_refused_an_invite_only_one(server, connect, client, qtbot):
    ws = Workspace(client)
    ann = connect()
    ann.login("ann")
    ann.send(JoinRoom("den"))
    ann.wait_event(RoomJoined)
    login(qtbot, client, server.port, "alice")
    den = ws.join("den")
    assert den is not None
    qtbot.waitUntil(lambda: den.users.names == ["alice", "ann"])
    ws.submit("/private")  # alice is no operator there
    qtbot.waitUntil(lambda: any("Only its operators" in t for t in notices(den)))
    assert not den.invite_only
    ann.send(RoomMode("den", invite_only=True))
    ann.wait_event(RoomState, by="ann")
    qtbot.waitUntil(lambda: den.invite_only)
    assert "ann made this room private: only those invited may join" in notices(den)
    with qtbot.waitSignal(client.removed_from_room, timeout=5000) as removed:
        ann.send_raw(b'{"type":"room_kick","room":"den","name":"alice","reason":"private now"}\n')
    assert removed.args == ["den", "ann", "kicked: private now"]
    assert ws.room("den") is None and client.room("den") is None
    assert "You were removed from #den by ann: private now" in notices(ws.lobby)
    with qtbot.waitSignal(client.join_failed, timeout=5000) as failed:
        ws.join("den")
    assert failed.args[0] == "den" and "invite-only" in failed.args[1]
    assert ws.room("den") is None
    assert any(t.startswith("Cannot join #den: den is invite-only") for t in notices(ws.lobby))
    ann.send(RoomInvite("den", "alice"))
    ann.wait_event(Notice, room="den")
    den = ws.join("den")
    assert den is not None
    qtbot.waitUntil(lambda: den.invite_only and den.users.names == ["alice", "ann"])


def test_room_commands_in_the_lobby_and_offline_say_why(server, client, qtbot):
    ws = Workspace(client)
    ws.submit("/invite bob")
    login(qtbot, client, server.port, "alice")
    ws.submit("/private")
    ws.submit("/history sometimes")
    shown = notices(ws.lobby)
    assert shown.count("Type that in the room it is for (the lobby is open to all).") == 2
    assert "Usage: /history joined|full" in shown
    ws.submit("/help")
    assert any("/kill NAME [reason]" in t for t in notices(ws.lobby))
