"""All of one connection's conversations: rooms and private ones, unread counts, commands (no widgets).

The ``Workspace`` listens to a ChatClient and routes what it reports to the
right Conversation: a room's messages, joins and history to that room, a
private message to the conversation with that person (opened when the first
one arrives). It keeps the sidebar's model, counts what the user has not seen,
and turns the commands typed into the input (``/join``, ``/msg`` ...) into
requests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, Qt, QTimer, Signal

from qtchat.protocol import DEFAULT_ROOM, History, Message, RoomInfo, RoomState, Welcome, name_key

from .commands import run_command
from .conversation import PRIVATE, ROOM, Conversation, conversation_key
from .models import ChatLine, literal_html
from .search import SearchModel
from .session import ChatClient
from .typists import Typists

Index = QModelIndex | QPersistentModelIndex

class ConversationList(QAbstractListModel):
    """The sidebar: rooms first (the lobby at the top, then in the order joined), then private conversations."""

    ConversationRole = int(Qt.ItemDataRole.UserRole) + 1

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.items: list[Conversation] = []

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.items)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.items):
            return None
        conv = self.items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return conv.title
        if role == Qt.ItemDataRole.ToolTipRole:
            return literal_html(f"{conv.title}\n{conv.topic}" if conv.topic else conv.title)
        if role == self.ConversationRole:
            return conv
        return None

    def add(self, conv: Conversation) -> None:
        row = len(self.items) if not conv.is_room else sum(1 for c in self.items if c.is_room)
        self.beginInsertRows(QModelIndex(), row, row)
        self.items.insert(row, conv)
        self.endInsertRows()

    def remove(self, conv: Conversation) -> None:
        row = self.items.index(conv)
        self.beginRemoveRows(QModelIndex(), row, row)
        del self.items[row]
        self.endRemoveRows()

    def refresh(self, conv: Conversation) -> None:
        if conv in self.items:
            index = self.index(self.items.index(conv))
            self.dataChanged.emit(index, index)


class Workspace(QObject):
    """Signals:
    conversation_added(Conversation), conversation_removed(Conversation).
    activated(Conversation): the conversation the user looks at changed.
    mentioned(Conversation, ChatLine): someone else's message names you, or writes to you privately.
    activity(Conversation): someone else's message that does not.
    rooms_changed(list[str]): the rooms to join next time (the user joined or left one).
    unread_changed(int): the total of unread messages.
    """

    conversation_added = Signal(object)
    conversation_removed = Signal(object)
    activated = Signal(object)
    mentioned = Signal(object, object)
    activity = Signal(object)
    rooms_changed = Signal(list)
    unread_changed = Signal(int)

    def __init__(self, client: ChatClient, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.client = client
        self.model = ConversationList(self)
        self.search = SearchModel(client, self)
        self.typists = Typists(client, self)  # who is typing in each conversation (typists.py)
        self.by_key: dict[str, Conversation] = {}
        self.looking = True  # the user can see the active conversation (the window is active)
        self.show_presence = True  # "joined" / "left" notices in rooms
        self._logins = 0
        self.lobby = self._add(ROOM, DEFAULT_ROOM)
        self.active = self.lobby
        self._read_timer = QTimer(self)  # read markers go to the server at most once a second
        self._read_timer.setSingleShot(True)
        self._read_timer.setInterval(1000)
        self._read_timer.timeout.connect(self._send_read)
        c = client
        c.logged_in.connect(self._on_logged_in)
        c.message_received.connect(self._on_message)
        c.message_failed.connect(self._on_failed)
        c.room_joined.connect(self._on_room_joined)
        c.room_left.connect(self._on_room_left)
        c.join_failed.connect(self._on_join_failed)
        c.room_list.connect(self._on_room_list)
        c.topic_changed.connect(self._on_topic)
        c.users_reset.connect(self._on_users_reset)
        c.away_changed.connect(self._on_away)
        c.user_joined.connect(self._on_user_joined)
        c.user_left.connect(self._on_user_left)
        c.server_error.connect(lambda code, text: self.active.error(text))
        c.notice_received.connect(lambda text: self.tell_all(f"Notice from the server: {text}", error=True))
        c.history_received.connect(self._on_history)
        c.catch_up_paused.connect(lambda room: self._in_room(room, Conversation.catch_up_paused))
        c.missed_received.connect(lambda page: self._in_room(page.room, lambda conv: conv.add_missed(page)))
        c.context_received.connect(self._on_context)
        c.message_edited.connect(lambda room, mid, text, edited: self._in_room(
            room, lambda conv: conv.change_message(mid, text, edited)))
        c.message_deleted.connect(lambda room, mid, by: self._in_room(
            room, lambda conv: conv.change_message(mid, "", deleted=True)))
        c.edit_failed.connect(lambda code, text: self.active.error(f"Not changed: {text}"))
        c.reactions_changed.connect(lambda room, mid, counts, mine: self._in_room(
            room, lambda conv: conv.set_reactions(mid, counts, mine)))
        c.account_changed.connect(self._on_account)
        c.room_modes.connect(self._on_room_modes)
        c.removed_from_room.connect(self._on_removed)
        self._account: tuple[bool, bool] | None = None

    # ------------------------------------------------------------ conversations

    @property
    def conversations(self) -> list[Conversation]:
        return list(self.model.items)

    def room(self, name: str) -> Conversation | None:
        return self.by_key.get(conversation_key(ROOM, name))

    def private(self, name: str) -> Conversation | None:
        return self.by_key.get(conversation_key(PRIVATE, name))

    def set_show_presence(self, on: bool) -> None:
        """Show (or hide) the notices of people joining and leaving rooms, in every room."""
        self.show_presence = on
        for conv in self.model.items:
            conv.show_presence = on

    def _add(self, kind: str, name: str) -> Conversation:
        conv = Conversation(self.client, kind, name, self)
        conv.show_presence = self.show_presence
        conv.changed.connect(lambda: self._on_changed(conv))
        conv.view_changed.connect(lambda keep_place: self._on_view_changed(conv))
        self.by_key[conv.key] = conv
        self.model.add(conv)
        self.conversation_added.emit(conv)
        return conv

    def _remove(self, conv: Conversation) -> None:
        if conv is self.lobby or self.by_key.get(conv.key) is not conv:
            return
        if conv is self.active:
            self.activate(self.lobby)
        del self.by_key[conv.key]
        self.model.remove(conv)
        self.conversation_removed.emit(conv)
        conv.deleteLater()
        self.unread_changed.emit(self.total_unread)

    def activate(self, conv: Conversation) -> None:
        """The user looks at this conversation now."""
        if conv is not self.active:
            self.active = conv
            self.activated.emit(conv)
        if self.looking:
            conv.mark_read()
            self._read_timer.start()

    def set_looking(self, looking: bool) -> None:
        """The window became active (True) or inactive."""
        self.looking = looking
        if looking:
            self.active.mark_read()
            self._read_timer.start()

    def _send_read(self) -> None:
        """The active room is read up to its newest message: tell the server (once per new id)."""
        conv = self.active
        if not conv.is_room or not self.looking or conv.context is not None:
            return  # reading older messages is not reading the newest
        conv.log.flush()
        newest = conv.newest_id()
        if newest > conv.read_sent:
            conv.read_sent = newest
            self.client.mark_read(conv.name, newest)

    def show_message(self, room: str, message_id: int) -> bool:
        """Open the room at this message (a search result), with the messages around it."""
        conv = self.room(room)
        if conv is None:
            self.active.error(f"You are not in #{room} any more.")
            return False
        self.activate(conv)
        return conv.jump_to(message_id)

    def conversation_with(self, name: str) -> Conversation:
        """The private conversation with this person, opened if new (not made active)."""
        conv = self.private(name)
        if conv is None:
            conv = self._add(PRIVATE, name)
            conv.set_away(self._lobby_away().get(name))  # away already: its header says so
        return conv

    def open_private(self, name: str) -> Conversation:
        """The conversation with this person (opened if new) and made active."""
        conv = self.conversation_with(name)
        self.activate(conv)
        return conv

    def join(self, name: str) -> Conversation | None:
        """Enter a room: its conversation opens at once and fills when the server confirms."""
        try:
            self.client.join_room(name)
        except ValueError as exc:
            self.active.error(f"Cannot join {name!r}: {exc}")
            return None
        conv = self.room(name)
        if conv is None:
            conv = self._add(ROOM, name)
            conv.notice(f"Joining #{name}\N{HORIZONTAL ELLIPSIS}")
            self.rooms_changed.emit(self.room_names())
        self.activate(conv)
        return conv

    def close(self, conv: Conversation) -> None:
        """Leave a room, or close a private conversation (its lines are gone; the server keeps none)."""
        if conv.is_lobby:
            conv.error("Everyone stays in the lobby.")
            return
        if conv.is_room:
            self.client.part_room(conv.name)  # room_left removes it
        else:
            self._remove(conv)

    def room_names(self) -> list[str]:
        """The rooms to join again next time, the lobby not included."""
        return [c.name for c in self.model.items if c.is_room and not c.is_lobby]

    @property
    def logins(self) -> int:
        """How many times the client logged in since this workspace began (reconnects included)."""
        return self._logins

    @property
    def total_unread(self) -> int:
        return sum(c.unread for c in self.model.items)

    def tell_all(self, text: str, *, error: bool = False) -> None:
        for conv in self.model.items:
            (conv.error if error else conv.notice)(text)

    def _on_view_changed(self, conv: Conversation) -> None:
        if conv is self.active and conv.context is None:  # back to the newest messages
            self.activate(conv)

    def _on_changed(self, conv: Conversation) -> None:
        self.model.refresh(conv)
        self.unread_changed.emit(self.total_unread)

    # ------------------------------------------------------------ what the user types

    def submit(self, text: str) -> ChatLine | None:
        """Send what the user typed in the active conversation, or carry out its command (see commands.py)."""
        conv = self.active
        if not text.startswith("/"):
            return conv.send(text)
        if text.startswith("//"):
            return conv.send(text[1:])
        return run_command(self, conv, text)

    # ------------------------------------------------------------ what the server says

    def _on_logged_in(self, welcome: Welcome) -> None:
        self._logins += 1
        for conv in self.conversations:
            conv.connection_reset()
            conv.users.me = welcome.user
            if conv.is_room and self.client.room(conv.name) is None:
                self._remove(conv)  # another server: its rooms are not ours
        c = self.client
        if self._logins == 1:
            where = f"{welcome.name} ({c.host}:{c.port})" if welcome.name else f"{c.host}:{c.port}"
            self.lobby.notice(f"Connected to {where} as {welcome.user}.")
            if welcome.motd:
                self.lobby.notice(welcome.motd)
        else:
            self.tell_all("Reconnected.")
        if c.pending:
            self.active.notice(f"Sending {len(c.pending)} queued message(s).")

    def _on_account(self, registered: bool, operator: bool) -> None:
        before, self._account = self._account, (registered, operator)
        if before is None or before == self._account:  # the state at login is not news
            return
        if registered and not before[0]:
            self.lobby.notice(f"Your name {self.client.me} is registered now: only your password logs in with it.")
        if not registered and before[0]:
            self.lobby.notice(f"Your name {self.client.me} is not registered any more.")
        if operator != before[1]:
            self.lobby.notice("You are an operator now: /kill and /ban work for you." if operator else
                              "You are not an operator any more.")

    def _on_room_joined(self, info: RoomInfo) -> None:
        conv = self.room(info.name)
        if conv is None:
            conv = self._add(ROOM, info.name)
            self.rooms_changed.emit(self.room_names())
        conv.rename(info.name)
        conv.set_topic(info.topic)
        if info.read is not None and not conv.log.lines and not conv.read_sent:
            # a fresh start: what was unread when we left (here or on another machine) still is
            conv.read_marker = conv.read_sent = info.read
            if info.unread and not (conv is self.active and self.looking):
                conv.unread = info.unread
                conv.changed.emit()

    def _on_room_left(self, name: str) -> None:
        conv = self.room(name)
        if conv is not None:
            self._remove(conv)
            self.rooms_changed.emit(self.room_names())

    def _on_join_failed(self, room: str, text: str) -> None:
        """Said where it stays readable: the room's own conversation closes next."""
        conv = self.active if self.active is not self.room(room) else self.lobby
        conv.error(f"Cannot join #{room}: {text}")

    def _on_room_modes(self, modes: RoomState) -> None:
        conv = self.room(modes.room)
        if conv is None:
            return
        before = conv.modes
        conv.set_modes(modes)
        if before is None or not modes.by:
            return
        for line in mode_changes(before, modes):
            conv.notice(line)

    def _on_removed(self, room: str, by: str, reason: str) -> None:
        why = reason.removeprefix("kicked").removeprefix(": ")
        self.lobby.error(f"You were removed from #{room} by {by}" + (f": {why}" if why else "."))

    def _on_room_list(self, rooms: list[RoomInfo]) -> None:
        lines = [f"#{r.name} ({r.members or 0})" + (f": {r.topic}" if r.topic else "") for r in rooms]
        self.active.notice("Rooms on this server:\n" + "\n".join(lines) if lines else "No rooms.")

    def _on_topic(self, room: str, topic: str, by: str) -> None:
        conv = self.room(room)
        if conv is not None:
            conv.set_topic(topic)
            conv.notice(f"{by} set the topic: {topic}" if topic else f"{by} cleared the topic")

    def _conversation_of(self, msg: Message) -> Conversation | None:
        if msg.to is None:
            return self.room(msg.room)
        peer = msg.to if msg.sender == self.client.me else msg.sender
        conv = self.private(peer)
        if conv is None:
            conv = self._add(PRIVATE, peer)
            conv.users.me = self.client.me
            conv.users.reset([self.client.me, peer])
            conv.set_away(self._lobby_away().get(peer))
        conv.rename(peer)  # as the server spells it
        return conv

    def _on_message(self, msg: Message) -> None:
        conv = self._conversation_of(msg)
        if conv is None:
            return
        line = conv.add_message(msg)
        if line is None:
            return
        if conv is not self.active or not self.looking or conv.context is not None:
            conv.count_unread(line)
        elif conv.is_room:
            self._read_timer.start()
        if line.mention and not (msg.held and conv.held_received > 1):  # kept ones: one notification each login
            self.mentioned.emit(conv, line)
        else:
            self.activity.emit(conv)

    def _on_failed(self, cid: str, code: str, text: str) -> None:
        if not any(conv.failed(cid, text) for conv in self.model.items):
            self.active.error(f"Not sent: {text}")

    def _on_history(self, page: History) -> None:
        conv = self.room(page.room)
        if conv is not None:
            conv.add_history(page)

    def _in_room(self, room: str, act: Callable[[Conversation], object]) -> None:
        conv = self.room(room)
        if conv is not None:
            act(conv)

    def _on_context(self, page: History) -> None:
        conv = self.room(page.room)
        if conv is not None:
            conv.add_context(page)

    def _lobby_away(self) -> dict[str, str]:
        """Who is away (name -> message), as the lobby, where everyone is, says."""
        state = self.client.room(DEFAULT_ROOM)
        return state.away if state is not None else {}

    def _on_users_reset(self, room: str, names: list[str]) -> None:
        conv = self.room(room)
        state = self.client.room(room)
        away = dict(state.away) if state is not None else {}
        if conv is not None:
            conv.users.reset(names, away)
        if name_key(room) == name_key(DEFAULT_ROOM):  # who is online: private conversations show it
            online = {name_key(n) for n in names}
            for conv in self.model.items:
                if not conv.is_room:
                    conv.users.reset([self.client.me, conv.name] if name_key(conv.name) in online else
                                     [self.client.me], away)
                    conv.set_away(away.get(conv.name))

    def _on_away(self, room: str, name: str, away: bool, message: str) -> None:
        conv = self.room(room)
        if conv is not None:
            conv.users.set_away(name, message if away else None)
        peer = self.private(name)
        if peer is not None and name_key(room) == name_key(DEFAULT_ROOM):
            peer.set_away(message if away else None)

    def _on_user_joined(self, room: str, name: str) -> None:
        conv = self.room(room)
        if conv is not None:
            conv.user_joined(name)
        if name_key(room) == name_key(DEFAULT_ROOM):
            peer = self.private(name)
            if peer is not None:
                peer.users.add(name)
                peer.told_held = False
                peer.notice(f"{name} is online")

    def _on_user_left(self, room: str, name: str, reason: str) -> None:
        conv = self.room(room)
        if conv is not None:
            conv.user_left(name, reason)
        if name_key(room) == name_key(DEFAULT_ROOM):
            peer = self.private(name)
            if peer is not None:
                peer.users.remove(name)
                peer.set_away(None)
                peer.notice(f"{name} went offline")


def mode_changes(before: RoomState, after: RoomState) -> list[str]:
    """What someone changed in a room's modes and operators, as notices ("ana made this room private")."""
    by = after.by
    lines = []
    if after.invite_only != before.invite_only:
        lines.append(f"{by} made this room private: only those invited may join" if after.invite_only else
                     f"{by} opened this room to all")
    if after.history != before.history:
        lines.append(f"{by} set the history: new members see it from their joining on" if after.history == "joined"
                     else f"{by} set the history: new members see all of it")
    old = {name_key(n) for n in before.operators}
    new = {name_key(n) for n in after.operators}
    lines += [f"{by} made {n} an operator of this room" for n in after.operators if name_key(n) not in old]
    lines += [f"{by} removed {n} as an operator of this room" for n in before.operators if name_key(n) not in new]
    return lines
