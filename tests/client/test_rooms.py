"""The client core in several rooms: joining, routing, user lists, topics, leaving, rejoining after a reconnect."""

from __future__ import annotations

import pytest

from qtchat.client import ChatClient, ClientState, Workspace
from qtchat.protocol import JoinRoom, Message, RoomJoined
from tests.helpers import outcome

from .test_session import lines_of, login


def texts(conv) -> list[str]:
    return [ln.text for ln in lines_of(conv)]


def test_rooms_get_their_own_conversations_users_and_topic(server, connect, client, qtbot):
    ws = Workspace(client)
    bob = connect()
    bob.login("bob")
    bob.send(JoinRoom("Dev Team"))
    bob.wait_event(RoomJoined)
    login(qtbot, client, server.port, "alice")
    dev = ws.join("dev team")
    assert dev is not None and ws.active is dev
    qtbot.waitUntil(lambda: dev.users.names == ["alice", "bob"])
    assert dev.name == "Dev Team"  # the first to create it chose the spelling
    assert client.room("DEV TEAM") is not None
    bob.say("in the room", room="Dev Team")
    bob.say("in the lobby")
    qtbot.waitUntil(lambda: texts(dev) == ["in the room"] and texts(ws.lobby) == ["in the lobby"])
    assert ws.lobby.unread == 1 and dev.unread == 0  # the one the user looks at has nothing unread
    line = ws.submit("mine, in the room")
    assert line is not None
    assert bob.wait_event(Message, text="mine, in the room").room == "Dev Team"
    ws.submit("/topic Release on Friday")
    qtbot.waitUntil(lambda: dev.topic == "Release on Friday")
    assert ws.lobby.topic == ""
    ws.activate(ws.lobby)
    assert ws.lobby.unread == 0
    with qtbot.waitSignal(client.room_left, timeout=3000):
        ws.submit("/part #dev team")
    assert ws.room("Dev Team") is None and ws.active is ws.lobby
    bob.say("after you left", room="Dev Team")
    bob.say("lobby again")
    qtbot.waitUntil(lambda: texts(ws.lobby) == ["in the lobby", "lobby again"])
    assert [c.title for c in ws.conversations] == ["#lobby"]


def test_commands_help_and_errors(server, client, qtbot):
    ws = Workspace(client)
    login(qtbot, client, server.port, "alice")
    assert ws.submit("/frobnicate") is None
    assert ws.submit("/join #bad\x07name") is None
    ws.submit("/part")
    ws.submit("/help")
    line = ws.submit("//not a command")
    assert line is not None and line.text == "/not a command"
    ws.lobby.log.flush()
    shown = [ln.text for ln in ws.lobby.log.lines]
    assert any("Unknown command '/frobnicate'" in t for t in shown)
    assert any(t.startswith("Cannot join") for t in shown)
    assert "Everyone stays in the lobby." in shown
    assert any(t.startswith("Commands:") for t in shown)
    assert [c.title for c in ws.conversations] == ["#lobby"]


def test_a_refused_join_closes_the_room_and_says_why(make_server, client, qtbot):
    server = make_server(max_rooms_per_user=2)  # the lobby and one more
    ws = Workspace(client)
    login(qtbot, client, server.port, "alice")
    ws.join("one")
    with qtbot.waitSignal(client.join_failed, timeout=3000) as failed:
        ws.join("two")
    assert failed.args[0] == "two" and "leave one first" in failed.args[1]
    qtbot.waitUntil(lambda: ws.room("two") is None)
    assert [c.title for c in ws.conversations] == ["#lobby", "#one"]


def test_rooms_are_joined_again_and_caught_up_after_a_reconnect(make_server, connect, client, qtbot, tmp_path):
    first = make_server(data_dir=tmp_path)
    port = first.port
    ws = Workspace(client)
    login(qtbot, client, port, "alice")
    dev = ws.join("dev")
    assert dev is not None
    bob = connect(port)
    bob.login("bob")
    bob.send(JoinRoom("dev"))
    bob.wait_event(RoomJoined)
    bob.say("seen in dev", room="dev")
    qtbot.waitUntil(lambda: texts(dev) == ["seen in dev"])
    with qtbot.waitSignal(client.connection_lost, timeout=5000):
        first.shutdown("restart")
    client.BACKOFF_BASE = 1.0
    second = make_server(data_dir=tmp_path, port=port)
    carol = connect(second.port)
    carol.login("carol")
    carol.send(JoinRoom("dev"))
    carol.wait_event(RoomJoined)
    for i in range(250):  # more than one catch-up page, in a room that is not the lobby
        carol.say(f"missed {i}", room="dev")
    carol.say("lobby news")
    carol.wait_for(lambda: len(carol.of(Message)) == 251)
    qtbot.waitUntil(lambda: client.state is ClientState.ONLINE, timeout=10000)
    qtbot.waitUntil(lambda: len(lines_of(dev)) == 251, timeout=10000)
    qtbot.wait(200)
    assert texts(dev) == ["seen in dev"] + [f"missed {i}" for i in range(250)]
    assert texts(ws.lobby) == ["lobby news"]
    assert dev.users.names == ["alice", "carol"]
    assert [c.title for c in ws.conversations] == ["#lobby", "#dev"]


def test_register_then_log_in_with_the_password_and_operator_commands(server, connect, client, qtbot):
    from qtchat.protocol import Bye

    ws = Workspace(client)
    login(qtbot, client, server.port, "alice")
    assert not client.registered
    with qtbot.waitSignal(client.account_changed, timeout=5000) as changed:
        client.register_name("a good password")
    assert changed.args == [True, False] and client.registered
    ws.lobby.log.flush()
    assert any("is registered now" in ln.text for ln in ws.lobby.log.lines)
    with qtbot.waitSignal(client.closed, timeout=3000):
        client.quit()
    client.password = None
    with qtbot.waitSignal(client.login_failed, timeout=5000) as failed:
        client.connect_to("127.0.0.1", server.port, "alice")
    assert failed.args[0] == "auth_required" and client.state is ClientState.OFFLINE  # no retry loop
    client.password = "a good password"
    login(qtbot, client, server.port, "alice")
    ws.submit("/kick bob")
    ws.lobby.log.flush()
    assert ws.lobby.log.lines[-1].text == "Not done: Only operators may kick or ban."
    outcome(qtbot, server.operator.set_operator("alice", True))
    qtbot.waitUntil(lambda: client.operator)
    bob = connect()
    bob.login("bob")
    ws.submit("/kick bob spamming")
    bob.wait_event(Bye)
    assert bob.of(Bye)[0].reason == "kicked: spamming (by alice)"


def test_registering_at_the_first_login(server, client, qtbot):
    client.password, client.register_on_login = "a good password", True
    login(qtbot, client, server.port, "zoe")
    qtbot.waitUntil(lambda: client.registered)
    assert not client.register_on_login  # reconnects log in, they do not register again


def test_changing_the_password_and_reconnecting_with_the_new_one(server, client, qtbot):
    with pytest.raises(ValueError, match="Not connected"):
        client.change_password("a good password", "a better password")
    login(qtbot, client, server.port, "alice")
    with pytest.raises(ValueError, match="not registered"):
        client.change_password("a good password", "a better password")
    with qtbot.waitSignal(client.account_changed, timeout=5000):
        client.register_name("a good password")
    with qtbot.waitSignal(client.password_change_failed, timeout=5000) as failed:
        client.change_password("a wrong password", "a better password")
    assert failed.args[0] == "auth_failed" and client.password == "a good password"
    with qtbot.waitSignal(client.password_changed, timeout=5000):
        client.change_password("a good password", "a better password")
        assert client.changing_password
        with pytest.raises(ValueError, match="under way"):
            client.change_password("a good password", "yet another one")
    assert client.password == "a better password" and not client.changing_password
    # a lost connection: the reconnect logs in with the new password
    with qtbot.waitSignal(client.logged_in, timeout=5000):
        server.users["alice"].socket.abort()
    assert client.state is ClientState.ONLINE and client.registered


def test_slow_down_keeps_the_message_queued_until_the_server_takes_it(make_server, client, qtbot):
    server = make_server(rate_messages=5, rate_burst=2)
    ws = Workspace(client)
    login(qtbot, client, server.port, "alice")
    failed: list[str] = []
    client.message_failed.connect(lambda cid, code, text: failed.append(code))
    lines = [ws.submit(f"quick {i}") for i in range(8)]
    qtbot.waitUntil(lambda: all(ln is not None and not ln.pending for ln in lines), timeout=10000)
    assert failed == [] and not client.pending
    assert [ln.text for ln in lines_of(ws.lobby)] == [f"quick {i}" for i in range(8)]


def test_read_markers_follow_the_user_to_the_next_session(make_server, connect, client, qtbot, tmp_path):
    server = make_server(data_dir=tmp_path)
    bob = connect(server.port)
    bob.login("bob")
    for i in range(5):
        bob.say(f"early {i}")
    bob.wait_for(lambda: len(bob.of(Message)) == 5)
    ws = Workspace(client)
    login(qtbot, client, server.port, "alice")
    qtbot.waitUntil(lambda: len(lines_of(ws.lobby)) == 5)
    ws.set_looking(True)  # the user looks at the lobby: read up to "early 4"
    qtbot.waitUntil(lambda: ws.lobby.read_sent == lines_of(ws.lobby)[-1].id, timeout=3000)
    qtbot.wait(100)
    with qtbot.waitSignal(client.closed, timeout=3000):
        client.quit()
    for i in range(3):
        bob.say(f"later {i}")
    bob.wait_for(lambda: len(bob.of(Message)) == 8)
    other = ChatClient()  # the same user on another machine
    ws2 = Workspace(other)
    ws2.set_looking(False)
    with qtbot.waitSignal(other.logged_in, timeout=5000):
        other.connect_to("127.0.0.1", server.port, "alice")
    qtbot.waitUntil(lambda: len(lines_of(ws2.lobby)) == 8)
    assert ws2.lobby.unread == 3
    ws2.lobby.log.flush()
    kinds = [(ln.kind, ln.text) for ln in ws2.lobby.log.lines if ln.kind in ("msg", "marker")]
    assert kinds[5] == ("marker", "New since you last read") and kinds[6] == ("msg", "later 0")
    other.quit()


def test_the_room_list_is_fetched_in_pages_and_given_once(make_server, connect, client, qtbot):
    from qtchat.protocol import MAX_ROOMS_PAGE, JoinRoom, RoomJoined

    server = make_server(max_rooms_per_user=1000)
    owner = connect(server.port)
    owner.login("owner")
    names = [f"r{i:03d}" for i in range(MAX_ROOMS_PAGE + 50)]
    owner.send_raw(b"".join(owner.conn.send(JoinRoom(n)) for n in names))
    owner.wait_for(lambda: len(owner.of(RoomJoined)) == len(names), timeout=20)
    with qtbot.waitSignal(client.logged_in, timeout=5000):
        client.connect_to("127.0.0.1", server.port, "asker")
    lists: list[list] = []
    client.room_list.connect(lists.append)
    assert client.request_rooms()
    qtbot.waitUntil(lambda: bool(lists), timeout=5000)
    qtbot.wait(100)
    assert len(lists) == 1  # one list, not one per page
    assert sorted(r.name for r in lists[0]) == sorted([*names, "lobby"])
