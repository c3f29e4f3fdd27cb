"""Registered names: scrypt password hashes in SQLite, and the hashing kept off the event loop.

A password is never stored, logged or sent back: only ``scrypt$N$r$p$salt$hash``
(hashlib.scrypt, memory-hard, 16 MiB at the default cost). Checks compare with
hmac.compare_digest. Hashing a password takes tens of milliseconds of CPU, so
it runs in a small worker pool (hashlib releases the GIL while it works) and
the result comes back to the event loop; a login storm queues there, bounded,
while chat goes on. The pool is the only place the server uses threads, and it
touches nothing but the password and the stored hash.

On Linux the pool's threads run ``KDF_NICE`` steps nicer than the server: a
storm keeps both pool threads busy, and without this they compete with the event
loop for the CPU as equals, which on two cores shows as chat latency (see the
login storm in BENCHMARKS.md). Nicer, they still use every idle cycle, but give
way whenever the event loop has work.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer

from .backend import Account
from .rekey import rekey_accounts
from .store import close_wal, open_wal

SCRYPT_N = 1 << 14
SCRYPT_R = 8
SCRYPT_P = 1
KDF_NICE = 10  # how much nicer (lower CPU priority) the hashing threads are than the event loop (Linux)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, n: int = SCRYPT_N) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P,
                            maxmem=256 * n * SCRYPT_R, dklen=32)
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        scheme, n_s, r_s, p_s, salt_s, digest_s = encoded.split("$")
        n, r, p = int(n_s), int(r_s), int(p_s)
        salt, digest = base64.b64decode(salt_s), base64.b64decode(digest_s)
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    actual = hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=salt, n=n, r=r, p=p,
                            maxmem=256 * n * r, dklen=len(digest))
    return hmac.compare_digest(actual, digest)


SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    key TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    admin INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
"""


class AccountStore:
    """Accounts in ``accounts.db`` (or in memory with ``path`` None). Writes are rare (a registration, a
    role change) and each is committed at once."""

    def __init__(self, path: Path | None, *, synced_elsewhere: bool = False) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.db = open_wal(path, synced_elsewhere=synced_elsewhere)
        self.db.executescript(SCHEMA)
        rekey_accounts(self.db)  # (once, after names began to compare by their skeletons)
        self._cache: dict[str, Account | None] = {}

    def close(self) -> None:
        close_wal(self.db)

    def get(self, key: str) -> Account | None:
        if key not in self._cache:
            row = self.db.execute(
                "SELECT key, name, password_hash, admin, created FROM accounts WHERE key = ?", (key,)).fetchone()
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = Account(row[0], row[1], row[2], bool(row[3]), row[4]) if row else None
        return self._cache[key]

    def create(self, key: str, name: str, password_hash: str, *, admin: bool = False) -> Account:
        account = Account(key, name, password_hash, admin, time.time())
        self.db.execute("INSERT INTO accounts VALUES (?, ?, ?, ?, ?)",
                        (key, name, password_hash, int(admin), account.created))
        self._cache[key] = account
        return account

    def set_password(self, key: str, password_hash: str) -> None:
        self.db.execute("UPDATE accounts SET password_hash = ? WHERE key = ?", (password_hash, key))
        self._cache.pop(key, None)

    def set_admin(self, key: str, admin: bool) -> None:
        self.db.execute("UPDATE accounts SET admin = ? WHERE key = ?", (int(admin), key))
        self._cache.pop(key, None)

    def delete(self, key: str) -> bool:
        self._cache.pop(key, None)
        return self.db.execute("DELETE FROM accounts WHERE key = ?", (key,)).rowcount > 0

    def all(self) -> list[Account]:
        rows = self.db.execute("SELECT key, name, password_hash, admin, created FROM accounts ORDER BY key")
        return [Account(r[0], r[1], r[2], bool(r[3]), r[4]) for r in rows]


def _lower_thread_priority() -> None:
    """Run this worker thread KDF_NICE steps nicer than it started. Linux only, where a nice value is
    per thread (``setpriority`` with a thread id); elsewhere it would change the whole process, so the
    threads keep the server's priority there."""
    if not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    with contextlib.suppress(OSError):  # a sandbox that forbids it: hashing works, at the priority of chat
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + KDF_NICE))


@dataclass(frozen=True, slots=True)
class _Job:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    done: Callable[[Any], None]
    lane: str
    owner: str


LOGIN = "login"  # the hashing lane of logins of existing accounts
OTHER = "other"  # ... of registrations and password changes
JOBS_PER_ADDRESS = 4  # hashing jobs one address group may have queued or running at once


class Hasher(QObject):
    """Runs password hashing in a small worker pool; each result comes back on the event loop.

    ``submit`` refuses (returns False) when ``max_pending`` jobs wait already, so a
    login storm is bounded: the caller tells the client to try again shortly. Two
    lanes share the queue: registrations and password changes (``OTHER``) may take
    at most half of it, logins of existing accounts (``LOGIN``) all of it, and a
    free worker always takes a waiting login first; so others' hashing never starves
    a registered user's login. One ``owner`` (an address group) may have at most
    ``per_owner`` jobs in the queue.
    """

    def __init__(self, workers: int = 2, max_pending: int = 64, parent: QObject | None = None, *,
                 per_owner: int = JOBS_PER_ADDRESS) -> None:
        super().__init__(parent)
        self.max_pending = max_pending
        self.per_owner = per_owner
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qtchat-kdf",
                                        initializer=_lower_thread_priority)
        self._lock = threading.Lock()
        self._waiting: dict[str, deque[_Job]] = {LOGIN: deque(), OTHER: deque()}
        self._jobs: list[Future[tuple[_Job, Any]]] = []
        self._lanes: dict[str, int] = {LOGIN: 0, OTHER: 0}
        self._owners: dict[str, int] = {}
        self._timer = QTimer(self)
        self._timer.setInterval(5)
        self._timer.timeout.connect(self._collect)

    @property
    def pending(self) -> int:
        return len(self._jobs)

    def submit(self, fn: Callable[..., Any], args: tuple[Any, ...], done: Callable[[Any], None], *,
               lane: str = LOGIN, owner: str = "") -> bool:
        limit = self.max_pending if lane == LOGIN else self.max_pending // 2
        if len(self._jobs) >= self.max_pending or self._lanes[lane] >= limit or (
                owner and 0 < self.per_owner <= self._owners.get(owner, 0)):
            return False
        with self._lock:
            self._waiting[lane].append(_Job(fn, args, done, lane, owner))
        self._jobs.append(self._pool.submit(self._run_next))
        self._lanes[lane] += 1
        if owner:
            self._owners[owner] = self._owners.get(owner, 0) + 1
        if not self._timer.isActive():
            self._timer.start()
        return True

    def _run_next(self) -> tuple[_Job, Any]:
        """In a worker: the waiting job to run next, logins first. Every submit queues one job and one call
        of this, so each call finds one; the job travels back with its result."""
        with self._lock:
            job = (self._waiting[LOGIN] or self._waiting[OTHER]).popleft()
        return job, job.fn(*job.args)

    def _collect(self) -> None:
        finished: list[Future[tuple[_Job, Any]]] = []
        waiting: list[Future[tuple[_Job, Any]]] = []
        for future in self._jobs:
            (finished if future.done() else waiting).append(future)
        if not finished:
            return
        self._jobs = waiting
        if not self._jobs:
            self._timer.stop()
        results = [f.result() for f in finished]
        for job, _ in results:
            self._lanes[job.lane] -= 1
            if job.owner:
                left = self._owners[job.owner] - 1
                if left:
                    self._owners[job.owner] = left
                else:
                    del self._owners[job.owner]
        for job, result in results:
            job.done(result)  # the functions given return their failures as values

    def shutdown(self) -> None:
        self._timer.stop()
        self._jobs.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)
