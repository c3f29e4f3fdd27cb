"""The main window with several rooms and private conversations (offscreen, real server)."""

from __future__ import annotations

from PySide6.QtCore import Qt

from qtchat.client import ChatClient
from qtchat.client.settings import ClientSettings
from qtchat.protocol import JoinRoom, Message, RoomJoined, SendMessage
from qtchat.ui.main_window import MainWindow
from qtchat.ui.room_dialog import RoomDialog

from .test_client_window import online


def row_of(w: MainWindow, title: str) -> int:
    return [c.title for c in w.workspace.conversations].index(title)


def test_sidebar_switches_conversations_and_each_keeps_its_scroll_position(server, connect, window, qtbot):
    bob = connect()
    bob.login("bob")
    bob.send(JoinRoom("dev"))
    bob.wait_event(RoomJoined)
    online(qtbot, window, server.port)
    for i in range(200):
        bob.say(f"lobby line {i}")
    qtbot.waitUntil(lambda: window.workspace.lobby.log.rowCount() >= 200, timeout=5000)
    lobby_view = window.view
    qtbot.waitUntil(lambda: lobby_view.verticalScrollBar().maximum() > 500)
    lobby_view.verticalScrollBar().setValue(300)  # the reader scrolled up
    window.workspace.join("dev")
    dev = window.workspace.room("dev")
    assert dev is not None and window.conversation is dev and window.view is not lobby_view
    assert window.sidebar.currentIndex().row() == row_of(window, "#dev")
    qtbot.waitUntil(lambda: window.users_label.text() == "Users \N{EM DASH} 2")
    assert window.user_list.model().rowCount() == 2
    window.input.setPlainText("half-typed for dev")
    window.sidebar.setCurrentIndex(window.sidebar.model().index(row_of(window, "#lobby"), 0))
    assert window.conversation is window.workspace.lobby and window.view is lobby_view
    assert lobby_view.verticalScrollBar().value() == 300
    assert window.input.toPlainText() == ""
    bob.say("news in dev", room="dev")
    qtbot.waitUntil(lambda: dev.unread == 1)
    model = window.sidebar.model()
    assert model.data(model.index(row_of(window, "#dev"), 0)) == "#dev"
    window._step(1)  # Alt+Down
    assert window.conversation is dev and dev.unread == 0
    assert window.input.toPlainText() == "half-typed for dev"
    assert "#dev" in window.windowTitle()


def test_double_clicking_a_user_opens_a_private_conversation(server, connect, window, qtbot):
    bob = connect()
    bob.login("bob")
    online(qtbot, window, server.port)
    qtbot.waitUntil(lambda: window.user_list.model().rowCount() == 2)
    index = next(window.user_proxy.index(r, 0) for r in range(2) if window.user_proxy.index(r, 0).data() == "bob")
    window._message_user(index)
    private = window.workspace.private("bob")
    assert private is not None and window.conversation is private
    assert window.users_label.text() == "People"
    qtbot.keyClicks(window.input, "psst")
    qtbot.keyClick(window.input, Qt.Key.Key_Return)
    got = bob.wait_event(Message, text="psst")
    assert got.to == "bob" and got.sender == "alice"
    bob.send(SendMessage("back at you", cid="b1", to="alice"))
    qtbot.waitUntil(lambda: any(ln.text == "back at you" for ln in private.log.lines), timeout=3000)
    assert not any(ln.text in ("psst", "back at you") for ln in window.workspace.lobby.log.lines)


def test_rooms_are_joined_again_in_the_next_session(server, connect, qtbot):
    first = MainWindow(ChatClient(), ClientSettings())
    qtbot.addWidget(first)
    online(qtbot, first, server.port)
    first.workspace.join("dev")
    first.workspace.join("ops")
    ops = first.client.room("ops")
    assert ops is not None
    qtbot.waitUntil(lambda: ops.joined)
    conv = first.workspace.room("ops")
    assert conv is not None
    first.workspace.close(conv)
    qtbot.waitUntil(lambda: first.workspace.room("ops") is None)
    first._quitting = True
    with qtbot.waitSignal(first.client.closed, timeout=3000):
        first.client.quit()
    second = MainWindow(ChatClient(), ClientSettings())
    qtbot.addWidget(second)
    online(qtbot, second, server.port)
    qtbot.waitUntil(lambda: [c.title for c in second.workspace.conversations] == ["#lobby", "#dev"], timeout=3000)
    second._quitting = True
    second.client.quit()


def test_room_dialog_lists_rooms_and_joins_the_one_picked(server, connect, window, qtbot):
    bob = connect()
    bob.login("bob")
    bob.send(JoinRoom("<b>not bold</b>"))
    bob.wait_event(RoomJoined)
    online(qtbot, window, server.port)
    dialog = RoomDialog(window.client, window)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.rooms.count() == 1)
    item = dialog.rooms.item(0)
    assert item.text().startswith("#<b>not bold</b>")  # list items are plain text
    dialog.rooms.setCurrentItem(item)
    assert dialog.room_name == "<b>not bold</b>"
    dialog.accept()
    window.workspace.join(dialog.room_name)
    room = window.workspace.room("<b>not bold</b>")
    assert room is not None
    qtbot.waitUntil(lambda: room.users.rowCount() == 2)
    window.client.set_topic(room.name, "<i>topic</i>")
    qtbot.waitUntil(lambda: room.topic == "<i>topic</i>")
    assert window.topic_label.text() == "\u2068#<b>not bold</b>\u2069 \N{EM DASH} \u2068<i>topic</i>\u2069"  # isolated
    assert window.topic_label.textFormat() == Qt.TextFormat.PlainText
    tip = window.sidebar.model().data(window.sidebar.model().index(row_of(window, room.title), 0),
                                      Qt.ItemDataRole.ToolTipRole)
    assert "&lt;i&gt;topic&lt;/i&gt;" in tip and "<i>" not in tip  # shown literally, not as italics
