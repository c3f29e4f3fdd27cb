"""Searching from the client, and opening a room at a result with the messages around it."""

from __future__ import annotations

from qtchat.client import Workspace
from qtchat.client.search import SearchModel, match_spans
from qtchat.protocol import JoinRoom, Message, RoomJoined

from .test_session import login


def fill(raw, texts: list[str], room: str = "lobby") -> None:
    """Say these in order and wait until the server acknowledged the last."""
    for text in texts:
        raw.say(text, room=room)
    raw.wait_for(lambda: sum(1 for m in raw.of(Message) if m.room == room) >= len(texts), timeout=20)


def msg_texts(log) -> list[str]:
    log.flush()
    return [ln.text for ln in log.lines if ln.kind == "msg"]


def wait_search(qtbot, model: SearchModel) -> None:
    qtbot.waitUntil(lambda: not model.searching, timeout=5000)
    assert not model.error


def test_match_spans_are_word_prefixes_like_the_server_matches():
    assert match_spans("Deploy the deployment, redeploy", "deploy") == [(0, 6), (11, 17)]
    assert match_spans("café CAFÉ", "Café") == [(0, 4), (5, 9)]
    assert match_spans("a*b (x)", "*(") == []  # no words: nothing to mark
    assert match_spans("new news", "new news") == [(0, 3), (4, 8)]  # the longer word wins where both fit


def test_a_result_far_back_opens_with_its_context_and_joins_the_live_messages(server, connect, client, qtbot):
    bob = connect()
    bob.login("bob")
    fill(bob, [f"message {i}" + (" needle" if i == 37 else "") for i in range(300)])
    ws = Workspace(client)
    login(qtbot, client, server.port, "alice")
    lobby = ws.lobby
    qtbot.waitUntil(lambda: len(msg_texts(lobby.log)) == 50)  # the newest page: 250..299

    assert ws.search.start("NEEDLE")
    wait_search(qtbot, ws.search)
    assert [m.text for m in ws.search.results] == ["message 37 needle"]
    assert ws.search.status == "1 message found"
    hit = ws.search.results[0]

    with qtbot.waitSignal(lobby.focus_requested, timeout=5000) as focused:
        assert ws.show_message(hit.room, hit.id)
    line = focused.args[0]
    assert line.text == "message 37 needle" and line.highlight and line.id == hit.id
    assert lobby.context is not None and lobby.shown is lobby.context
    shown = msg_texts(lobby.context)
    assert shown[0] == "message 7" and "message 37 needle" in shown and shown[-1] == "message 66"
    assert lobby.context_older and lobby.context_newer
    assert msg_texts(lobby.log)[0] == "message 250"  # the live conversation is untouched

    # a live message while reading old ones is unread, and goes to the live log only
    bob.say("meanwhile")
    qtbot.waitUntil(lambda: lobby.unread == 1)
    assert "meanwhile" not in msg_texts(lobby.context)

    # older pages go to the context
    assert lobby.load_older()
    qtbot.waitUntil(lambda: msg_texts(lobby.context)[0] == "message 0")
    assert not lobby.context_older

    # scrolling on towards the present: page after page until the context meets the live messages
    with qtbot.waitSignal(lobby.view_changed, timeout=10000) as changed:
        while lobby.context is not None:
            lobby.load_newer()
            qtbot.wait(20)
    assert changed.args == [True]  # the reader's place is kept
    texts = msg_texts(lobby.log)
    assert texts == [f"message {i}" + (" needle" if i == 37 else "") for i in range(300)] + ["meanwhile"]
    ids = [ln.id for ln in lobby.log.lines if ln.kind == "msg"]
    assert ids == sorted(set(ids))  # in order, each once
    assert not lobby.has_older
    assert line.highlight and lobby.log.holds(line)


def test_a_loaded_result_is_shown_at_once_and_sending_returns_to_the_present(server, connect, client, qtbot):
    bob = connect()
    bob.login("bob")
    fill(bob, [f"line {i}" + (" zebra" if i in (10, 290) else "") for i in range(300)])
    ws = Workspace(client)
    login(qtbot, client, server.port, "alice")
    lobby = ws.lobby
    qtbot.waitUntil(lambda: len(msg_texts(lobby.log)) == 50)
    ws.search.start("zebra")
    wait_search(qtbot, ws.search)
    recent, old = ws.search.results  # newest first
    assert recent.text == "line 290 zebra" and old.text == "line 10 zebra"

    asked: list[object] = []
    client.context_received.connect(asked.append)
    with qtbot.waitSignal(lobby.focus_requested, timeout=1000) as focused:
        ws.show_message(recent.room, recent.id)
    assert focused.args[0].text == "line 290 zebra" and lobby.context is None
    qtbot.wait(100)
    assert asked == []  # it was loaded: nothing asked of the server

    with qtbot.waitSignal(lobby.focus_requested, timeout=5000):
        ws.show_message(old.room, old.id)
    assert lobby.context is not None and not focused.args[0].highlight  # one highlight at a time
    ws._send_read()
    with qtbot.waitSignal(lobby.view_changed, timeout=1000) as changed:
        ws.submit("back to now")
    assert changed.args == [False] and lobby.context is None
    assert msg_texts(lobby.log)[-1] == "back to now"


def test_search_in_one_room_pages_on_and_never_shows_other_rooms(server, connect, client, qtbot):
    bob = connect()
    bob.login("bob")
    bob.send(JoinRoom("secret"))
    bob.wait_event(RoomJoined)
    bob.send(JoinRoom("dev"))
    bob.wait_event(RoomJoined)
    fill(bob, [f"topic apple {i}" for i in range(25)], room="dev")
    fill(bob, ["apple in the secret room"], room="secret")
    fill(bob, ["apple in the lobby"])
    ws = Workspace(client)
    login(qtbot, client, server.port, "alice")
    dev = ws.join("dev")
    assert dev is not None
    qtbot.waitUntil(lambda: len(msg_texts(dev.log)) == 25)

    model = ws.search
    model.PAGE = 10
    model.start("apple", room="dev")
    wait_search(qtbot, model)
    assert [m.text for m in model.results] == [f"topic apple {i}" for i in range(24, 14, -1)]
    assert model.more and model.status == "10+ messages found"
    while model.more:
        assert model.load_more()
        wait_search(qtbot, model)
    assert [m.text for m in model.results] == [f"topic apple {i}" for i in range(24, -1, -1)]
    assert model.rowCount() == 25

    model.start("apple")  # every room alice is in: not the secret one
    wait_search(qtbot, model)
    while model.more:
        model.load_more()
        wait_search(qtbot, model)
    assert {m.room for m in model.results} == {"dev", "lobby"}
    assert len(model.results) == 26

    model.start("   ")
    assert model.error == "Cannot search: the search is empty."
    model.start("nothing-like-this")
    wait_search(qtbot, model)
    assert model.results == [] and model.status == "No messages found."


def test_search_while_offline_says_so(client):
    model = SearchModel(client)
    assert not model.start("anything")
    assert model.status == "Not connected: search needs the server."


def test_a_result_just_before_the_loaded_messages_joins_them_at_once(server, connect, client, qtbot):
    bob = connect()
    bob.login("bob")
    fill(bob, [f"entry {i}" + (" walrus" if i == 40 else "") for i in range(100)])
    ws = Workspace(client)
    login(qtbot, client, server.port, "alice")
    lobby = ws.lobby
    qtbot.waitUntil(lambda: len(msg_texts(lobby.log)) == 50)  # 50..99: the result's context reaches them
    ws.search.start("walrus")
    wait_search(qtbot, ws.search)
    hit = ws.search.results[0]
    with qtbot.waitSignal(lobby.focus_requested, timeout=5000) as focused:
        ws.show_message(hit.room, hit.id)
    assert lobby.context is None and lobby.log.holds(focused.args[0]) and focused.args[0].highlight
    assert msg_texts(lobby.log) == [f"entry {i}" + (" walrus" if i == 40 else "") for i in range(10, 100)]
    assert lobby.has_older  # 0..9 are a page away, as usual
    assert lobby.load_older()
    qtbot.waitUntil(lambda: msg_texts(lobby.log)[0] == "entry 0")


def test_a_double_click_asks_once_and_a_later_pick_wins(server, connect, client, qtbot):
    bob = connect()
    bob.login("bob")
    fill(bob, [f"note {i}" + (" otter" if i in (20, 295) else "") for i in range(300)])
    ws = Workspace(client)
    login(qtbot, client, server.port, "alice")
    lobby = ws.lobby
    qtbot.waitUntil(lambda: len(msg_texts(lobby.log)) == 50)
    ws.search.start("otter")
    wait_search(qtbot, ws.search)
    recent, old = ws.search.results
    pages: list[object] = []
    client.context_received.connect(pages.append)

    with qtbot.waitSignal(lobby.focus_requested, timeout=5000):
        ws.show_message(old.room, old.id)
        ws.show_message(old.room, old.id)  # the second click of a double click
    qtbot.wait(200)
    assert len(pages) == 1
    assert msg_texts(lobby.log)[0] == "note 250"  # the live log has no stray page in it
    lobby.leave_context()
    assert lobby._context_log.rowCount() == 0  # its lines are let go

    # pick the old result, then at once the loaded one: the old one's answer must not pull the view back
    ws.show_message(old.room, old.id)
    with qtbot.waitSignal(lobby.focus_requested, timeout=1000) as focused:
        ws.show_message(recent.room, recent.id)
    assert focused.args[0].text == "note 295 otter"
    qtbot.waitUntil(lambda: len(pages) == 2)
    qtbot.wait(50)
    assert lobby.context is None and focused.args[0].highlight


def test_asking_again_while_older_results_load_keeps_the_newest(server, connect, client, qtbot):
    bob = connect()
    bob.login("bob")
    fill(bob, [f"bee {i}" for i in range(30)])
    ws = Workspace(client)
    login(qtbot, client, server.port, "alice")
    model = ws.search
    model.PAGE = 10
    model.start("bee")
    wait_search(qtbot, model)
    assert model.load_more()
    model.start("bee")  # Enter again before the older page came
    wait_search(qtbot, model)
    qtbot.wait(100)
    assert [m.text for m in model.results] == [f"bee {i}" for i in range(29, 19, -1)]


def test_a_search_the_server_refuses_says_why_and_stops_searching(server, client, qtbot):
    from qtchat.client.search import SearchModel

    with qtbot.waitSignal(client.logged_in, timeout=5000):
        client.connect_to("127.0.0.1", server.port, "alice")
    model = SearchModel(client)
    with qtbot.waitSignal(client.search_failed, timeout=3000), \
            qtbot.assert_not_emitted(client.server_error, wait=100):
        model.start(" ".join(f"word{i}" for i in range(12)))
    assert not model.searching and "at most 8 words" in model.status


def test_a_search_in_a_room_we_are_not_in_says_why_and_stops_searching(server, client, qtbot):
    from qtchat.client.search import SearchModel

    with qtbot.waitSignal(client.logged_in, timeout=5000):
        client.connect_to("127.0.0.1", server.port, "alice")
    model = SearchModel(client)
    with qtbot.waitSignal(client.search_failed, timeout=3000) as failed, \
            qtbot.assert_not_emitted(client.server_error, wait=100):
        model.start("anything", room="gone")  # a room left a moment ago, say
    assert failed.args[0] == "no_such_room"
    assert not model.searching and "gone" in model.status
