"""The limits on accounts: guessing, registering and changing passwords, counted per address and per account.

Pure Python with the clock passed in. Every count is a sliding window (``Window``): the times of the last
events per key, plus the checks of that key still running in the hashing pool, so a burst of checks
sent before the first answer comes back is counted at once (a check still running counts as a wrong
password until it turns out right). Addresses are counted by ``address_group``: an IPv4 address
alone, an IPv6 address by its /64 (one host's or one customer's usual share), so a client cannot get
a new count by picking another address of its own network. The shapes follow Synapse's
``rc_login.address``, ``rc_login.account``, ``rc_login.failed_attempts`` and ``rc_registration``.

- wrong passwords: ``failures_per_address`` per address group and ``failures_per_account`` per
  account in ``window`` seconds (login and ``passwd`` alike);
- registering: ``registrations_per_address`` per address group and ``registrations_total`` for the
  whole server in ``window`` seconds, every attempt counted;
- changing a password: ``passwd_per_account`` attempts per account in ``window`` seconds, right or
  wrong;
- the hashing queue: ``jobs_per_address`` jobs at once per address group (accounts.Hasher, which also
  keeps half of its queue for logins of existing accounts and runs those first).

A limit of 0 turns that one off.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from dataclasses import dataclass


def address_group(address: str) -> str:
    """The key an address is counted under: an IPv4 address itself, an IPv6 address's /64."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


@dataclass(frozen=True, slots=True)
class AccountLimits:
    window: float = 60.0  # seconds every count below is kept
    failures_per_address: int = 10  # wrong passwords from one address (IPv6: one /64)
    failures_per_account: int = 10  # wrong passwords for one account, from anywhere
    registrations_per_address: int = 3  # registrations from one address (IPv6: one /64)
    registrations_total: int = 30  # registrations on the whole server
    passwd_per_account: int = 5  # password changes tried by one account, right or wrong
    jobs_per_address: int = 4  # hashing jobs queued or running at once for one address (IPv6: one /64)


PRUNE_AT = 4096  # keys a Window holds before those whose events all left it are forgotten


class Window:
    """Events per key over the last ``seconds``, and checks still running; full at ``limit`` (0: never)."""

    __slots__ = ("_events", "_prune_at", "_running", "limit", "seconds")

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self._events: dict[str, deque[float]] = {}
        self._running: dict[str, int] = {}
        self._prune_at = PRUNE_AT

    def count(self, key: str, now: float) -> int:
        events = self._events.get(key)
        if events is not None:
            while events and now - events[0] >= self.seconds:
                events.popleft()
            if not events:
                del self._events[key]
        return (len(events) if events else 0) + self._running.get(key, 0)

    def full(self, key: str, now: float) -> bool:
        return self.limit > 0 and self.count(key, now) >= self.limit

    def wait(self, key: str, now: float) -> float:
        """Seconds until the oldest event counted leaves the window (the window's length if only checks run)."""
        events = self._events.get(key)
        return max(0.0, self.seconds - (now - events[0])) if events else self.seconds

    def add(self, key: str, now: float) -> None:
        self._events.setdefault(key, deque()).append(now)
        if len(self._events) > self._prune_at:  # many keys seen once (a spray over addresses or names)
            for old in [k for k, events in self._events.items() if now - events[-1] >= self.seconds]:
                del self._events[old]
            self._prune_at = max(PRUNE_AT, 2 * len(self._events))  # (amortised: never a scan per event)

    def start(self, key: str) -> None:
        self._running[key] = self._running.get(key, 0) + 1

    def finish(self, key: str, now: float, *, counted: bool) -> None:
        """A running check ended; ``counted`` keeps it as an event (a wrong password)."""
        left = self._running.get(key, 1) - 1
        if left > 0:
            self._running[key] = left
        else:
            self._running.pop(key, None)
        if counted:
            self.add(key, now)


class AccountGuard:
    """The windows of one server. Each ``*_full`` method returns the seconds to wait, or 0 when allowed."""

    def __init__(self, limits: AccountLimits) -> None:
        self.limits = lim = limits
        self.failures_by_address = Window(lim.failures_per_address, lim.window)
        self.failures_by_account = Window(lim.failures_per_account, lim.window)
        self.registrations_by_address = Window(lim.registrations_per_address, lim.window)
        self.registrations = Window(lim.registrations_total, lim.window)
        self.passwd_by_account = Window(lim.passwd_per_account, lim.window)

    @staticmethod
    def _blocked(now: float, *checks: tuple[Window, str]) -> float:
        return max((w.wait(k, now) for w, k in checks if w.full(k, now)), default=0.0)

    def guessing_full(self, address: str, account: str, now: float) -> float:
        return self._blocked(now, (self.failures_by_address, address_group(address)),
                             (self.failures_by_account, account))

    def check_started(self, address: str, account: str) -> None:
        self.failures_by_address.start(address_group(address))
        self.failures_by_account.start(account)

    def check_finished(self, address: str, account: str, now: float, *, wrong: bool) -> None:
        self.failures_by_address.finish(address_group(address), now, counted=wrong)
        self.failures_by_account.finish(account, now, counted=wrong)

    def registration_full(self, address: str, now: float) -> float:
        return self._blocked(now, (self.registrations_by_address, address_group(address)),
                             (self.registrations, ""))

    def registered(self, address: str, now: float) -> None:
        """A registration tried (counted whatever comes of it)."""
        self.registrations_by_address.add(address_group(address), now)
        self.registrations.add("", now)

    def passwd_full(self, account: str, now: float) -> float:
        return self._blocked(now, (self.passwd_by_account, account))

    def passwd_tried(self, account: str, now: float) -> None:
        self.passwd_by_account.add(account, now)
