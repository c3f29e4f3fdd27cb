"""The client core against a real server: login, chat, failures, reconnect with an outbox."""

from __future__ import annotations

import pytest

from qtchat.client import ChatClient, ClientState, Conversation, Loss, Workspace
from qtchat.protocol import Left, Message
from qtchat.ui.wording import reason_text
from tests.helpers import outcome


def login(qtbot, client: ChatClient, port: int, user: str) -> None:
    with qtbot.waitSignal(client.logged_in, timeout=5000):
        client.connect_to("127.0.0.1", port, user)
    qtbot.waitUntil(lambda: user in client.users)


def test_login_chat_and_user_list(server, connect, client, qtbot):
    bob = connect()
    bob.login("bob")
    login(qtbot, client, server.port, "alice")
    assert client.state is ClientState.ONLINE
    assert client.me == "alice"
    assert set(client.users) == {"alice", "bob"}
    with qtbot.waitSignal(client.message_acked, timeout=3000) as acked:
        cid = client.send_text("hi ~ bob\n\U0001f600")
    assert acked.args[0] == cid
    assert bob.wait_event(Message, cid=cid).text == "hi ~ bob\n\U0001f600"
    with qtbot.waitSignal(client.message_received, timeout=3000) as got:
        bob.say("hello alice")
    assert got.args[0].sender == "bob"
    with qtbot.waitSignal(client.user_left, timeout=3000) as left:
        bob.close()
    assert left.args[:2] == ["lobby", "bob"]
    assert client.users == ["alice"]


def test_taken_name_fails_without_retry(server, connect, client, qtbot):
    connect().login("alice")
    with qtbot.waitSignal(client.login_failed, timeout=5000) as failed:
        client.connect_to("127.0.0.1", server.port, "ALICE")
    assert failed.args[0] == "name_taken"
    assert failed.args[1].loss is Loss.SERVER_ERROR  # in the server's own words:
    assert "already in use" in failed.args[1].detail and reason_text(failed.args[1]) == failed.args[1].detail
    assert client.state is ClientState.OFFLINE
    qtbot.wait(300)
    assert client.state is ClientState.OFFLINE  # no reconnect loop


def test_nothing_listening_is_a_clear_failure(client, qtbot):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with qtbot.waitSignal(client.login_failed, timeout=5000) as failed:
        client.connect_to("127.0.0.1", port, "alice")
    assert failed.args[0] == "network"
    assert failed.args[1].loss is Loss.REFUSED
    assert f"127.0.0.1:{port}" in reason_text(failed.args[1])


def test_invalid_text_is_refused_locally(server, client, qtbot):
    login(qtbot, client, server.port, "alice")
    with pytest.raises(ValueError, match="empty"):
        client.send_text("   ")
    with pytest.raises(ValueError, match="too long"):
        client.send_text("x" * 70000)


def test_reconnect_after_server_restart_delivers_queued_messages_once(make_server, connect, client, qtbot):
    first = make_server()
    port = first.port
    login(qtbot, client, port, "alice")
    unacked = client.send_text("sent just before the crash")
    with qtbot.waitSignal(client.connection_lost, timeout=5000) as lost:
        first.shutdown("restart")
    assert lost.args[0].loss is Loss.SERVER_SHUTDOWN and lost.args[0].detail == "restart"  # the bye's code
    queued = [client.send_text(f"typed offline {i}") for i in range(3)]
    assert len(client.pending) >= 3
    second = make_server(port=port)
    observer = connect(second.port)
    observer.login("observer")
    qtbot.waitUntil(lambda: client.state is ClientState.ONLINE, timeout=10000)
    qtbot.waitUntil(lambda: not client.pending, timeout=5000)
    observer.wait_for(lambda: len(observer.of(Message)) >= 3)
    qtbot.wait(200)
    texts = [m.text for m in observer.of(Message)]
    expected = [f"typed offline {i}" for i in range(3)]
    assert [t for t in texts if t.startswith("typed")] == expected
    assert texts.count("sent just before the crash") <= 1
    assert unacked not in [p.cid for p in client.pending] and queued


def test_quit_says_bye(server, connect, client, qtbot):
    bob = connect()
    bob.login("bob")
    login(qtbot, client, server.port, "alice")
    with qtbot.waitSignal(client.closed, timeout=3000):
        client.quit()
    left = bob.wait_event(Left, user="alice")
    assert left.reason.startswith("quit")


def test_conversation_ranks_mentions_above_activity(server, connect, client, qtbot):
    ws = Workspace(client)
    conv = ws.lobby
    bob = connect()
    bob.login("bob")
    login(qtbot, client, server.port, "alice")
    with qtbot.waitSignal(ws.activity, timeout=3000):
        bob.say("malice is not a mention")
    with qtbot.waitSignal(ws.mentioned, timeout=3000) as mention:
        bob.say("hey @Alice, look")
    assert mention.args[0] is conv
    assert mention.args[1].mention and mention.args[1].sender == "bob"
    line = conv.send("my own")
    assert line is not None and line.pending
    qtbot.waitUntil(lambda: not line.pending, timeout=3000)
    assert line.id is not None
    conv.log.flush()
    kinds = [(ln.kind, ln.sender) for ln in conv.log.lines]
    assert ("msg", "bob") in kinds
    assert [ln.text for ln in conv.log.lines if ln.own] == ["my own"]  # the ack updated the pending line


def test_operator_notice_kick_and_ban_reach_the_client(server, client, qtbot):
    conv = Workspace(client).lobby
    login(qtbot, client, server.port, "alice")
    with qtbot.waitSignal(client.notice_received, timeout=3000) as notice:
        outcome(qtbot, server.operator.broadcast("maintenance at noon"))
    assert notice.args == ["maintenance at noon"]
    conv.log.flush()
    assert any("maintenance at noon" in ln.text for ln in conv.log.lines)
    with qtbot.waitSignal(client.login_failed, timeout=3000) as failed:
        outcome(qtbot, server.operator.kick("alice", "cool down"))
    assert failed.args[0] == "kicked" and failed.args[1].loss is Loss.KICKED
    assert "cool down" in reason_text(failed.args[1])
    qtbot.wait(200)
    assert client.state is ClientState.OFFLINE  # a kicked client does not reconnect by itself


def test_a_banned_client_is_told_so_by_the_byes_code(server, client, qtbot):
    login(qtbot, client, server.port, "alice")
    with qtbot.waitSignal(client.login_failed, timeout=3000) as failed:
        outcome(qtbot, server.operator.ban(name="alice", reason="spam"))
    assert failed.args[0] == "kicked" and failed.args[1].loss is Loss.BANNED
    assert reason_text(failed.args[1]) == "An operator banned you from this server (spam)."
    qtbot.wait(200)
    assert client.state is ClientState.OFFLINE


def test_a_server_that_never_answers_the_login_times_out(client, qtbot):
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    client.LOGIN_TIMEOUT = 0.3
    try:
        with qtbot.waitSignal(client.login_failed, timeout=5000) as failed:
            client.connect_to("127.0.0.1", silent.getsockname()[1], "alice")
        assert failed.args[0] == "timeout" and failed.args[1].loss is Loss.LOGIN_TIMEOUT
        assert "did not answer" in reason_text(failed.args[1])
    finally:
        silent.close()


def test_messages_typed_for_one_server_are_not_sent_to_another(make_server, connect, client, qtbot):
    first = make_server()
    login(qtbot, client, first.port, "alice")
    with qtbot.waitSignal(client.connection_lost, timeout=5000):
        first.shutdown("gone")
    client.send_text("meant for the first server")
    assert client.pending
    other = make_server()
    watcher = connect(other.port)
    watcher.login("watcher")
    login(qtbot, client, other.port, "alice")
    assert not client.pending
    qtbot.wait(200)
    assert not watcher.of(Message)


def lines_of(conv: Conversation) -> list:
    conv.log.flush()
    return [ln for ln in conv.log.lines if ln.kind == "msg"]


def test_history_page_on_login_and_older_pages_on_demand(server, connect, client, qtbot):
    bob = connect()
    bob.login("bob")
    for i in range(120):
        bob.say(f"old {i}")
    bob.wait_for(lambda: len(bob.of(Message)) == 120)
    conv = Workspace(client).lobby
    login(qtbot, client, server.port, "alice")
    qtbot.waitUntil(lambda: len(lines_of(conv)) == 50)
    assert [ln.text for ln in lines_of(conv)] == [f"old {i}" for i in range(70, 120)]
    assert conv.has_older
    assert conv.load_older()
    assert not conv.load_older()  # one request at a time
    qtbot.waitUntil(lambda: len(lines_of(conv)) == 100)
    assert conv.load_older()
    qtbot.waitUntil(lambda: len(lines_of(conv)) == 120)
    assert [ln.text for ln in lines_of(conv)] == [f"old {i}" for i in range(120)]
    assert not conv.has_older and not conv.load_older()


def test_a_long_conversation_keeps_a_bounded_window_and_reloads_what_it_let_go(server, connect, client, qtbot):
    conv = Workspace(client).lobby
    conv.log.CAP, conv.log.TRIM_TO, conv.log.READING_CAP = 100, 80, 200  # (5,000, 4,500, 10,000 normally)
    login(qtbot, client, server.port, "alice")
    bob = connect()
    bob.login("bob")
    for i in range(250):
        bob.say(f"live {i}")
    qtbot.waitUntil(lambda: conv.newest_id() and lines_of(conv)[-1].text == "live 249", timeout=10_000)
    assert len(conv.log.lines) <= 100
    texts = [ln.text for ln in lines_of(conv)]
    assert texts == [f"live {i}" for i in range(250 - len(texts), 250)]
    assert conv.has_older  # what was let go is on the server
    # scrolled back: loaded again (it was seen live, so the client must not take it for a repeat)
    assert conv.load_older()
    qtbot.waitUntil(lambda: len(lines_of(conv)) == len(texts) + 50)
    assert [ln.text for ln in lines_of(conv)] == [f"live {i}" for i in range(200 - len(texts), 250)]
    # while the reader is scrolled up the log grows to the reading cap first, then keeps the newest
    conv.log.reading = True
    for i in range(250, 300):
        bob.say(f"live {i}")
    qtbot.waitUntil(lambda: lines_of(conv)[-1].text == "live 299", timeout=10_000)
    assert 150 < len(conv.log.lines) <= 200
    assert lines_of(conv)[0].text == f"live {200 - len(texts)}"  # nothing let go yet
    conv.log.reading = False
    bob.say("live 300")
    qtbot.waitUntil(lambda: lines_of(conv)[-1].text == "live 300")
    assert len(conv.log.lines) == 80
    assert [ln.row for ln in conv.log.lines] == list(range(80))


def test_reconnect_resumes_after_the_last_message_seen(make_server, connect, client, qtbot, tmp_path):
    first = make_server(data_dir=tmp_path)
    port = first.port
    conv = Workspace(client).lobby
    login(qtbot, client, port, "alice")
    bob = connect(port)
    bob.login("bob")
    bob.say("while you were here")
    qtbot.waitUntil(lambda: len(lines_of(conv)) == 1)
    with qtbot.waitSignal(client.connection_lost, timeout=5000):
        first.shutdown("restart")
    client.BACKOFF_BASE = 1.0  # give the others time to talk while alice is away
    second = make_server(data_dir=tmp_path, port=port)
    carol = connect(second.port)
    carol.login("carol")
    for i in range(3):
        carol.say(f"while you were away {i}")
    carol.wait_for(lambda: len(carol.of(Message)) == 3)
    qtbot.waitUntil(lambda: client.state is ClientState.ONLINE, timeout=10000)
    qtbot.waitUntil(lambda: len(lines_of(conv)) == 4, timeout=5000)
    qtbot.wait(200)
    assert [ln.text for ln in lines_of(conv)] == ["while you were here"] + [f"while you were away {i}" for i in range(3)]


def test_private_messages_open_their_own_conversation(server, connect, client, qtbot):
    ws = Workspace(client)
    bob = connect()
    bob.login("bob")
    login(qtbot, client, server.port, "alice")
    line = ws.submit("/msg Bob just between us")
    assert line is not None and line.text == "just between us" and line.pending
    private = ws.private("bob")
    assert private is not None and private is not ws.lobby and not private.is_room
    assert ws.active is ws.lobby  # /msg sends without leaving the room
    got = bob.wait_event(Message, text="just between us")
    assert got.to == "bob"
    qtbot.waitUntil(lambda: not line.pending)
    assert private.name == "bob"  # as the server spells it
    from qtchat.protocol import SendMessage

    with qtbot.waitSignal(ws.mentioned, timeout=3000) as mention:
        bob.send(SendMessage("reply in private", cid="r", to="alice"))
    assert mention.args[0] is private and mention.args[1].text == "reply in private"
    assert private.unread == 1 and private.mentions == 1
    assert not any(ln.kind == "msg" for ln in lines_of(ws.lobby))  # nothing private in the room
    assert [ln.text for ln in lines_of(private)] == ["just between us", "reply in private"]
    assert ws.submit("/msg bob") is None
    ws.lobby.log.flush()
    assert ws.lobby.log.lines[-1].text == "Usage: /msg NAME message"
    ws.activate(private)
    assert private.unread == 0 and private.mentions == 0


def test_live_messages_wait_for_the_catch_up_so_the_order_holds(make_server, connect, client, qtbot, tmp_path):
    first = make_server(data_dir=tmp_path)
    port = first.port
    conv = Workspace(client).lobby
    login(qtbot, client, port, "alice")
    early = connect(port)
    early.login("early")
    early.say("before")
    qtbot.waitUntil(lambda: len(lines_of(conv)) == 1)
    # the client comes back only when told to (reconnect_now below), never while the missed messages are
    # being sent: had it come back early (a race once a loaded machine made the setup slower than the
    # backoff), they would all be live, and the login that sends "live" would have been and gone
    client.BACKOFF_BASE = 600.0
    with qtbot.waitSignal(client.connection_lost, timeout=5000):
        first.shutdown("restart")
    second = make_server(data_dir=tmp_path, port=port)
    bob = connect(second.port)
    bob.login("bob")
    for i in range(300):  # more than one catch-up page
        bob.say(f"missed {i}")
    bob.wait_for(lambda: len(bob.of(Message)) == 300, timeout=30)
    assert client.state is ClientState.WAITING

    def chat_during_login(welcome: object) -> None:
        bob.say("live")

    client.logged_in.connect(chat_during_login)
    client.reconnect_now()
    qtbot.waitUntil(lambda: len(lines_of(conv)) == 302, timeout=10000)
    texts = [ln.text for ln in lines_of(conv)]
    assert texts == ["before"] + [f"missed {i}" for i in range(300)] + ["live"]


def test_pasted_large_messages_over_the_byte_rate_all_get_through_in_the_end(make_server, connect, client, qtbot):
    # the default limits: 12 pasted messages of 60 KB are more than the byte burst; those refused are resent together
    server = make_server(rate_messages=10, rate_burst=20, rate_bytes=64 * 1024, rate_bytes_burst=512 * 1024,
                         flood_after=50)
    bob = connect(server.port)
    bob.login("bob")
    login(qtbot, client, server.port, "alice")
    refused: list[str] = []
    client.message_failed.connect(lambda cid, code, text: refused.append(code))
    cids = [client.send_text(f"{i:02d}" + "x" * 60_000) for i in range(12)]
    qtbot.waitUntil(lambda: not client.pending, timeout=30_000)
    assert refused == []
    bob.wait_for(lambda: len(bob.of(Message)) == 12)
    assert [m.text[:2] for m in bob.of(Message)] == [f"{i:02d}" for i in range(12)]  # in the order pasted
    assert [m.cid for m in bob.of(Message)] == cids
    assert client.state is ClientState.ONLINE  # no flood disconnect on the way


def test_a_large_backlog_is_caught_up_in_bounded_steps_on_demand_without_gaps_or_repeats(make_server, connect, client,
                                                                                          qtbot, tmp_path):
    first = make_server(data_dir=tmp_path)
    port = first.port
    conv = Workspace(client).lobby
    client.CATCH_UP_STEP = 50  # (500 normally)
    login(qtbot, client, port, "alice")
    early = connect(port)
    early.login("early")
    early.say("before")
    qtbot.waitUntil(lambda: len(lines_of(conv)) == 1)
    client.BACKOFF_BASE = 600.0  # back only when told (see the test above)
    with qtbot.waitSignal(client.connection_lost, timeout=5000):
        first.shutdown("restart")
    second = make_server(data_dir=tmp_path, port=port)
    bob = connect(second.port)
    bob.login("bob")
    for i in range(120):
        bob.say(f"missed {i}")
    bob.wait_for(lambda: len(bob.of(Message)) == 120, timeout=30)
    client.logged_in.connect(lambda welcome: bob.say("live"))
    with qtbot.waitSignal(client.catch_up_paused, timeout=10_000):
        client.reconnect_now()
    qtbot.waitUntil(lambda: lines_of(conv)[-1].text == "live")

    def shown() -> list[str]:
        conv.log.flush()
        return [ln.text if ln.kind == "msg" else ln.kind for ln in conv.log.lines if ln.kind in ("msg", "more")]

    assert shown() == ["before"] + [f"missed {i}" for i in range(50)] + ["more", "live"]  # one step, then live
    assert conv.more_line is not None and "load the next ones" in conv.more_line.text
    assert conv.load_missed()
    assert not conv.load_missed()  # one step at a time
    with qtbot.waitSignal(client.missed_received) as got:
        pass
    assert got.args[0].more
    assert shown() == ["before"] + [f"missed {i}" for i in range(100)] + ["more", "live"]
    bob.say("live 2")
    qtbot.waitUntil(lambda: shown()[-1] == "live 2")
    assert conv.load_missed()
    qtbot.waitUntil(lambda: conv.more_line is None)  # all in: the line goes
    assert shown() == ["before"] + [f"missed {i}" for i in range(120)] + ["live", "live 2"]
    assert not conv.load_missed()
    assert [ln.row for ln in conv.log.lines] == list(range(len(conv.log.lines)))
