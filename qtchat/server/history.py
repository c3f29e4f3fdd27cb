"""History: pages of a room's messages, pages around one message, search, and read markers.

Every read waits until what was accepted so far is stored (``Journal.when_stored``),
so a page or a search sees a message acknowledged a moment ago. Each answer is cut to
the frame limit by the real size of its messages. Markers only move forward and are
stored with the pass (with its messages, in the same transaction).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future

from qtchat.protocol import (
    UNREAD_CAP,
    ErrorCode,
    History,
    HistoryRequest,
    MarkRead,
    Message,
    ProtocolError,
    RoomInfo,
    SearchRequest,
    SearchResults,
    encode_event,
    encode_frame,
)
from qtchat.protocol.events import MAX_SEARCH_WORDS, search_result_wire

from .backend import Around, Backend, Page, StoredMessage, Tallies, done, then
from .config import ServerConfig
from .journal import Journal
from .peer import Connections, User
from .rooms import Room, Rooms
from .store import SearchTooCostly, query_words

log = logging.getLogger("qtchat.server")

SEARCH_REF = "search"  # the ``ref`` of an error that answers a ``search``


class HistoryService:
    def __init__(self, config: ServerConfig, backend: Backend, connections: Connections, rooms: Rooms,
                 journal: Journal) -> None:
        self.config = config
        self.backend = backend
        self.connections = connections
        self.rooms = rooms
        self.journal = journal

    def _failed(self, user: User, what: str) -> Callable[[BaseException], None]:
        def report(exc: BaseException) -> None:
            log.error("%s for %s: %s", what, user.name, exc)
            self.connections.fail(user.peer, ProtocolError(ErrorCode.INTERNAL,
                                                           f"The server could not read the {what}."))
        return report

    # ------------------------------------------------------------ pages

    def on_history(self, user: User, request: HistoryRequest) -> None:
        room = self.rooms.member_room(user, request.room)
        if not self.backend.history:
            self.connections.send(user.peer, History((), room.name, before=request.before, after=request.after,
                                                     around=request.around))
            return
        floor = self.rooms.records.floor(user.key, room.key)  # history "joined": nothing from before they came
        if request.around is not None:
            mid, limit = request.around, request.limit
            self.journal.when_stored(lambda: then(
                self.backend.around(room.key, mid, limit),
                lambda a: self._tallied(user, room, [*a.older, *a.newer],
                                        lambda t: self._send_around(user, room, mid, _above(a, floor), t)),
                self._failed(user, "history")))
            return
        after = request.after if floor is None or request.after is None else max(request.after, floor)
        failed = self._failed(user, "history")

        def changes(page: Page) -> None:  # a page after an id: the older messages changed since come with it
            if request.after is None:
                self._tallied(user, room, page.messages, lambda t: self._send_page(user, room, request, page, t))
                return
            then(self.backend.changed(room.key, request.after, request.limit),
                 lambda changed: self._tallied(user, room, [*page.messages, *changed.messages], lambda t: self._send_page(
                     user, room, request, page, t, changed=_page_above(changed, floor))), failed)

        self.journal.when_stored(lambda: then(
            self.backend.page(room.key, before=request.before, after=after, limit=request.limit),
            lambda page: changes(_page_above(page, floor)), failed))

    def _tallied(self, user: User, room: Room, messages: list[StoredMessage], send: Callable[[Tallies], None]) -> None:
        """``send`` with the reactions of those messages (the reader's own among them)."""
        then(self.backend.tallies(room.key, [m.id for m in messages], user.key), send, self._failed(user, "history"))

    def _send_page(self, user: User, room: Room, request: HistoryRequest, page: Page, tallies: Tallies, *,
                   changed: Page | None = None) -> None:
        budget = self.config.max_frame - 200
        msgs: list[Message] = []
        size = 0
        more = page.more
        rows = page.messages
        ordered = rows if request.after is not None else list(reversed(rows))  # the side to keep first
        for r in ordered:
            msg = _message(r, room, tallies)
            cost = len(encode_event(msg))  # the real size, escapes and all
            if msgs and size + cost > budget:
                more = True
                break
            msgs.append(msg)
            size += cost
        if request.after is None:
            msgs.reverse()
        edits: list[Message] = []
        edits_more = changed is not None and changed.more
        for r in changed.messages if changed is not None else ():
            msg = _message(r, room, tallies)
            cost = len(encode_event(msg))
            if size + cost > budget:
                edits_more = True
                break
            edits.append(msg)
            size += cost
        self.connections.send(user.peer, History(tuple(msgs), room.name, before=request.before, after=request.after,
                                                 more=more, changed=tuple(edits), changed_more=edits_more))

    def _send_around(self, user: User, room: Room, mid: int, found: Around, tallies: Tallies) -> None:
        """A history page centred on ``mid``; cut to the frame limit, it keeps the messages nearest it."""
        budget = self.config.max_frame - 200
        size = 0
        taken: list[list[Message]] = [[], []]  # older (nearest first), newer (nearest first)
        sides: list[list[StoredMessage]] = [found.older[::-1], found.newer]
        full = False
        for i in range(max(len(found.older), len(found.newer))):
            for side in (1, 0):  # the message itself first, then one older, one newer, ...
                if i >= len(sides[side]):
                    continue
                msg = _message(sides[side][i], room, tallies)
                cost = len(encode_event(msg))
                if (taken[0] or taken[1]) and size + cost > budget:
                    full = True
                    break
                taken[side].append(msg)
                size += cost
            if full:
                break
        more = found.more_older or len(taken[0]) < len(found.older)
        newer_more = found.more_newer or len(taken[1]) < len(found.newer)
        msgs = tuple(taken[0][::-1] + taken[1])
        self.connections.send(user.peer, History(msgs, room.name, more=more, around=mid, newer=newer_more))

    # ------------------------------------------------------------ search

    def on_search(self, user: User, request: SearchRequest) -> None:
        if len(query_words(request.query)) > MAX_SEARCH_WORDS:
            raise ProtocolError(ErrorCode.SEARCH_TOO_BROAD,
                                f"A search may have at most {MAX_SEARCH_WORDS} words; leave some out.", ref=SEARCH_REF)
        rooms = [self.rooms.member_room(user, request.room, ref=SEARCH_REF)] if request.room is not None else list(user.rooms)
        echo = rooms[0].name if request.room is not None else None  # only what the user may read now
        if not self.backend.history:
            self.connections.send(user.peer, SearchResults(request.query, (), echo, before=request.before))
            return
        names = {r.key: r.name for r in rooms}
        floors = {r.key: f for r in rooms if (f := self.rooms.records.floor(user.key, r.key)) is not None}
        self.journal.when_stored(lambda: then(
            self.backend.search(request.query, list(names), before=request.before, limit=request.limit),
            lambda page: self._send_results(user, request, names, echo, _found_above(page, floors)),
            self._search_failed(user)))

    def _search_failed(self, user: User) -> Callable[[BaseException], None]:
        internal = self._failed(user, "search")

        def report(exc: BaseException) -> None:
            if isinstance(exc, SearchTooCostly):
                self.connections.fail(user.peer, ProtocolError(
                    ErrorCode.SEARCH_TOO_BROAD, f"This search would take too long ({exc}): search for longer or "
                    "rarer words, or in one room.", ref=SEARCH_REF))
            else:
                internal(exc)
        return report

    def _send_results(self, user: User, request: SearchRequest, names: dict[str, str], echo: str | None,
                      page: Page) -> None:
        budget = self.config.max_frame - len(encode_event(SearchResults(request.query, (), echo, True,
                                                                        request.before))) - 16
        results: list[Message] = []
        size = 0
        more = page.more
        for r in page.messages:
            msg = Message(id=r.id, ts=r.ts, sender=r.sender, text=r.text, room=names.get(r.room, r.room),
                          edited=r.edited)
            cost = len(encode_frame(search_result_wire(msg)))  # its real size (and one for the comma)
            if results and size + cost > budget:
                more = True
                break
            results.append(msg)
            size += cost
        self.connections.send(user.peer, SearchResults(request.query, tuple(results), echo, more, request.before))

    # ------------------------------------------------------------ read markers

    def marker(self, user_key: str, room_key: str) -> Future[int | None]:
        mark = self.journal.marker(user_key, room_key)
        return done(mark) if mark is not None else self.backend.marker(user_key, room_key)

    def on_read(self, user: User, event: MarkRead) -> None:
        room = self.rooms.member_room(user, event.room)

        def move(stored: int | None) -> None:
            old = self.journal.marker(user.key, room.key)  # (one moved while the stored one was read)
            old = stored if old is None else old
            if old is not None and old >= event.id:
                return  # markers only move forward
            self.journal.mark(user.key, room.key, event.id)
            self.journal.schedule()  # stored with this pass's messages, in the same transaction

        then(self.marker(user.key, room.key), move, self._failed(user, "read marker"))

    def describe(self, user: User, room: Room, members: int | None = None) -> Future[RoomInfo]:
        """A room as welcome and room frames describe it, with the user's read marker and unread count."""
        result: Future[RoomInfo] = Future()

        def counted(mark: int | None, unread: int | None) -> None:
            if unread is not None:  # and those accepted this pass, stored at its end
                unread = min(unread + self.journal.unstored(room.key, user.key), UNREAD_CAP)
            result.set_result(RoomInfo(room.name, room.topic, members, read=mark, unread=unread))

        def marked(mark: int | None) -> None:
            if mark is None or not self.backend.history:
                counted(mark, None)
                return
            then(self.backend.unread(room.key, user.key, mark, UNREAD_CAP), lambda n: counted(mark, n),
                 result.set_exception)

        then(self.marker(user.key, room.key), marked, result.set_exception)
        return result


def _message(r: StoredMessage, room: Room, tallies: Tallies) -> Message:
    counts, mine = tallies.get(r.id, ({}, ())) if not r.deleted else ({}, ())  # (kept, but not shown)
    return Message(id=r.id, ts=r.ts, sender=r.sender, text=r.text, room=room.name, cid=r.cid, edited=r.edited,
                   deleted=r.deleted, reply_to=r.reply_to, reply_from=r.reply_from, reply_text=r.reply_text,
                   reactions=counts, mine=mine)



def _page_above(page: Page, floor: int | None) -> Page:
    """A page without the messages at or below the reader's join point; none lie beyond one cut there."""
    if floor is None:
        return page
    kept = [m for m in page.messages if m.id > floor]
    return page if len(kept) == len(page.messages) else Page(kept, False)


def _above(found: Around, floor: int | None) -> Around:
    if floor is None:
        return found
    older = [m for m in found.older if m.id > floor]
    newer = [m for m in found.newer if m.id > floor]
    return Around(older, newer, found.more_older and len(older) == len(found.older), found.more_newer)


def _found_above(page: Page, floors: dict[str, int]) -> Page:
    """Search results without those before the reader's join point in each room (newest first: the rest of
    a room that was cut lies below its floor too). ``more`` stays, unless nothing is left."""
    if not floors:
        return page
    kept = [m for m in page.messages if m.id > floors.get(m.room, 0)]
    if len(kept) == len(page.messages):
        return page
    return Page(kept, page.more and bool(kept))
