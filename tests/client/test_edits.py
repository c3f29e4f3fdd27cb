"""Edits and deletions in the client core: a ChatClient and its Workspace against a real server, the
other side a raw protocol client. Live changes reach the conversation's line (not as news), catch-up after a
reconnect brings the changes made meanwhile, and refusals are said, changing nothing."""

from __future__ import annotations

import pytest

from qtchat.client import ClientState, Workspace
from qtchat.protocol import DeleteMessage, EditMessage, Message, MessageEdited

from .test_session import lines_of, login


def test_a_live_edit_and_deletion_change_the_line_and_are_not_news(server, connect, client, qtbot):
    bob = connect()
    bob.login("bob")
    ws = Workspace(client)
    login(qtbot, client, server.port, "alice")
    bob.say("see you at 5pm", cid="b1")
    bob.say("ignore this", cid="b2")
    first, second = bob.wait_event(Message, cid="b1"), bob.wait_event(Message, cid="b2")
    qtbot.waitUntil(lambda: len(lines_of(ws.lobby)) == 2)
    ws.set_looking(False)
    unread = ws.lobby.unread
    with qtbot.assert_not_emitted(client.message_received), qtbot.assert_not_emitted(ws.mentioned):
        with qtbot.waitSignal(client.message_edited, timeout=3000) as edited:
            bob.send(EditMessage(first.id, "see you at 6pm"))
        with qtbot.waitSignal(client.message_deleted, timeout=3000) as deleted:
            bob.send(DeleteMessage(second.id))
    assert edited.args[:3] == ["lobby", first.id, "see you at 6pm"] and edited.args[3] > 0
    assert deleted.args == ["lobby", second.id, "bob"]
    shown = lines_of(ws.lobby)
    assert [(ln.text, bool(ln.edited), ln.deleted) for ln in shown] == [("see you at 6pm", True, False),
                                                                         ("", False, True)]
    assert ws.lobby.unread == unread  # an edit is no news


def test_our_own_edit_and_a_refusal(server, connect, client, qtbot):
    bob = connect()
    bob.login("bob")
    ws = Workspace(client)
    login(qtbot, client, server.port, "alice")
    with qtbot.waitSignal(client.message_acked, timeout=3000) as acked:
        client.send_text("teh plan")
    mine = acked.args[1]
    client.edit_message(mine.id, "the plan")
    bob.wait_event(MessageEdited, id=mine.id, text="the plan")
    qtbot.waitUntil(lambda: lines_of(ws.lobby)[0].text == "the plan")
    bob.say("bob's", cid="b1")
    theirs = bob.wait_event(Message, cid="b1")
    qtbot.waitUntil(lambda: len(lines_of(ws.lobby)) == 2)
    with qtbot.waitSignal(client.edit_failed, timeout=3000) as failed, \
            qtbot.assert_not_emitted(client.message_edited):
        client.edit_message(theirs.id, "words in bob's mouth")
    assert failed.args[0] == "not_author"
    ws.lobby.log.flush()
    assert ws.lobby.log.lines[-1].kind == "error" and ws.lobby.log.lines[-1].text.startswith("Not changed:")
    assert lines_of(ws.lobby)[1].text == "bob's"
    client.quit()
    qtbot.waitUntil(lambda: client.state is not ClientState.ONLINE)
    with pytest.raises(ValueError, match="Not connected"):
        client.edit_message(mine.id, "offline")


def test_changes_made_while_away_arrive_with_the_catch_up(make_server, connect, client, qtbot):
    server = make_server()
    bob = connect(server.port)
    bob.login("bob")
    ws = Workspace(client)
    login(qtbot, client, server.port, "alice")
    bob.say("version one", cid="b1")
    bob.say("doomed", cid="b2")
    first, doomed = bob.wait_event(Message, cid="b1"), bob.wait_event(Message, cid="b2")
    qtbot.waitUntil(lambda: len(lines_of(ws.lobby)) == 2)
    with qtbot.waitSignal(client.connection_lost, timeout=5000):
        for peer in list(server.peers):  # alice's connection drops; bob stays
            if peer.user is not None and peer.user.name == "alice":
                peer.socket.abort()
    bob.send(EditMessage(first.id, "version two"))
    bob.send(DeleteMessage(doomed.id))
    bob.say("while you were away", cid="b3")
    bob.wait_event(Message, cid="b3")
    qtbot.waitSignal(client.logged_in, timeout=5000).wait()
    qtbot.waitUntil(lambda: len(lines_of(ws.lobby)) == 3, timeout=5000)
    qtbot.waitUntil(lambda: lines_of(ws.lobby)[0].text == "version two")
    assert [(ln.text, ln.deleted) for ln in lines_of(ws.lobby)] == [
        ("version two", False), ("", True), ("while you were away", False)]
