"""Telling the user about a mention while the window is in the background: the window's alert, and a
desktop notification from the tray icon where the desktop has one."""

from __future__ import annotations

import html

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QSystemTrayIcon, QWidget

from qtchat.client import ChatLine, Conversation


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
            title = f"{line.sender} (private)" if not conv.is_room else f"{line.sender} in {conv.title}"
            # notification daemons read a little HTML in these strings: escape it
            self.tray.showMessage(html.escape(title), html.escape(line.text[:200]),
                                  QSystemTrayIcon.MessageIcon.Information, 8000)

    def hide(self) -> None:
        if self.tray is not None:
            self.tray.hide()

    def _raise(self) -> None:
        w = self.window
        w.showNormal()
        w.raise_()
        w.activateWindow()
