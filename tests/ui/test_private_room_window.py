"""A private room as the window shows it: a padlock in the sidebar, "@" before its operators' names."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from qtchat.protocol import JoinRoom, RoomState
from qtchat.ui.main_window import MainWindow
from tests.helpers import RawClient

from .test_client_window import online


def sidebar_row(w: MainWindow, name: str) -> QImage:
    """The sidebar's row of a conversation, as painted."""
    model = w.workspace.model
    row = next(i for i, conv in enumerate(model.items) if conv.name == name)
    rect = w.sidebar.visualRect(model.index(row))
    return w.sidebar.viewport().grab(rect).toImage()


def shown_users(w: MainWindow) -> list[str]:
    proxy = w.user_proxy
    return sorted(str(proxy.index(i, 0).data(Qt.ItemDataRole.DisplayRole)) for i in range(proxy.rowCount()))


def enter(qtbot, w: MainWindow, text: str) -> None:
    w.input.setPlainText(text)
    qtbot.keyClick(w.input, Qt.Key.Key_Return)


def test_a_private_room_shows_a_padlock_and_its_operators(server, connect, window, qtbot):
    online(qtbot, window, server.port)
    enter(qtbot, window, "/join #design")
    qtbot.waitUntil(lambda: window.conversation.name == "design" and window.conversation.modes is not None)
    bob: RawClient = connect()
    bob.login("bob")
    bob.send(JoinRoom("design"))
    qtbot.waitUntil(lambda: window.conversation.users.rowCount() == 2)
    open_row = sidebar_row(window, "design")
    # the creator is the room's operator: "@" before the name (isolated), nobody else marked
    assert [u.replace("\u2068", "").replace("\u2069", "") for u in shown_users(window)] == ["@alice", "bob"]
    assert not window.conversation.invite_only

    enter(qtbot, window, "/private")
    bob.wait_event(RoomState, room="design", invite_only=True)
    qtbot.waitUntil(lambda: window.conversation.invite_only)
    qtbot.waitUntil(lambda: sidebar_row(window, "design") != open_row)  # repainted with the padlock
    assert sidebar_row(window, "design").size() == open_row.size()

    enter(qtbot, window, "/op bob")
    qtbot.waitUntil(lambda: "@bob" in [u.replace("\u2068", "").replace("\u2069", "") for u in shown_users(window)])
    # a name as typed by its owner is never given the sign: the model's own data stays the bare name
    names = window.conversation.users
    assert sorted(str(names.index(i, 0).data(Qt.ItemDataRole.DisplayRole)) for i in range(names.rowCount())) \
        == ["alice", "bob"]

    enter(qtbot, window, "/public")
    qtbot.waitUntil(lambda: not window.conversation.invite_only)
    qtbot.waitUntil(lambda: sidebar_row(window, "design") == open_row)  # the padlock is gone again
