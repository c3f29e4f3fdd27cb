"""The About box of both programs (plain text; the version comes from the package metadata)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from qtchat import about_text


def show_about(parent: QWidget, program: str) -> None:
    box = QMessageBox(parent)
    box.setWindowTitle(f"About {program}")
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.setText(about_text(program))
    box.exec()
