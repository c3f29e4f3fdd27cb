"""Bans by name and/or address, with an optional end, kept in a small JSON file across restarts."""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from qtchat.protocol import name_key
from qtchat.protocol.events import MAX_BAN_MINUTES

log = logging.getLogger("qtchat.server")

MAX_BAN_SECONDS = MAX_BAN_MINUTES * 60  # ten years: longer is "for good"


class BanFileError(OSError):
    """The ban file cannot be read or makes no sense: the server does not start (it would run without the
    bans and overwrite them at the next change)."""


def check_ban_seconds(seconds: object) -> float | None:
    """A ban's length in seconds, checked: None (for good), or a positive number up to MAX_BAN_SECONDS."""
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) \
            or not 0 < seconds <= MAX_BAN_SECONDS:
        raise ValueError(f"A ban lasts a positive number of seconds up to {MAX_BAN_SECONDS} (ten years), "
                         f"or for good; not {seconds!r}.")
    return float(seconds)


@dataclass
class Ban:
    name_key: str | None  # a username's comparison key (see protocol.names), or None
    address: str | None  # an IP address, or None
    until: float | None  # Unix time the ban ends, None for never
    reason: str
    created: float

    def active(self, now: float) -> bool:
        return self.until is None or now < self.until

    def describe(self) -> str:
        who = " and ".join(x for x in (self.name_key and f"name {self.name_key!r}",
                                       self.address and f"address {self.address}") if x)
        end = "for good" if self.until is None else "until " + time.strftime("%Y-%m-%d %H:%M", time.localtime(self.until))
        return f"{who} {end}" + (f" ({self.reason})" if self.reason else "")


class BanList:
    """The server's bans. ``path`` None keeps them in memory only.

    The file is rewritten whole on every change (bans are few and changes rare)
    through a temporary file and a rename, so a crash never leaves half a file.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.bans: list[Ban] = []
        if path is not None and path.exists():
            self.load(load_bans(path))

    def load(self, bans: list[Ban]) -> None:
        """Take these bans (as kept) instead of the ones held."""
        self.bans = bans
        for ban in self.bans:  # keys made before names compared by their skeletons (rekey.py)
            if ban.name_key is not None and not ban.name_key.isascii():
                ban.name_key = name_key(ban.name_key)

    def state(self) -> dict[str, object]:
        """The bans as they are kept (bans.json, or a database's copy)."""
        return {"version": 1, "bans": [asdict(b) for b in self.bans]}

    def add(self, name: str | None, address: str | None, seconds: float | None, reason: str = "") -> Ban:
        if not name and not address:
            raise ValueError("a ban needs a name, an address, or both")
        seconds = check_ban_seconds(seconds)
        now = time.time()
        ban = Ban(name_key(name) if name else None, address or None,
                  None if seconds is None else now + seconds, reason, now)
        self.bans.append(ban)
        self._added(ban)
        return ban

    def remove(self, target: str) -> int:
        """Lift every ban on this name or address; returns how many."""
        key = name_key(target)
        before = len(self.bans)
        self.bans = [b for b in self.bans if b.name_key != key and b.address != target]
        if len(self.bans) != before:
            self._removed(target)
        return before - len(self.bans)

    def match(self, key: str | None, address: str | None) -> Ban | None:
        now = time.time()
        expired = [b for b in self.bans if not b.active(now)]
        if expired:
            self.bans = [b for b in self.bans if b.active(now)]
            self._expired()
        for ban in self.bans:
            if (ban.name_key is not None and ban.name_key == key) or (
                ban.address is not None and ban.address == address
            ):
                return ban
        return None

    # what a change does to the kept copy: here the file is written whole; a database's list (pg_mirror.py)
    # changes its row in one statement instead, so that two nodes' changes never undo each other
    def _added(self, ban: Ban) -> None:
        self._save()

    def _removed(self, target: str) -> None:
        self._save()

    def _expired(self) -> None:
        self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps(self.state(), indent=1)
        fd, tmp = tempfile.mkstemp(prefix=".bans-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data)
            os.replace(tmp, self.path)
        except OSError as exc:
            log.error("cannot save the ban list %s: %s", self.path, exc)
            Path(tmp).unlink(missing_ok=True)


def load_bans(path: Path) -> list[Ban]:
    """The bans in ``path``; BanFileError with the reason when it cannot be read or is not a ban list."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BanFileError(f"cannot read the ban list {path}: {exc}. Fix or remove the file, then start "
                           f"again (the server does not start without its bans).") from exc
    return parse_bans(raw, f"the ban list {path}", "Fix or remove the file")


def parse_bans(raw: object, where: str, fix: str) -> list[Ban]:
    """The bans of a ban list as kept (``BanList.state()``); BanFileError naming ``where`` and how to ``fix`` it."""
    entries = raw.get("bans") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        raise BanFileError(f"{where} is not one: it needs {{\"bans\": [...]}}. {fix}, then start again.")
    bans = []
    for number, entry in enumerate(entries, 1):
        problem = _entry_problem(entry)
        if problem is not None:
            raise BanFileError(f"{where}: entry {number} {problem}. {fix}, then start again.")
        bans.append(Ban(**entry))
    return bans


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and 0 <= value <= time.time() + 2 * MAX_BAN_SECONDS


def _entry_problem(entry: object) -> str | None:
    if not isinstance(entry, dict) or set(entry) != {"name_key", "address", "until", "reason", "created"}:
        return "needs exactly name_key, address, until, reason and created"
    if not all(entry[k] is None or isinstance(entry[k], str) for k in ("name_key", "address")) \
            or not (entry["name_key"] or entry["address"]):
        return "needs a name_key or an address (strings)"
    if not (entry["until"] is None or _number(entry["until"])):
        return f"has 'until' {entry['until']!r}: it must be a Unix time in seconds, or null for good"
    if not _number(entry["created"]):
        return f"has 'created' {entry['created']!r}: it must be a Unix time in seconds"
    if not isinstance(entry["reason"], str):
        return "has a 'reason' that is not a string"
    return None
