"""Per-connection rate limits: token buckets for chat messages and for bytes received.

Pure Python with the clock passed in, so every rule is testable without waiting.

- **Messages.** A bucket of ``burst`` tokens refilled at ``messages`` per second; every chat
  message (``msg``, to a room or a person, and ``topic``) takes one. A message that finds no token is
  refused (``slow_down``) and takes none, so a client that waits as told gets through.
- **Bytes.** A bucket of ``bytes_burst`` tokens refilled at ``bytes`` per second; every byte
  received takes one, whatever it is (nothing can refuse bytes already read), so the bucket can go
  into debt. While it is in debt chat messages are refused (``slow_down``); a debt as deep as a
  whole burst means the client keeps sending far over the limit, and it is disconnected (``flood``).
  A message's own bytes do not count in its own check (they were charged as they were read), and a
  refused message's bytes are given back: else a large message, resent as told, would be charged
  again at every resend and refused again, for ever, whenever a few are resent together. The bytes
  of refused messages stay bounded by the strikes below.
- **Order.** A refusal holds back the connection's messages after it for as long as it said to wait:
  else, with its bytes given back, a later message of the same paste could pass before it.
- **Warnings.** Each refusal is a strike; strikes leak away at ``flood_after / flood_window`` per
  second. More than ``flood_after`` strikes (that many refusals in about ``flood_window`` seconds,
  sent after being told to slow down) disconnect the client (``flood``).

- **Typing.** A bucket of typing frames (qtchat.protocol.typing_rules: 6 at once, one a second): one that
  finds none is refused (``typing_too_fast``), and the refusal is a strike like a refused message's.

A rate of 0 turns that limit off; ``flood_after`` 0 never disconnects for refusals.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from qtchat.protocol import TypingBucket


class Verdict(enum.Enum):
    OK = "ok"
    SLOW_DOWN = "slow_down"
    FLOOD = "flood"


@dataclass(frozen=True, slots=True)
class RateLimits:
    messages: float = 10.0  # chat messages per second (0: no limit)
    burst: int = 20  # chat messages at once
    bytes: int = 64 * 1024  # bytes received per second (0: no limit)
    bytes_burst: int = 512 * 1024  # bytes at once
    flood_after: int = 50  # refusals within about flood_window seconds before a disconnect (0: never)
    flood_window: float = 10.0

    @property
    def enabled(self) -> bool:
        return self.messages > 0 or self.bytes > 0


class Limiter:
    """The buckets of one connection. ``now`` is a monotonic clock in seconds."""

    __slots__ = ("_blocked_until", "_byte_stamp", "_bytes", "_msg_stamp", "_msgs", "_strike_stamp", "_strikes",
                 "_typing", "limits")

    def __init__(self, limits: RateLimits, now: float) -> None:
        self.limits = limits
        self._msgs = float(limits.burst)
        self._msg_stamp = now
        self._bytes = float(limits.bytes_burst)
        self._byte_stamp = now
        self._strikes = 0.0
        self._strike_stamp = now
        self._blocked_until = now  # a refusal said to wait until then: later messages wait too
        self._typing = TypingBucket(now)

    @property
    def byte_tokens(self) -> float:
        """Byte tokens as of the last update (negative: in debt)."""
        return self._bytes

    def received(self, nbytes: int, now: float) -> Verdict:
        """Charge bytes just read; FLOOD when the debt is as deep as a whole burst."""
        lim = self.limits
        if lim.bytes <= 0:
            return Verdict.OK
        self._refill_bytes(now)
        self._bytes -= nbytes
        return Verdict.FLOOD if self._bytes < -lim.bytes_burst else Verdict.OK

    def message(self, now: float, size: int = 0) -> tuple[Verdict, float]:
        """Take a token for one chat message of ``size`` bytes (charged already as received): (OK, 0), or
        (SLOW_DOWN or FLOOD, seconds to wait), its bytes given back then."""
        lim = self.limits
        wait = max(0.0, self._blocked_until - now)  # behind a refused message: in order
        if lim.bytes > 0:
            self._refill_bytes(now)
            if self._bytes + size < 0:  # the debt without this message's own bytes
                wait = max(wait, -(self._bytes + size) / lim.bytes)
        if lim.messages > 0:
            elapsed = now - self._msg_stamp
            self._msg_stamp = now
            self._msgs = min(float(lim.burst), self._msgs + elapsed * lim.messages)
            if self._msgs < 1 - 1e-9:  # (float dust: a client that waited as told gets its token)
                wait = max(wait, (1 - self._msgs) / lim.messages)
        if wait <= 0:
            if lim.messages > 0:
                self._msgs = max(0.0, self._msgs - 1)
            return Verdict.OK, 0.0
        if lim.bytes > 0:
            self._bytes = min(float(lim.bytes_burst), self._bytes + size)  # refused: its bytes given back
        self._blocked_until = now + wait
        return self._strike(now), wait

    def typing(self, now: float) -> tuple[Verdict, float]:
        """Take a token for one typing frame: (OK, 0), or (SLOW_DOWN or FLOOD, seconds until one is there): a
        refusal is a strike, as a refused message's is. Messages are not held back by it."""
        if self._typing.take(now):
            return Verdict.OK, 0.0
        return self._strike(now), self._typing.wait(now)

    def _refill_bytes(self, now: float) -> None:
        lim = self.limits
        elapsed = now - self._byte_stamp
        self._byte_stamp = now
        self._bytes = min(float(lim.bytes_burst), self._bytes + elapsed * lim.bytes)

    def _strike(self, now: float) -> Verdict:
        lim = self.limits
        if lim.flood_after <= 0:
            return Verdict.SLOW_DOWN
        leak = lim.flood_after / lim.flood_window if lim.flood_window > 0 else float("inf")
        self._strikes = max(0.0, self._strikes - (now - self._strike_stamp) * leak) + 1
        self._strike_stamp = now
        return Verdict.FLOOD if self._strikes > lim.flood_after else Verdict.SLOW_DOWN


AWAY_CHANGES = RateLimits(messages=0.2, burst=6, bytes=0, flood_after=0)
"""How often a user's away state may change and be told to their rooms (presence.py): announced in ``welcome``."""


@dataclass(frozen=True, slots=True)
class WorkLimits:
    """What a connection's requests may cost the server: every frame has a price in work units (about a
    tenth of a millisecond of the server's time each: prices.py), paid from a bucket of ``burst`` units
    refilled at ``per_s``. A frame that finds too few units waits, and the connection's later frames wait
    behind it (fakelag): up to ``backlog`` frames, then the connection is dropped (``flood``)."""

    per_s: float = 100.0  # 0: no limit
    burst: float = 400.0
    backlog: int = 200

    @property
    def enabled(self) -> bool:
        return self.per_s > 0


class WorkBucket:
    """The work units of one connection. ``now`` is a monotonic clock in seconds."""

    __slots__ = ("_stamp", "_units", "limits")

    def __init__(self, limits: WorkLimits, now: float) -> None:
        self.limits = limits
        self._units = limits.burst
        self._stamp = now

    def take(self, cost: float, now: float) -> float:
        """Pay ``cost``: 0.0 when paid, else the seconds until it can be (nothing is taken then). A cost
        above the whole burst is paid once the bucket is full, so every request can be served."""
        lim = self.limits
        self._units = min(lim.burst, self._units + (now - self._stamp) * lim.per_s)
        self._stamp = now
        due = min(cost, lim.burst)
        if self._units + 1e-9 >= due:
            self._units -= due
            return 0.0
        return (due - self._units) / lim.per_s

