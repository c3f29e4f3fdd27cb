"""Typing indicators: the protocol's times and rates, and the sender's side of them (sans-I/O, the clock
passed in).

A client sends ``typing`` (events.Typing) with ``on`` true when its user starts typing in a conversation, and
again at most every TYPING_EVERY seconds while they keep typing; ``on`` false when the input is emptied
without sending. A message ends its sender's typing in its conversation: no ``typing`` follows it. A
receiver forgets a typist TYPING_EXPIRES seconds after its last news of them. A server takes at most
TYPING_BURST typing frames at once from a connection, refilled at TYPING_RATE a second; one past that is
refused (``typing_too_fast``) and counts as a warning of the rate limiter (docs/PROTOCOL.md).
"""

from __future__ import annotations

from .events import DEFAULT_ROOM, Typing
from .names import name_key

TYPING_EVERY = 3.0  # seconds: a start is repeated at most this often while the user keeps typing
TYPING_EXPIRES = 6.0  # seconds: a typist is forgotten this long after the last news of them
TYPING_RATE = 1.0  # typing frames a second a server takes from one connection, sustained...
TYPING_BURST = 6  # ...and at once
TYPING_MAX_MEMBERS = 50  # qtchat-server's default: rooms with more members get no typing news


class TypingBucket:
    """A token bucket of typing frames: ``burst`` at once, refilled at ``rate`` a second."""

    __slots__ = ("_stamp", "_tokens", "burst", "rate")

    def __init__(self, now: float, burst: float = TYPING_BURST, rate: float = TYPING_RATE) -> None:
        self.burst, self.rate = burst, rate
        self._tokens = float(burst)
        self._stamp = now

    def take(self, now: float) -> bool:
        """Take a token: False (and nothing taken) when there is none."""
        self._tokens = min(self.burst, self._tokens + max(0.0, now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens < 1 - 1e-9:
            return False
        self._tokens = max(0.0, self._tokens - 1)
        return True

    def wait(self, now: float) -> float:
        """Seconds until a token is there (0 when one is)."""
        tokens = min(self.burst, self._tokens + max(0.0, now - self._stamp) * self.rate)
        return 0.0 if tokens >= 1 - 1e-9 else (1 - tokens) / self.rate


def target_key(room: str = DEFAULT_ROOM, to: str | None = None) -> str:
    """A conversation as typing news names it: "#key" for a room, "@key" for a person (as conversation_key)."""
    return "@" + name_key(to) if to is not None else "#" + name_key(room)


class TypingThrottle:
    """What a client sends of its user's typing: a start at once, repeated at most every TYPING_EVERY
    seconds while it goes on; a stop only after a start; nothing after a message (it is the stop). Its
    own bucket is one frame smaller than the server's, so that frames bunched on the way are taken."""

    def __init__(self, now: float = 0.0) -> None:
        self._started: dict[str, float] = {}  # target key -> when the last start was sent
        self._bucket = TypingBucket(now, burst=TYPING_BURST - 1)

    def change(self, on: bool, now: float, room: str = DEFAULT_ROOM, to: str | None = None) -> Typing | None:
        """The frame to send now that the user typed (``on``) or emptied the input, or None."""
        key = target_key(room, to)
        last = self._started.get(key)
        if on and last is not None and now - last < TYPING_EVERY:
            return None
        if not on and last is None:
            return None  # not typing there (or the message said so)
        if not self._bucket.take(now):
            return None  # a stop not sent: the receivers forget the start soon
        if on:
            self._started[key] = now
        else:
            del self._started[key]
        return Typing(room=room, to=to, on=on)

    def typing_in(self, room: str = DEFAULT_ROOM, to: str | None = None) -> bool:
        """Was a start sent there, not yet ended by a stop or a message?"""
        return target_key(room, to) in self._started

    def sent(self, room: str = DEFAULT_ROOM, to: str | None = None) -> None:
        """A message went there: it ends the typing (the next keystroke starts anew)."""
        self._started.pop(target_key(room, to), None)

    def reset(self) -> None:
        """A new connection: nothing started on it."""
        self._started.clear()
