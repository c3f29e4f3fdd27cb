"""Mailboxes: private messages kept for a registered user who is offline, delivered at their next login.

A kept message is stored with its pass and only then acknowledged to its sender
(``held``). After the recipient logs in they come in batches (at most HELD_BATCH
messages, about HELD_BATCH_BYTES), oldest first; the client confirms each batch with
``delivered``, the confirmed ones are deleted with the next pass, and the next batch
follows. Unconfirmed ones come again at the next login.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from qtchat.protocol import Delivered, ErrorCode, Message, ProtocolError, SendMessage, encode_event

from .backend import Backend, HeldMessage, MailboxCount, MailRow, RecentCid, then
from .config import ServerConfig
from .journal import NOT_STORED, Journal
from .peer import Connections, User, now_ms
from .resends import RecentCids

log = logging.getLogger("qtchat.server")

HELD_BATCH = 100  # private messages kept for an offline user: at most this many are sent at once...
HELD_BATCH_BYTES = 512 * 1024  # ...and about this many bytes; the next batch waits for the client's 'delivered'


class Mailboxes:
    """The mailboxes; ``posted(message)`` is told of each message kept (the server's signal)."""

    def __init__(self, config: ServerConfig, backend: Backend, connections: Connections, journal: Journal,
                 recent: RecentCids, *, posted: Callable[[Message], None]) -> None:
        self.config = config
        self.backend = backend
        self.connections = connections
        self.journal = journal
        self.recent = recent
        self._posted = posted
        self.total = 0  # messages kept since start
        self._counting: set[tuple[str, str]] = set()  # (sender key, cid) of messages whose mailbox is counted

    def hold(self, user: User, event: SendMessage, to_key: str) -> None:
        """A private message to someone offline: into the mailbox of a registered name (stored at this
        pass's flush, acknowledged after it), else refused."""
        cfg, cid = self.config, event.cid
        account = self.backend.account(to_key)
        cap = cfg.mailbox_size if self.backend.history else 0
        if account is None or cap <= 0:
            why = ("private messages to people who are offline are kept only for registered names"
                   if account is None else "this server keeps no private messages for people who are offline")
            raise ProtocolError(ErrorCode.USER_OFFLINE,
                                f"{event.to} is not online, and {why}: send it again when they are online.", ref=cid)
        to_name = account.name
        share = cfg.mailbox_per_sender if 0 < cfg.mailbox_per_sender < cap else cap  # 0: no share but the whole
        refusal = self._refusal(to_name, to_key, user.key, cap=cap, share=share, stored=MailboxCount(0, 0), cid=cid)
        if refusal is not None:
            raise refusal
        counting = (user.key, cid or "")
        if cid is not None:
            if counting in self._counting:
                return  # sent again while the first is being counted: that one is acknowledged once kept
            self._counting.add(counting)

        def counted(stored: MailboxCount) -> None:
            self._counting.discard(counting)
            if user.peer.detached:
                return
            refusal = self._refusal(to_name, to_key, user.key, cap=cap, share=share, stored=stored, cid=cid)
            if refusal is not None:
                self.connections.fail(user.peer, refusal)
            else:
                self._keep(user, event, to_key, to_name)

        def broken(exc: BaseException) -> None:
            self._counting.discard(counting)
            log.error("cannot count the private messages kept for %s: %s", to_name, exc)
            self.connections.fail(user.peer, ProtocolError(ErrorCode.INTERNAL, NOT_STORED, ref=cid))

        then(self.backend.mailbox_count(to_key, user.key, cap, share), counted, broken)

    def _refusal(self, to_name: str, to_key: str, sender_key: str, *, cap: int, share: int, stored: MailboxCount,
                 cid: str | None) -> ProtocolError | None:
        """``mailbox_full`` when the mailbox, with what waits to be stored, is full, or holds the sender's whole
        share; None when there is room."""
        if self.journal.pending_mail(to_key) + stored.total >= cap:
            return self._full(to_name, cap, cid)
        if self.journal.pending_share(to_key, sender_key) + stored.from_sender >= share:
            return ProtocolError(
                ErrorCode.MAILBOX_FULL,
                f"{to_name} is offline and has {share} messages from you waiting already, your share of their "
                f"mailbox on this server (others can still write to them): send more once they have logged in.",
                ref=cid)
        return None

    def _keep(self, user: User, event: SendMessage, to_key: str, to_name: str) -> None:
        cid = event.cid
        msg = Message(id=self.backend.next_id(), ts=now_ms(), sender=user.name, text=event.text, cid=cid,
                      to=to_name, held=True)
        row: MailRow = (msg.id, to_key, msg.ts, user.name, user.key, cid, msg.text)
        self.journal.hold(row, user.peer, encode_event(msg), cid)
        if cid is not None:
            self.recent.remember(user.key, RecentCid(cid, msg.id, msg.ts, "@" + to_key, hash(msg.text), held=True))
        user.peer.msgs_in += 1
        self.total += 1
        self.journal.schedule()  # stored with this pass's messages, in the same transaction
        self._posted(msg)

    @staticmethod
    def _full(name: str, cap: int, cid: str | None) -> ProtocolError:
        return ProtocolError(
            ErrorCode.MAILBOX_FULL,
            f"{name} is offline and has {cap} messages waiting already, as many as this server "
            f"keeps: send it again once they have logged in.", ref=cid)

    # ------------------------------------------------------------ delivery

    def deliver(self, user: User) -> None:
        """Send the next batch of the private messages kept for this user, oldest first; the next batch
        follows when the client confirms this one (``delivered``), and each is deleted only then."""

        def send(page: tuple[list[HeldMessage], bool]) -> None:
            if not user.peer.detached:
                self._send_batch(user, *page)

        def broken(exc: BaseException) -> None:  # a broken disk: they stay where they are, for the next login
            log.error("cannot read the private messages kept for %s: %s", user.name, exc)

        then(self.backend.mailbox_page(user.key, user.held_sent, HELD_BATCH), send, broken)

    def _send_batch(self, user: User, held: list[HeldMessage], more: bool) -> None:
        budget = max(1, min(HELD_BATCH_BYTES, self.config.max_output // 2))
        frames: list[bytes] = []
        size = 0
        for m in held:
            frame = encode_event(Message(id=m.id, ts=m.ts, sender=m.sender, text=m.text, cid=m.cid, to=user.name,
                                         held=True))
            if frames and size + len(frame) > budget:
                more = True
                break
            frames.append(frame)
            size += len(frame)
            user.held_sent = m.id
        user.held_more = more
        if frames:
            log.debug("sending %s %d kept private message(s)", user.name, len(frames))
            self.connections.write(user.peer, b"".join(frames))

    def on_delivered(self, user: User, event: Delivered) -> None:
        """The client has the held messages up to ``upto``: delete them at the flush, send the next batch."""
        if not user.held_sent:
            raise ProtocolError(ErrorCode.BAD_FRAME, "No kept private message was sent to you on this "
                                "connection, so there is nothing to confirm.")
        upto = min(event.upto, user.held_sent)  # what was sent, no more
        if upto > user.held_confirmed:
            user.held_confirmed = upto
            self.journal.delivered(user.key, upto)
            self.journal.schedule()  # deleted with this pass's messages, in the same transaction
        if upto >= user.held_sent and user.held_more:
            self.deliver(user)
