"""The sync agent: a small process that makes the server's SQLite commits durable off its event loop.

The server commits each pass to SQLite without waiting for the disk (``PRAGMA synchronous=OFF``
in WAL mode: the commit is written to the ``-wal`` file, not synced) and acknowledges nothing until
this process answers that it has synced the ``-wal`` files (``fsync`` flushes a file's data whoever
wrote it). An fsync that takes half a second on a busy disk then delays only the acknowledgements
waiting for it, never the server's loop: pings, reads and other rooms' notices go on meanwhile, and
everything accepted meanwhile shares the next sync (group commit).

It also checkpoints the log into the database (``PRAGMA wal_checkpoint(PASSIVE)``, which never takes
the writer's lock and syncs both files itself), so the server's own connection, with automatic
checkpoints off, never syncs at all (``store.open_wal`` says why that is safe).

Only the standard library is imported here: the agent starts in a few milliseconds. Requests on
standard input, one a line; answers on standard output, one a line, in the same order:

    sync        ->  ok            (every file synced)   or  error TEXT
    quit        ->  (exits; so does end of input)

``python -m qtchat.server.sync_agent DB [DB ...]``; in a bundle, the server's executable with
``--sync-agent`` first (``run_if_asked``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

FLAG = "--sync-agent"
CHECKPOINT_AT = 16 << 20  # a log this large (bytes) is checkpointed after the next sync


def sync_file(path: Path) -> None:
    """fsync one file by name. A file that is not there has nothing to sync."""
    try:  # read-write: Windows flushes (FlushFileBuffers) only through a handle that may write
        fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def wal_of(database: Path) -> Path:
    return database.with_name(database.name + "-wal")


class Agent:
    """Syncs the logs of ``databases``, and checkpoints a log once it is CHECKPOINT_AT bytes or more."""

    def __init__(self, databases: list[Path], *, checkpoint_at: int = CHECKPOINT_AT) -> None:
        self.databases = databases
        self.checkpoint_at = checkpoint_at
        self._checkpointers: dict[Path, sqlite3.Connection] = {}

    def sync(self) -> None:
        for db in self.databases:
            wal = wal_of(db)
            sync_file(wal)
            with contextlib.suppress(OSError):
                if wal.stat().st_size >= self.checkpoint_at:
                    self.checkpoint(db)

    def checkpoint(self, db: Path) -> None:
        conn = self._checkpointers.get(db)
        if conn is None:
            conn = self._checkpointers[db] = sqlite3.connect(str(db), isolation_level=None, timeout=0)
            conn.execute("PRAGMA synchronous=FULL")  # the checkpoint syncs the log before, the database after
        with contextlib.suppress(sqlite3.Error):  # busy, or not in WAL mode: tried again after a later sync
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    def close(self) -> None:
        for conn in self._checkpointers.values():
            conn.close()


def answer(agent: Agent, request: str) -> str:
    if request != "sync":
        return f"error unknown request {request[:40]!r}"
    try:
        agent.sync()
    except OSError as exc:
        return "error " + " ".join(str(exc).split())
    return "ok"


def serve(databases: list[Path], requests: Iterable[str] | None = None, answers: TextIO | None = None) -> int:
    """Answer requests until ``quit`` or the end of input."""
    stdin = sys.stdin if requests is None else requests
    stdout = sys.stdout if answers is None else answers
    agent = Agent(databases)
    try:
        for line in stdin:
            request = line.strip()
            if request == "quit":
                break
            stdout.write(answer(agent, request) + "\n")
            stdout.flush()
    finally:
        agent.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == [FLAG]:
        args = args[1:]
    # a Ctrl+C in the terminal reaches the whole process group: the server finishes its last syncs first,
    # then closes our input, which ends us
    with contextlib.suppress(ValueError, AttributeError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    return serve([Path(a) for a in args])


def run_if_asked() -> None:
    """For a bundle's entry point: when started as the sync agent, be it and exit."""
    if sys.argv[1:2] == [FLAG]:
        sys.exit(main(sys.argv[2:]))


if __name__ == "__main__":
    sys.exit(main())
