"""Away when idle: the client goes away after some minutes with no input, and comes back at the next (no widgets).

As Slack and HexChat's auto-away do: an away the idle timer set (``ChatClient.away_auto``) ends at the next key
press or mouse activity in the window; an away set by hand (``/away``, the Chat menu) stays until the user comes
back by hand (``/back``, the menu), whatever they type or click meanwhile: they may well read and answer while
"away at lunch". The widgets report input with ``activity()`` (ui/away.py watches the window for it).
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, QTimer

from .session import ChatClient

DEFAULT_MINUTES = 10.0


class AutoAway(QObject):
    """Away after ``minutes`` with no ``activity()`` (0: never), back at the next if the away was automatic."""

    def __init__(self, client: ChatClient, minutes: float = DEFAULT_MINUTES, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.client = client
        self.minutes = minutes
        self._last = time.monotonic()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._check)
        self.set_minutes(minutes)

    def set_minutes(self, minutes: float) -> None:
        """How long without input makes the user away (0: never)."""
        self.minutes = minutes
        self._timer.stop()
        if minutes > 0:
            self._timer.start(self._idle_ms())

    def activity(self) -> None:
        """The user pressed a key or used the mouse in the window: cheap, called for every such event."""
        self._last = time.monotonic()
        if self.client.away_auto:
            self.client.set_back()
        if self.minutes > 0 and not self._timer.isActive():
            self._timer.start(self._idle_ms())

    def _idle_ms(self) -> int:
        return max(1, int(self.minutes * 60_000))

    def _check(self) -> None:
        """The timer ran out: away if nothing happened since it started, else it waits for the rest."""
        if self.minutes <= 0:
            return
        left = self._last + self.minutes * 60 - time.monotonic()
        if left > 0:
            self._timer.start(max(1, int(left * 1000)))
        else:
            self.client.set_away(auto=True)
