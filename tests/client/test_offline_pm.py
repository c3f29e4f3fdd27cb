"""The client core and private messages kept for offline registered users: the recipient's conversation fills
at login (unread counts, no duplicates when sent again), the confirmation goes back, the sender is told."""

from __future__ import annotations

from qtchat.client import ChatClient, ClientState, Workspace
from qtchat.protocol import Message, SendMessage
from qtchat.server.accounts import hash_password
from tests.helpers import outcome

from .test_session import lines_of

PASSWORD = "correct horse battery"
HASH = hash_password(PASSWORD)


def texts(conv) -> list[str]:
    conv.log.flush()
    return [ln.text for ln in conv.log.lines]


def login_as(qtbot, client: ChatClient, port: int, user: str, password: str | None = None) -> None:
    client.password = password
    with qtbot.waitSignal(client.logged_in, timeout=5000):
        client.connect_to("127.0.0.1", port, user)
    qtbot.waitUntil(lambda: user in client.users)


def write_to_offline_bob(server, connect, count: int) -> list[Message]:
    alice = connect(server.port)
    alice.login("alice")
    for i in range(count):
        alice.send(SendMessage(f"while you were out {i}", cid=f"h{i}", to="bob"))
    alice.wait_for(lambda: len(alice.of(Message)) == count)
    acks = alice.of(Message)
    assert all(m.held for m in acks)
    alice.close()
    return acks


def test_held_messages_fill_the_private_conversation_once_with_unread_counts(make_server, connect, client, qtbot,
                                                                              tmp_path):
    first = make_server(data_dir=tmp_path)
    port = first.port
    outcome(qtbot, first.operator.register_account("bob", HASH))
    acks = write_to_offline_bob(first, connect, 3)
    ws = Workspace(client)
    mentions = []
    ws.mentioned.connect(lambda conv, line: mentions.append(line.text))
    # the server cannot delete what bob confirms (as with a full disk): the messages come again next time
    first.backend.store.db.execute("CREATE TEMP TRIGGER keep BEFORE DELETE ON mailbox BEGIN SELECT RAISE(ABORT, 'x'); END")
    with qtbot.waitSignal(client.message_received, timeout=5000):
        login_as(qtbot, client, port, "bob", PASSWORD)
    qtbot.waitUntil(lambda: (conv := ws.private("alice")) is not None and len(lines_of(conv)) == 3)
    private = ws.private("alice")
    assert private is not None and not private.is_room and ws.active is ws.lobby
    assert texts(private) == ["Sent to you while you were offline:"] + [m.text for m in acks]
    assert [ln.id for ln in lines_of(private)] == [m.id for m in acks]
    assert [ln.sender for ln in lines_of(private)] == ["alice"] * 3 and not any(ln.own for ln in lines_of(private))
    assert private.unread == 3 and private.mentions == 3
    assert mentions == ["while you were out 0"]  # one notification for the lot, not one each
    qtbot.wait(200)  # the client confirmed; the server failed to delete
    assert first.backend.store.mailbox_count("bob", 10) == 3
    with qtbot.waitSignal(client.connection_lost, timeout=5000):
        first.shutdown("restart")
    client.BACKOFF_BASE = 0.5
    second = make_server(data_dir=tmp_path, port=port)
    qtbot.waitUntil(lambda: client.state is ClientState.ONLINE, timeout=10000)
    qtbot.waitUntil(lambda: second.backend.store.mailbox_count("bob", 10) == 0, timeout=5000)  # sent again, confirmed
    assert len(lines_of(private)) == 3 and private.unread == 3  # and not shown twice
    assert texts(private).count("Sent to you while you were offline:") == 1
    ws.activate(private)
    assert private.unread == 0 and private.mentions == 0
    assert ws.total_unread == 0


def test_the_sender_is_told_the_recipient_gets_it_at_next_login(server, connect, client, qtbot):
    outcome(qtbot, server.operator.register_account("bob", HASH))
    ws = Workspace(client)
    login_as(qtbot, client, server.port, "alice")
    failures = []
    client.message_failed.connect(lambda cid, code, text: failures.append(code))
    first = ws.submit("/msg Bob see you tomorrow")
    second = ws.submit("/msg bob and bring the slides")
    assert first is not None and second is not None
    qtbot.waitUntil(lambda: not first.pending and not second.pending)
    private = ws.private("bob")
    assert private is not None
    assert not first.failed and not second.failed and not failures
    notice = "bob is offline; they will get your message when they next log in."
    assert texts(private) == ["see you tomorrow", "and bring the slides", notice]  # said once for the two
    assert private.unread == 0 and ws.lobby.unread == 0
    # an unregistered name is still refused, with the reason
    ws.submit("/msg nobody hello?")
    nobody = ws.private("nobody")
    assert nobody is not None
    qtbot.waitUntil(lambda: any(t.startswith("Not sent:") for t in texts(nobody)))
    shown = texts(nobody)
    assert failures == ["user_offline"] and "registered" in shown[-1] and notice not in shown
    # bob comes online: the next message goes straight to him, and nothing is said about later
    bob = connect()
    bob.login("bob", password=PASSWORD)
    bob.wait_for(lambda: len([m for m in bob.of(Message) if m.held]) == 2)
    qtbot.waitUntil(lambda: "bob is online" in texts(private))
    third = ws.submit("/msg bob you are back")
    assert third is not None
    qtbot.waitUntil(lambda: not third.pending)
    got = bob.wait_event(Message, text="you are back")
    assert not got.held and texts(private).count(notice) == 1
