"""The whole of a long message, in a read-only plain-text viewer (the chat shows it collapsed).

QPlainTextEdit lays a paragraph out whole: one paragraph of a megabyte without a line break takes it
more than a minute. So the text is shown in paragraphs of at most ``CHUNK`` characters (a long one is cut
where it has a space near the cut, else anywhere); "Copy all" copies the message exactly as it was sent.
"""

from __future__ import annotations

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QPlainTextEdit, QVBoxLayout, QWidget

from .bidi import isolate, mark_overrides

CHUNK = 1000  # characters per shown paragraph at most


def shown_paragraphs(text: str, chunk: int = CHUNK) -> str:
    """The text with a line break put into every paragraph longer than ``chunk`` (for showing only)."""
    out: list[str] = []
    for para in text.replace("\u2028", "\n").replace("\u2029", "\n").split("\n"):
        rest = para
        while len(rest) > chunk:
            cut = rest.rfind(" ", chunk // 2, chunk) + 1 or chunk
            out.append(rest[:cut])
            rest = rest[cut:]
        out.append(rest)
    return "\n".join(out)


class TextViewer(QDialog):
    """One message, whole, plain text (never markup), read-only; Escape closes it."""

    def __init__(self, text: str, sender: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.text = text
        self.setWindowTitle(f"Message from {isolate(sender)}" if sender else "Message")
        self.resize(720, 520)
        self.editor = QPlainTextEdit(self)
        self.editor.setReadOnly(True)
        self.editor.setPlainText(mark_overrides(shown_paragraphs(text)))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.copy_button = buttons.addButton("Copy all", QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.clicked.connect(self.copy_all)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.editor)
        layout.addWidget(buttons)
        self.editor.setFocus()

    def copy_all(self) -> None:
        QGuiApplication.clipboard().setText(self.text)
