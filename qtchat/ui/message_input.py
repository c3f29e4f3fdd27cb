"""The message input: Enter sends, Shift+Enter breaks the line, Up/Down recall, Tab completes names."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QMimeData, Qt, Signal
from PySide6.QtGui import QFontMetrics, QKeyEvent, QTextCursor
from PySide6.QtWidgets import QPlainTextEdit, QWidget


class MessageInput(QPlainTextEdit):
    """Signals:
    submitted(str): the user pressed Enter on non-empty text (the field is cleared).
    typed(bool): the user changed the text otherwise (typing, deleting, pasting): True while some is left.
    """

    submitted = Signal(str)
    edit_last = Signal()  # Shift+Up in an empty field: edit your last message (editing.py)
    cancelled = Signal()  # Escape
    typed = Signal(bool)
    MAX_LINES = 6

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTabChangesFocus(False)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.setPlaceholderText("Message\N{HORIZONTAL ELLIPSIS}")
        self.setToolTip("Enter sends, Shift+Enter starts a new line, Up/Down recall, Tab completes names, "
                        "Shift+Up edits your last message")
        self.setAccessibleName("Message")
        self.history: list[str] = []
        self.editing = False  # an edit of a sent message is in the field: Escape gives it up
        self.answering = False  # what is typed answers a message: Escape makes it a plain one
        self._history_pos = 0
        self._draft = ""
        self.complete_names: Callable[[str], list[str]] = lambda prefix: []
        self._completion: tuple[int, str, list[str], int] | None = None  # start, prefix, matches, index
        self._keying = False  # in keyPressEvent
        self.document().contentsChanged.connect(self._fit_height)
        self._fit_height()

    def _fit_height(self) -> None:
        fm = QFontMetrics(self.font())
        lines = max(1, min(self.MAX_LINES, int(self.document().size().height())))
        margins = self.contentsMargins()
        doc_margin = int(self.document().documentMargin() * 2)
        self.setFixedHeight(lines * fm.lineSpacing() + doc_margin + margins.top() + margins.bottom() + 4)

    def event(self, e: QEvent) -> bool:
        # Tab must reach keyPressEvent (completion), not move the focus
        if e.type() == QEvent.Type.KeyPress and isinstance(e, QKeyEvent) and e.key() == Qt.Key.Key_Tab:
            self.keyPressEvent(e)
            return True
        return super().event(e)

    def keyPressEvent(self, e: QKeyEvent) -> None:
        before = self.toPlainText()
        self._keying = True
        try:
            if self._key_press(e):
                return  # sent: the message itself says the typing is over
        finally:
            self._keying = False
        text = self.toPlainText()
        if text != before and not self.editing:  # (editing a sent message is not typing one)
            self.typed.emit(bool(text.strip()))

    def insertFromMimeData(self, source: QMimeData) -> None:
        super().insertFromMimeData(source)
        if not self._keying:  # pasted with the mouse, or dropped (Ctrl+V is told by keyPressEvent)
            self.typed.emit(bool(self.toPlainText().strip()))

    def _key_press(self, e: QKeyEvent) -> bool:
        """Act on a key; True when it sent the text."""
        key, mods = e.key(), e.modifiers()
        if key != Qt.Key.Key_Tab:
            self._completion = None
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not mods & Qt.KeyboardModifier.ShiftModifier:
            text = self.toPlainText()
            if text.strip():
                self.history.append(text)
                self._history_pos = len(self.history)
                self.clear()
                self.submitted.emit(text)
                return True
            return False
        if key == Qt.Key.Key_Tab and not mods & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier):
            self._complete()
            return False
        if key == Qt.Key.Key_Escape and (self.editing or self.answering):
            self.cancelled.emit()
            return False
        if key == Qt.Key.Key_Up and mods & Qt.KeyboardModifier.ShiftModifier and not self.toPlainText():
            self.edit_last.emit()
            return False
        cursor = self.textCursor()
        if key == Qt.Key.Key_Up and self.history and cursor.blockNumber() == 0 and not cursor.hasSelection():
            self._recall(-1)
            return False
        last_block = self.document().blockCount() - 1
        if key == Qt.Key.Key_Down and cursor.blockNumber() == last_block and self._history_pos < len(self.history):
            self._recall(+1)
            return False
        super().keyPressEvent(e)
        return False

    def _recall(self, step: int) -> None:
        if self._history_pos == len(self.history):
            self._draft = self.toPlainText()
        self._history_pos = max(0, min(len(self.history), self._history_pos + step))
        text = self.history[self._history_pos] if self._history_pos < len(self.history) else self._draft
        self.setPlainText(text)
        self.moveCursor(QTextCursor.MoveOperation.End)

    def _complete(self) -> None:
        cursor = self.textCursor()
        text = self.toPlainText()
        pos = cursor.position()
        if self._completion is None:
            start = pos
            while start > 0 and not text[start - 1].isspace():
                start -= 1
            prefix = text[start:pos]
            bare = prefix.lstrip("@")
            matches = self.complete_names(bare) if bare else []
            if not matches:
                return
            self._completion = (start, prefix, matches, 0)
        else:
            start, prefix, matches, index = self._completion
            self._completion = (start, prefix, matches, (index + 1) % len(matches))
        start, prefix, matches, index = self._completion
        at = "@" if prefix.startswith("@") else ""
        suffix = ": " if start == 0 and not at else " "
        replacement = f"{at}{matches[index]}{suffix}"
        cursor.setPosition(start)
        cursor.setPosition(pos, QTextCursor.MoveMode.KeepAnchor)
        cursor.insertText(replacement)
        self.setTextCursor(cursor)
