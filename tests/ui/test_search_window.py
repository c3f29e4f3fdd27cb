"""Searching from the main window: the results panel, and opening a room at a result (offscreen, real server)."""

from __future__ import annotations

from PySide6.QtCore import Qt

from qtchat.protocol import Message
from qtchat.ui.search_panel import snippet

from .test_client_window import online


def test_snippet_starts_near_the_first_match_and_keeps_the_spans_on_it():
    text = "x" * 100 + " word here"
    shown, spans = snippet(text, [(101, 105)])
    assert shown.startswith("\N{HORIZONTAL ELLIPSIS}") and shown[spans[0][0]:spans[0][1]] == "word"
    assert snippet("two\nlines", []) == ("two lines", [])


def test_searching_and_opening_a_result_far_back(server, connect, window, qtbot):
    bob = connect()
    bob.login("bob")
    for i in range(300):
        bob.say(f"line {i}" + (" <b>needle</b>" if i == 20 else ""))
    bob.wait_for(lambda: len(bob.of(Message)) == 300, timeout=20)
    online(qtbot, window, server.port)
    lobby = window.workspace.lobby
    qtbot.waitUntil(lambda: lobby.log.rowCount() >= 50)

    qtbot.keyClicks(window.search_field, "needle")
    qtbot.keyClick(window.search_field, Qt.Key.Key_Return)
    panel = window.search_panel
    assert window.side_stack.currentWidget() is panel
    qtbot.waitUntil(lambda: panel.list.model().rowCount() == 1)
    assert panel.status.text() == "1 message found"
    assert not panel.more_button.isVisible()

    index = panel.list.model().index(0, 0)
    panel.list.setCurrentIndex(index)
    qtbot.keyClick(panel.list, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: lobby.context is not None, timeout=5000)
    view = window.view
    assert view.model is lobby.context and not view.follow
    assert window.context_bar.isVisible()
    line = next(ln for ln in lobby.context.lines if ln.highlight)
    assert line.text == "line 20 <b>needle</b>"
    row_top = view._tops[line.row] - view.verticalScrollBar().value()
    assert 0 <= row_top < view.viewport().height()  # in sight
    window.grab()  # paints the highlighted line and the result list without complaint

    # a live message does not pull the reader away
    bob.say("live news")
    qtbot.waitUntil(lambda: lobby.unread == 1)
    assert view.model is lobby.context

    window.context_button.click()
    assert view.model is lobby.log and view.at_bottom and view.follow
    assert not window.context_bar.isVisible()

    qtbot.keyClick(window.search_field, Qt.Key.Key_Escape)
    assert window.side_stack.currentWidget() is window.users_page
    assert window.search_field.text() == "" and window.workspace.search.results == []


def test_search_in_this_room_only(server, connect, window, qtbot):
    bob = connect()
    bob.login("bob")
    bob.say("apple in the lobby")
    bob.wait_for(lambda: len(bob.of(Message)) == 1)
    online(qtbot, window, server.port)
    window.workspace.join("dev")
    qtbot.waitUntil(lambda: window.client.room("dev") is not None and window.client.room("dev").joined)
    window.search("apple")
    qtbot.waitUntil(lambda: window.search_panel.list.model().rowCount() == 1)
    assert window.search_panel.scope.itemText(1) == "#dev"
    window.search_panel.scope.setCurrentIndex(1)  # searches again, in #dev only
    qtbot.waitUntil(lambda: window.search_panel.status.text() == "Nothing found in #dev.")
    assert window.search_panel.list.model().rowCount() == 0
