"""The line above the message input saying who is typing in the conversation, and the input's typing told.

``TypingLine`` shows the active conversation's typists (``Workspace.typists``) in the words of
``wording.typing_text`` ("ana is typing…", "ana and bo are typing…", "3 people are typing…"), plain text with
the names isolated; it keeps its height while nobody types, so the conversation above does not jump. It
also tells the ChatClient when the user types in the message input (``MessageInput.typed``), and, when the
user turns to another conversation, that the typing in the one left has stopped (a command typed, such as
``/join``, is not typing).
"""

from __future__ import annotations

from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QVBoxLayout, QWidget

from qtchat.client import Conversation, Workspace

from .elided_label import ElidedLabel
from .message_input import MessageInput
from .wording import typing_text


class TypingLine(ElidedLabel):
    def __init__(self, workspace: Workspace, message_input: MessageInput, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.workspace = workspace
        self.text_shown = ""  # what the line says, before eliding
        self.setContentsMargins(6, 0, 6, 0)
        self.setAccessibleName("Who is typing")
        font = self.font()
        font.setItalic(True)
        self.setFont(font)
        self.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.setFixedHeight(self.fontMetrics().height())
        self._conversation = workspace.active
        workspace.typists.changed.connect(self._on_changed)
        workspace.activated.connect(self._on_activated)
        self._input = message_input
        message_input.typed.connect(self._on_typed)
        self.refresh()

    def refresh(self) -> None:
        self.text_shown = typing_text(self.workspace.typists.names(self.workspace.active.key))
        self.set_full_text(self.text_shown)

    def _on_typed(self, on: bool) -> None:
        text = self._input.toPlainText()
        command = text.startswith("/") and not text.startswith("//")  # a command is not a message being typed
        tell_typing(self.workspace, self.workspace.active, on and not command)

    def _on_changed(self, key: str) -> None:
        if key == self.workspace.active.key:
            self.refresh()

    def _on_activated(self, conv: Conversation) -> None:
        left, self._conversation = self._conversation, conv
        if left is not conv:
            tell_typing(self.workspace, left, False)  # (a stop is sent only after a start there)
        self.refresh()


def tell_typing(workspace: Workspace, conv: Conversation, on: bool) -> None:
    """The user typed in the conversation (``on``), or stopped: the client tells the server (when it should)."""
    if conv.is_room:
        workspace.client.set_typing(on, room=conv.name)
    else:
        workspace.client.set_typing(on, to=conv.name)


def with_typing_line(workspace: Workspace, message_input: MessageInput) -> QWidget:
    """The message input with the typing line above it, as one widget for the window's layout."""
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(0)
    layout.addWidget(TypingLine(workspace, message_input, box))
    layout.addWidget(message_input)
    return box
