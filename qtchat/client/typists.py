"""Who is typing where: per conversation the people typing, each forgotten TYPING_EXPIRES (6) seconds after
the last news of them, with one QTimer for the soonest (no threads).

Fed by the ChatClient's signals: ``typing_received`` (a start is news again, a stop ends it), a message (it
ends its sender's typing in its conversation), someone leaving a room (leaving the lobby, going offline,
also ends their typing to us), our leaving a room, and the connection going (the news would stop coming).
Conversations are named by their keys (conversation.conversation_key: "#room", "@person").
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, Qt, QTimer, Signal

from qtchat.protocol import DEFAULT_ROOM, TYPING_EXPIRES, Message, TypingChanged, name_key, target_key

from .link import ClientState
from .session import ChatClient


class Typists(QObject):
    """Signals:
    changed(key): who is typing in the conversation with this key changed (``names(key)`` says who now).
    """

    changed = Signal(str)

    def __init__(self, client: ChatClient, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.client = client
        self.expiry = TYPING_EXPIRES  # seconds after the last news of a typist (tests shorten it)
        self._typing: dict[str, dict[str, tuple[str, float]]] = {}  # conversation key -> name key -> (name, until)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._expire)
        client.typing_received.connect(self._on_news)
        client.message_received.connect(self._on_message)
        client.user_left.connect(self._on_user_left)
        client.room_left.connect(lambda room: self._clear(target_key(room)))
        client.state_changed.connect(self._on_state)

    def names(self, key: str) -> list[str]:
        """Who is typing in the conversation ``key``, in the order they started."""
        return [name for name, _ in self._typing.get(key, {}).values()]

    # ------------------------------------------------------------ the news

    def _on_news(self, event: TypingChanged) -> None:
        me = name_key(self.client.me)
        until = time.monotonic() + self.expiry
        changed: set[str] = set()
        for name, on in [*((n, True) for n in event.on), *((n, False) for n in event.off)]:
            who = name_key(name)
            if who == me:
                continue  # our own, as every member of the room gets it
            key = target_key(event.room) if event.room is not None else target_key(to=name)
            if on:
                typists = self._typing.setdefault(key, {})
                if who not in typists:
                    changed.add(key)
                typists[who] = (name, until)
            elif self._drop(key, who):
                changed.add(key)
        self._rearm()
        for key in changed:
            self.changed.emit(key)

    def _on_message(self, msg: Message) -> None:
        if name_key(msg.sender) == name_key(self.client.me):
            return
        key = target_key(msg.room) if msg.to is None else target_key(to=msg.sender)
        if self._drop(key, name_key(msg.sender)):
            self._rearm()
            self.changed.emit(key)

    def _on_user_left(self, room: str, name: str, reason: str) -> None:
        keys = [target_key(room)] + ([target_key(to=name)] if name_key(room) == name_key(DEFAULT_ROOM) else [])
        who = name_key(name)
        for key in [k for k in keys if self._drop(k, who)]:
            self._rearm()
            self.changed.emit(key)

    def _on_state(self, state: str) -> None:
        if state != ClientState.ONLINE.value:
            for key in list(self._typing):
                self._clear(key)

    # ------------------------------------------------------------ keeping it

    def _drop(self, key: str, who: str) -> bool:
        typists = self._typing.get(key)
        if typists is None or who not in typists:
            return False
        del typists[who]
        if not typists:
            del self._typing[key]
        return True

    def _clear(self, key: str) -> None:
        if self._typing.pop(key, None):
            self._rearm()
            self.changed.emit(key)

    def _expire(self) -> None:
        now = time.monotonic() + 0.001
        changed = []
        for key, typists in list(self._typing.items()):
            gone = [who for who, (_, until) in typists.items() if until <= now]
            if gone:
                changed.append(key)
                for who in gone:
                    self._drop(key, who)
        self._rearm()
        for key in changed:
            self.changed.emit(key)

    def _rearm(self) -> None:
        soonest = min((until for typists in self._typing.values() for _, until in typists.values()), default=None)
        if soonest is None:
            self._timer.stop()
        else:
            self._timer.start(max(0, int((soonest - time.monotonic()) * 1000) + 1))
