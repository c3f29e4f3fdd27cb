"""What each request costs the server, in work units (about a tenth of a millisecond of its time each).

Every frame a logged-in or logging-in client sends is paid from its connection's work bucket
(limits.WorkBucket: ``--rate-work`` units a second, ``--rate-work-burst`` at once) before it is
acted upon; a frame that finds too few units waits, with the connection's later frames behind it
(fakelag), so one client's requests, however many and however valid, take at most its share of the
event loop. Cheap frames cost little; history pages, searches, room lists and user lists cost by
the work they cause (their size), as measured: a page of 500 messages is about 5 ms of encoding and
reading, a search up to its time budget (history.py).
"""

from __future__ import annotations

from qtchat.protocol import (
    MAX_ROOMS_PAGE,
    BanRequest,
    Bye,
    Delivered,
    Hello,
    HistoryRequest,
    JoinRoom,
    KickRequest,
    MarkRead,
    PartRoom,
    PasswordChange,
    Ping,
    Pong,
    Register,
    RoomInvite,
    RoomKick,
    RoomMode,
    RoomOp,
    RoomsRequest,
    SearchRequest,
    SendMessage,
    SetAway,
    SetBack,
    SetTopic,
    Typing,
    UsersRequest,
    name_key,
)

from .rooms import Rooms
from .store import query_words

FIXED: dict[type, float] = {
    Pong: 0.0, Bye: 0.0, Ping: 1.0, MarkRead: 0.2, SendMessage: 0.5, Delivered: 0.5, Hello: 1.0, SetTopic: 1.0,
    Typing: 0.2, PartRoom: 1.0, KickRequest: 2.0, BanRequest: 2.0, Register: 5.0, PasswordChange: 5.0,
    RoomMode: 2.0, RoomOp: 2.0, RoomInvite: 2.0, RoomKick: 2.0,  # a write of the room's record each
    SetAway: 2.0, SetBack: 2.0,  # told to every room the user is in
}
OTHER = 1.0  # a frame of a kind not priced here


def price(event: object, rooms: Rooms) -> float:
    """The work units ``event`` costs."""
    kind = type(event)
    fixed = FIXED.get(kind)
    if fixed is not None:
        return fixed
    if isinstance(event, HistoryRequest):
        return 2.0 + event.limit / 10
    if isinstance(event, SearchRequest):
        return 20.0 + 5.0 * len(query_words(event.query))
    if isinstance(event, RoomsRequest):
        return 2.0 + (event.limit or MAX_ROOMS_PAGE) / 20
    if isinstance(event, UsersRequest | JoinRoom):
        room = rooms.rooms.get(name_key(event.room))
        return 2.0 + (len(room.names) / 50 if room is not None else 0.0)
    return OTHER
