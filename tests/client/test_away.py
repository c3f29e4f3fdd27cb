"""Away in the client core: set_away/set_back, another member's user model and private header, the commands,
auto-away after idle time (shrunk) and back at the next activity, a manual away kept, and a reconnect."""

from __future__ import annotations

from qtchat.client import ChatClient, Workspace
from qtchat.client.away import AutoAway
from qtchat.client.models import UserListModel
from qtchat.protocol import MAX_AWAY_MESSAGE, UserAway, UserBack, UserList

from .test_session import login


def away_in(ws: Workspace, name: str, room: str = "lobby") -> str | None:
    conv = ws.room(room)
    assert conv is not None
    row = conv.users.names.index(name)
    value = conv.users.data(conv.users.index(row), UserListModel.AwayRole)
    assert value is None or isinstance(value, str)
    return value


def test_away_shows_in_another_members_user_list_and_private_header_and_clears(server, client, qtbot):
    bob = ChatClient()
    try:
        ws = Workspace(bob)
        login(qtbot, bob, server.port, "bob")
        login(qtbot, client, server.port, "alice")
        qtbot.waitUntil(lambda: "alice" in bob.users)
        pm = ws.open_private("alice")
        with qtbot.waitSignal(bob.away_changed, timeout=3000) as told:
            client.set_away("in a meeting")
        assert told.args == ["lobby", "alice", True, "in a meeting"]
        assert away_in(ws, "alice") == "in a meeting" and away_in(ws, "bob") is None
        assert pm.away == "in a meeting"
        ws.close(pm)
        pm = ws.open_private("alice")
        assert pm.away == "in a meeting"  # opened while away: it says so at once
        with qtbot.waitSignal(bob.away_changed, timeout=3000) as told:
            client.set_back()
        assert told.args == ["lobby", "alice", False, ""]
        assert away_in(ws, "alice") is None and pm.away is None
        with qtbot.assert_not_emitted(bob.away_changed, wait=200):
            client.set_back()  # back while here: nothing is sent, nobody hears a thing
    finally:
        bob.quit()
        bob.deleteLater()


def test_a_newcomer_sees_who_is_away_and_a_reconnect_says_it_again(server, connect, client, qtbot):
    client.set_away("offline errand")  # before connecting: told at the login
    login(qtbot, client, server.port, "alice")
    watcher = connect()
    watcher.login("watcher")
    assert any(e.away.get("alice") == "offline errand" for e in watcher.of(UserList))
    ws = Workspace(ChatClient())
    try:
        login(qtbot, ws.client, server.port, "carol")
        assert away_in(ws, "alice") == "offline errand"
    finally:
        ws.client.quit()
    for user in list(server.users.values()):
        if user.name == "alice":
            server.connections.drop(user.peer, "test: the connection broke", graceful=False)
    watcher.wait_for(lambda: [e.message for e in watcher.of(UserAway)] == ["offline errand"], timeout=10)
    assert client.away == "offline errand"  # reconnected, and away again


def test_away_commands_and_their_refusals(server, client, qtbot):
    ws = Workspace(client)
    login(qtbot, client, server.port, "alice")
    with qtbot.assert_not_emitted(client.my_away_changed):
        ws.submit("/back")
        ws.submit("/away " + "x" * (MAX_AWAY_MESSAGE + 1))
    with qtbot.waitSignal(client.away_changed, timeout=3000) as told:
        ws.submit("/away  gone \u202efishing ")
    assert told.args == ["lobby", "alice", True, "gone \u202efishing"]
    assert client.away == "gone \u202efishing" and not client.away_auto
    ws.submit("/back")
    ws.lobby.log.flush()
    lines = [(ln.kind, ln.text) for ln in ws.lobby.log.lines if ln.kind in ("notice", "error")]
    assert ("error", "You are not away.") in lines
    assert ("error", f"Not away: An away message may be at most {MAX_AWAY_MESSAGE} characters long.") in lines
    assert ("notice", "You are away: gone \u202efishing") in lines and ("notice", "You are back.") in lines
    assert client.away is None


def test_auto_away_after_idle_and_back_on_activity_but_a_manual_away_stays(server, connect, client, qtbot):
    watcher = connect()
    watcher.login("watcher")
    login(qtbot, client, server.port, "alice")
    idle = AutoAway(client, minutes=0.6 / 60)  # 0.6 s
    watcher.wait_event(UserAway, user="alice", timeout=5)
    assert client.away == "" and client.away_auto
    idle.activity()  # a key press
    watcher.wait_event(UserBack, user="alice")
    assert client.away is None
    for _ in range(8):  # activity now and then keeps the user here
        qtbot.wait(100)
        idle.activity()
    assert len(watcher.of(UserAway)) == 1
    client.set_away("lunch")  # by hand
    qtbot.wait(800)  # past the idle time: the timer changes nothing
    idle.activity()
    qtbot.wait(100)
    assert client.away == "lunch" and not client.away_auto  # activity does not end a manual away
    watcher.pump()
    assert [e.message for e in watcher.of(UserAway)] == ["", "lunch"] and len(watcher.of(UserBack)) == 1
    idle.set_minutes(0)  # never
    client.set_back()
    qtbot.wait(800)
    assert client.away is None


def test_a_slow_down_is_waited_out_and_the_state_told_again(make_server, connect, client, qtbot):
    server = make_server(rate_messages=1, rate_burst=1)
    watcher = connect(server.port)
    watcher.login("watcher")
    login(qtbot, client, server.port, "alice")
    with qtbot.assert_not_emitted(client.server_error, wait=0):
        client.set_away("one")
        client.set_back()
        client.set_away("three")  # refused (the rate's burst is one): told again after the wait
        watcher.wait_event(UserAway, user="alice", message="three", timeout=5)
    assert client.away == "three"
    assert [e.message for e in watcher.of(UserAway)] == ["one", "three"] and not watcher.of(UserBack)


def test_a_flood_of_away_changes_disturbs_no_one_else(server, connect, client, qtbot):
    from qtchat.protocol import Error, Message, SetAway, SetBack
    from qtchat.server.limits import AWAY_CHANGES as CHANGES

    login(qtbot, client, server.port, "bob")
    flooder = connect()
    flooder.login("flo")
    qtbot.waitUntil(lambda: "flo" in client.users)
    heard: list[object] = []
    client.away_changed.connect(lambda *args: heard.append(args))
    for i in range(CHANGES.burst):
        flooder.send(SetAway(f"m{i}") if i % 2 == 0 else SetBack())
    qtbot.waitUntil(lambda: len(heard) == CHANGES.burst)  # what the limit lets through is told
    lobby = client.room("lobby")
    assert lobby is not None and "flo" not in lobby.away
    with qtbot.assert_not_emitted(client.away_changed, wait=300), \
            qtbot.assert_not_emitted(client.server_error), qtbot.assert_not_emitted(client.connection_lost):
        flooder.send(SetAway("one too many"))
        error = flooder.wait_event(Error)
        assert (error.code, error.ref, error.fatal) == ("slow_down", "away", False)
    with qtbot.waitSignal(client.message_received, timeout=3000) as got:
        flooder.say("and chat goes on", cid="c1")
    assert isinstance(got.args[0], Message) and got.args[0].text == "and chat goes on"
    assert "flo" not in lobby.away


def test_a_server_that_announces_no_away_is_sent_none(client, qtbot):
    """A server from before away (its welcome announces no away_changes_*) would answer unknown_type: the client
    keeps its away state to itself. The server here is a plain socket speaking version 1 by hand."""
    import contextlib
    import json
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    peer: list[socket.socket] = []
    got = bytearray()

    def read() -> bytes:
        if not peer:
            with contextlib.suppress(BlockingIOError):
                conn, _ = listener.accept()
                conn.setblocking(False)
                peer.append(conn)
        if peer:
            with contextlib.suppress(BlockingIOError):
                got.extend(peer[0].recv(65536))
        return bytes(got)

    try:
        client.connect_to("127.0.0.1", listener.getsockname()[1], "alice")
        qtbot.waitUntil(lambda: b'"hello"' in read(), timeout=5000)
        welcome = {"type": "welcome", "version": 1, "user": "alice", "rooms": [{"name": "lobby", "topic": ""}],
                   "limits": {"messages_per_s": 10}}
        users = {"type": "users", "room": "lobby", "users": ["alice"], "more": False}
        with qtbot.waitSignal(client.logged_in, timeout=5000):
            peer[0].sendall(b"".join(json.dumps(f).encode() + b"\n" for f in (welcome, users)))
        assert not client.server_knows_away
        with qtbot.assert_not_emitted(client.server_error, wait=300):
            client.set_away("lunch")
        client.set_back()
        qtbot.wait(200)
        frames = [json.loads(line)["type"] for line in read().splitlines()]
        assert "away" not in frames and "back" not in frames and "hello" in frames
        assert client.away is None
    finally:
        client.quit()
        for s in (*peer, listener):
            s.close()
