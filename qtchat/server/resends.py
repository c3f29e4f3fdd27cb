"""Resends: each user's latest messages by cid, so that a message sent again is not relayed twice.

A client that lost its connection sends again what it had not seen acknowledged, with
the same cid. ``RecentCids`` remembers each user's latest messages (bounded, and after a
restart read back from the store at their first login); a resend with the same cid and
text is acknowledged again instead of relayed twice. This is the fast path, without a
round trip to the store: a resend it does not know (older than the newest 64, or first
stored by another node) is found by the store as its pass is stored (backend.py, point 8).
"""

from __future__ import annotations

from collections import OrderedDict

from .backend import RecentCid

RECENT_CIDS_PER_USER = 64
RECENT_CID_USERS = 5_000


class RecentCids:
    """name key -> cid -> RecentCid, for the RECENT_CID_USERS users who sent last (small and bounded)."""

    def __init__(self) -> None:
        self._by_user: OrderedDict[str, OrderedDict[str, RecentCid]] = OrderedDict()

    def __contains__(self, user_key: str) -> bool:
        return user_key in self._by_user

    def get(self, user_key: str, cid: str) -> RecentCid | None:
        seen = self._by_user.get(user_key)
        return seen.get(cid) if seen is not None else None

    def remember(self, user_key: str, entry: RecentCid) -> None:
        recent = self._by_user
        seen = recent.get(user_key)
        if seen is None:
            seen = recent[user_key] = OrderedDict()
            if len(recent) > RECENT_CID_USERS:
                recent.popitem(last=False)
        else:
            recent.move_to_end(user_key)
        seen[entry.cid] = entry
        if len(seen) > RECENT_CIDS_PER_USER:
            seen.popitem(last=False)

    def forget(self, user_key: str, cid: str) -> None:
        seen = self._by_user.get(user_key)
        if seen is not None:
            seen.pop(cid, None)
