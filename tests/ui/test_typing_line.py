"""The typing line above the message input, the input telling the client, and the View menu's toggle."""

from __future__ import annotations

from PySide6.QtCore import Qt

from qtchat.client.settings import ClientSettings
from qtchat.protocol import Message, Ping, Pong, Typing, TypingChanged
from qtchat.ui.bidi import FSI, PDI
from qtchat.ui.main_window import MainWindow
from qtchat.ui.typing_line import TypingLine
from qtchat.ui.wording import typing_text
from tests.helpers import RawClient

ELLIPSIS = "\N{HORIZONTAL ELLIPSIS}"


def online(qtbot, w: MainWindow, port: int, user: str = "alice") -> None:
    with qtbot.waitSignal(w.client.logged_in, timeout=5000):
        w.client.connect_to("127.0.0.1", port, user)
    qtbot.waitUntil(lambda: w.conversation.users.rowCount() >= 1)


def line_of(w: MainWindow) -> TypingLine:
    line = w.findChild(TypingLine)
    assert line is not None
    return line


def test_the_words_for_one_two_and_more_typists():
    assert typing_text([]) == ""
    assert typing_text(["ana"]) == f"{FSI}ana{PDI} is typing{ELLIPSIS}"
    assert typing_text(["ana", "bo"]) == f"{FSI}ana{PDI} and {FSI}bo{PDI} are typing{ELLIPSIS}"
    assert typing_text(["ana", "bo", "cy"]) == f"3 people are typing{ELLIPSIS}"
    # a right-to-left name cannot reorder the sentence around it, an override is shown, not obeyed
    assert typing_text(["\u05d3\u05e0\u05d4\u202e"]) == f"{FSI}\u05d3\u05e0\u05d4\u21e4{PDI} is typing{ELLIPSIS}"


def test_the_line_says_who_is_typing_in_the_conversation_shown(server, window, qtbot):
    online(qtbot, window, server.port)
    line = line_of(window)
    assert line.text_shown == "" and line.textFormat() == Qt.TextFormat.PlainText and line.height() > 0
    typists = [RawClient(server.port, qtbot) for _ in range(3)]
    for client, name in zip(typists, ("ana", "<b>bo</b>", "cy"), strict=True):
        client.login(name)
    qtbot.waitUntil(lambda: window.conversation.users.rowCount() == 4)
    typists[0].send(Typing())
    qtbot.waitUntil(lambda: line.text_shown == f"{FSI}ana{PDI} is typing{ELLIPSIS}")
    typists[1].send(Typing())
    qtbot.waitUntil(lambda: line.text_shown == f"{FSI}ana{PDI} and {FSI}<b>bo</b>{PDI} are typing{ELLIPSIS}")
    assert "<b>bo</b>" in line.text()  # plain text: the markup is shown as typed
    typists[2].send(Typing())
    qtbot.waitUntil(lambda: line.text_shown == f"3 people are typing{ELLIPSIS}")
    typists[0].say("sent")  # a message ends its sender's typing
    qtbot.waitUntil(lambda: line.text_shown == f"{FSI}<b>bo</b>{PDI} and {FSI}cy{PDI} are typing{ELLIPSIS}")
    window.workspace.open_private("cy")  # another conversation: nobody types there
    assert line.text_shown == ""
    typists[2].send(Typing(to="alice"))
    qtbot.waitUntil(lambda: line.text_shown == f"{FSI}cy{PDI} is typing{ELLIPSIS}")
    window.workspace.activate(window.workspace.lobby)
    assert line.text_shown == f"{FSI}<b>bo</b>{PDI} and {FSI}cy{PDI} are typing{ELLIPSIS}"
    for client in typists:
        client.close()


def test_typing_in_the_input_tells_the_others(server, window, qtbot):
    online(qtbot, window, server.port)
    bo = RawClient(server.port, qtbot)
    bo.login("bo")
    qtbot.waitUntil(lambda: window.conversation.users.rowCount() == 2)
    window.input.setFocus()
    qtbot.keyClicks(window.input, "hel")
    assert bo.wait_event(TypingChanged, on=("alice",)).room == "lobby"
    for _ in range(3):
        qtbot.keyClick(window.input, Qt.Key.Key_Backspace)
    bo.wait_event(TypingChanged, off=("alice",))  # emptied: stopped
    qtbot.keyClicks(window.input, "hi bo")
    qtbot.keyClick(window.input, Qt.Key.Key_Return)
    bo.wait_event(Message, text="hi bo")
    bo.send(Ping("after"))
    bo.wait_event(Pong, token="after")
    qtbot.wait(200)
    news = [(e.on, e.off) for e in bo.of(TypingChanged)]
    assert news == [(("alice",), ()), ((), ("alice",)), (("alice",), ())]  # no stop after the message: it is one
    qtbot.keyClicks(window.input, "/join x")  # a command is not typing
    bo.send(Ping("command"))
    bo.wait_event(Pong, token="command")
    qtbot.wait(200)
    assert len(bo.of(TypingChanged)) == 3
    window.input.clear()
    window.workspace.open_private("bo")
    qtbot.keyClicks(window.input, "psst")
    assert bo.wait_event(TypingChanged, on=("alice",), room=None).off == ()
    window.workspace.activate(window.workspace.lobby)  # left with a draft: the typing there stops
    bo.wait_event(TypingChanged, off=("alice",), room=None)
    bo.close()


def test_the_view_menu_turns_telling_off_and_remembers_it(server, window, qtbot):
    online(qtbot, window, server.port)
    action = window.view_actions["send_typing"]
    assert action.isChecked() and window.client.send_typing
    action.trigger()
    assert not window.client.send_typing and not ClientSettings().send_typing
    bo = RawClient(server.port, qtbot)
    bo.login("bo")
    qtbot.waitUntil(lambda: window.conversation.users.rowCount() == 2)
    qtbot.keyClicks(window.input, "quietly")
    qtbot.keyClick(window.input, Qt.Key.Key_Return)
    bo.wait_event(Message, text="quietly")
    qtbot.wait(200)
    assert bo.of(TypingChanged) == []
    action.trigger()
    assert window.client.send_typing and ClientSettings().send_typing
    qtbot.keyClicks(window.input, "loudly")
    bo.wait_event(TypingChanged, on=("alice",))
    bo.close()
