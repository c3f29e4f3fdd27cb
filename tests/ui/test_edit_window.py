"""Editing and deleting in the real window against a real server (offscreen): Shift+Up, Enter and Escape
in the message field, the delete confirmation, what a changed message looks like, and what is offered."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QMessageBox

from qtchat.protocol import REACTIONS, Message, MessageDeleted, MessageEdited, React, Reactions, SendMessage
from qtchat.ui.message_delegate import DELETED, EDITED

from .test_client_window import lines, online


def own_line(window, text):
    return next(ln for ln in lines(window) if ln.kind == "msg" and ln.text == text)


def test_shift_up_edits_the_last_message_enter_saves_and_escape_gives_up(server, connect, window, qtbot):
    bob = connect()
    bob.login("bob")
    online(qtbot, window, server.port)
    box = window.input
    for text in ("first", "secnd"):
        qtbot.keyClicks(box, text)
        qtbot.keyClick(box, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: all(not ln.pending for ln in lines(window) if ln.kind == "msg") and
                    len([ln for ln in lines(window) if ln.kind == "msg"]) == 2)
    bob.wait_for(lambda: len(bob.of(Message)) == 2)

    qtbot.keyClick(box, Qt.Key.Key_Up, Qt.KeyboardModifier.ShiftModifier)  # the last one, in the field
    assert box.toPlainText() == "secnd" and window.editing.banner.isVisible()
    qtbot.keyClick(box, Qt.Key.Key_Escape)  # given up: nothing sent
    assert box.toPlainText() == "" and not window.editing.banner.isVisible()
    qtbot.wait(200)
    assert not bob.of(MessageEdited)

    qtbot.keyClick(box, Qt.Key.Key_Up, Qt.KeyboardModifier.ShiftModifier)
    box.clear()
    qtbot.keyClicks(box, "second")
    qtbot.keyClick(box, Qt.Key.Key_Return)
    edited = bob.wait_event(MessageEdited, text="second")
    qtbot.waitUntil(lambda: any(ln.text == "second" and ln.edited for ln in lines(window)))
    assert edited.id == own_line(window, "second").id
    assert not window.editing.banner.isVisible() and box.toPlainText() == ""
    assert len(bob.of(Message)) == 2  # an edit, not a new message
    line = own_line(window, "second")
    layout = window.view.delegate._layout(line, window.view.delegate.text_width(window.view.width()))
    assert layout.text() == "second" + EDITED


def test_a_deletion_asks_first_and_leaves_a_placeholder(server, connect, window, qtbot):
    bob = connect()
    bob.login("bob")
    online(qtbot, window, server.port)
    bob.say("bob's words", cid="b1")
    qtbot.keyClicks(window.input, "regrettable")
    qtbot.keyClick(window.input, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: any(ln.text == "regrettable" and ln.id for ln in lines(window)))
    qtbot.waitUntil(lambda: any(ln.text == "bob's words" for ln in lines(window)))
    conv, mine, theirs = window.conversation, own_line(window, "regrettable"), own_line(window, "bob's words")
    assert window.view.may_edit(mine) and window.view.may_delete(mine)
    assert not window.view.may_edit(theirs) and not window.view.may_delete(theirs)  # not ours, no operator

    def answer(button):
        def press() -> None:
            box = window.editing.confirm
            if box is None or not box.isVisible():
                QTimer.singleShot(20, press)
                return
            assert box.textFormat() == Qt.TextFormat.PlainText
            box.button(button).click()
        QTimer.singleShot(20, press)

    answer(QMessageBox.StandardButton.Cancel)
    window.editing.delete(conv, mine)
    qtbot.wait(200)
    assert not bob.of(MessageDeleted)
    window.editing.confirm = None
    answer(QMessageBox.StandardButton.Yes)
    window.editing.delete(conv, mine)
    bob.wait_event(MessageDeleted, id=mine.id)
    qtbot.waitUntil(lambda: mine.deleted)
    layout = window.view.delegate._layout(mine, window.view.delegate.text_width(window.view.width()))
    assert layout.text() == DELETED
    assert not window.view.may_edit(mine) and not window.view.may_delete(mine)


def test_a_reply_quotes_its_parent_and_its_quote_opens_it(server, connect, window, qtbot):
    bob = connect()
    bob.login("bob")
    online(qtbot, window, server.port)
    bob.say("<b>Lunch</b> at noon?", cid="b1")
    parent = bob.wait_event(Message, cid="b1")
    qtbot.waitUntil(lambda: any(ln.id == parent.id for ln in lines(window)))
    line = own_line(window, "<b>Lunch</b> at noon?")
    window.view.reply_requested.emit(line)  # (the context menu's "Reply")
    banner = window.editing.banner
    assert banner.isVisible() and banner.textFormat() == Qt.TextFormat.PlainText and "<b>Lunch</b>" in banner.text()
    qtbot.keyClicks(window.input, "yes!")
    qtbot.keyClick(window.input, Qt.Key.Key_Return)
    reply = bob.wait_event(Message, sender="alice")
    assert (reply.text, reply.reply_to, reply.reply_from) == ("yes!", parent.id, "bob")
    assert not banner.isVisible()
    qtbot.waitUntil(lambda: any(ln.text == "yes!" and ln.id for ln in lines(window)))
    shown = own_line(window, "yes!")
    assert (shown.reply_to, shown.reply_from, shown.reply_text) == (parent.id, "bob", "<b>Lunch</b> at noon?")
    delegate = window.view.delegate
    assert delegate.height(shown, window.view.width()) >= delegate.height(line, window.view.width()) + \
        delegate.line_h  # the quote's own line
    with qtbot.waitSignal(window.conversation.focus_requested, timeout=3000) as focused:
        window.view.quote_activated.emit(shown)
    assert focused.args[0] is line

    window.view.reply_requested.emit(line)  # Escape: what is typed goes as a plain message
    qtbot.keyClicks(window.input, "plain")
    qtbot.keyClick(window.input, Qt.Key.Key_Escape)
    assert not banner.isVisible() and window.input.toPlainText() == "plain"
    qtbot.keyClick(window.input, Qt.Key.Key_Return)
    plain = bob.wait_event(Message, text="plain")
    assert plain.reply_to == 0


def test_a_quote_opens_a_parent_that_is_not_loaded_with_the_messages_around_it(server, connect, window, qtbot):
    bob = connect()
    bob.login("bob")
    bob.say("the original question", cid="q")
    parent = bob.wait_event(Message, cid="q")
    for n in range(400):  # pages of 50 load as the view nears its top: the parent stays far beyond them
        bob.say(f"chatter {n}", cid=f"c{n}")
    bob.wait_event(Message, cid="c399")
    online(qtbot, window, server.port)
    qtbot.waitUntil(lambda: any(ln.text == "chatter 399" for ln in lines(window)))
    assert not any(ln.id == parent.id for ln in lines(window))  # only the newest page is loaded
    bob.send(SendMessage("answering it, much later", cid="r", reply_to=parent.id))
    qtbot.waitUntil(lambda: any(ln.text == "answering it, much later" for ln in lines(window)))
    reply = own_line(window, "answering it, much later")
    assert (reply.reply_from, reply.reply_text) == ("bob", "the original question")
    with qtbot.waitSignal(window.conversation.focus_requested, timeout=5000) as focused:
        window.view.quote_activated.emit(reply)
    assert focused.args[0].id == parent.id and focused.args[0].text == "the original question"
    assert window.conversation.shown.holds(focused.args[0])  # loaded with the messages around it, and shown


def test_reactions_show_as_chips_and_a_click_toggles_ours(server, connect, window, qtbot):
    bob = connect()
    bob.login("bob")
    online(qtbot, window, server.port)
    bob.say("release is out", cid="b1")
    msg = bob.wait_event(Message, cid="b1")
    qtbot.waitUntil(lambda: any(ln.id == msg.id for ln in lines(window)))
    line = own_line(window, "release is out")
    plain = window.view.delegate.height(line, window.view.width())
    bob.send(React(msg.id, REACTIONS[3]))
    qtbot.waitUntil(lambda: line.reactions == {REACTIONS[3]: 1})
    assert line.mine == () and window.view.delegate.height(line, window.view.width()) > plain
    with qtbot.assert_not_emitted(window.workspace.mentioned):
        window.view.react_requested.emit(line, REACTIONS[3])  # (a click on the chip)
        qtbot.waitUntil(lambda: line.reactions == {REACTIONS[3]: 2} and line.mine == (REACTIONS[3],))
    assert bob.wait_event(Reactions, reactions={REACTIONS[3]: 2}).id == msg.id
    window.view.react_requested.emit(line, REACTIONS[3])  # again: taken back
    qtbot.waitUntil(lambda: line.reactions == {REACTIONS[3]: 1} and line.mine == ())
    top = window.view._tops[line.row] - window.view.verticalScrollBar().value()
    chip = window.view.delegate._chips(line, top, window.view.delegate.height(line, window.view.width()))[0][0]
    assert window.view.delegate.reaction_at(line, top, window.view.width(), chip.center()) == REACTIONS[3]
