"""Editing, deleting and answering messages, in the window.

"Edit message...", "Delete message..." and "Reply" in a message's context menu (the view asks ``may_edit`` /
``may_delete``), and Shift+Up in an empty message field to edit your last message: its text goes into the
field, a line above it says so, Enter saves and Escape gives up. A deletion asks first. A reply: the line
above the field quotes the message answered, Enter sends, Escape makes it a plain message again; clicking
a reply's quote in the view opens the message it answers (the search jump: loaded around it if need be).
What the server then says (edited, deleted, or why not) comes back through the client core
(Conversation.change_message, the workspace's "Not changed: ..." line).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QLabel, QMessageBox

from qtchat.client import Conversation
from qtchat.client.models import ChatLine
from qtchat.protocol.message_events import reply_quote

from .bidi import isolate

if TYPE_CHECKING:
    from .chat_view import ChatView
    from .main_window import MainWindow

EDITING = "Editing your message \N{MIDDLE DOT} Enter saves \N{MIDDLE DOT} Esc cancels"
REPLYING = "Replying to {who}: {text} \N{MIDDLE DOT} Esc cancels"


class MessageEditing(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.banner = QLabel(EDITING)  # the main window puts it above the message field
        self.banner.setTextFormat(Qt.TextFormat.PlainText)  # it quotes what others wrote: never markup
        self.banner.setAccessibleName("Editing or answering a message")
        self.banner.hide()
        self.target: tuple[Conversation, ChatLine] | None = None  # the message being edited...
        self.answering: tuple[Conversation, ChatLine] | None = None  # ...or answered
        self.confirm: QMessageBox | None = None
        window.input.edit_last.connect(self.edit_last)
        window.input.cancelled.connect(self.cancel)

    def attach(self, conv: Conversation, view: ChatView) -> None:
        view.may_edit = lambda line: self.may_edit(conv, line)
        view.may_delete = lambda line: self.may_delete(conv, line)
        view.may_answer = lambda line: conv.is_room and self.knows_edits()
        view.edit_requested.connect(lambda line: self.start(conv, line))
        view.delete_requested.connect(lambda line: self.delete(conv, line))
        view.reply_requested.connect(lambda line: self.reply(conv, line))
        view.quote_activated.connect(lambda line: line.reply_to and conv.jump_to(line.reply_to))
        view.react_requested.connect(lambda line, emoji: self.react(conv, line, emoji))

    # ------------------------------------------------------------ what is allowed

    def _window_s(self) -> float:
        welcome = self.window.client.welcome
        return float(welcome.limits.get("edit_window", 0.0)) if welcome is not None else 0.0

    def may_edit(self, conv: Conversation, line: ChatLine) -> bool:
        """Ours, stored, not deleted, in a room, and still within the server's edit window."""
        return (conv.is_room and line.kind == "msg" and line.own and line.id is not None and not line.deleted
                and time.time() * 1000 - line.ts < self._window_s() * 1000)

    def knows_edits(self) -> bool:
        """Does the server take edits, deletions, replies and reactions (it announces ``edit_window``)?"""
        welcome = self.window.client.welcome
        return welcome is not None and "edit_window" in welcome.limits

    def may_delete(self, conv: Conversation, line: ChatLine) -> bool:
        """Ours, or anyone's in a room we are an operator of (or on a server we are an operator of)."""
        client = self.window.client
        if not conv.is_room or line.kind != "msg" or line.id is None or line.deleted or not self.knows_edits():
            return False
        return line.own or client.operator or client.is_room_operator(conv.name, client.me or "")

    # ------------------------------------------------------------ doing it

    def edit_last(self) -> None:
        conv = self.window.workspace.active
        line = next((ln for ln in reversed(conv.shown.lines) if self.may_edit(conv, ln)), None)
        if line is None:
            conv.notice("No message of yours here can be edited any more.")
            return
        self.start(conv, line)

    def start(self, conv: Conversation, line: ChatLine) -> None:
        field = self.window.input
        self._end()
        self.target = (conv, line)
        self.banner.setText(EDITING)
        field.editing = True
        field.setPlainText(line.text)
        field.moveCursor(QTextCursor.MoveOperation.End)
        self.banner.show()
        field.setFocus()

    def reply(self, conv: Conversation, line: ChatLine) -> None:
        """Answer ``line``: what is typed next goes as a reply to it (Escape: a plain message again)."""
        self._end()
        self.answering = (conv, line)
        self.window.input.answering = True  # (Escape ends it)
        self.banner.setText(REPLYING.format(who=isolate(line.sender), text=isolate(reply_quote(line.text))))
        self.banner.show()
        self.window.input.setFocus()

    def submit(self, text: str) -> bool:
        """The field was submitted: True if it held an edit (sent, or given up when unchanged) or a reply."""
        if self.answering is not None:
            conv, parent = self.answering
            self._end()
            if text.startswith("/"):
                return False  # a command (or "//..."), as typed: not a reply
            conv.send(text, reply_to=parent)
            return True
        if self.target is None:
            return False
        conv, line = self.target
        self._end()
        if text != line.text and line.id is not None:
            try:
                self.window.client.edit_message(line.id, text, conv.name)
            except ValueError as exc:
                conv.error(f"Not changed: {exc}")
        return True

    def cancel(self) -> None:
        if self.target is not None:
            self._end()
            self.window.input.clear()
        elif self.answering is not None:
            self._end()  # what was typed stays, as a plain message

    def left(self) -> None:
        """Another conversation is shown: an edit of this one's message, or a reply in it, is given up."""
        busy = self.target or self.answering
        if busy is not None and busy[0] is not self.window.workspace.active:
            self.cancel()

    def _end(self) -> None:
        self.target = self.answering = None
        self.window.input.editing = self.window.input.answering = False
        self.banner.hide()

    def react(self, conv: Conversation, line: ChatLine, emoji: str) -> None:
        """Give our reaction ``emoji`` to the message, or take it back if it is ours already."""
        if not conv.is_room or line.id is None or line.deleted:
            return
        try:
            self.window.client.react(line.id, emoji, emoji not in line.mine, conv.name)
        except ValueError as exc:
            conv.error(f"No reaction: {exc}")

    def delete(self, conv: Conversation, line: ChatLine) -> None:
        whose = "your message" if line.own else f"this message of {isolate(line.sender)}"
        box = QMessageBox(QMessageBox.Icon.Question, "Delete message",
                          f"Delete {whose} for everyone in {isolate(conv.title)}?",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self.window)
        box.setTextFormat(Qt.TextFormat.PlainText)  # names are never markup
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        self.confirm = box  # (tests answer it)
        if box.exec() != QMessageBox.StandardButton.Yes or line.id is None:
            return
        try:
            self.window.client.delete_message(line.id, conv.name)
        except ValueError as exc:
            conv.error(f"Not deleted: {exc}")
