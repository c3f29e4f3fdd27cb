"""One conversation as the user sees it: a room, or private messages with one person (no widgets).

A ``Conversation`` holds its MessageLog (chat lines, notices, errors), its
UserListModel, its topic and its unread counts. The Workspace feeds it what
the ChatClient reports and decides which conversation a message belongs to.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, QTimer, Signal

from qtchat.protocol import DEFAULT_ROOM, History, Message, name_key

from .models import ChatLine, MessageLog, UserListModel
from .session import ChatClient

ROOM = "room"
PRIVATE = "private"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def conversation_key(kind: str, name: str) -> str:
    """Rooms and people live in different name spaces: "#key" for a room, "@key" for a person."""
    return ("#" if kind == ROOM else "@") + name_key(name)


class Conversation(QObject):
    """Signals:
    changed(): the title, topic, unread count or mention count changed.
    """

    changed = Signal()

    def __init__(self, client: ChatClient, kind: str, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.client = client
        self.kind = kind
        self.name = name  # the room's name, or the other person's
        self.key = conversation_key(kind, name)
        self.log = MessageLog(self)
        self.users = UserListModel(self)
        self.topic = ""
        self.unread = 0  # others' messages since the user last looked
        self.mentions = 0  # of those, the ones naming the user (and every private one)
        self.has_older = False
        self._loading_older = False
        self.read_marker: int | None = None  # the server's read marker when the room was joined
        self.read_sent = 0  # the newest id we told the server we read
        self.held_received = 0  # messages kept for us while offline shown here since the last login
        self.told_held = False  # said that the other person is offline and gets our messages later
        self._pending_presence: dict[str, list[str]] = {}
        self._presence_timer = QTimer(self)
        self._presence_timer.setSingleShot(True)
        self._presence_timer.setInterval(1500)
        self._presence_timer.timeout.connect(self._flush_presence)

    @property
    def is_room(self) -> bool:
        return self.kind == ROOM

    @property
    def is_lobby(self) -> bool:
        return self.kind == ROOM and self.key == conversation_key(ROOM, DEFAULT_ROOM)

    @property
    def title(self) -> str:
        return f"#{self.name}" if self.is_room else self.name

    # ------------------------------------------------------------ what the user does

    def send(self, text: str) -> ChatLine | None:
        """Send a message here; it shows at once as pending. Returns None (and logs why) if refused."""
        try:
            if self.is_room:
                cid = self.client.send_text(text, room=self.name)
            else:
                cid = self.client.send_text(text, to=self.name)
        except ValueError as exc:
            self.error(f"Not sent: {exc}")
            return None
        sender = self.client.me or self.client.user
        return self.log.append(ChatLine("msg", text, now_ms(), sender=sender, own=True, pending=True, cid=cid))

    def notice(self, text: str) -> None:
        self.log.append(ChatLine("notice", text, now_ms()))

    def error(self, text: str) -> None:
        self.log.append(ChatLine("error", text, now_ms()))

    def load_older(self) -> bool:
        """Ask for the page before the oldest message shown; False when there is none to ask for."""
        if not self.has_older or self._loading_older or not self.is_room:
            return False
        oldest = next((ln.id for ln in self.log.lines if ln.id is not None), None)
        if oldest is None:
            return False
        self._loading_older = self.client.request_older(oldest, room=self.name)
        return self._loading_older

    def mark_read(self) -> None:
        if self.unread or self.mentions:
            self.unread = self.mentions = 0
            self.changed.emit()

    def set_topic(self, topic: str) -> None:
        self.topic = topic
        self.changed.emit()

    def rename(self, name: str) -> None:
        """The server spells the name its own way (the first to create a room chose it)."""
        if name != self.name:
            self.name = name
            self.changed.emit()

    # ------------------------------------------------------------ what the server says

    def connection_reset(self) -> None:
        """A new connection: a request lost with the old one is not coming back."""
        self._loading_older = False
        self.held_received = 0

    def add_history(self, page: History) -> None:
        self._loading_older = False
        self.has_older = page.more
        me = self.client.me
        lines = [
            ChatLine("msg", m.text, m.ts, sender=m.sender, own=m.sender == me, id=m.id, cid=m.cid,
                     mention=m.sender != me and self.client.is_mention(m.text))
            for m in page.messages
        ]
        marker = self.read_marker
        if marker is not None and lines and lines[0].id is not None and lines[-1].id is not None \
                and lines[0].id <= marker < lines[-1].id:
            # the "new since you left" line, where the reader stopped last time (on any machine)
            at = next(i for i, ln in enumerate(lines) if ln.id is not None and ln.id > marker)
            lines.insert(at, ChatLine("marker", "New since you last read", lines[at].ts))
            self.read_marker = None
        self.log.prepend(lines)

    def newest_id(self) -> int:
        return next((ln.id for ln in reversed(self.log.lines) if ln.id is not None), 0)

    def add_message(self, msg: Message) -> ChatLine | None:
        """Show a message (or mark ours as acknowledged). Returns the line when it is someone else's news."""
        own = msg.sender == self.client.me
        if own and not self.is_room:
            self._tell_held(msg.held)
        if own and msg.cid is not None:
            line = self.log.by_cid(msg.cid)
            if line is not None:
                line.pending = False
                line.id, line.ts = msg.id, msg.ts
                self.log.changed(line)
                return None
        if msg.held and not own:
            if not self.held_received:
                self.notice("Sent to you while you were offline:")
            self.held_received += 1
        # a private message to you ranks like a mention
        mention = not own and (not self.is_room or self.client.is_mention(msg.text))
        line = self.log.append(
            ChatLine("msg", msg.text, msg.ts, sender=msg.sender, own=own, mention=mention, id=msg.id, cid=msg.cid)
        )
        return None if own else line

    def _tell_held(self, held: bool) -> None:
        """Our private message was kept for the other person, who is offline: say so, once in a row."""
        if held and not self.told_held:
            self.notice(f"{self.name} is offline; they will get your message when they next log in.")
        self.told_held = held

    def count_unread(self, line: ChatLine) -> None:
        self.unread += 1
        self.mentions += line.mention
        self.changed.emit()

    def failed(self, cid: str, text: str) -> bool:
        line = self.log.by_cid(cid)
        if line is None:
            return False
        line.pending, line.failed = False, True
        self.log.changed(line)
        self.error(f"Not sent: {text}")
        return True

    def user_joined(self, name: str) -> None:
        self.users.add(name)
        if name != self.client.me:
            self._presence("joined", name)

    def user_left(self, name: str, reason: str) -> None:
        self.users.remove(name)
        if reason.startswith("quit: "):
            reason = reason[6:]  # their own words
        elif reason in ("quit", "part"):
            reason = ""
        self._presence("left", f"{name} ({reason})" if reason else name)

    def _presence(self, kind: str, who: str) -> None:
        """Joins and leaves within a second or two become one line, so a crowd does not bury the chat."""
        self._pending_presence.setdefault(kind, []).append(who)
        if not self._presence_timer.isActive():
            self._presence_timer.start()

    def _flush_presence(self) -> None:
        for kind in ("joined", "left"):
            names = self._pending_presence.pop(kind, [])
            if len(names) == 1:
                self.notice(f"{names[0]} {kind}")
            elif names:
                shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
                self.notice(f"{len(names)} people {kind}: {shown}")
