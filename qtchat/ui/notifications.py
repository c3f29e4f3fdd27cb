"""Telling the user about a mention while the window is in the background: the window's alert, and a
desktop notification from the tray icon where the desktop has one."""

from __future__ import annotations

import html

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QSystemTrayIcon, QWidget

from qtchat.client import ChatLine, Conversation

from .bidi import isolate


def notification(conv: Conversation, line: ChatLine) -> tuple[str, str]:
    """The title and body of a mention's desktop notification: names and text isolated, and escaped
    (notification daemons read a little HTML in these strings)."""
    who = isolate(line.sender)
    title = f"{who} (private)" if not conv.is_room else f"{who} in {isolate(conv.title)}"
    return html.escape(title), html.escape(isolate(line.text[:200]))


class Notifier:
    """The tray icon (when the desktop has a tray and the window an icon) and the mention alerts."""

    def __init__(self, window: QWidget, icon: QIcon | None) -> None:
        self.window = window
        self.tray: QSystemTrayIcon | None = None
        if QSystemTrayIcon.isSystemTrayAvailable() and icon is not None:
            self.tray = QSystemTrayIcon(icon, window)
            self.tray.setToolTip("qtchat")
            self.tray.activated.connect(self._raise)
            self.tray.show()

    def mentioned(self, conv: Conversation, line: ChatLine) -> None:
        if self.window.isActiveWindow():
            return  # the sidebar's badge shows it
        QApplication.alert(self.window)
        if self.tray is not None and QSystemTrayIcon.supportsMessages():
            title, body = notification(conv, line)
            self.tray.showMessage(title, body, QSystemTrayIcon.MessageIcon.Information, 8000)

    def hide(self) -> None:
        if self.tray is not None:
            self.tray.hide()

    def _raise(self) -> None:
        w = self.window
        w.showNormal()
        w.raise_()
        w.activateWindow()
