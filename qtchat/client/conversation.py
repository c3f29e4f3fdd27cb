"""One conversation as the user sees it: a room, or private messages with one person (no widgets).

A ``Conversation`` holds its MessageLog (chat lines, notices, errors), its
UserListModel, its topic and its unread counts. The Workspace feeds it what
the ChatClient reports and decides which conversation a message belongs to.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, QTimer, Signal

from qtchat.protocol import DEFAULT_ROOM, History, Message, RoomState, name_key
from qtchat.protocol.message_events import reply_quote

from .models import ChatLine, MessageLog, UserListModel
from .session import ChatClient

ROOM = "room"
PRIVATE = "private"
CONTEXT_PAGE = 60  # messages around a search result (and per page scrolling away from it)
MORE_MISSED = "More messages were sent while you were away \N{EM DASH} load the next ones"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def conversation_key(kind: str, name: str) -> str:
    """Rooms and people live in different name spaces: "#key" for a room, "@key" for a person."""
    return ("#" if kind == ROOM else "@") + name_key(name)


class Conversation(QObject):
    """Signals:
    changed(): the title, topic, unread count or mention count changed.
    view_changed(bool): ``shown`` is another log now: the live conversation or the messages around
        a search result; True when the reader's place should be kept (the two joined up), False to go
        to the newest message.
    focus_requested(ChatLine): bring this line of ``shown`` into view (a search result, highlighted).
    """

    changed = Signal()
    view_changed = Signal(bool)
    focus_requested = Signal(object)

    def __init__(self, client: ChatClient, kind: str, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.client = client
        self.kind = kind
        self.name = name  # the room's name, or the other person's
        self.key = conversation_key(kind, name)
        self.log = MessageLog(self)
        self.log.trimmed.connect(self._on_trimmed)
        self.users = UserListModel(self)
        self.topic = ""
        self.modes: RoomState | None = None  # a room's creator, operators and modes
        self.unread = 0  # others' messages since the user last looked
        self.mentions = 0  # of those, the ones naming the user (and every private one)
        self.has_older = False
        self._loading_older = False
        self.more_line: ChatLine | None = None  # where a paused catch-up left messages out (kind "more")
        self.read_marker: int | None = None  # the server's read marker when the room was joined
        self.read_sent = 0  # the newest id we told the server we read
        # older messages around a search result, shown instead of the live log until the reader
        # goes back to the newest ones or scrolls down until the two join up
        self.context: MessageLog | None = None  # _context_log while it is shown
        self._context_log = MessageLog(self)
        self._context_log.trimmed.connect(self._on_context_trimmed)
        self.context_older = False  # more before the context's first message
        self.context_newer = False  # more between the context's last message and the live ones
        self._context_loading: set[str] = set()  # "before" / "after": a page is on its way
        self._jump_target: int | None = None  # the message whose context was asked for
        self._highlighted: ChatLine | None = None
        self.show_presence = True  # notices of people joining and leaving the room (the Workspace sets it)
        self.held_received = 0  # messages kept for us while offline shown here since the last login
        self.told_held = False  # said that the other person is offline and gets our messages later
        self.away: str | None = None  # a private conversation's other person is away, with this message
        self._pending_presence: dict[str, list[str]] = {}
        self._answered: set[int] = set()  # ids replies shown here answer (their quotes follow those messages)
        self._presence_timer = QTimer(self)
        self._presence_timer.setSingleShot(True)
        self._presence_timer.setInterval(1500)
        self._presence_timer.timeout.connect(self._flush_presence)

    def set_away(self, message: str | None) -> None:
        """The other person of a private conversation is away (with this message, maybe empty), or here (None)."""
        self.users.set_away(self.name, message)
        if message != self.away:
            self.away = message
            self.changed.emit()

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

    def send(self, text: str, reply_to: ChatLine | None = None) -> ChatLine | None:
        """Send a message here (``reply_to``: answering that message); it shows at once as pending. Returns
        None (and logs why) if refused."""
        if self.context is not None:
            self.leave_context()  # what you write goes under the newest messages: show them
        try:
            parent = reply_to.id if reply_to is not None else None
            if self.is_room:
                cid = self.client.send_text(text, room=self.name, reply_to=parent)
            else:
                cid = self.client.send_text(text, to=self.name, reply_to=parent)
        except ValueError as exc:
            self.error(f"Not sent: {exc}")
            return None
        sender = self.client.me or self.client.user
        line = ChatLine("msg", text, now_ms(), sender=sender, own=True, pending=True, cid=cid)
        if reply_to is not None and reply_to.id is not None:
            line.reply_to, line.reply_from = reply_to.id, reply_to.sender
            line.reply_text = reply_quote(reply_to.text) if not reply_to.deleted else ""
        return self.log.append(line)

    def notice(self, text: str) -> None:
        self.log.say("notice", text, now_ms())

    def error(self, text: str) -> None:
        self.log.say("error", text, now_ms())

    def load_older(self) -> bool:
        """Ask for the page before the oldest message shown; False when there is none to ask for."""
        if self.context is not None:
            return self._load_context("before")
        if not self.has_older or self._loading_older or not self.is_room:
            return False
        oldest = self.log.oldest_id()
        if oldest is None:
            return False
        self._loading_older = self.client.request_older(oldest, room=self.name)
        return self._loading_older

    def catch_up_paused(self) -> None:
        """More was missed than one step: a line says so where they are missing, and loads them."""
        if self.more_line is not None and self.log.holds(self.more_line):  # an older gap is left as it is
            self.more_line.kind, self.more_line.text = "notice", "Some messages sent while you were away are not shown here."
            self.log.changed(self.more_line)
        self.more_line = self.log.append(ChatLine("more", MORE_MISSED, now_ms()))

    def load_missed(self) -> bool:
        """The next step of the messages missed (the "more" line was chosen); False if none can be asked for."""
        return self.more_line is not None and self.is_room and self.client.load_missed(self.name)

    def add_missed(self, page: History) -> None:
        """Missed messages for the place of the "more" line; the line goes once they are all in."""
        line = self.more_line
        if line is None or not self.log.holds(line):
            return
        self.log.insert_before(line, [self._stored_line(m) for m in page.messages])
        if not page.more:
            self.more_line = None
            self.log.remove(line)

    def _on_trimmed(self) -> None:
        """The log let its oldest lines go: they are loaded from the server again when scrolled back to."""
        self.has_older = self.is_room

    def _on_context_trimmed(self) -> None:
        self.context_older = True

    def mark_read(self) -> None:
        if self.unread or self.mentions:
            self.unread = self.mentions = 0
            self.changed.emit()

    @property
    def invite_only(self) -> bool:
        """A room only its operators' invitees may join (the sidebar shows a padlock)."""
        return self.modes is not None and self.modes.invite_only

    def set_modes(self, modes: RoomState) -> None:
        self.modes = modes
        self.users.set_operators(modes.operators)
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
        self._context_loading.clear()
        self._jump_target = None
        self.held_received = 0

    def add_history(self, page: History) -> None:
        self._loading_older = False
        self.has_older = page.more
        oldest = self.log.oldest_id()
        lines = [self._stored_line(m) for m in page.messages if oldest is None or m.id < oldest]
        marker = self.read_marker
        if marker is not None and lines and lines[0].id is not None and lines[-1].id is not None \
                and lines[0].id <= marker < lines[-1].id:
            # the "new since you left" line, where the reader stopped last time (on any machine)
            at = next(i for i, ln in enumerate(lines) if ln.id is not None and ln.id > marker)
            lines.insert(at, ChatLine("marker", "New since you last read", lines[at].ts))
            self.read_marker = None
        self.log.prepend(lines)

    def _stored_line(self, m: Message, mention: bool | None = None) -> ChatLine:
        """A stored message's line (``mention``: whether it ranks as one; by default, when it names us)."""
        own = m.sender == self.client.me
        if m.reply_to:
            self._answered.add(m.reply_to)
        return ChatLine("msg", m.text, m.ts, sender=m.sender, own=own, id=m.id, cid=m.cid,
                        mention=not own and self.client.is_mention(m.text) if mention is None else mention,
                        edited=m.edited, deleted=m.deleted, reply_to=m.reply_to, reply_from=m.reply_from,
                        reply_text=m.reply_text, reactions=dict(m.reactions), mine=m.mine)

    def newest_id(self) -> int:
        return self.log.newest_id() or 0

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
        line = self._stored_line(msg, mention)
        parent = self.log.by_id(msg.reply_to) if msg.reply_to and not msg.reply_from else None
        if parent is not None and not parent.deleted:  # a private reply: the server quotes none, we have it
            line.reply_from, line.reply_text = parent.sender, reply_quote(parent.text)
        line = self.log.append(line)
        return None if own else line

    def set_reactions(self, mid: int, counts: dict[str, int], mine: tuple[str, ...] | None) -> None:
        """A message's reactions changed (``mine`` None: ours did not): its line shows them, no news."""
        for log in (self.log, self._context_log):
            line = log.by_id(mid)
            if line is not None:
                line.reactions = dict(counts)
                line.mine = tuple(e for e in (line.mine if mine is None else mine) if e in counts)
                log.changed(line)

    def change_message(self, mid: int, text: str, edited: int = 0, deleted: bool = False) -> bool:
        """A message was edited or deleted: its line shows it, here and around a search result (no news:
        nothing is counted unread). False if neither shows it."""
        found = False
        for log in (self.log, self._context_log):
            line = log.by_id(mid)
            if line is not None:
                line.text, line.deleted = ("", True) if deleted else (text, False)
                if deleted:
                    line.reactions, line.mine = {}, ()
                line.edited = edited or line.edited
                line.mention = not line.own and not deleted and self.client.is_mention(line.text)
                log.changed(line)
                found = True
            if mid not in self._answered:
                continue
            for reply in [ln for ln in log.lines if ln.reply_to == mid]:  # their quotes follow it
                reply.reply_text = "" if deleted else reply_quote(text)
                reply.reply_from = "" if deleted else reply.reply_from
                log.changed(reply)
        return found

    # ------------------------------------------------------------ a search result's context

    @property
    def shown(self) -> MessageLog:
        """What the view shows: the live conversation, or the older messages around a search result."""
        return self.context if self.context is not None else self.log

    def jump_to(self, mid: int) -> bool:
        """Bring the message ``mid`` into view, highlighted: at once when it is loaded, else once the
        server sent the messages around it. False when it is not loaded and cannot be asked for now."""
        if mid == self._jump_target:
            return True  # asked already (a double click)
        for log in (self.context, self.log):
            line = log.by_id(mid) if log is not None else None
            if line is not None:
                self._jump_target = None  # an answer still on its way is not wanted any more
                if log is self.log and self.context is not None:
                    self.leave_context(keep_place=True)
                self._focus(line)
                return True
        if not self.is_room or not self.client.request_context(self.name, around=mid, limit=CONTEXT_PAGE):
            self.error("Cannot show that message now: not connected.")
            return False
        self._jump_target = mid
        return True

    def load_newer(self) -> bool:
        """Scrolled to the end of a search result's context: ask for the next page towards the present."""
        return self.context is not None and self.context_newer and self._load_context("after")

    def leave_context(self, keep_place: bool = False) -> None:
        """Back to the live conversation (at its newest message unless ``keep_place``)."""
        self._jump_target = None  # a jump still on its way would pull the reader back: not wanted
        if self.context is not None:
            self.context = None
            self._show_live(keep_place)

    def _show_live(self, keep_place: bool) -> None:
        """``context`` is None now: the view goes back to the live log, and the context's lines are let go."""
        self._context_loading.clear()
        self.view_changed.emit(keep_place)
        self._context_log.reset([])

    def add_context(self, page: History) -> None:
        """A page asked for by jump_to (``around``) or by scrolling within its context."""
        lines = [self._stored_line(m) for m in page.messages]
        if page.around is not None:
            if page.around != self._jump_target:
                return  # superseded by another jump
            self._jump_target = None
            if not lines:
                self.error("That message is not in the history any more.")
                return
            target = next((ln for ln in lines if ln.id is not None and ln.id >= page.around), lines[-1])
            self.context = self._context_log  # one log, reused by every jump
            self.context.reset(lines)
            self.context_older, self.context_newer = page.more, page.newer
            self._context_loading.clear()
            if not self._join_context():
                self.view_changed.emit(False)
            elif not self.log.holds(target) and target.id is not None:
                target = self.log.by_id(target.id) or target  # it was loaded already after all
            self._focus(target)
            return
        kind = "before" if page.before is not None else "after"
        self._context_loading.discard(kind)
        if self.context is None:
            return  # left meanwhile
        if kind == "before":
            self.context_older = page.more
            self.context.prepend(lines)
        else:
            self.context_newer = page.more
            self.context.extend(lines)
            self._join_context()

    def _load_context(self, kind: str) -> bool:
        assert self.context is not None
        if kind in self._context_loading or (kind == "before" and not self.context_older):
            return False
        edge_id = self.context.oldest_id() if kind == "before" else self.context.newest_id()
        if edge_id is None:
            return False
        edge = {kind: edge_id}
        if not self.client.request_context(self.name, limit=CONTEXT_PAGE, **edge):
            return False
        self._context_loading.add(kind)
        return True

    def _join_context(self) -> bool:
        """The context reaches the live messages: it becomes their older part, and the live log is shown
        again with the reader's place kept. False while a gap is left between the two."""
        assert self.context is not None
        self.log.flush()
        live_oldest = self.log.oldest_id()
        context_newest = self.context.newest_id() or 0
        if self.context_newer and (live_oldest is None or context_newest < live_oldest):
            return False
        older = [ln for ln in self.context.lines if ln.kind == "msg" and ln.id is not None
                 and (live_oldest is None or ln.id < live_oldest)]
        if older:
            self.has_older = self.context_older
        self.context = None  # before the prepend, so that the live view moving does not page the context
        self.log.prepend(older)
        self._show_live(keep_place=True)
        return True

    def _focus(self, line: ChatLine) -> None:
        old, self._highlighted = self._highlighted, line
        if old is not None:
            old.highlight = False
            for log in (self.log, self.context):
                if log is not None and log.holds(old):
                    log.changed(old)
        line.highlight = True
        self.shown.changed(line)
        self.focus_requested.emit(line)

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
        if not self.show_presence and self.is_room:
            return
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
