"""The rooms the client is in, their user lists and topics, and their history: pages, context pages, search.

``ChatRooms`` is the part of ``ChatClient`` that keeps a ``RoomState`` per room (the lobby always, others
joined by the user and joined again after every login), asks for history and sorts the pages that come
back: the latest page after a join, older pages as the user scrolls, what was missed after a reconnect
(reported as live messages, in order: at most ``CATCH_UP_STEP`` of them; past that the catch-up pauses,
``catch_up_paused`` says where, and ``load_missed`` brings the next step on demand, reported as
``missed_received`` for the place of the pause), and pages around a search result. ChatClient handles the messages
themselves (``_on_message``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from PySide6.QtCore import QObject, Signal

from qtchat.protocol import (
    DEFAULT_ROOM,
    MAX_QUERY,
    REACTIONS,
    DeleteMessage,
    EditMessage,
    History,
    HistoryRequest,
    Joined,
    JoinRoom,
    Left,
    MarkRead,
    Message,
    MessageDeleted,
    MessageEdited,
    PartRoom,
    ProtocolError,
    React,
    Reactions,
    RoomInfo,
    RoomInvite,
    RoomJoined,
    RoomKick,
    RoomList,
    RoomMode,
    RoomOp,
    RoomsRequest,
    SearchRequest,
    SearchResults,
    SetTopic,
    TopicChanged,
    UserAway,
    UserBack,
    UserList,
    check_text,
    name_key,
    validate_name,
)
from qtchat.protocol import (
    RoomState as RoomModes,
)

from .link import ClientLink, ClientState
from .pins import PinStore

LATEST_PAGE = 50  # messages asked for when a room is joined afresh
CATCH_UP_PAGE = 200  # messages per page when catching up after a reconnect
CATCH_UP_STEP = 500  # messages fetched at most per room at a reconnect (and per load_missed); then it pauses
MAX_LISTED_ROOMS = 5000  # rooms of the server's list fetched (in pages) for the join dialog
SEEN_IDS = 10_000  # message ids remembered, so that none is reported twice


@dataclass(slots=True)
class RoomState:
    """What the client knows of one room it is in (or wants to be in after the next login)."""

    name: str  # as the server spells it, once it said
    topic: str = ""
    users: list[str] = field(default_factory=list)
    joined: bool = False  # confirmed on the current connection
    last_id: int = 0  # the newest message id seen here: a reconnect asks for everything after it
    held: list[Message] | None = None  # live messages held while catching up
    step_left: int = 0  # messages this step of catching up may still bring
    gap: int | None = None  # the catch-up paused: the messages after this id are not fetched yet
    gap_end: int | None = None  # the first message reported after the pause: the gap ends there
    fill_after: int | None = None  # a load_missed page asked for (after this id) and not answered yet
    collecting: list[str] | None = None  # a user list arriving in parts
    away: dict[str, str] = field(default_factory=dict)  # who of its users is away: name -> message (maybe empty)
    collecting_away: dict[str, str] = field(default_factory=dict)  # ... as the parts of a user list say
    modes: RoomModes | None = None  # its creator, operators and modes, as the server last said
    # pages asked for with request_context, by what the answer repeats: ("around" | "before" | "after", id)
    context_requests: set[tuple[str, int]] = field(default_factory=set)


def page_anchor(around: int | None, before: int | None, after: int | None) -> tuple[str, int] | None:
    """Which message a history page is anchored at, as its request said and its answer repeats:
    ("around" | "before" | "after", id), or None for the newest page."""
    return next(((k, v) for k, v in (("around", around), ("before", before), ("after", after)) if v is not None),
                None)


def _fresh_rooms() -> dict[str, RoomState]:
    return {name_key(DEFAULT_ROOM): RoomState(DEFAULT_ROOM)}


class ChatRooms(ClientLink):
    """Rooms, user lists, topics and history; see ChatClient for the signals (these are declared here)."""

    room_joined = Signal(object)
    room_left = Signal(str)
    join_failed = Signal(str, str)
    room_list = Signal(list)
    topic_changed = Signal(str, str, str)
    users_reset = Signal(str, list)
    away_changed = Signal(str, str, bool, str)
    user_joined = Signal(str, str)
    user_left = Signal(str, str, str)
    history_received = Signal(object)
    catch_up_paused = Signal(str)
    missed_received = Signal(object)
    context_received = Signal(object)
    search_results = Signal(object)
    search_failed = Signal(str, str)
    room_modes = Signal(object)
    removed_from_room = Signal(str, str, str)
    message_edited = Signal(str, object, str, object)  # (ids are 53 bits: not a C++ int)
    message_deleted = Signal(str, object, str)
    reactions_changed = Signal(str, object, object, object)
    CATCH_UP_STEP = CATCH_UP_STEP

    def __init__(self, parent: QObject | None = None, pins: PinStore | None = None) -> None:
        super().__init__(parent, pins)
        self._room_pages: list[RoomInfo] = []  # the server's room list as its pages come
        # the rooms we are in, by name key; the lobby always, others joined by the user and
        # joined again after every login
        self.rooms = _fresh_rooms()
        self._seen_ids: set[int] = set()
        self._seen_order: deque[int] = deque()

    # ------------------------------------------------------------ what ChatClient adds

    def _on_message(self, msg: Message) -> None:
        """Report a message (once), or take it as the acknowledgement of ours."""
        raise NotImplementedError

    def _awaits_ack(self, msg: Message) -> bool:
        """Is this stored message one of ours still waiting for its acknowledgement?"""
        raise NotImplementedError

    def _room_ready(self, room: RoomState) -> None:
        """A room is joined on this connection (its catch-up asked for): what waited for it may go."""

    def _forget_server(self) -> None:
        self._seen_ids.clear()
        self._seen_order.clear()
        self.rooms = _fresh_rooms()  # another server: its rooms are other rooms

    def _new_connection(self) -> None:
        for room in self.rooms.values():
            room.joined, room.held, room.collecting = False, None, None

    # ------------------------------------------------------------ public API

    @property
    def users(self) -> list[str]:
        """Who is in the lobby."""
        return self.rooms[name_key(DEFAULT_ROOM)].users

    @property
    def last_id(self) -> int:
        """The newest room message id seen, in any room."""
        return max(room.last_id for room in self.rooms.values())

    def room(self, name: str) -> RoomState | None:
        return self.rooms.get(name_key(name))

    def join_room(self, name: str) -> str:
        """Enter a room (creating it on the server if nobody is in it); it is joined again after every
        login. Returns its name key; raises ValueError (a sentence for the user) for a name the server
        would refuse."""
        try:
            name, key = validate_name(name, what="room name")
        except ProtocolError as exc:
            raise ValueError(exc.message) from None
        if key not in self.rooms:
            self.rooms[key] = RoomState(name)
            if self.state is ClientState.ONLINE:
                self._send(JoinRoom(name))
        return key

    def part_room(self, name: str) -> None:
        """Leave a room (not the lobby: everyone stays there)."""
        key = name_key(name)
        room = self.rooms.get(key)
        if room is None or key == name_key(DEFAULT_ROOM):
            return
        del self.rooms[key]
        if self.state is ClientState.ONLINE and room.joined:
            self._send(PartRoom(room.name))
        self.room_left.emit(room.name)

    def set_topic(self, room: str, topic: str) -> None:
        """Raises ValueError (a sentence for the user) while offline."""
        if self.state is not ClientState.ONLINE:
            raise ValueError("Not connected.")
        self._send(SetTopic(room, topic))

    # ------------------------------------------------------------ a room's operators

    def set_room_mode(self, room: str, *, invite_only: bool | None = None, history: str | None = None) -> None:
        """Raises ValueError (a sentence for the user) while offline."""
        self._room_request(RoomMode(room, invite_only, history))

    def set_room_operator(self, room: str, name: str, op: bool = True) -> None:
        self._room_request(RoomOp(room, name, op))

    def invite(self, room: str, name: str) -> None:
        self._room_request(RoomInvite(room, name))

    def kick_from_room(self, room: str, name: str, reason: str = "") -> None:
        self._room_request(RoomKick(room, name, reason))

    def _room_request(self, event: RoomMode | RoomOp | RoomInvite | RoomKick) -> None:
        state = self._joined_room(event.room)
        if state is None:
            raise ValueError("Not connected." if self.state is not ClientState.ONLINE else
                             f"You are not in a room {event.room!r}.")
        self._send(event)

    def is_room_operator(self, room: str, name: str) -> bool:
        state = self.rooms.get(name_key(room))
        modes = state.modes if state is not None else None
        return modes is not None and name_key(name) in {name_key(n) for n in modes.operators}

    def request_rooms(self) -> bool:
        """Ask for the server's list of rooms; it arrives as room_list. False while offline."""
        if self.state is not ClientState.ONLINE:
            return False
        self._room_pages = []
        self._send(RoomsRequest())
        return True

    def _joined_room(self, room: str) -> RoomState | None:
        """The room's state while online and in it on this connection, else None."""
        state = self.rooms.get(name_key(room))
        if self.state is not ClientState.ONLINE or state is None or not state.joined:
            return None
        return state

    # ------------------------------------------------------------ edits and deletions

    def edit_message(self, mid: int, text: str, room: str = DEFAULT_ROOM) -> None:
        """Replace the text of our message ``mid`` in the room: message_edited once the server did (or
        edit_failed). Raises ValueError (a sentence for the user) for text the server would refuse, or
        while not online."""
        try:
            check_text(text)
        except ProtocolError as exc:
            raise ValueError(exc.message) from None
        state = self._joined_room(room)
        if state is None:
            raise ValueError("Not connected: the message was not changed.")
        self._send(EditMessage(mid, text, state.name))

    def delete_message(self, mid: int, room: str = DEFAULT_ROOM) -> None:
        """Delete the message ``mid`` of the room (ours, or any as its operator): message_deleted once the
        server did (or edit_failed). Raises ValueError while not online."""
        state = self._joined_room(room)
        if state is None:
            raise ValueError("Not connected: the message was not deleted.")
        self._send(DeleteMessage(mid, state.name))

    def _on_edited(self, event: MessageEdited) -> None:
        self._change_held(event.room, event.id, lambda m: replace(m, text=event.text, edited=event.edited))
        self.message_edited.emit(event.room, event.id, event.text, event.edited)

    def _on_deleted(self, event: MessageDeleted) -> None:
        self._change_held(event.room, event.id, lambda m: replace(m, text="", deleted=True))
        self.message_deleted.emit(event.room, event.id, event.by)

    def react(self, mid: int, emoji: str, on: bool = True, room: str = DEFAULT_ROOM) -> None:
        """Give (or take back) a reaction to a message of the room: reactions_changed once the server did.
        Raises ValueError while not online, or for a reaction the server does not take."""
        if emoji not in REACTIONS:
            raise ValueError(f"A reaction is one of {' '.join(REACTIONS)}.")
        state = self._joined_room(room)
        if state is None:
            raise ValueError("Not connected: no reaction was given.")
        self._send(React(mid, emoji, state.name, on))

    def _on_reactions(self, event: Reactions) -> None:
        mine = event.mine if event.yours else None
        self._change_held(event.room, event.id,
                          lambda m: replace(m, reactions=event.reactions, mine=m.mine if mine is None else mine))
        self.reactions_changed.emit(event.room, event.id, dict(event.reactions), mine)

    def _change_held(self, room: str, mid: int, change: Callable[[Message], Message]) -> None:
        """A live change of a message held while the room catches up: it is shown changed."""
        state = self.rooms.get(name_key(room))
        if state is not None and state.held:
            state.held = [change(m) if m.id == mid else m for m in state.held]

    def _report_changes(self, page: History) -> None:
        """A catch-up page's messages changed while we were away (``changed``), as live changes are."""
        for m in page.changed:
            if m.deleted:
                self.message_deleted.emit(page.room, m.id, "")
            else:
                self.message_edited.emit(page.room, m.id, m.text, m.edited)

    def request_older(self, before: int, limit: int = LATEST_PAGE, room: str = DEFAULT_ROOM) -> bool:
        """Ask for the page of a room's messages before id ``before``; it arrives as history_received.
        False (and nothing asked) while not online."""
        state = self._joined_room(room)
        if state is None:
            return False
        self._send(HistoryRequest(state.name, before=before, limit=limit))
        return True

    def request_context(self, room: str, *, around: int | None = None, before: int | None = None,
                        after: int | None = None, limit: int = 50) -> bool:
        """Ask for a page of a room's history apart from the live conversation: ``limit`` messages
        around the message ``around`` (a search result), or before/after such a page. It arrives as
        context_received. False (and nothing asked) while not online."""
        state = self._joined_room(room)
        if state is None:
            return False
        anchor = page_anchor(around, before, after)
        if anchor is None:
            raise ValueError("give around, before or after")
        kind, mid = anchor
        if (kind, mid) in state.context_requests:
            return True  # asked already: one answer serves both
        state.context_requests.add((kind, mid))
        self._send(HistoryRequest(state.name, limit=limit, **{kind: mid}))
        return True

    def search(self, query: str, room: str | None = None, before: int | None = None, limit: int = 50) -> bool:
        """Search the stored messages of the rooms we are in (or of ``room``), newest first; ``before`` pages
        on. The answer arrives as search_results. False (and nothing asked) while not online; ValueError
        for a query the server would refuse."""
        query = query.strip()
        if not query:
            raise ValueError("the search is empty")
        if len(query) > MAX_QUERY:
            raise ValueError(f"a search may be at most {MAX_QUERY} characters long")
        if self.state is not ClientState.ONLINE:
            return False
        self._send(SearchRequest(query, room, before, limit))
        return True

    def mark_read(self, room: str, message_id: int) -> None:
        """Tell the server we read the room up to this message (its read marker follows us across machines)."""
        state = self._joined_room(room)
        if state is not None:
            self._send(MarkRead(state.name, message_id))

    # ------------------------------------------------------------ what the server says of rooms

    def _join_rooms(self, welcome_rooms: tuple[RoomInfo, ...]) -> None:
        """After the welcome: the rooms it put us in, then the others we want to be in."""
        for info in welcome_rooms:
            self._on_room_joined(info)
        for room in self.rooms.values():
            if not room.joined:
                self._send(JoinRoom(room.name))

    def _on_room_joined_event(self, event: RoomJoined) -> None:
        self._on_room_joined(event.info)

    def _on_room_joined(self, info: RoomInfo) -> None:
        room = self.rooms.get(name_key(info.name))
        if room is None:  # left again before the server answered: nothing to show
            if self.state is ClientState.ONLINE:
                self._send(PartRoom(info.name))
            return
        room.name, room.topic, room.joined = info.name, info.topic, True
        room.context_requests.clear()  # asked on a connection that is gone
        room.fill_after = None
        self.room_joined.emit(info)
        # history first: a page to start with, or everything missed while away (which may
        # acknowledge messages of ours that were stored before the connection dropped)
        if room.last_id:
            # live messages wait until the missed ones are in, so the conversation stays in order
            room.held = []
            room.step_left = self.CATCH_UP_STEP
            self._send(HistoryRequest(room.name, after=room.last_id, limit=min(CATCH_UP_PAGE, self.CATCH_UP_STEP)))
        else:
            self._send(HistoryRequest(room.name, limit=LATEST_PAGE))
        self._room_ready(room)

    def _on_joined(self, event: Joined) -> None:
        room = self.rooms.get(name_key(event.room))
        if room is not None:
            if event.user not in room.users:
                room.users.append(event.user)
            room.away.pop(event.user, None)  # (an away frame follows if they are)
            self.user_joined.emit(room.name, event.user)

    def _on_left(self, event: Left) -> None:
        key = name_key(event.room)
        room = self.rooms.get(key)
        if room is not None and event.by and name_key(event.user) == name_key(self.me):
            del self.rooms[key]  # an operator removed us: not joined again at the next login
            self.removed_from_room.emit(room.name, event.by, event.reason)
            self.room_left.emit(room.name)
        elif room is not None:
            if event.user in room.users:
                room.users.remove(event.user)
            room.away.pop(event.user, None)
            self.user_left.emit(room.name, event.user, event.reason)

    def _on_room_modes(self, event: RoomModes) -> None:
        room = self.rooms.get(name_key(event.room))
        if room is not None:
            room.modes = event
            self.room_modes.emit(event)

    def _on_user_list(self, event: UserList) -> None:
        room = self.rooms.get(name_key(event.room))
        if room is None:
            return
        if room.collecting is None:
            room.collecting, room.collecting_away = [], {}
        room.collecting.extend(event.users)
        room.collecting_away.update(event.away)
        if not event.more:
            room.users = list(dict.fromkeys(room.collecting))
            listed = set(room.users)
            room.away = {n: m for n, m in room.collecting_away.items() if n in listed}
            room.collecting, room.collecting_away = None, {}
            self.users_reset.emit(room.name, list(room.users))

    def _on_away(self, event: UserAway | UserBack) -> None:
        """Someone in a room went away (or changed their message), or came back."""
        room = self.rooms.get(name_key(event.room))
        if room is None:
            return
        if isinstance(event, UserAway):
            room.away[event.user] = event.message
        elif room.away.pop(event.user, None) is None:
            return  # not away here: nothing changed
        self.away_changed.emit(room.name, event.user, isinstance(event, UserAway),
                               event.message if isinstance(event, UserAway) else "")

    def _on_topic(self, event: TopicChanged) -> None:
        room = self.rooms.get(name_key(event.room))
        if room is not None:
            room.topic = event.topic
            self.topic_changed.emit(room.name, event.topic, event.by)

    def _on_room_list(self, event: RoomList) -> None:
        """A page of the server's rooms: the next is asked for until the last (or MAX_LISTED_ROOMS) came."""
        self._room_pages += event.rooms
        if event.more and event.rooms and len(self._room_pages) < MAX_LISTED_ROOMS:
            self._send(RoomsRequest(after=event.rooms[-1].name))
            return
        rooms, self._room_pages = self._room_pages, []
        self.room_list.emit(rooms)

    def _on_search_results(self, event: SearchResults) -> None:
        self.search_results.emit(event)

    def _joining(self, name: str) -> bool:
        """Did we ask to join this room, and has the server not said we are in yet?"""
        room = self.rooms.get(name_key(name))
        return room is not None and not room.joined

    def _room_refused(self, name: str, text: str) -> bool:
        """The server would not let us into a room we asked for: forget it. False when we did not ask."""
        room = self.rooms.pop(name_key(name), None)
        if room is None:
            return False
        self.join_failed.emit(room.name, text)
        self.room_left.emit(room.name)
        return True

    # ------------------------------------------------------------ history

    def _on_history(self, page: History) -> None:
        room = self.rooms.get(name_key(page.room))
        if room is None:
            return  # a room left meanwhile
        asked = page_anchor(page.around, page.before, page.after)
        if asked is not None and asked in room.context_requests:
            room.context_requests.discard(asked)
            self.context_received.emit(page)
        elif page.around is not None:
            return  # a context page nobody waits for (asked on a connection since replaced): not history
        elif page.after is not None and page.after == room.fill_after:
            self._fill_gap(room, page)
        elif page.after is not None:
            self._catch_up(room, page)
        else:
            self._older_page(room, page)

    def _catch_up(self, room: RoomState, page: History) -> None:
        """Catching up after a reconnect: these are simply messages, then those held meanwhile. After a
        step of CATCH_UP_STEP with more to come it pauses (catch_up_paused): the rest on demand."""
        for msg in page.messages:
            self._on_message(msg)
        self._report_changes(page)
        room.step_left -= len(page.messages)
        if page.more and page.messages:
            if room.step_left > 0:
                self._send(HistoryRequest(room.name, after=page.messages[-1].id,
                                          limit=min(CATCH_UP_PAGE, room.step_left)))
                return
            room.gap, room.gap_end = page.messages[-1].id, None  # the next message reported ends the gap
            self.catch_up_paused.emit(room.name)
        held, room.held = room.held, None
        for msg in held or ():
            self._on_message(msg)  # those the catch-up already brought are skipped as seen

    def load_missed(self, room: str = DEFAULT_ROOM) -> bool:
        """The next step of messages of a paused catch-up (the answer comes as missed_received). False
        when there is nothing missed, it is on its way already, or we are not online."""
        state = self._joined_room(room)
        if state is None or state.gap is None or state.fill_after is not None:
            return False
        state.fill_after, state.step_left = state.gap, self.CATCH_UP_STEP
        self._send(HistoryRequest(state.name, after=state.gap, limit=min(CATCH_UP_PAGE, self.CATCH_UP_STEP)))
        return True

    def _fill_gap(self, room: RoomState, page: History) -> None:
        """A page of a paused catch-up: reported for the place of the pause (up to where the gap ends)."""
        room.fill_after = None
        end = room.gap_end
        shown = [m for m in page.messages if end is None or m.id < end]
        closed = not page.more or not shown or len(shown) < len(page.messages)
        fresh = []
        for m in shown:
            if self._awaits_ack(m):
                self._on_message(m)  # ours, stored before the connection dropped: its acknowledgement
            elif m.id not in self._seen_ids:
                self._remember_id(m.id, None)  # (not the room's: this message does not end the gap)
                room.last_id = max(room.last_id, m.id)
                fresh.append(m)
        room.gap = None if closed else shown[-1].id
        room.step_left -= len(shown)
        self.missed_received.emit(History(tuple(fresh), room.name, after=page.after, more=not closed))
        self._report_changes(page)
        if room.gap is not None and room.step_left > 0:
            room.fill_after = room.gap
            self._send(HistoryRequest(room.name, after=room.gap, limit=min(CATCH_UP_PAGE, room.step_left)))

    def _older_page(self, room: RoomState, page: History) -> None:
        """The latest page after a join, or an older one: reported without what was seen already."""
        fresh = []
        for m in page.messages:
            if self._awaits_ack(m):
                self._on_message(m)  # stored before the connection dropped: this is its acknowledgement
            elif page.before is not None:
                fresh.append(m)  # older than any shown: seen before perhaps, but let go since (a trimmed log)
            elif m.id not in self._seen_ids:
                self._remember_id(m.id, room)
                fresh.append(m)
        self.history_received.emit(History(tuple(fresh), room.name, before=page.before, more=page.more))

    def _remember_id(self, mid: int, room: RoomState | None) -> None:
        self._seen_ids.add(mid)
        self._seen_order.append(mid)
        if len(self._seen_order) > SEEN_IDS:
            self._seen_ids.discard(self._seen_order.popleft())
        if room is not None and mid > room.last_id:
            room.last_id = mid
        if room is not None and room.gap is not None and room.gap_end is None and mid > room.gap:
            room.gap_end = mid
