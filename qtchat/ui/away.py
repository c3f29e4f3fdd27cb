"""Away in the window: the Chat menu's away action, the idle watch on the window's input, the private header.

``AwayControl`` owns the client's ``AutoAway`` (client/away.py): it watches the window's own input (the key
presses, clicks, wheel turns and mouse moves its QWindow receives, before any widget: nothing of other windows
or applications) and reports them as activity; after ``ClientSettings.auto_away_minutes`` without any, the user
is away, until the next. The menu action sets an away by hand (with an optional message) or comes back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QAction, QWindow
from PySide6.QtWidgets import QInputDialog, QLineEdit, QMenu, QWidget

from qtchat.client import ChatClient, Conversation
from qtchat.client.away import AutoAway
from qtchat.client.settings import ClientSettings
from qtchat.protocol import MAX_AWAY_MESSAGE

from .bidi import isolate

if TYPE_CHECKING:
    from collections.abc import Callable

INPUT_EVENTS = frozenset({
    QEvent.Type.KeyPress, QEvent.Type.MouseButtonPress, QEvent.Type.MouseMove, QEvent.Type.Wheel,
    QEvent.Type.TouchBegin, QEvent.Type.TabletPress,
})


def header_text(conv: Conversation) -> str:
    """The line above a conversation: its title, and a room's topic or, in a private one, "away: <message>"."""
    title = isolate(conv.title)  # a topic's (or a name's) direction stays inside it
    if not conv.is_room and conv.away is not None:
        return f"{title} \N{EM DASH} away: {isolate(conv.away)}" if conv.away else f"{title} \N{EM DASH} away"
    return f"{title} \N{EM DASH} {isolate(conv.topic)}" if conv.topic else title


class AwayControl(QObject):
    """The away action of ``menu`` and the idle watch of ``window``'s input."""

    def __init__(self, window: QWidget, client: ChatClient, settings: ClientSettings, menu: QMenu) -> None:
        super().__init__(window)
        self.window = window
        self.client = client
        self.auto = AutoAway(client, settings.auto_away_minutes, self)
        self.action = QAction("Set &away\N{HORIZONTAL ELLIPSIS}", window)
        self.action.triggered.connect(lambda: self.toggle())  # noqa: PLW0108 (not with the bool triggered sends)
        menu.addAction(self.action)
        client.my_away_changed.connect(lambda away, message: self._show(away))
        self._watched: QWindow | None = None
        window.installEventFilter(self)  # to watch its QWindow once it has one (when shown)
        self.ask: Callable[[], str | None] = self._ask

    def toggle(self) -> None:
        """Back when away; else away by hand, with the message asked for (cancelled: not away)."""
        if self.client.away is not None:
            self.client.set_back()
            return
        message = self.ask()
        if message is not None:
            self.client.set_away(message[:MAX_AWAY_MESSAGE])

    def _ask(self) -> str | None:
        text, ok = QInputDialog.getText(self.window, "Away", f"A message for the others (optional, at most "
                                        f"{MAX_AWAY_MESSAGE} characters):", QLineEdit.EchoMode.Normal)
        return text if ok else None

    def _show(self, away: bool) -> None:
        self.action.setText("I am &back" if away else "Set &away\N{HORIZONTAL ELLIPSIS}")

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in INPUT_EVENTS and watched is self._watched:
            self.auto.activity()
        elif watched is self.window and kind == QEvent.Type.Show and self._watched is None:
            handle = self.window.windowHandle()
            if handle is not None:
                self._watched = handle
                handle.installEventFilter(self)
        return False
