"""The storage seam: everything the server core asks of storage and of other nodes.

``Backend`` is the one interface between the core and what outlives a connection:
message ids, storing a pass, history and search reads, read markers, mailboxes,
accounts, bans, and passing a pass to members connected to other nodes. The core
never opens a database itself.

The contract (what the core relies on; a new backend must keep every point):

1. **Futures, resolved on the event loop's thread.** Every read and write of the
   message store and of accounts answers with a ``concurrent.futures.Future``
   (standard library); the core continues in its done-callback (``then``) and never
   waits. A done-callback runs in the thread that resolves the future, so a backend
   resolves them on the Qt event loop's thread only (driven by the loop's own
   sockets, as ``QTcpSocket``/``QSocketNotifier``), never from a thread of its own.
   The SQLite backend answers reads at once (its futures are done when returned), and
   writes and searches when its agent processes answer (syncer.py, searcher.py);
   ``MemoryBackend(answer_later=True)`` answers a loop pass later, in the order asked,
   and the server's tests run on both.
2. **One pass at a time.** The core has at most one ``store_pass`` in flight; the next
   pass waits for its answer (journal.py). Reads may be answered in any order among
   themselves.
3. **Reading your own writes.** A read asked after a ``store_pass`` (or an account
   write) was answered sees what it stored; ``account()`` reflects an account write as
   soon as its future is done. The core asks history and search only once everything
   accepted so far is stored, and overlays read markers not stored yet itself.
4. **Ids.** Every id is a positive integer below 2**53, unique among all messages (room
   and private: a client keeps them in one set), and ids only grow. A room message's id
   comes from the store, when its pass is stored (``store_pass`` stamps ``Posted.id``
   before its future is done), and within a room ids must become *visible* in
   increasing order: a reader that resumes "after the last id I saw" must never skip
   one. A database sequence taken inside concurrent transactions does not give that
   (a smaller id can commit after a larger one); a per-room counter locked until the
   commit does. ``next_id()`` (private messages, kept ones too) answers at once and its
   ids also grow per recipient, since ``delivered`` confirms everything up to an id.
5. **A pass is stored whole or not at all.** ``store_pass`` fails (any exception) only
   when nothing of the pass was stored; the core then sends none of its messages,
   answers each sender ``internal``, and keeps its read markers and confirmations for
   the next pass (storing a marker or a confirmation twice must be harmless: markers
   only move forward, confirmations delete up to an id). A backend that cannot tell
   whether a commit happened (a dropped connection) must find out before it answers.
6. **Other nodes.** After each pass the core hands ``publish(room_key, frames)`` each
   room's frames as it wrote them to its own members (encoded protocol lines, newline
   terminated: stored messages with their ids, joins, leaves, topic changes, in order),
   and ``RemoteSink.deliver_remote(room_key, frames)`` (the sink given to ``attach``)
   writes what another node published to this node's members of the room, as it came,
   without publishing it again. What else a cluster must share (who is online where,
   so that a name is held once; private messages to a user on another node) is not in
   the seam yet: the core keeps those per node.
7. **Accounts, bans and room records are read from memory**: small, read on every login
   (``account()``, ``bans.match()``). Account writes answer with futures; a backend
   refuses ``create_account`` for a key that exists (a race between two nodes) with an
   exception. Ban writes (``bans.add``/``bans.remove``) take effect at once in memory,
   and the backend keeps them (one machine: ``bans.json``). A cluster's backend keeps
   its memory in step with the other nodes' writes, at once, and tells the sink what
   they changed (``RemoteSink.account_changed``, ``bans_added``, ``room_changed``), so
   the node acts on its own users as it would on a change made here.
8. **Resends are found by the store.** A client that lost its connection sends again, with
   the same cid, what it had not seen acknowledged, possibly to another node. ``store_pass``
   looks each room message with a cid up among the stored messages of its room by the same
   sender with the same cid and text, in the transaction that stores the pass (on PostgreSQL
   under the room's lock, so two nodes storing the same resend at once store it once). Such a
   message is not stored again and takes no place in the room's order: ``store_pass`` sets
   its ``again`` and gives it the stored message's ``id`` and ``ts``. The core acknowledges
   it to its sender alone and relays nothing (its slot in the room's batch stays empty).
   The core's own cache of each sender's latest cids (resends.py) answers most resends
   before they reach the store; on a cluster (and in memory) the store's check is the guarantee,
   however old the message (as long as the store keeps it: retention; with ``history`` False
   nothing is kept to find). One machine's SQLite does not look (the index it needs cost a third
   of every insert, BENCHMARKS.md): there the cache, loaded from the store at each login with the
   sender's newest 64, is the check, above what a client can have unacknowledged under the
   default rate limits (a burst of 20).

9. **Edits and deletions are checked by the store**, in the pass's transaction (``PassBatch.changes``): the
   message must be in that room and not deleted, and, when ``Change.author_key`` is set, be that sender's
   and no older than ``not_before``; the store stamps each ``result`` and ``sender``, replaces the text (a
   deletion leaves it empty, with ``deleted``), keeps the search index right in the same transaction (the
   old text is never found again, the new one is), and gives the change a ``seq`` from the sequence of
   message ids, taken as a message's id is (point 4: visible in order in the room), so ``changed(room,
   after)`` finds every change made after a client's last seen id. Pages, around pages, search results and
   ``changed`` carry each message's current text with ``edited``/``deleted``.

10. **Replies are quoted by the store.** A room message may answer another (``Posted.reply_to``); the store
   keeps the link and stamps ``reply_from``/``reply_text`` when it stores the pass: the parent's sender and
   the start of its text (``message_events.reply_quote``), both empty when the parent is not a message of that room,
   or is deleted. Pages, around pages and ``changed`` carry the quote as the parent is *now* (an edit or a
   deletion of the parent shows in every later page).

11. **Reactions are checked by the store** (``PassBatch.reactions``), in the pass's transaction: the message
   must be in that room and not deleted, and hold fewer than MAX_REACTIONS to get another; giving one twice
   or taking back one not given changes nothing. The store stamps each with the message's counts once it is
   applied and the user's own. ``tallies`` answers them for a page of messages.


Implementations: ``SqliteBackend`` (sqlite_backend.py) for one machine, with its files in
the data folder (or with ``data_dir`` None its databases in memory); ``MemoryBackend``
(memory_backend.py), plain Python, for a server hosted inside the desktop client and for
the tests; ``PostgresBackend`` (pg_backend.py, with fanout.py over Redis) for the nodes of a
cluster, whose ``publish``/``RemoteSink`` carry each room's passes in one order. Retention (``--keep-days``, ``--keep-messages``) is each backend's own upkeep.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from qtchat.protocol.message_events import REACTIONS, reply_quote

from .bans import Ban, BanList

if TYPE_CHECKING:
    from .cluster import Cluster
    from .room_state import RoomRecord

T = TypeVar("T")
U = TypeVar("U")

log = logging.getLogger("qtchat.server")


@dataclass(slots=True)
class Posted:
    """A room message accepted this pass; ``id`` is 0 until its pass is stored. ``again``: the store found it
    was a resend of a message stored before (point 8), whose ``id`` and ``ts`` it now has."""

    room_key: str
    room: str  # the room's display name
    ts: int  # milliseconds since the epoch
    sender: str
    sender_key: str
    cid: str | None
    text: str
    slot: int = 0  # where its frame goes in the room's batch of this pass
    id: int = 0
    again: bool = False  # a resend of a stored message: acknowledged to its sender only, relayed to nobody
    reply_to: int = 0  # the message it answers (0: none); the store stamps its quote (point 10):
    reply_from: str = ""  # its sender, "" if it is not in the room or deleted
    reply_text: str = ""  # the start of its text (message_events.reply_quote)


@dataclass(slots=True)
class Change:
    """An edit (``text`` set) or a deletion (``text`` None) of the room message ``id``, accepted this pass. The
    store checks it in the pass's transaction and stamps ``result``: "" done, else the refusal's error code
    (``no_such_message``: not in that room, or deleted; ``not_author``: ``author_key`` is set and is not its
    sender's; ``too_late``: sent before ``not_before``, ms), and ``sender`` (its author's name), and gives it a
    place in the room's order (``seq``, from the ids' sequence: pages ``after`` an id find it, point 9)."""

    room_key: str
    room: str  # the room's display name
    id: int
    text: str | None  # the new text; None: deleted
    ts: int  # when (ms)
    by: str  # who asked (a name)
    author_key: str | None  # the message must be this sender's (None: an operator's deletion, anyone's)
    not_before: int = 0  # an edit: the message must have been sent at or after this (ms)
    slot: int = 0  # where its frame goes in the room's batch of this pass
    result: str = ""
    sender: str = ""
    seq: int = 0


@dataclass(slots=True)
class Reaction:
    """A reaction given (``on``) or taken back, accepted this pass. The store checks it in the pass's transaction
    and stamps ``result`` ("" done, "no_such_message", "too_many_reactions": the message holds MAX_REACTIONS),
    the message's reactions once it is applied (``counts``: emoji -> how many, in REACTIONS' order) and the
    user's own (``mine``) (point 11)."""

    room_key: str
    room: str
    id: int
    user_key: str
    emoji: str
    on: bool
    result: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    mine: tuple[str, ...] = ()


Tallies = dict[int, tuple[dict[str, int], tuple[str, ...]]]  # message id -> (counts, the reader's own)


def ordered(counts: dict[str, int]) -> dict[str, int]:
    """Reactions in the order clients offer them (REACTIONS), any other after."""
    rank = {e: i for i, e in enumerate(REACTIONS)}
    return {e: counts[e] for e in sorted(counts, key=lambda e: (rank.get(e, len(rank)), e)) if counts[e] > 0}


def own(emojis: Iterable[str]) -> tuple[str, ...]:
    """A user's own reactions to a message, in the order clients offer them (``ordered``'s)."""
    return tuple(ordered(dict.fromkeys(emojis, 1)))


MailRow = tuple[int, str, int, str, str, str | None, str]  # id, recipient key, ts, sender, sender key, cid, text


@dataclass(slots=True)
class PassBatch:
    """What one event-loop pass changed, stored in one transaction before anything of it is sent."""

    messages: list[Posted] = field(default_factory=list)
    markers: dict[tuple[str, str], int] = field(default_factory=dict)  # (user key, room key) -> id
    mail: list[MailRow] = field(default_factory=list)  # private messages kept for offline users
    delivered: dict[str, int] = field(default_factory=dict)  # user key -> the newest held id confirmed
    changes: list[Change] = field(default_factory=list)  # edits and deletions, checked and stamped by the store
    reactions: list[Reaction] = field(default_factory=list)  # given or taken back, checked and stamped by the store

    def __bool__(self) -> bool:
        return bool(self.messages or self.markers or self.mail or self.delivered or self.changes or self.reactions)


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    room: str  # the room's key
    ts: int
    sender: str
    text: str
    cid: str | None
    edited: int = 0  # when its text was last replaced (ms); 0: never
    deleted: bool = False  # its text is then empty
    reply_to: int = 0  # the message it answers, and a quote of it as it is now (point 10)
    reply_from: str = ""
    reply_text: str = ""


def quoted(reply_to: int | None, parent: tuple[str, str, bool] | None) -> tuple[int, str, str]:
    """A reply's (reply_to, reply_from, reply_text) from its parent as stored (sender, text, deleted), or None
    when it is not in the reply's room: then the quote is empty (point 10)."""
    if not reply_to:
        return 0, "", ""
    if parent is None or parent[2]:
        return reply_to, "", ""
    return reply_to, parent[0], reply_quote(parent[1])


@dataclass(frozen=True, slots=True)
class MailboxCount:
    """How many private messages wait in one recipient's mailbox: in all, and from one sender."""

    total: int
    from_sender: int


@dataclass(frozen=True, slots=True)
class HeldMessage:
    """A private message waiting in a recipient's mailbox."""

    id: int
    ts: int
    sender: str
    text: str
    cid: str | None


@dataclass(frozen=True, slots=True)
class Page:
    """Messages of one room in id order; ``more``: there are more beyond the page's far end."""

    messages: list[StoredMessage]
    more: bool


@dataclass(frozen=True, slots=True)
class Around:
    """Messages around an id: ``older`` and ``newer`` (from the id on), each in id order."""

    older: list[StoredMessage]
    newer: list[StoredMessage]
    more_older: bool
    more_newer: bool


@dataclass(frozen=True, slots=True)
class RecentCid:
    """A message its sender might send again after losing the acknowledgement (a reconnect, a restart)."""

    cid: str
    id: int
    ts: int
    where: str  # the room key, or "@" and the recipient's key for a private message
    digest: int  # hash() of its text: a resend must have the same (the text itself is not kept)
    held: bool = False  # kept in a mailbox for an offline recipient


@dataclass(frozen=True, slots=True)
class Account:
    key: str  # protocol.names.name_key of the name
    name: str
    password_hash: str
    admin: bool
    created: float


class RemoteSink(Protocol):
    """Where a backend hands what other nodes of a cluster sent (one machine: nothing ever comes)."""

    def deliver_remote(self, room_key: str, frames: bytes) -> None:
        """Frames another node sent its members of the room: to this node's members, as they are."""

    def deliver_stored(self, room_key: str, messages: list[StoredMessage]) -> None:
        """Messages of the room that reached this node from the database, not from the node that stored them
        (it died first, or the fast path was down): encoded here and sent to this node's members."""

    def watching(self, room_key: str) -> bool:
        """Does this node have members in the room (else nothing needs to be delivered here)?"""

    def account_changed(self, key: str, before: Account | None, after: Account | None) -> None:
        """Another node registered, changed or deleted an account (``account()`` answers ``after`` already)."""

    def bans_added(self, bans: list[Ban]) -> None:
        """Bans another node made, in force here already (``bans.match``): its matching users go."""

    def room_changed(self, record: RoomRecord) -> None:
        """Another node changed a room's record (``room_record()`` answers it already)."""


class Backend(Protocol):
    """What the server core needs from storage and from the other nodes; see the module's text."""

    history: bool  # False: nothing is kept (pages and searches are empty)
    bans: BanList
    cluster: Cluster  # names, presence and messages between nodes (cluster.py); one machine: the base class

    def attach(self, sink: RemoteSink) -> None:
        """Start; passes stored by other nodes go to ``sink`` from now on."""

    def close(self) -> None: ...

    def publish(self, room_key: str, frames: bytes) -> None:
        """A room's frames of one pass, as sent to this node's members (its stored messages, joins, leaves,
        topic changes, in order): for the room's members on other nodes. One machine: nothing to do."""

    # ids and passes
    def next_id(self) -> int:
        """An id for a message outside any room's order (private messages)."""

    def join_point(self, room_key: str) -> int:
        """A member's join point in the room (room_state.py): an id at or above every message of the room
        this node has stored or delivered, below every one stored later (need not be unique)."""

    def store_pass(self, batch: PassBatch) -> Future[None]:
        """Store the pass in one transaction (its room messages, read markers moving forward only, kept
        private messages, and deleting each user's kept messages up to the id confirmed), stamping each
        ``batch.messages[i].id``, or, for a resend of a stored message, its ``id``, ``ts`` and ``again``;
        stored whole or not at all (points 2, 4, 5, 8)."""

    # history
    def page(self, room_key: str, *, before: int | None, after: int | None, limit: int) -> Future[Page]:
        """A room's messages in id order: the oldest ``limit`` after ``after``, else the newest ``limit``
        before ``before`` (both None: the newest of all); ``more``: more lie beyond the page's far end."""

    def changed(self, room_key: str, after: int, limit: int) -> Future[Page]:
        """The room's messages with ids up to ``after`` that were edited or deleted after it (their change's
        ``seq`` above ``after``), as they are now, in the order of those changes, at most ``limit``; ``more``:
        more such changes were made (point 9)."""

    def tallies(self, room_key: str, ids: list[int], user_key: str) -> Future[Tallies]:
        """The reactions of those messages of the room that have any: counts, and the user's own (point 11)."""

    def around(self, room_key: str, mid: int, limit: int) -> Future[Around]:
        """Up to ``limit`` messages around the id ``mid`` (``around_shares`` says how many of each side), the
        message itself first among the newer ones."""

    def search(self, query: str, room_keys: list[str], *, before: int | None, limit: int) -> Future[Page]:
        """Messages of those rooms holding every word of ``query`` (store.query_words) as the prefix of a
        word, case and diacritics ignored, with ids below ``before``: **newest first**, at most ``limit``."""

    def marker(self, user_key: str, room_key: str) -> Future[int | None]:
        """The user's stored read marker in the room (the highest id marked read), None if never."""

    def unread(self, room_key: str, user_key: str, after: int, cap: int) -> Future[int]:
        """How many messages of the room with ids above ``after`` are not the user's own (stops at ``cap``)."""

    def recent_cids(self, sender_key: str, limit: int) -> Future[list[RecentCid]]:
        """At a user's first login after a restart: their latest messages with a cid (room messages stored
        shortly before the restart, private ones still kept), oldest first, at most ``limit``."""

    # mailboxes
    def mailbox_count(self, user_key: str, sender_key: str, cap: int, share: int) -> Future[MailboxCount]:
        """How many private messages are kept for the user (counting stops at ``cap``), and how many of those
        the sender ``sender_key`` sent (counting stops at ``share``)."""

    def mailbox_page(self, user_key: str, after: int, limit: int) -> Future[tuple[list[HeldMessage], bool]]:
        """The oldest ``limit`` messages kept for the user with ids above ``after``, and whether more wait."""

    # accounts: read from memory, written through
    def account(self, key: str) -> Account | None: ...
    def accounts(self) -> list[Account]: ...
    def create_account(self, key: str, name: str, password_hash: str, *, admin: bool = False) -> Future[Account]: ...
    def set_password(self, key: str, password_hash: str) -> Future[None]: ...
    def set_admin(self, key: str, admin: bool) -> Future[None]: ...
    def delete_account(self, key: str) -> Future[int | None]:
        """Delete an account and the private messages kept for it: how many were kept, None if no account."""

    # rooms' lasting state (room_state.py): read once per room, written through
    def room_record(self, key: str) -> RoomRecord | None:
        """The room's creator, operators, modes, kept invites and join points; None if it never had any."""

    def save_room(self, key: str, state: dict[str, Any]) -> Future[None]:
        """Keep ``RoomRecord.state()`` for the room (replacing what was kept)."""

    def save_join(self, room_key: str, member_key: str, since: int) -> Future[None]:
        """Keep a member's join point in the room (a second one for the same member is ignored)."""


def around_shares(older: int, newer: int, limit: int) -> tuple[int, int]:
    """How many of ``older`` and ``newer`` messages a page of ``limit`` around an id takes: about half from
    each side, and a side with fewer leaves its share to the other (what ``Backend.around`` answers)."""
    want_old = limit // 2
    want_new = limit - want_old
    if newer < want_new:
        want_old = limit - newer
    elif older < want_old:
        want_new = limit - older
    return want_old, want_new


def done(value: T) -> Future[T]:
    """A future that is done already: what a backend that answers at once returns."""
    future: Future[T] = Future()
    future.set_result(value)
    return future


def failed(exc: BaseException) -> Future[T]:
    future: Future[T] = Future()
    future.set_exception(exc)
    return future


def answer(call: Callable[[], T]) -> Future[T]:
    """Run ``call`` now; its value or its exception, as a future that is done."""
    try:
        return done(call())
    except Exception as exc:
        return failed(exc)


def then(future: Future[T], on_value: Callable[[T], None], on_error: Callable[[BaseException], None]) -> None:
    """Continue with the future's value (or its error) once it is done: at once when it is."""

    def finish(f: Future[T]) -> None:
        exc = f.exception()
        try:
            if exc is not None:
                on_error(exc)
            else:
                on_value(f.result())
        except Exception:  # a bug of ours: logged here, where concurrent.futures would only hide it
            log.exception("error continuing after the store answered")

    future.add_done_callback(finish)


def chain(future: Future[T], on_value: Callable[[T], None], result: Future[Any]) -> None:
    """A step of a longer job: continue with the future's value; its error, or one ``on_value`` raises, fails
    ``result`` (unless it is done already) instead of being logged as ``then`` logs it."""

    def fail(exc: BaseException) -> None:
        if not result.done():
            result.set_exception(exc)

    def step(value: T) -> None:
        try:
            on_value(value)
        except Exception as exc:
            fail(exc)

    then(future, step, fail)


def mapped(future: Future[T], convert: Callable[[T], U]) -> Future[U]:
    """A future of ``convert(value)``, or of the error (the future's, or one ``convert`` raises)."""
    result: Future[U] = Future()
    chain(future, lambda value: result.set_result(convert(value)), result)
    return result


__all__ = [
    "Account",
    "Around",
    "Backend",
    "Change",
    "HeldMessage",
    "MailRow",
    "Page",
    "PassBatch",
    "Posted",
    "Reaction",
    "RecentCid",
    "RemoteSink",
    "StoredMessage",
    "Tallies",
    "answer",
    "around_shares",
    "chain",
    "done",
    "failed",
    "mapped",
    "ordered",
    "own",
    "quoted",
    "then",
]
