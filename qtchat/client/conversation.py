"""The conversation as the user sees it, built from a ChatClient's signals (no widgets).

``Conversation`` turns protocol events into a MessageLog (chat lines, system
notices, errors) and a UserListModel, matches acknowledgements to pending
lines, and ranks what arrives: a mention of you is ``mentioned``, ordinary
traffic is only ``activity``.
"""

from __future__ import annotations

import re
import time

from PySide6.QtCore import QObject, QTimer, Signal

from qtchat.protocol import History, Message, Welcome

from .models import ChatLine, MessageLog, UserListModel
from .session import ChatClient


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Conversation(QObject):
    """Signals:
    mentioned(ChatLine): someone else's message names you.
    activity(): someone else's message that does not.
    """

    mentioned = Signal(object)
    activity = Signal()

    def __init__(self, client: ChatClient, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.client = client
        self.log = MessageLog(self)
        self.users = UserListModel(self)
        self._mention: re.Pattern[str] | None = None
        self._logins = 0
        c = client
        c.logged_in.connect(self._on_logged_in)
        c.login_failed.connect(self._on_login_failed)
        c.connection_lost.connect(
            lambda reason: self.error(f"Connection lost: {reason} Reconnecting\N{HORIZONTAL ELLIPSIS}"))
        c.message_received.connect(self._on_message)
        c.message_failed.connect(self._on_failed)
        c.users_reset.connect(self.users.reset)
        c.user_joined.connect(self._on_joined)
        c.user_left.connect(self._on_left)
        c.server_error.connect(lambda code, text: self.error(text))
        c.notice_received.connect(lambda text: self.error(f"Notice from the server: {text}"))
        c.history_received.connect(self._on_history)
        self.has_older = False
        self._loading_older = False
        self._pending_presence: dict[str, list[str]] = {}
        self._presence_timer = QTimer(self)
        self._presence_timer.setSingleShot(True)
        self._presence_timer.setInterval(1500)
        self._presence_timer.timeout.connect(self._flush_presence)

    # ------------------------------------------------------------ what the user does

    def send(self, text: str) -> ChatLine | None:
        """Send a message; it shows at once as pending. Returns None (and logs why) if refused.

        ``/msg NAME text`` sends a private message to NAME.
        """
        to = None
        if text.startswith("/msg "):
            parts = text[5:].lstrip().split(" ", 1)
            if len(parts) < 2 or not parts[1].strip():
                self.error("Usage: /msg NAME message")
                return None
            to, text = parts[0], parts[1]
        try:
            cid = self.client.send_text(text, to=to)
        except ValueError as exc:
            self.error(f"Not sent: {exc}")
            return None
        sender = self.client.me or self.client.user
        return self.log.append(ChatLine("msg", text, _now_ms(), sender=sender, own=True, pending=True, cid=cid,
                                        private=to))

    def notice(self, text: str) -> None:
        self.log.append(ChatLine("notice", text, _now_ms()))

    def error(self, text: str) -> None:
        self.log.append(ChatLine("error", text, _now_ms()))

    def load_older(self) -> bool:
        """Ask for the page before the oldest message shown; False when there is none to ask for."""
        if not self.has_older or self._loading_older:
            return False
        oldest = next((ln.id for ln in self.log.lines if ln.id is not None), None)
        if oldest is None:
            return False
        self._loading_older = self.client.request_older(oldest)
        return self._loading_older

    def _on_history(self, page: History) -> None:
        self._loading_older = False
        self.has_older = page.more
        me = self.client.me
        self.log.prepend([
            ChatLine("msg", m.text, m.ts, sender=m.sender, own=m.sender == me, id=m.id, cid=m.cid)
            for m in page.messages
        ])

    def is_mention(self, text: str) -> bool:
        return self._mention is not None and self._mention.search(text) is not None

    # ------------------------------------------------------------ what the server says

    def _on_login_failed(self, code: str, text: str) -> None:
        if self._logins:  # a refused first login is the connect dialog's to show
            self.error(text)

    def _on_logged_in(self, welcome: Welcome) -> None:
        self._loading_older = False  # a request lost with the old connection is not coming back
        self._logins += 1
        self.users.me = welcome.user
        self._mention = re.compile(rf"(?<!\w){re.escape(welcome.user)}(?!\w)", re.IGNORECASE)
        c = self.client
        if self._logins == 1:
            where = f"{welcome.name} ({c.host}:{c.port})" if welcome.name else f"{c.host}:{c.port}"
            self.notice(f"Connected to {where} as {welcome.user}.")
            if welcome.motd:
                self.notice(welcome.motd)
        else:
            self.notice("Reconnected.")
        if c.pending:
            self.notice(f"Sending {len(c.pending)} queued message(s).")

    def _on_message(self, msg: Message) -> None:
        if msg.sender == self.client.me and msg.cid is not None:
            line = self.log.by_cid(msg.cid)
            if line is not None:
                line.pending = False
                line.id, line.ts = msg.id, msg.ts
                if msg.to is not None:
                    line.private = msg.to  # the recipient's name as the server spells it
                self.log.changed(line)
                return
        own = msg.sender == self.client.me
        private = (msg.to if own else msg.sender) if msg.to is not None else None
        # a private message to you ranks like a mention
        mention = not own and (private is not None or self.is_mention(msg.text))
        line = self.log.append(
            ChatLine("msg", msg.text, msg.ts, sender=msg.sender, own=own, mention=mention, id=msg.id, cid=msg.cid,
                     private=private)
        )
        if mention:
            self.mentioned.emit(line)
        elif not own:
            self.activity.emit()

    def _on_failed(self, cid: str, code: str, text: str) -> None:
        line = self.log.by_cid(cid)
        if line is not None:
            line.pending, line.failed = False, True
            self.log.changed(line)
        self.error(f"Not sent: {text}")

    def _on_joined(self, name: str) -> None:
        self.users.add(name)
        if name != self.client.me:
            self._presence("joined", name)

    def _on_left(self, name: str, reason: str) -> None:
        self.users.remove(name)
        if reason.startswith("quit: "):
            reason = reason[6:]  # their own words
        elif reason == "quit":
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
