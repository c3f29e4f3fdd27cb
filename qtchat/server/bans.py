"""Bans by name and/or address, with an optional end, kept in a small JSON file across restarts."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from qtchat.protocol import name_key

log = logging.getLogger("qtchat.server")


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
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
                self.bans = [Ban(**entry) for entry in raw["bans"]]
                for ban in self.bans:  # keys made before names compared by their skeletons
                    if ban.name_key is not None and not ban.name_key.isascii():
                        ban.name_key = name_key(ban.name_key)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.error("cannot read the ban list %s: %s (starting with none)", path, exc)

    def add(self, name: str | None, address: str | None, seconds: float | None, reason: str = "") -> Ban:
        if not name and not address:
            raise ValueError("a ban needs a name, an address, or both")
        now = time.time()
        ban = Ban(name_key(name) if name else None, address or None,
                  None if seconds is None else now + seconds, reason, now)
        self.bans.append(ban)
        self._save()
        return ban

    def remove(self, target: str) -> int:
        """Lift every ban on this name or address; returns how many."""
        key = name_key(target)
        before = len(self.bans)
        self.bans = [b for b in self.bans if b.name_key != key and b.address != target]
        if len(self.bans) != before:
            self._save()
        return before - len(self.bans)

    def match(self, key: str | None, address: str | None) -> Ban | None:
        now = time.time()
        expired = [b for b in self.bans if not b.active(now)]
        if expired:
            self.bans = [b for b in self.bans if b.active(now)]
            self._save()
        for ban in self.bans:
            if (ban.name_key is not None and ban.name_key == key) or (
                ban.address is not None and ban.address == address
            ):
                return ban
        return None

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps({"version": 1, "bans": [asdict(b) for b in self.bans]}, indent=1)
        fd, tmp = tempfile.mkstemp(prefix=".bans-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data)
            os.replace(tmp, self.path)
        except OSError as exc:
            log.error("cannot save the ban list %s: %s", self.path, exc)
            Path(tmp).unlink(missing_ok=True)
