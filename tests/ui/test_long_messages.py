"""Long messages are drawn collapsed ("show more"), laid out in bounded time, and open whole in a viewer."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QGuiApplication

from qtchat.client import ChatLine
from qtchat.ui.message_delegate import COLLAPSED_LINES, EXCERPT_CHARS, PAD_Y
from qtchat.ui.text_viewer import TextViewer, shown_paragraphs

from .test_client_window import lines, online

MEGABYTE = "x" * (1 << 20)


def test_a_megabyte_from_the_server_is_collapsed_and_show_more_opens_it_whole(make_server, connect, window, qtbot):
    server = make_server(max_frame=2 << 20)  # a server that lets messages of a megabyte through
    bob = connect(server.port)
    bob.login("bob")
    online(qtbot, window, server.port)
    bob.say(MEGABYTE)
    bob.say("short one")
    qtbot.waitUntil(lambda: any(ln.text == "short one" for ln in lines(window)), timeout=10_000)
    view = window.view
    big = next(ln for ln in lines(window) if ln.sender == "bob" and ln.text == MEGABYTE)
    delegate = view.delegate
    width = view.viewport().width()
    layout = delegate._layout(big, delegate.text_width(width))
    assert len(layout.text()) <= EXCERPT_CHARS and layout.lineCount() <= COLLAPSED_LINES  # bounded
    assert delegate.height(big, width) <= (COLLAPSED_LINES + 1) * delegate.line_h + 2 * PAD_Y
    view.reveal(big)
    top = view._tops[big.row] - view.verticalScrollBar().value()
    h = view._heights[big.row]
    assert view.viewer is None
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(delegate.text_x + 5, top + h - 5))
    assert view.viewer is not None and view.viewer.isVisible()
    assert view.viewer.text == MEGABYTE and view.viewer.editor.isReadOnly()
    assert view.viewer.editor.document().blockCount() >= len(MEGABYTE) // 1000  # shown in paragraphs
    view.viewer.copy_all()
    assert QGuiApplication.clipboard().text() == MEGABYTE  # copied exactly as sent
    view.viewer.close()


def test_enter_opens_the_last_long_message_in_sight_and_short_ones_open_nothing(window, qtbot):
    log = window.conversation.log
    view = window.view
    short = log.append(ChatLine("msg", "just a line", 0, sender="bob"))
    log.flush()
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Return)
    assert view.viewer is None  # nothing to open
    top = view._tops[short.row] - view.verticalScrollBar().value()
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(view.delegate.text_x + 5, top + view._heights[short.row] - 3))
    assert view.viewer is None
    many = "\n".join(f"line {i}" for i in range(30))  # short, but of many lines
    log.append(ChatLine("msg", many, 0, sender="carol"))
    log.flush()
    qtbot.keyClick(view, Qt.Key.Key_Return)
    assert view.viewer is not None and view.viewer.text == many
    assert view.viewer.editor.toPlainText() == many


def test_the_viewer_shows_plain_text_in_bounded_paragraphs():
    assert shown_paragraphs("a\nb") == "a\nb"
    cut = shown_paragraphs("word " * 1000, chunk=100)
    assert all(len(p) <= 100 for p in cut.split("\n")) and cut.replace("\n", "") == "word " * 1000
    assert shown_paragraphs("y" * 250, chunk=100).split("\n") == ["y" * 100, "y" * 100, "y" * 50]


def test_the_viewer_never_takes_markup(qtbot):
    viewer = TextViewer("<b>bold</b> &amp;", "<i>bob</i>")
    qtbot.addWidget(viewer)
    assert viewer.editor.toPlainText() == "<b>bold</b> &amp;"
    assert "<i>bob</i>" in viewer.windowTitle()


def test_the_more_line_of_a_paused_catch_up_is_chosen_with_a_click_or_enter(window, qtbot):
    from qtchat.client.conversation import MORE_MISSED

    log = window.conversation.log
    view = window.view
    more = log.append(ChatLine("more", MORE_MISSED, 0))
    log.append(ChatLine("msg", "live", 0, sender="bob"))
    log.flush()
    view.setFocus()
    with qtbot.waitSignal(view.line_activated) as chosen:
        qtbot.keyClick(view, Qt.Key.Key_Return)
    assert chosen.args[0] is more
    top = view._tops[more.row] - view.verticalScrollBar().value()
    with qtbot.waitSignal(view.line_activated) as clicked:
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(view.delegate.text_x + 5, top + 3))
    assert clicked.args[0] is more
    assert not window.conversation.load_missed()  # offline, and no catch-up paused: nothing asked
    assert view.viewer is None
