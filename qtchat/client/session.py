"""The client's connection to one server, as the rest of the client sees it: ``ChatClient``.

``ChatClient`` is a QObject that holds no widgets and no presentation; everything it learns it reports
through signals, as data and codes (the words are the widgets' to choose). It is built in three layers,
one job each:

- ``ClientLink`` (link.py): the socket, TLS and its pins, the login, noticing a loss and why (as a
  ``Reason``), reconnecting with backoff, latency, quitting;
- ``ChatRooms`` (rooms.py): the rooms we are in, their user lists and topics, history pages and search;
- ``ChatClient`` (here): messages and the outbox, messages kept for us while offline, the account and
  operator requests, the server's errors, and the tables that hand each event to its handler.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from qtchat.protocol import (
    DEFAULT_ROOM,
    MAX_AWAY_MESSAGE,
    AccountStatus,
    BanRequest,
    Bye,
    Delivered,
    Error,
    ErrorCode,
    Event,
    History,
    Joined,
    KickRequest,
    Left,
    Message,
    MessageDeleted,
    MessageEdited,
    Notice,
    PasswordChange,
    Ping,
    Pong,
    ProtocolError,
    Reactions,
    Register,
    RoomJoined,
    RoomList,
    RoomState,
    SearchResults,
    SendMessage,
    SetAway,
    SetBack,
    TopicChanged,
    TypingChanged,
    TypingThrottle,
    UserAway,
    UserBack,
    UserList,
    Welcome,
    check_text,
    clean_line,
    name_key,
)

from .link import ClientState
from .pins import PinStore
from .reasons import Failure
from .rooms import ChatRooms
from .rooms import RoomState as RoomEntry

log = logging.getLogger("qtchat.client")

Handler = Callable[["ChatClient", Any], None]
FRAME_OVERHEAD = 200  # what a msg frame adds to its text, about
SLOW_DOWN_RANGE = (0.2, 30.0)  # seconds: how long a slow_down may hold a message back
AWAY_LIMIT = "away_changes_burst"  # in welcome.limits: the server knows away and back


class ChatClient(ChatRooms):
    """One user's connection to one server.

    Signals:
        state_changed(state): a ClientState value.
        logged_in(Welcome): the server accepted us (again, after a reconnect).
        login_failed(code, Reason): the first login was refused or the server could not be
            reached; no retry follows. ``code`` is the server's error code (an ErrorCode value) or a
            Failure value: "network", "kicked", "timeout", "tls_unavailable", or (at any attempt,
            reconnects included) "certificate_unknown" / "certificate_changed". The Reason says why.
        certificate_unknown(host, port, fingerprint, summary): with TLS, the server's certificate
            cannot be verified and nothing is pinned for host:port; trust_certificate() and connect
            again to go on. login_failed follows.
        certificate_changed(host, port, pinned, presented): with TLS, the server presented another
            certificate than the one pinned: its identity changed. login_failed follows.
        connection_lost(Reason): an established connection dropped; a reconnect follows.
        reconnect_scheduled(seconds): the next attempt is this far away.
        message_received(Message): a chat message, own ones included, each id once. A private one with
            ``held`` set was kept for its recipient while offline: to us, it comes after a login, and
            the server is told it arrived once every slot connected to this signal has handled it (a
            redelivered one is confirmed again, not reported twice); from us, it is the acknowledgement
            of a message the recipient gets at their next login.
        message_acked(cid, Message): the server accepted one of our messages.
        message_failed(cid, code, text): the server refused one of our messages (its code and words).
        room_joined(RoomInfo): we are in this room (the lobby after each login, others as joined).
        room_left(name): we left a room (or the server refused it: see join_failed).
        join_failed(name, text): the server refused to let us into a room (its words).
        room_list(list[RoomInfo]): the server's rooms, as asked for with request_rooms.
        topic_changed(room, topic, by): a room's topic changed.
        room_modes(RoomState): a room's creator, operators and modes (after joining it, and when they
            change: ``by`` says who changed them); also kept as ``rooms[key].modes``.
        removed_from_room(room, by, reason): a room operator removed us from the room (room_left follows).
        account_changed(registered, operator): what the server says of our name's account.
        password_changed(): the server took our new password (change_password); reconnects use it.
        password_change_failed(code, text): it did not (``auth_failed``: the old password is wrong;
            ``bad_password``, ``account_required``, ``too_many_attempts``, ``server_busy``, with the
            server's words; or ``network``, with no text, when the connection dropped before the answer).
        users_reset(room, list): a room's full user list (after each login or join); who of them is away
            is in ``rooms[key].away`` (name -> message).
        away_changed(room, name, away, message): someone in a room went away (``message``: theirs, maybe
            empty; said again when it changes) or came back (``away`` false), ourselves included.
        my_away_changed(away, message): our own away state as set_away/set_back set it (told to the server
            when online, and again after each login).
        user_joined(room, name), user_left(room, name, reason).
        server_error(code, text): a non-fatal error not tied to a message (the server's code and words).
        message_edited(room, id, text, edited): a message of a room has a new text (live, or found
            changed while catching up); ``edited``: when (ms). Not news: nothing to notify.
        message_deleted(room, id, by): a message of a room was deleted (``by``: who; "" when found while
            catching up). Ask for them with edit_message / delete_message.
        reactions_changed(room, id, counts, mine): a message's reactions (emoji -> how many); ``mine``: our
            own (a tuple) when we changed them, else None (ours did not change). Give one with react().
        edit_failed(code, text): the server refused an edit, a deletion or a reaction (no_such_message,
            not_author, too_late, slow_down, ...; its words).
        notice_received(text): a notice from the server's operator.
        history_received(History): a page of older messages (the latest page after the first login,
            or one asked for with request_older), messages already shown left out. Messages missed
            while disconnected arrive as message_received instead, in order, at most CATCH_UP_STEP
            (500) per room: then catch_up_paused.
        catch_up_paused(room): more was missed than a step; the live messages follow now, and
            load_missed(room) asks for the next step of those missed (missed_received).
        missed_received(History): a page of a paused catch-up, for the place of the pause, messages
            already shown left out; ``more`` while some are still missing there.
        context_received(History): a page asked for with request_context (around a search result, or
            before/after such a page), not filtered: it is shown apart from the live conversation.
        search_results(SearchResults): the answer to search().
        search_failed(code, text): the server refused the search (search_too_broad: too many words, or it
            would take too long; no_such_room: a room we are not in).
        pending_changed(count): messages waiting for their acknowledgement.
        typing_received(TypingChanged): who started or stopped typing in a room (``on``, ``off``), or to us
            privately (no ``room``); the Workspace's ``typists`` keeps who types where, expiring them.
        latency_changed(ms): round trip of the last ping.
        closed(): quit() finished.
    """

    message_received = Signal(object)
    message_acked = Signal(str, object)
    message_failed = Signal(str, str, str)
    account_changed = Signal(bool, bool)
    password_changed = Signal()
    password_change_failed = Signal(str, str)
    server_error = Signal(str, str)
    edit_failed = Signal(str, str)
    notice_received = Signal(str)
    pending_changed = Signal(int)
    my_away_changed = Signal(bool, str)
    typing_received = Signal(object)

    def __init__(self, parent: QObject | None = None, pins: PinStore | None = None) -> None:
        super().__init__(parent, pins)
        self.registered = False
        self.operator = False
        self._new_password: str | None = None  # sent in a passwd frame, not answered yet
        self._mention: re.Pattern[str] | None = None
        self._outbox: OrderedDict[str, SendMessage] = OrderedDict()
        self._cid_prefix = secrets.token_hex(4)
        self._cid_counter = 0
        self._held_upto = 0  # the newest private message kept for us while offline received on this connection
        self._held_confirmed = 0  # ...and the newest we confirmed
        self._confirm_timer = self._timer(self._confirm_held, single=True)  # once per batch, after it is handled
        self._confirm_timer.setInterval(0)
        # the outbox keeps the order typed on the wire: a message goes only after every one before it in the
        # outbox was sent on this connection, and while messages refused with slow_down wait nothing new goes
        self._in_flight: set[str] = set()  # sent on this connection, not answered yet
        self._slowed: set[str] = set()  # refused with slow_down: resent together, in the outbox's order
        self._resend_due = False  # the wait is over, but messages sent before the resend are still unanswered
        self._slow_timer = self._timer(self._resend_slowed, single=True)
        self.away: str | None = None  # we are away, with this message (maybe empty); None: here
        self.away_auto = False  # ... set by the idle timer (away.py): the next activity ends it
        self._away_told: tuple[str | None] | None = None  # what the server knows of it, as we told it (None: unsure)
        self._away_timer = self._timer(self._sync_away, single=True)  # a slow_down's wait before telling it again
        self.send_typing = True  # tell others when the user types (the setting); stops are sent regardless
        self._typing_out = TypingThrottle(time.monotonic())

    # ------------------------------------------------------------ public API

    def send_text(self, text: str, room: str = DEFAULT_ROOM, to: str | None = None, reply_to: int | None = None) -> str:
        """Queue a chat message and send it as soon as we are online; returns its cid.

        Raises ValueError (with a sentence for the user) for text the server would refuse.
        With ``to``, a private message to that user instead of the room; ``reply_to``: answering that message.
        """
        try:
            check_text(text)
        except ProtocolError as exc:
            raise ValueError(exc.message) from None
        limit = self.welcome.max_frame if self.welcome else 65536
        size = len(text.encode("utf-8", "surrogatepass"))
        if size + FRAME_OVERHEAD > limit:
            raise ValueError(f"The message is too long: {size:,} bytes; this server takes about "
                             f"{limit - FRAME_OVERHEAD:,}.")
        self._cid_counter += 1
        cid = f"{self._cid_prefix}-{self._cid_counter}"
        event = SendMessage(text=text, room=room, cid=cid, to=to, reply_to=reply_to)
        self._typing_out.sent(room, to)  # the message ends our typing there, for every receiver
        self._outbox[cid] = event
        self._send_outbox()
        self.pending_changed.emit(len(self._outbox))
        return cid

    def set_typing(self, on: bool, room: str = DEFAULT_ROOM, to: str | None = None) -> None:
        """The user typed (``on``) in a room, or to ``to``, or emptied the input there: the server is told of a
        start at once and again at most every 3 s while it goes on, of a stop only after a start, and of nothing
        after a message (it is the stop); nothing of a start while offline, with ``send_typing`` off, to a server
        that does not announce typing (welcome.limits.typing_members: an older one would answer unknown_type), or
        in a room with more members than the server relays typing in."""
        if self.state is not ClientState.ONLINE or (on and not self._may_type(room, to)):
            return
        event = self._typing_out.change(on, time.monotonic(), room, to)
        if event is not None:
            self._send(event)

    def _may_type(self, room: str, to: str | None) -> bool:
        if not self.send_typing:
            return False
        limits = self.welcome.limits if self.welcome is not None else {}
        if "typing_members" not in limits:
            return False
        limit = int(limits["typing_members"])
        entry = self.rooms.get(name_key(room)) if to is None else None
        return not (limit > 0 and entry is not None and len(entry.users) > limit)

    @property
    def pending(self) -> list[SendMessage]:
        return list(self._outbox.values())

    def is_mention(self, text: str) -> bool:
        """Does the text name us (as a word, in any case)?"""
        return self._mention is not None and self._mention.search(text) is not None

    def register_name(self, password: str) -> None:
        """Protect our name with a password; account_changed follows (or server_error says why not).
        Raises ValueError (a sentence for the user) while offline."""
        if self.state is not ClientState.ONLINE:
            raise ValueError("Not connected.")
        self.password = password
        self._send(Register(password))

    def change_password(self, old: str, new: str) -> None:
        """Change our registered name's password; password_changed or password_change_failed follows.
        Raises ValueError (a sentence for the user) while offline, unregistered, or already changing it."""
        if self.state is not ClientState.ONLINE:
            raise ValueError("Not connected.")
        if not self.registered:
            raise ValueError(f"The name {self.me} is not registered: there is no password to change.")
        if self._new_password is not None:
            raise ValueError("A password change is under way already.")
        if not old or not new:
            raise ValueError("Both the current and the new password are needed.")
        self._new_password = new
        self._send(PasswordChange(old, new))

    @property
    def changing_password(self) -> bool:
        """A password change was sent and not answered yet."""
        return self._new_password is not None

    def kick(self, user: str, reason: str = "") -> None:
        """An operator's kick; raises ValueError while offline or without the operator role."""
        self._operator_request(KickRequest(user, reason))

    def ban(self, user: str, minutes: int | None = None, reason: str = "") -> None:
        """An operator's ban of a name (for good without minutes)."""
        self._operator_request(BanRequest(user, minutes, reason))

    def set_away(self, message: str = "", *, auto: bool = False) -> None:
        """Be away, with an optional message for the others (one line, trimmed, at most MAX_AWAY_MESSAGE
        characters); told to the server now when online, else at the next login (and again after every
        reconnect) until set_back(); a server that does not announce away (server_knows_away) is told nothing. ``auto``: away because the user is idle (away.py): the next activity ends
        it, and a manual away is kept as it is. Raises ValueError for a message that is too long."""
        message = clean_line(message).strip()
        if len(message) > MAX_AWAY_MESSAGE:
            raise ValueError(f"An away message may be at most {MAX_AWAY_MESSAGE} characters long.")
        if auto and self.away is not None:
            return  # away already (by hand, or idle still): nothing changes
        changed = self.away != message
        self.away, self.away_auto = message, auto
        if changed:
            self._sync_away()
            self.my_away_changed.emit(True, message)

    def set_back(self) -> None:
        """No longer away (a manual or an automatic away)."""
        if self.away is None:
            return
        self.away, self.away_auto = None, False
        self._sync_away()
        self.my_away_changed.emit(False, "")

    @property
    def server_knows_away(self) -> bool:
        """Does the server take away and back? It says so by announcing their limit (an older one would answer
        unknown_type): to one that does not, nothing is sent, and the state is ours alone."""
        return self.welcome is not None and AWAY_LIMIT in self.welcome.limits

    def _sync_away(self) -> None:
        """Tell the server our away state if it does not know it yet (and no slow_down wait is running)."""
        if self.state is not ClientState.ONLINE or self._away_timer.isActive() or self._away_told == (self.away,) \
                or not self.server_knows_away:
            return
        self._away_told = (self.away,)
        self._send(SetBack() if self.away is None else SetAway(self.away))

    def _away_refused(self, error: Error) -> None:
        """The server would not take an away or back: after a slow_down it is told again once the wait is over."""
        self._away_told = None
        if ErrorCode.parse(error.code) is ErrorCode.SLOW_DOWN:
            low, high = SLOW_DOWN_RANGE
            self._away_timer.start(int(max(low, min(error.retry_after or 1.0, high)) * 1000))
        else:
            self.server_error.emit(error.code, error.message)

    def _operator_request(self, event: KickRequest | BanRequest) -> None:
        if self.state is not ClientState.ONLINE:
            raise ValueError("Not connected.")
        if not self.operator:
            raise ValueError("Only operators may kick or ban.")
        self._send(event)

    # ------------------------------------------------------------ the link's hooks

    def _forget_server(self) -> None:
        self._reset_resends()
        if self._outbox:
            log.info("dropping %d unsent message(s) meant for %s:%d", len(self._outbox), self.host, self.port)
            self._outbox.clear()
            self.pending_changed.emit(0)
        super()._forget_server()

    def _new_connection(self) -> None:
        self._held_upto = self._held_confirmed = 0  # confirmations are per connection
        self._confirm_timer.stop()
        self._away_told = (None,)  # a new login is here until it says otherwise
        self._away_timer.stop()
        self._typing_out.reset()
        super()._new_connection()

    def _link_down(self) -> None:
        if self._new_password is not None:
            self._new_password = None
            self.password_change_failed.emit(Failure.NETWORK, "")

    # ------------------------------------------------------------ events, by table

    def _dispatch(self, event: Event) -> None:
        """Hand the event to its handler: before the welcome only the handshake's events count."""
        table = SESSION_HANDLERS if self.state is ClientState.ONLINE else HANDSHAKE_HANDLERS
        handler = table.get(type(event))
        if handler is not None:
            handler(self, event)

    def _on_welcome(self, welcome: Welcome) -> None:
        self._mention = re.compile(rf"(?<!\w){re.escape(welcome.user)}(?!\w)", re.IGNORECASE)
        self._login_done(welcome)
        self._join_rooms(welcome.rooms)
        # what was typed offline, or never acknowledged: the server answers in order, so each
        # room's join (and catch-up request) is ahead of its messages
        self._reset_resends()
        self._send_outbox()  # those to a room being joined go once it is (_room_ready)
        self._sync_away()  # away still (or set while offline): the others are told again
        self._send_ping()

    def _reset_resends(self) -> None:
        """A new connection (or server): nothing of the outbox is on its way, nothing waits to be resent."""
        self._in_flight.clear()
        self._slowed.clear()
        self._resend_due = False
        self._slow_timer.stop()

    def _send_outbox(self) -> None:
        """Send, in the outbox's order, what is not on its way yet: held back while messages refused with
        slow_down wait for their resend (they go first, in the order typed, then the ones typed meanwhile)."""
        if self.state is not ClientState.ONLINE or self._slowed:
            return
        for cid, event in self._outbox.items():
            if cid not in self._in_flight and not self._waits_for_join(event):
                self._in_flight.add(cid)
                self._send(event)

    def _waits_for_join(self, event: SendMessage) -> bool:
        """A message to a room we are joining: held until the server says we are in (a server may take the
        join's answer from its database, and a message before it would be refused with no_such_room)."""
        room = self.rooms.get(name_key(event.room)) if event.to is None else None
        return room is not None and not room.joined

    def _room_ready(self, room: RoomEntry) -> None:
        self._send_outbox()  # the room's messages that waited for it

    def _room_refused(self, name: str, text: str) -> bool:
        """A room we asked for was refused: the messages that waited for it are refused with it."""
        if not super()._room_refused(name, text):
            return False
        key = name_key(name)
        for cid in [c for c, e in self._outbox.items() if e.to is None and name_key(e.room) == key]:
            del self._outbox[cid]
            self.message_failed.emit(cid, ErrorCode.NO_SUCH_ROOM.value, text)
        self.pending_changed.emit(len(self._outbox))
        return True

    def _on_message_event(self, event: Message) -> None:
        room = self.rooms.get(name_key(event.room)) if event.to is None else None
        if room is not None and room.held is not None:
            room.held.append(event)  # catching up: it waits for the missed ones
            return
        if room is None and event.to is None:
            return  # a room we left
        self._on_message(event)
        if event.held and event.to is not None and name_key(event.to) == name_key(self.me):
            # kept for us while we were offline: confirmed once handled (a redelivered one too)
            self._held_upto = max(self._held_upto, event.id)
            if not self._confirm_timer.isActive():
                self._confirm_timer.start()

    def _on_message(self, msg: Message) -> None:
        if msg.id in self._seen_ids:
            return  # already shown (a resend's repeated acknowledgement, or history seen live)
        self._remember_id(msg.id, self.rooms.get(name_key(msg.room)) if msg.to is None else None)
        if self._awaits_ack(msg):
            assert msg.cid is not None
            del self._outbox[msg.cid]
            self._answered(msg.cid)
            self.message_acked.emit(msg.cid, msg)
            self.pending_changed.emit(len(self._outbox))
        self.message_received.emit(msg)

    def _awaits_ack(self, msg: Message) -> bool:
        return msg.cid is not None and msg.sender == self.me and msg.cid in self._outbox

    def _on_account(self, event: AccountStatus) -> None:
        self.register_on_login = False  # done: from now on the name logs in with its password
        self.registered, self.operator = event.registered, event.admin
        if event.password_changed and self._new_password is not None:
            self.password, self._new_password = self._new_password, None  # for the next reconnect
            self.password_changed.emit()
        self.account_changed.emit(event.registered, event.admin)

    def _on_typing(self, event: TypingChanged) -> None:
        self.typing_received.emit(event)

    def _on_notice(self, event: Notice) -> None:
        self.notice_received.emit(event.text)

    def _on_error(self, error: Error) -> None:
        code = ErrorCode.parse(error.code) or ErrorCode.INTERNAL
        if error.fatal:
            self._fatal = error  # the loss that follows reports it
        elif error.ref == "passwd" and self._new_password is not None:
            self._new_password = None
            self.password_change_failed.emit(error.code, error.message)
        elif error.ref == "typing":  # typing_too_fast: our typing notices are not worth the user's attention
            log.debug("typing notice refused: %s", error.message)
        elif error.ref == "search":  # search_too_broad, or no_such_room for a room we are no longer in
            self.search_failed.emit(error.code, error.message)
        elif error.ref is not None and error.ref.startswith(("edit:", "delete:", "react:")):
            self.edit_failed.emit(error.code, error.message)
        elif error.ref in ("away", "back"):
            self._away_refused(error)
        elif code in (ErrorCode.ROOM_INVALID, ErrorCode.TOO_MANY_ROOMS, ErrorCode.INVITE_ONLY) and \
                error.ref is not None and self._joining(error.ref):
            if not self._room_refused(error.ref, error.message):
                self.server_error.emit(error.code, error.message)
        elif error.ref is not None and error.ref in self._outbox:
            self._message_refused(code, error)
        else:
            self.server_error.emit(error.code, error.message)

    def _message_refused(self, code: ErrorCode, error: Error) -> None:
        cid = error.ref
        assert cid is not None
        if code is ErrorCode.SLOW_DOWN:
            # the server wants us to wait: the message stays queued and goes again when allowed, with the
            # others refused meanwhile, in the order they were first sent (the server keeps that order)
            low, high = SLOW_DOWN_RANGE
            delay = int(max(low, min(error.retry_after or 1.0, high)) * 1000)
            self._slowed.add(cid)
            if not self._slow_timer.isActive() or self._slow_timer.remainingTime() < delay:
                self._slow_timer.start(delay)
            self._answered(cid)
            return
        del self._outbox[cid]
        self._answered(cid)
        self.message_failed.emit(cid, error.code, error.message)
        self.pending_changed.emit(len(self._outbox))

    def _answered(self, cid: str) -> None:
        """The server answered a message it was sent: the resend that waited for the last answer may go."""
        self._in_flight.discard(cid)
        if self._resend_due and not self._in_flight and not self._slow_timer.isActive():
            self._resend_slowed()

    def _resend_slowed(self) -> None:
        """The wait the server asked for is over: the refused messages go again, in the outbox's order, once
        every message sent before them is answered (one of those refused too goes first, not after them)."""
        if self.state is not ClientState.ONLINE:
            return
        if self._in_flight:
            self._resend_due = True  # _answered() resends after the last answer
            return
        self._resend_due = False
        self._slowed.clear()
        self._send_outbox()

    def _confirm_held(self) -> None:
        """Tell the server we have the held messages received so far: it deletes them, and sends the next batch."""
        if self.state is ClientState.ONLINE and self._held_upto > self._held_confirmed:
            self._held_confirmed = self._held_upto
            self._send(Delivered(self._held_upto))


# the handler of each event the server sends, by phase: before the welcome (the handshake), and logged in
HANDSHAKE_HANDLERS: dict[type, Handler] = {
    Welcome: ChatClient._on_welcome,
    Error: ChatClient._on_error,
    Ping: ChatClient._on_ping,
    Pong: ChatClient._on_pong,
    Bye: ChatClient._on_bye,
}
SESSION_HANDLERS: dict[type, Handler] = {
    Message: ChatClient._on_message_event,
    Joined: ChatClient._on_joined,
    Left: ChatClient._on_left,
    UserList: ChatClient._on_user_list,
    UserAway: ChatClient._on_away,
    UserBack: ChatClient._on_away,
    RoomJoined: ChatClient._on_room_joined_event,
    RoomState: ChatClient._on_room_modes,
    TopicChanged: ChatClient._on_topic,
    History: ChatClient._on_history,
    SearchResults: ChatClient._on_search_results,
    RoomList: ChatClient._on_room_list,
    AccountStatus: ChatClient._on_account,
    Notice: ChatClient._on_notice,
    TypingChanged: ChatClient._on_typing,
    Error: ChatClient._on_error,
    Ping: ChatClient._on_ping,
    Pong: ChatClient._on_pong,
    Bye: ChatClient._on_bye,
    MessageEdited: ChatClient._on_edited,
    MessageDeleted: ChatClient._on_deleted,
    Reactions: ChatClient._on_reactions,
}
