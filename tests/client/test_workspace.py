"""The Workspace on its own: the slash-command table, /help, refusals, and routing what the server says
to the right conversation (a real ChatClient; where a server is needed, the real one from the fixtures)."""

from __future__ import annotations

import pytest

from qtchat.client import Workspace
from qtchat.client.commands import BY_NAME, COMMANDS, help_text
from qtchat.protocol import Message

from .test_session import lines_of, login


def said(ws: Workspace, conv=None) -> list[tuple[str, str]]:
    conv = conv or ws.active
    conv.log.flush()
    return [(ln.kind, ln.text) for ln in conv.log.lines if ln.kind != "msg"]


def test_help_lists_every_command_of_the_table(client, qtbot):
    ws = Workspace(client)
    ws.submit("/help")
    (kind, text), = said(ws)
    assert kind == "notice" and text == help_text()
    lines = text.splitlines()
    assert lines[0] == "Commands:" and lines[-1].startswith("Start a message with //")
    for command in COMMANDS:
        assert any(line.startswith(f"/{command.name}") for line in lines), command.name
        for alias in command.aliases:
            assert f"/{alias}" in text
    assert set(BY_NAME) >= {"join", "part", "leave", "close", "topic", "msg", "query", "rooms", "list", "kick",
                            "ban", "help"}


def test_an_unknown_command_is_refused_with_a_clear_line_and_sends_nothing(client, qtbot):
    ws = Workspace(client)
    with qtbot.assert_not_emitted(client.pending_changed), qtbot.assert_not_emitted(ws.conversation_added):
        assert ws.submit("/Frobnicate now") is None
    assert said(ws) == [("error", "Unknown command '/Frobnicate'; /help lists them.")]
    assert not client.pending


@pytest.mark.parametrize(("typed", "usage"), [
    ("/join", "Usage: /join ROOM"),
    ("/query   ", "Usage: /query NAME"),
    ("/msg", "Usage: /msg NAME message"),
    ("/msg bob   ", "Usage: /msg NAME message"),
    ("/kick", "Usage: /kick NAME [reason]"),
    ("/ban", "Usage: /ban NAME [minutes] [reason]"),
])
def test_a_command_without_its_argument_says_how_to_use_it(client, qtbot, typed, usage):
    ws = Workspace(client)
    with qtbot.assert_not_emitted(client.pending_changed), qtbot.assert_not_emitted(ws.conversation_added):
        assert ws.submit(typed) is None
    assert said(ws) == [("error", usage)]


def test_commands_are_case_insensitive_and_aliases_work(client, qtbot):
    ws = Workspace(client)
    ws.submit("/JOIN #books")
    books = ws.room("books")
    assert books is not None and ws.active is books
    ws.submit("/leave")
    assert ws.room("books") is None and ws.active is ws.lobby  # offline: left at once
    ws.submit("/close")
    assert said(ws)[-1] == ("error", "Everyone stays in the lobby.")
    ws.submit("/part #nowhere")
    assert said(ws)[-1] == ("error", "You are not in a room '#nowhere'.")


def test_offline_refusals_are_said_in_the_conversation(client, qtbot):
    ws = Workspace(client)
    ws.submit("/list")
    ws.submit("/topic something")
    ws.submit("/ban bob 10 spam")
    assert [t for _, t in said(ws)] == ["Not connected.", "Topic not set: Not connected.", "Not done: Not connected."]
    ws.submit("/query bob")
    bob = ws.private("bob")
    assert bob is not None and ws.active is bob
    ws.submit("/topic x")
    assert said(ws, bob) == [("error", "Private conversations have no topic.")]


def test_msg_and_the_double_slash_send(client, qtbot):
    ws = Workspace(client)
    line = ws.submit("/msg carol  hello there ")
    carol = ws.private("carol")
    assert carol is not None and line is not None and carol.log.by_cid(line.cid or "") is line
    assert ws.active is ws.lobby  # /msg does not switch to the conversation
    assert [(e.to, e.text) for e in client.pending] == [("carol", " hello there")]
    line = ws.submit("//me waves")
    assert line is not None and line.text == "/me waves" and client.pending[-1].room == "lobby"


def test_private_messages_open_their_conversation_and_count_as_unread(server, connect, client, qtbot):
    ws = Workspace(client)
    ws.set_looking(True)
    bob = connect()
    bob.login("bob")
    login(qtbot, client, server.port, "alice")
    with qtbot.waitSignal(ws.mentioned, timeout=3000) as mention:
        bob.send_raw(b'{"type":"msg","to":"alice","text":"psst","cid":"b1"}\n')
    conv = ws.private("bob")
    assert conv is not None and mention.args[0] is conv and not conv.is_room
    assert [ln.text for ln in lines_of(conv)] == ["psst"]
    assert conv.unread == 1 and ws.total_unread == 1
    with qtbot.waitSignal(ws.unread_changed, timeout=1000) as unread:
        ws.activate(conv)
    assert unread.args == [0] and ws.active is conv
    with qtbot.waitSignal(ws.activity, timeout=3000) as activity:
        bob.say("for everyone")
    assert activity.args[0] is ws.lobby and ws.lobby.unread == 1
    assert bob.wait_event(Message, text="for everyone").sender == "bob"


def test_a_flood_of_one_notice_costs_one_line(server, connect, client, qtbot):
    ws = Workspace(client)
    login(qtbot, client, server.port, "alice")
    before = len(said(ws))
    for _ in range(500):
        server.operator.broadcast("buy cheap watches")
    server.operator.broadcast("a different one")
    qtbot.waitUntil(lambda: said(ws)[-1:] == [("error", "Notice from the server: a different one")])
    assert said(ws)[before:] == [("error", "Notice from the server: buy cheap watches (\u00d7500)"),
                                 ("error", "Notice from the server: a different one")]
    ws.active.error("Notice from the server: buy cheap watches")  # not right after its own: a line again
    assert said(ws)[-1] == ("error", "Notice from the server: buy cheap watches")
