"""One pass on PostgreSQL: the statements of its transaction, and what their answers stamp on the pass.

Its rooms are locked in one order by every node (sorted: no deadlock between two passes): per room its
messages (``qtchat_post()``: ids, resends) and its edits and deletions (``qtchat_change()``); then read
markers, kept private messages, confirmations, and the parents of its replies as they are once it is stored
(backend.py, points 8-10).
"""

from __future__ import annotations

import json
from typing import Any

from qtchat.protocol.message_events import MAX_REACTIONS

from .backend import Change, PassBatch, Posted, Reaction, ordered, own, quoted
from .pg_schema import DELIVERED, MAIL, MARKERS, PARENTS
from .search_agent import fold


class PassPlan:
    def __init__(self, token: int, batch: PassBatch, history: bool) -> None:
        self.by_room: dict[str, list[Posted]] = {}
        self.changes: dict[str, list[Change]] = {}
        self.reactions: dict[str, list[Reaction]] = {}
        for r in batch.reactions:
            if history:
                self.reactions.setdefault(r.room_key, []).append(r)
            else:
                r.result = "no_such_message"
        for m in batch.messages if history else ():
            self.by_room.setdefault(m.room_key, []).append(m)
        for c in batch.changes:
            if history:
                self.changes.setdefault(c.room_key, []).append(c)
            else:
                c.result = "no_such_message"  # nothing is kept to change
        self.rooms = sorted(self.by_room)
        self.statements: list[tuple[str, Any]] = [
            ("SELECT pg_advisory_xact_lock($1)", [token]),  # a check after a broken connection waits for it
            ("INSERT INTO passes (token, room, ids) VALUES ($1, '', '{}')", [token]),
        ]
        self.posts: dict[str, int] = {}  # room -> the statement answering its messages
        self.changed: dict[str, int] = {}  # room -> the statement answering its changes
        self.reacted: dict[str, int] = {}  # room -> the statement answering its reactions
        self._per_room(token)
        self._rest(batch, history)

    def _per_room(self, token: int) -> None:
        for room in sorted(self.by_room.keys() | self.changes.keys() | self.reactions.keys()):
            if room in self.by_room:
                self.posts[room] = self._add("SELECT qtchat_post($1, $2, $3::jsonb)", [token, room, [
                    [m.ts, m.sender, m.sender_key, m.cid, m.text, fold(m.text), m.reply_to or None]
                    for m in self.by_room[room]]])
            if room in self.changes:
                self.changed[room] = self._add("SELECT qtchat_change($1, $2::jsonb)", [room, [
                    [c.id, c.text, c.ts, c.author_key, c.not_before, None if c.text is None else fold(c.text)]
                    for c in self.changes[room]]])
            if room in self.reactions:
                self.reacted[room] = self._add("SELECT qtchat_react($1, $2::jsonb, $3::int)", [room, [
                    [r.id, r.user_key, r.emoji, r.on] for r in self.reactions[room]], MAX_REACTIONS])

    def _rest(self, batch: PassBatch, history: bool) -> None:
        if batch.markers:
            self._add(MARKERS, [[[u, r, mid] for (u, r), mid in batch.markers.items()]])
        if batch.mail:
            self._add(MAIL, [[list(row) for row in batch.mail]])
        if batch.delivered:
            self._add(DELIVERED, [[[u, upto] for u, upto in batch.delivered.items()]])
        self.replies = [m for m in batch.messages if m.reply_to] if history else []
        self.quotes = self._add(PARENTS, [[m.reply_to for m in self.replies]]) if self.replies else 0

    def _add(self, sql: str, params: Any) -> int:
        self.statements.append((sql, params))
        return len(self.statements) - 1

    def answered(self, rows: list[Any]) -> dict[str, list[int]]:
        """Stamp the replies' quotes and the changes' answers; each room's ``qtchat_post()`` answer."""
        if self.replies:
            parents = {(int(r[0]), r[1]): (r[2], r[3], bool(r[4])) for r in rows[self.quotes]}
            for m in self.replies:
                m.reply_to, m.reply_from, m.reply_text = quoted(m.reply_to, parents.get((m.reply_to, m.room_key)))
        for room, at in self.changed.items():
            _stamp_changes(self.changes[room], rows[at][0][0])
        for room, at in self.reacted.items():
            for r, (refused, counts, mine) in zip(self.reactions[room], rows[at][0][0], strict=True):
                r.result, r.counts = str(refused), ordered({str(e): int(n) for e, n in counts.items()})
                r.mine = own(str(e) for e in mine)
        return {room: list(rows[at][0][0]) for room, at in self.posts.items()}


def _stamp_changes(changes: list[Change], answer: Any) -> None:
    """``qtchat_change()``'s answer: each change's refusal (or ''), its message's sender and its number."""
    for c, (refused, sender, seq) in zip(changes, json.loads(answer) if isinstance(answer, str) else answer,
                                         strict=True):
        c.result, c.sender, c.seq = str(refused), str(sender), int(seq)
