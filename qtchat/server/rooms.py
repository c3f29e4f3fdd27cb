"""Rooms and the fan-out: membership, topics, user lists, and each pass's shared-buffer writes.

Hot path: a room's frames of one event-loop pass wait in its ``pending`` list (a room
message's frame fills its slot once its pass is stored); at the flush each dirty room
joins them into one buffer and writes that same buffer to every member, so no
per-recipient Python work is done per message. A member that joins during a pass gets
only the part of the batch queued after it joined (``joiners`` keeps its index), so
nobody sees a message from before they arrived, and nobody misses one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from PySide6.QtCore import QByteArray

from qtchat.protocol import (
    DEFAULT_ROOM,
    MAX_ROOMS_PAGE,
    ErrorCode,
    Joined,
    JoinRoom,
    Left,
    Message,
    PartRoom,
    ProtocolError,
    RoomInfo,
    RoomJoined,
    RoomList,
    RoomsRequest,
    SendableEvent,
    SetTopic,
    TopicChanged,
    UsersRequest,
    encode_event,
    encode_name,
    encode_user_lists,
    name_key,
    names_per_frame,
    validate_name,
)

from .backend import StoredMessage, then
from .cluster import Cluster
from .config import ServerConfig
from .peer import Connections, User, now_ms
from .room_state import RoomRecord, RoomRecords

log = logging.getLogger("qtchat.server")


class Room:
    """A room: its members and the frames waiting for this pass's flush."""

    __slots__ = ("away", "encoded_names", "joiners", "key", "members", "name", "names", "pending", "topic")

    def __init__(self, name: str, topic: str = "") -> None:
        self.name = name
        self.key = name_key(name)  # rooms compare like usernames; the history is kept under this
        self.topic = topic
        self.members: set[User] = set()
        self.names: dict[str, str] = {}  # name key -> display name, in join order
        self.encoded_names: dict[str, bytes] = {}  # name key -> the name as a JSON string
        self.away: dict[bytes, bytes] = {}  # encoded name -> its entry in a users frame's away (presence.py)
        self.pending: list[bytes] = []
        self.joiners: dict[User, int] = {}  # joined this pass -> index of the first frame of theirs in pending


@dataclass(slots=True)
class Batch:
    """One room's frames of one pass, taken off the room for the flush."""

    room: Room
    frames: list[bytes]
    joiners: dict[User, int]


class Rooms:
    """Every room, the session handlers about rooms, and the fan-out.

    ``schedule(urgent)`` asks the core for a flush (urgent: this pass; else within the notice
    delay); ``describe(user, room, members)`` answers a room's RoomInfo with the user's read
    marker and unread count.
    """

    def __init__(self, config: ServerConfig, connections: Connections, *, schedule: Callable[[bool], None],
                 describe: Callable[[User, Room, int | None], Future[RoomInfo]],
                 publish: Callable[[str, bytes], None], records: RoomRecords, presence: Cluster | None = None) -> None:
        self.config = config
        self.presence = presence or Cluster()  # the members on other nodes of a cluster
        self.records = records
        self.connections = connections
        self.rooms: dict[str, Room] = {DEFAULT_ROOM: Room(DEFAULT_ROOM)}
        self.lobby = self.rooms[DEFAULT_ROOM]
        self.dirty: list[Room] = []
        self._schedule = schedule
        self._describe = describe
        self._publish = publish
        self.joining: dict[User, int] = {}  # users with joins whose room state is being read
        self.settled: Callable[[User], None] = lambda user: None  # their joins are answered
        self.entered: Callable[[User, Room, bool], None] = lambda user, room, moved: None  # joined (presence.py)
        self.taking: Callable[[], None] = lambda: None  # the pass's batches are about to be taken (typing_relay.py)
        self.total_bytes_out = 0

    # ------------------------------------------------------------ membership

    def member_room(self, user: User, name: str, ref: str | None = None) -> Room:
        """The room of that name the user is in; else ``no_such_room``."""
        room = self.rooms.get(name_key(name))
        if room is None or (user not in room.members and user not in room.joiners):
            raise ProtocolError(ErrorCode.NO_SUCH_ROOM, f"You are not in a room {name!r}.", ref=ref)
        return room

    def join(self, user: User, room: Room) -> None:
        presence = self.presence
        moved = presence.moved(room.key, user.key)
        if not moved:  # else: they were in it on a node that lost them: no news
            self.queue(room, encode_event(Joined(user.name, now_ms(), room.name)), urgent=False)
        presence.joined(room.key, room.name, user.key, user.name)
        room.names[user.key] = user.name
        room.encoded_names[user.key] = encode_name(user.name)
        room.joiners[user] = len(room.pending)
        user.rooms.append(room)
        self.entered(user, room, moved)
        self.send_user_list(user, room)

    def leave(self, user: User, room: Room, reason: str, by: str = "") -> None:
        room.members.discard(user)
        room.joiners.pop(user, None)
        room.names.pop(user.key, None)
        room.away.pop(room.encoded_names.pop(user.key, b""), None)
        if room in user.rooms:
            user.rooms.remove(room)
        if not user.moved:  # (else it is still in the room, on another node)
            self.queue(room, encode_event(Left(user.name, now_ms(), room.name, reason, by)), urgent=False)
        self.presence.left(room.key, user.key)
        if not room.names and room is not self.lobby:
            self.rooms.pop(room.key, None)  # its history and its record stay in the store

    def leave_all(self, user: User, reason: str) -> None:
        for room in list(user.rooms):
            self.leave(user, room, reason)
        self.records.drop_guest(user.key)

    def send_user_list(self, user: User, room: Room) -> None:
        names = list(room.encoded_names.values())
        names += self.presence.encoded_members(room.key, room.names)
        frames = encode_user_lists(room.name, names, names_per_frame(self.config.max_frame), room.away)
        for frame in frames:
            self.connections.write(user.peer, frame)

    def user_names(self, room: str = DEFAULT_ROOM) -> list[str]:
        """The room's members, on this node (first) and on the others of a cluster."""
        key = name_key(room)
        r = self.rooms.get(key)
        here = r.names if r else {}
        return list(here.values()) + [n for k, n in self.presence.members(key).items() if k not in here]

    def count(self, room: Room) -> int:
        """How many are in the room, in the whole cluster."""
        remote = self.presence.members(room.key)
        return len(room.names) + (sum(1 for k in remote if k not in room.names) if remote else 0)

    # ------------------------------------------------------------ session handlers

    def on_join(self, user: User, event: JoinRoom) -> None:
        raw = event.room
        try:
            name, key = validate_name(raw, what="room name")
        except ProtocolError as exc:
            raise ProtocolError(ErrorCode.ROOM_INVALID, exc.message, ref=raw) from None
        if not self._may_join(user, key, raw):
            return  # already there
        self._check_invite(user, key, raw)
        # the user's marker and unread count are read first; the room is made (if new) only then
        asked = self.rooms.get(key) or Room(name)

        def enter(info: RoomInfo) -> None:
            if user.peer.detached:
                return
            try:  # again: two joins at once, the room limit reached or the room made invite-only meanwhile
                if not self._may_join(user, key, raw):
                    return
                self._check_invite(user, key, raw)
            except ProtocolError as exc:
                self.connections.fail(user.peer, exc)
                return
            room = self.rooms.get(key)
            if room is None:
                room = self.rooms[key] = asked if not asked.names else Room(name)
                remote = self.presence.rooms().get(key)
                if remote is not None:  # in use on other nodes: their name and topic
                    room.name, room.topic = remote[0], self.presence.topic_of(key) or room.topic
                else:
                    log.info("%s created the room %r", user.name, room.name)
            self._send(user, RoomJoined(RoomInfo(room.name, room.topic, self.count(room) + 1, read=info.read,
                                                 unread=info.unread)))
            self._send(user, self.records.entered(key, room.name, user.key, user.name).event())
            self.join(user, room)

        self.joining[user] = self.joining.get(user, 0) + 1

        def settled() -> None:  # what the user sent after the join is acted upon now (core.py holds it)
            left = self.joining.pop(user, 1) - 1
            if left:
                self.joining[user] = left
            else:
                self.settled(user)

        failed = self._failed(user, raw)

        def answered(info: RoomInfo) -> None:
            try:
                enter(info)
            finally:
                settled()

        def broken(exc: BaseException) -> None:
            try:
                failed(exc)
            finally:
                settled()

        then(self._describe(user, asked, None), answered, broken)

    def _may_join(self, user: User, key: str, ref: str) -> bool:
        """False when the user is in the room already; refused when they are in as many rooms as they may be."""
        room = self.rooms.get(key)
        if room is not None and (user in room.members or user in room.joiners):
            return False
        if len(user.rooms) >= self.config.max_rooms_per_user:
            raise ProtocolError(ErrorCode.TOO_MANY_ROOMS,
                                f"You are in {len(user.rooms)} rooms already; leave one first.", ref=ref)
        return True

    def _check_invite(self, user: User, key: str, ref: str) -> None:
        if key != self.lobby.key and not self.records.may_enter(key, user.key):
            record = self.records.get(key)
            raise ProtocolError(ErrorCode.INVITE_ONLY, f"{record.name if record else ref} is invite-only: ask one of "
                                "its operators for an invite.", ref=ref)

    def on_part(self, user: User, event: PartRoom) -> None:
        room = self.member_room(user, event.room)
        if room is self.lobby:
            raise ProtocolError(ErrorCode.ROOM_INVALID, "Everyone stays in the lobby.")
        self.leave(user, room, "part")

    def on_topic(self, user: User, event: SetTopic) -> None:
        room = self.member_room(user, event.room)
        room.topic = event.topic
        self.presence.set_topic(room.key, event.topic)
        self.queue(room, encode_event(TopicChanged(room.name, event.topic, user.name, now_ms())))

    def on_users(self, user: User, event: UsersRequest) -> None:
        self.send_user_list(user, self.member_room(user, event.room))

    def on_rooms(self, user: User, event: RoomsRequest) -> None:
        """A page of the rooms in the order of their keys, cut to the frame limit: a server with thousands
        of rooms (and long names and topics) answers in pages, never in one frame too large to read."""
        after = name_key(event.after) if event.after is not None else None
        remote = self.presence.rooms()
        keys = sorted({k for k, r in self.rooms.items() if (after is None or k > after)
                       and (self.records.listed(k) or user in r.members or user in r.joiners)}
                      | {k for k in remote if k not in self.rooms and (after is None or k > after)
                         and self.records.listed(k)})
        limit = event.limit or MAX_ROOMS_PAGE
        budget = self.config.max_frame - 100
        infos: list[RoomInfo] = []
        size = 0
        for key in keys[:limit]:
            room = self.rooms.get(key)
            info = RoomInfo(room.name, room.topic, self.count(room)) if room is not None else \
                RoomInfo(remote[key][0], self.presence.topic_of(key) or "", remote[key][1])
            cost = len(info.name) * 6 + len(info.topic) * 6 + 48  # at most, escapes and all
            if infos and size + cost > budget:
                break
            infos.append(info)
            size += cost
        self._send(user, RoomList(tuple(infos), more=len(infos) < len(keys)))

    def _send(self, user: User, event: SendableEvent) -> None:
        self.connections.send(user.peer, event)

    def _failed(self, user: User, ref: str | None) -> Callable[[BaseException], None]:
        def report(exc: BaseException) -> None:
            log.error("reading the state of a room for %s: %s", user.name, exc)
            self.connections.fail(user.peer, ProtocolError(ErrorCode.INTERNAL, "The server could not read that room.",
                                                           ref=ref))
        return report

    # ------------------------------------------------------------ the fan-out

    def queue(self, room: Room, frame: bytes, *, urgent: bool = True) -> int:
        """Add a frame to the room's batch (chat goes out this pass, notices within the notice
        delay); returns its slot, so that a frame known only once stored can take its place."""
        pending = room.pending
        if not pending:
            self.dirty.append(room)
        pending.append(frame)
        self._schedule(urgent)
        return len(pending) - 1

    def take(self) -> list[Batch]:
        """This pass's frames, room by room, taken off the rooms (later frames start a new pass)."""
        self.taking()
        dirty, self.dirty = self.dirty, []
        batches = []
        for room in dirty:
            joiners = room.joiners
            batches.append(Batch(room, room.pending, joiners))
            room.pending = []
            if joiners:
                room.members.update(joiners)  # members from now on: later frames go to them whole
                room.joiners = {}
        return batches

    def send_remote(self, room: Room, frames: list[bytes]) -> None:
        """Frames another node sent (or the database gave) for the room: to every member here, those who joined
        in this pass too (what they get of this pass's own frames comes after, and was stored after)."""
        self.send([Batch(room, frames, {})], publish=False)
        if room.joiners:
            data = b"".join(frames)
            for user in room.joiners:
                if user.socket.isValid():
                    user.socket.write(data)
                    user.peer.bytes_out += len(data)

    def send(self, batches: list[Batch], *, publish: bool = True) -> None:
        """Write each batch, as one shared buffer, to every member of its room (those who joined in this pass:
        only their part), and hand it to the backend for the room's members on other nodes (unless it came
        from there)."""
        limit = self.config.max_output
        slow: list[User] = []
        for batch in batches:
            room = batch.room
            data = b"".join(batch.frames)
            if not data:
                continue  # only empty slots: resends the store recognised (journal.py), acknowledged to their senders
            size = len(data)
            joiners = batch.joiners
            shared = QByteArray(data)
            for member in room.members:
                if joiners and member in joiners:
                    continue  # their part, below
                sock = member.socket
                if not sock.isValid():
                    continue  # failed on an earlier write; reaped once this pass is over
                # what is still unsent from earlier passes (the loop has flushed it since) is what says a
                # client is not reading; this pass's own bytes are not sent until the loop's next turn
                if sock.bytesToWrite() > limit:
                    slow.append(member)
                sock.write(shared)
                member.peer.bytes_out += size
            self.total_bytes_out += size * (len(room.members) - sum(1 for j in joiners if j in room.members))
            if publish:
                self._publish(room.key, data)
            for member, first in joiners.items():
                part = b"".join(batch.frames[first:])
                if member in room.members and part and member.socket.isValid():
                    if member.socket.bytesToWrite() > limit:
                        slow.append(member)
                    member.socket.write(part)
                    member.peer.bytes_out += len(part)
        for member in slow:
            if not member.peer.detached:
                self.connections.drop_slow(member.peer)


class RoomSink:
    """The backend's ``RemoteSink``: what other nodes of a cluster send, to this node's members of the room."""

    def __init__(self, rooms: Rooms) -> None:
        self.rooms = rooms

    def deliver_remote(self, room_key: str, frames: bytes) -> None:
        """Frames another node stored and sent for a room: to this node's members of it, as they are."""
        room = self.rooms.rooms.get(room_key)
        if room is not None:
            self.rooms.send_remote(room, [frames])

    def deliver_stored(self, room_key: str, messages: list[StoredMessage]) -> None:
        """Messages another node stored that reached this one from the database: to this node's members."""
        room = self.rooms.rooms.get(room_key)
        if room is not None and messages:
            self.rooms.send_remote(room, [encode_event(Message(id=m.id, ts=m.ts, sender=m.sender, text=m.text,
                                                               room=room.name, cid=m.cid)) for m in messages])

    def watching(self, room_key: str) -> bool:
        room = self.rooms.rooms.get(room_key)
        return room is not None and bool(room.members or room.joiners)

    def room_changed(self, record: RoomRecord) -> None:
        """Another node changed the room's record (modes, operators, invites): this node decides by it now."""
        self.rooms.records.reloaded(record)
