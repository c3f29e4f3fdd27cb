"""One Conversation on its own, fed by a real ChatClient (offline, or logged in to the real test server)."""

from __future__ import annotations

from qtchat.client import Conversation
from qtchat.client.conversation import PRIVATE, ROOM, conversation_key
from qtchat.protocol import History, Message

from .test_session import login


def shown(conv: Conversation) -> list[tuple[str, str]]:
    conv.log.flush()
    return [(ln.kind, ln.text) for ln in conv.log.lines]


def message(mid: int, sender: str, text: str, **kw) -> Message:
    return Message(id=mid, ts=1_700_000_000_000 + mid, sender=sender, text=text, **kw)


def test_keys_titles_and_the_lobby(client, qtbot):
    lobby = Conversation(client, ROOM, "Lobby")
    dev = Conversation(client, ROOM, "Dev")
    bob = Conversation(client, PRIVATE, "Bob")
    assert lobby.is_lobby and not dev.is_lobby and not bob.is_room
    assert (dev.title, bob.title) == ("#Dev", "Bob")
    assert conversation_key(ROOM, "dev") == dev.key != conversation_key(PRIVATE, "dev")
    with qtbot.waitSignal(dev.changed, timeout=1000):
        dev.rename("DEV")
    with qtbot.assert_not_emitted(dev.changed):
        dev.rename("DEV")  # the same spelling: nothing changed
    assert dev.title == "#DEV"


def test_a_message_sent_offline_shows_pending_and_waits_in_the_outbox(client, qtbot):
    conv = Conversation(client, PRIVATE, "bob")
    line = conv.send("hello later")
    assert line is not None and line.pending and line.own and line.cid is not None
    assert [e.to for e in client.pending] == ["bob"] and client.pending[0].cid == line.cid


def test_text_the_server_would_refuse_is_not_sent_and_says_why(client, qtbot):
    conv = Conversation(client, ROOM, "lobby")
    with qtbot.assert_not_emitted(client.pending_changed):
        assert conv.send("   ") is None
        assert conv.send("x" * 70_000) is None
    assert not client.pending
    kinds = shown(conv)
    assert [k for k, _ in kinds] == ["error", "error"]
    assert kinds[0][1].startswith("Not sent:") and "too long" in kinds[1][1]


def test_others_messages_count_and_mentions_rank_higher(server, client, qtbot):
    login(qtbot, client, server.port, "alice")
    room = Conversation(client, ROOM, "lobby")
    plain = room.add_message(message(1, "bob", "hello all"))
    named = room.add_message(message(2, "bob", "Alice, look"))
    assert plain is not None and not plain.mention
    assert named is not None and named.mention
    with qtbot.waitSignal(room.changed, timeout=1000):
        room.count_unread(named)
    assert (room.unread, room.mentions) == (1, 1)
    room.mark_read()
    assert (room.unread, room.mentions) == (0, 0)
    with qtbot.assert_not_emitted(room.changed):
        room.mark_read()  # nothing unread: nothing to tell
    private = Conversation(client, PRIVATE, "bob")
    line = private.add_message(message(3, "bob", "psst", to="alice"))
    assert line is not None and line.mention  # a private message ranks like a mention


def test_our_acknowledged_message_updates_its_pending_line(server, client, qtbot):
    login(qtbot, client, server.port, "alice")
    conv = Conversation(client, ROOM, "lobby")
    line = conv.send("mine")
    assert line is not None
    assert conv.add_message(message(9, "alice", "mine", cid=line.cid)) is None  # not news
    assert not line.pending and line.id == 9
    assert [t for _, t in shown(conv)] == ["mine"]  # updated, not shown twice


def test_a_refused_message_is_marked_failed_and_an_unknown_cid_changes_nothing(client, qtbot):
    conv = Conversation(client, ROOM, "lobby")
    line = conv.send("too fast")
    assert line is not None and line.cid is not None
    with qtbot.assert_not_emitted(conv.log.rowsInserted):
        assert not conv.failed("no-such-cid", "whatever")
    assert conv.failed(line.cid, "Slow down.")
    assert line.failed and not line.pending
    assert shown(conv)[-1] == ("error", "Not sent: Slow down.")


def test_history_pages_go_on_top_with_the_read_marker_where_the_reader_stopped(server, client, qtbot):
    login(qtbot, client, server.port, "alice")
    conv = Conversation(client, ROOM, "lobby")
    conv.read_marker = 2
    conv.add_message(message(10, "bob", "live"))
    conv.add_history(History(tuple(message(i, "bob", f"old {i}") for i in range(1, 5)), "lobby", more=True))
    assert shown(conv) == [("msg", "old 1"), ("msg", "old 2"), ("marker", "New since you last read"),
                           ("msg", "old 3"), ("msg", "old 4"), ("msg", "live")]
    assert conv.has_older and conv.read_marker is None  # placed once
    conv.add_history(History((message(3, "bob", "old 3"), message(0, "bob", "older")), "lobby"))
    assert [t for _, t in shown(conv)][:2] == ["older", "old 1"]  # what is shown already is not repeated
    assert not conv.has_older


def test_held_messages_get_one_heading_per_login(client, qtbot):
    conv = Conversation(client, PRIVATE, "bob")
    for i in (1, 2):
        conv.add_message(message(i, "bob", f"while away {i}", to="alice", held=True))
    assert shown(conv) == [("notice", "Sent to you while you were offline:"), ("msg", "while away 1"),
                           ("msg", "while away 2")]
    assert conv.held_received == 2
    conv.connection_reset()
    assert conv.held_received == 0


def test_joins_and_leaves_close_together_become_one_line(client, qtbot):
    conv = Conversation(client, ROOM, "lobby")
    conv.user_joined("bob")
    conv.user_joined("carol")
    conv.user_left("dave", "quit: see you")
    conv.user_left("erin", "part")
    assert conv.users.names == ["bob", "carol"]
    qtbot.waitUntil(lambda: len(shown(conv)) == 2, timeout=3000)
    assert shown(conv) == [("notice", "2 people joined: bob, carol"), ("notice", "2 people left: dave (see you), erin")]


def test_presence_hidden_in_rooms_still_updates_the_user_list(client, qtbot):
    conv = Conversation(client, ROOM, "lobby")
    conv.show_presence = False
    conv.user_joined("bob")
    qtbot.wait(1700)  # longer than the presence timer
    assert conv.users.names == ["bob"] and shown(conv) == []


def test_jumping_to_a_message_offline_says_it_cannot(client, qtbot):
    conv = Conversation(client, ROOM, "lobby")
    with qtbot.assert_not_emitted(conv.focus_requested):
        assert not conv.jump_to(42)
    assert shown(conv) == [("error", "Cannot show that message now: not connected.")]
    assert conv.context is None


def test_a_loaded_message_is_focused_at_once_and_a_stale_context_page_is_ignored(server, client, qtbot):
    login(qtbot, client, server.port, "alice")
    conv = Conversation(client, ROOM, "lobby")
    conv.add_message(message(5, "bob", "here"))
    conv.log.flush()
    with qtbot.waitSignal(conv.focus_requested, timeout=1000) as focus:
        assert conv.jump_to(5)
    assert focus.args[0].id == 5 and focus.args[0].highlight
    with qtbot.assert_not_emitted(conv.view_changed), qtbot.assert_not_emitted(conv.focus_requested):
        conv.add_context(History((message(1, "bob", "old"),), "lobby", around=1))  # nobody asked for it
    assert conv.context is None and conv.shown is conv.log


def test_a_private_message_kept_for_an_offline_person_is_said_once_in_a_row(server, client, qtbot):
    login(qtbot, client, server.port, "alice")
    conv = Conversation(client, PRIVATE, "bob")
    for i in (1, 2):
        conv.add_message(message(i, "alice", f"for later {i}", to="bob", held=True))
    notices = [t for k, t in shown(conv) if k == "notice"]
    assert notices == ["bob is offline; they will get your message when they next log in."]
    conv.add_message(message(3, "alice", "now online", to="bob"))
    conv.add_message(message(4, "alice", "gone again", to="bob", held=True))
    assert len([t for k, t in shown(conv) if k == "notice"]) == 2
