"""Away in the window: the user list dims an away user with "(away)" and their message as tooltip, the private
header says "away: <message>", the Chat menu's action sets and clears it, and input in the window ends an away
the idle timer set."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QPalette
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from qtchat.protocol import SetAway, SetBack, UserAway, UserBack
from qtchat.ui.bidi import isolate
from qtchat.ui.main_window import MainWindow

from .test_client_window import online


def row_of(w: MainWindow, name: str) -> int:
    proxy = w.user_proxy
    for row in range(proxy.rowCount()):
        if w.user_panel.user_at(proxy.index(row, 0)) == name:
            return row
    raise AssertionError(f"{name} is not listed")


def shown(w: MainWindow, name: str, role: Qt.ItemDataRole = Qt.ItemDataRole.DisplayRole) -> object:
    proxy = w.user_proxy
    return proxy.data(proxy.index(row_of(w, name), 0), role)


def test_an_away_user_is_dimmed_marked_and_their_message_in_the_tooltip(server, connect, window, qtbot):
    bob = connect()
    bob.login("bob")
    online(qtbot, window, server.port)
    qtbot.waitUntil(lambda: window.user_proxy.rowCount() == 2)
    normal = shown(window, "bob", Qt.ItemDataRole.ForegroundRole)
    message = "back at <b>3</b> \u202eok"
    bob.send(SetAway(message))
    qtbot.waitUntil(lambda: shown(window, "bob") == f"{isolate('bob')} (away)", timeout=3000)
    dimmed = QApplication.palette().brush(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
    assert shown(window, "bob", Qt.ItemDataRole.ForegroundRole) == dimmed != normal
    tip = str(shown(window, "bob", Qt.ItemDataRole.ToolTipRole))
    assert "&lt;b&gt;3&lt;/b&gt;" in tip and "<b>" not in tip  # plain text, escaped
    assert isolate(message).replace("<", "&lt;").replace(">", "&gt;") in tip
    assert shown(window, "alice") == "alice"  # the others as they were
    window.workspace.open_private("bob")
    qtbot.waitUntil(lambda: "away:" in window.topic_label._full)
    assert window.topic_label._full == f"{isolate('bob')} \N{EM DASH} away: {isolate(message)}"
    bob.send(SetBack())
    qtbot.waitUntil(lambda: window.topic_label._full == isolate("bob"), timeout=3000)
    window.workspace.activate(window.workspace.lobby)
    assert shown(window, "bob") == "bob"


def test_the_chat_menu_sets_away_and_back(server, connect, window, qtbot):
    watcher = connect()
    watcher.login("watcher")
    online(qtbot, window, server.port)
    action = window.away.action
    assert action.text() == "Set &away\N{HORIZONTAL ELLIPSIS}"
    assert action in window.menuBar().actions()[0].menu().actions()
    window.away.ask = lambda: None  # the dialog cancelled: not away
    with qtbot.assert_not_emitted(window.client.my_away_changed):
        action.trigger()
    window.away.ask = lambda: "on a call"
    action.trigger()
    assert watcher.wait_event(UserAway, user="alice").message == "on a call"
    assert action.text() == "I am &back"
    qtbot.waitUntil(lambda: shown(window, "alice") == f"{isolate('alice')} (away)")  # our own entry too
    action.trigger()
    watcher.wait_event(UserBack, user="alice")
    assert action.text() == "Set &away\N{HORIZONTAL ELLIPSIS}"


def test_input_in_the_window_ends_an_automatic_away(server, connect, window, qtbot):
    watcher = connect()
    watcher.login("watcher")
    online(qtbot, window, server.port)
    window.activateWindow()
    window.away.auto.set_minutes(0.3 / 60)  # 0.3 s idle
    watcher.wait_event(UserAway, user="alice", timeout=5)
    assert window.client.away_auto
    handle = window.windowHandle()
    QTest.keyClick(handle, Qt.Key.Key_A)  # as the platform delivers it: to the window first
    watcher.wait_event(UserBack, user="alice")
    assert window.client.away is None
    window.away.auto.set_minutes(0.3 / 60)
    watcher.wait_for(lambda: len(watcher.of(UserAway)) == 2, timeout=5)
    QTest.mouseMove(handle, QPoint(200, 200))
    QTest.mouseClick(handle, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(210, 200))
    watcher.wait_for(lambda: len(watcher.of(UserBack)) == 2)
    window.away.auto.set_minutes(0)
