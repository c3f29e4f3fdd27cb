"""``qtchat-server migrate --from DIR --to postgresql://...``: a one-machine data folder into PostgreSQL.

An offline command (it serves nobody, so it blocks): the SQLite files are read read-only, everything
is written in one PostgreSQL transaction (all or nothing), and a cluster node (``qtchat-server
--database URL``, pg_backend.py) then serves the same history, accounts, rooms, bans, mailboxes and
read markers, with the same message ids.

- The schema is made exactly as ``PostgresBackend.open()`` makes it (pg_schema.SCHEMA, under its
  advisory lock), so it has one definition. The messages' indexes are dropped while the rows go in and
  made again by the same SCHEMA statements (faster than keeping them up to date row by row).
- Messages go through COPY into a temporary table with their folded text (search_agent.fold), then into
  ``messages`` with each room's numbers (``seq``, 1..n in id order) and ``words`` = to_tsvector('simple',
  folded), as a node stores them. ``room_seq`` gets each room's last number.
- The sequence ``message_ids`` is set above every migrated id (messages and mailboxes), never lowered.
- Refused (exit code 2, nothing written): a folder that is not a data folder, one whose databases are open
  in another program (a server still running on it), one from an older version whose name keys were not
  brought up to date, and a database that already holds messages, private messages, accounts or rooms (so
  a second run never duplicates anything). The FTS5 index and its ``meta`` row are not copied (PostgreSQL
  searches its own ``words``).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import struct
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from .bans import BanFileError, BanList
from .rekey import KEYS_VERSION
from .search_agent import fold

DMS_BYTE = 128  # the byte of a -shm file every open SQLite connection holds a shared lock on (os_unix.c)
MESSAGE_INDEXES = ("messages_room_id", "messages_words", "messages_sender_cid", "messages_resend")
EMPTY_CHECK = ("messages", "mailbox", "accounts", "rooms")


class MigrateError(Exception):
    """Why the migration is refused or failed: one plain sentence for the user."""


@dataclass
class Summary:
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows written
    top_id: int = 0  # the highest migrated id (messages and mailboxes)
    seconds: float = 0.0


def build_migrate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qtchat-server migrate",
        description="Copy a one-machine server's data folder (messages, private messages kept for offline users, "
        "read markers, accounts, rooms, bans) into an empty PostgreSQL database, so that cluster nodes "
        "(qtchat-server --database URL) serve it, with the same message ids. Stop the server first: the folder "
        "must not change while it is copied. The folder is only read; the database is written in one "
        "transaction, all or nothing. See docs/MIGRATING.md.")
    p.add_argument("--from", dest="source", type=Path, required=True, metavar="DIR",
                   help="the data folder (the one given to --data-dir, where messages.db and accounts.db are)")
    p.add_argument("--to", dest="target", required=True, metavar="URL",
                   help="the PostgreSQL database (postgresql://user@host:port/dbname); it must hold no messages, "
                        "accounts or rooms yet")
    return p


def migrate_main(argv: Sequence[str]) -> int:
    """``qtchat-server migrate ...``: 0 when done, 2 when refused or failed (the reason on stderr)."""
    args = build_migrate_parser().parse_args(argv)
    try:
        summary = migrate(args.source, args.target, sys.stderr)
    except MigrateError as exc:
        print(f"qtchat-server migrate: {exc}", file=sys.stderr)
        return 2
    total = sum(summary.rows.values())
    print(f"qtchat-server migrate: done: {total} rows in {summary.seconds:.1f} s "
          f"({', '.join(f'{n} {t}' for t, n in summary.rows.items())}); new message ids continue above "
          f"{summary.top_id}. Start the nodes with --database.", file=sys.stderr)
    return 0


# ------------------------------------------------------------ the folder


def open_elsewhere(db: Path) -> bool:
    """Is this SQLite database (WAL mode) open in another process? Every connection holds a shared lock on a
    byte of its -shm file as long as it is open. Asked with an open-file-description lock (Linux), which also
    sees this process's own connections. False where that cannot be asked."""
    if os.name != "posix":
        return False
    import fcntl

    shm = db.with_name(db.name + "-shm")
    getlk = getattr(fcntl, "F_OFD_GETLK", None)
    if getlk is None or not shm.exists():
        return False
    fd = os.open(shm, os.O_RDONLY)
    try:
        asked = struct.pack("hhqqixxxx", fcntl.F_WRLCK, os.SEEK_SET, DMS_BYTE, 1, 0)
        answer = fcntl.fcntl(fd, getlk, asked)
    except OSError:
        return False
    finally:
        os.close(fd)
    return bool(struct.unpack("hhqqixxxx", answer)[0] != fcntl.F_UNLCK)


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{quote(str(path.absolute()))}?mode=ro", uri=True)


def _tables(db: sqlite3.Connection) -> set[str]:
    return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def open_folder(folder: Path) -> tuple[sqlite3.Connection | None, sqlite3.Connection, BanList]:
    """The data folder's messages.db (None: a server run with --no-history has none), accounts.db and bans,
    checked; MigrateError when it is not a data folder or cannot be copied now."""
    accounts_db, messages_db = folder / "accounts.db", folder / "messages.db"
    if not folder.is_dir():
        raise MigrateError(f"{folder} is not a folder.")
    if not accounts_db.is_file():
        raise MigrateError(f"{folder} is not a qtchat-server data folder (it has no accounts.db).")
    wanted = [(accounts_db, {"accounts", "rooms", "room_members"})]
    if messages_db.is_file() and messages_db.stat().st_size:
        wanted.append((messages_db, {"messages", "read_markers", "mailbox"}))
    for path, _ in wanted:
        if open_elsewhere(path):
            raise MigrateError(f"{path} is open in another program, most likely a qtchat-server still running "
                               f"on this folder: stop it, then migrate.")
    opened: list[sqlite3.Connection] = []
    try:
        for path, tables in wanted:
            db = _read_only(path)
            opened.append(db)
            missing = tables - _tables(db)
            if missing:
                raise MigrateError(f"{path} is not a qtchat-server database (it has no table "
                                   f"{', '.join(sorted(missing))}).")
            if int(db.execute("PRAGMA user_version").fetchone()[0]) < KEYS_VERSION:
                raise MigrateError(f"{path} was written by an older qtchat-server: start this version's server "
                                   f"once on the folder (it brings the stored name keys up to date), stop it, "
                                   f"then migrate.")
        bans = BanList(folder / "bans.json")
    except sqlite3.DatabaseError as exc:
        for db in opened:
            db.close()
        raise MigrateError(f"cannot read the data folder {folder}: {exc}.") from None
    except (MigrateError, BanFileError) as exc:
        for db in opened:
            db.close()
        raise MigrateError(str(exc)) from None
    return (opened[1] if len(opened) > 1 else None), opened[0], bans


# ------------------------------------------------------------ the database


def migrate(folder: Path, dsn: str, progress: TextIO | None = None) -> Summary:
    """Copy the data folder into the PostgreSQL database ``dsn``, in one transaction; MigrateError when
    refused or failed (then nothing was written)."""
    import psycopg

    started = time.monotonic()
    side_files = [folder / f"{db}-{kind}" for db in ("messages.db", "accounts.db") for kind in ("wal", "shm")]
    made_here = [path for path in side_files if not path.exists()]
    try:
        messages_db, accounts_db, bans = open_folder(folder)
    except MigrateError:
        _tidy(made_here)
        raise
    try:
        try:
            with psycopg.connect(dsn, autocommit=False, connect_timeout=10) as pg:
                summary = _copy_all(pg, messages_db, accounts_db, bans, progress)
                pg.commit()
        except psycopg.Error as exc:
            raise MigrateError(f"cannot migrate into PostgreSQL, nothing was written: "
                               f"{' '.join(str(exc).split()).rstrip('.') or type(exc).__name__}") from None
        except sqlite3.DatabaseError as exc:
            raise MigrateError(f"cannot read the data folder {folder}, nothing was written: {exc}.") from None
    finally:
        for db in (messages_db, accounts_db):
            if db is not None:
                db.close()
        _tidy(made_here)
    summary.seconds = time.monotonic() - started
    return summary


def _tidy(made_here: list[Path]) -> None:
    """Remove the empty -wal files (and their -shm) that SQLite's read-only connections left, when they were not
    there before: the folder is left as it was found."""
    for wal in made_here:
        shm = wal.with_name(wal.name[:-3] + "shm")
        if wal.name.endswith("-wal") and shm in made_here and wal.exists() and wal.stat().st_size == 0 \
                and not open_elsewhere(wal.with_name(wal.name[:-4])):  # (a server started meanwhile: its files)
            wal.unlink()
            shm.unlink(missing_ok=True)


def _copy_all(pg: Any, messages_db: sqlite3.Connection | None, accounts_db: sqlite3.Connection,
              bans: BanList, progress: TextIO | None) -> Summary:
    from .pg_schema import SCHEMA, SCHEMA_LOCK

    def told(table: str, rows: int, since: float) -> None:
        summary.rows[table] = rows
        if progress is not None:
            rate = rows / max(time.monotonic() - since, 1e-6)
            print(f"qtchat-server migrate: {table}: {rows} rows ({rate:,.0f} rows/s)", file=progress, flush=True)

    summary = Summary()
    cur = pg.cursor()
    cur.execute("SELECT pg_advisory_xact_lock(%s)", [SCHEMA_LOCK])
    for sql in SCHEMA:
        cur.execute(sql)
    for table in EMPTY_CHECK:
        cur.execute(f"SELECT EXISTS (SELECT 1 FROM {table})")
        if cur.fetchone()[0]:
            raise MigrateError(f"the database already holds {table.replace('mailbox', 'private messages')}: "
                               f"migrate into a new, empty database (nothing was written).")
    if messages_db is not None:
        summary.top_id = _copy_messages(cur, messages_db, told, SCHEMA)
        for table, cols in (("read_markers", "user_key, room_key, id"),
                            ("mailbox", "id, user_key, ts, sender, sender_key, cid, text")):
            since = time.monotonic()
            told(table, _copy(cur, table, cols, messages_db.execute(f"SELECT {cols} FROM {table}")), since)
        row = messages_db.execute("SELECT max(id) FROM mailbox").fetchone()
        summary.top_id = max(summary.top_id, int(row[0] or 0))
    since = time.monotonic()
    told("accounts", _copy(cur, "accounts", "key, name, password_hash, admin, created",
                           ((k, n, h, bool(a), c) for k, n, h, a, c in accounts_db.execute(
                               "SELECT key, name, password_hash, admin, created FROM accounts"))), since)
    since = time.monotonic()
    told("rooms", _copy(cur, "rooms", "key, state", _room_states(accounts_db)), since)
    since = time.monotonic()
    told("room_members", _copy(cur, "room_members", "room, member, since",
                               accounts_db.execute("SELECT room, member, since FROM room_members")), since)
    from psycopg.types.json import Jsonb

    cur.execute("INSERT INTO bans (one, state) VALUES (1, %s) ON CONFLICT (one) DO UPDATE SET state = EXCLUDED.state",
                [Jsonb(bans.state())])
    told("bans", len(bans.bans), time.monotonic())
    # above every migrated id, never lowered (the sequence may already be past them: ids are microseconds)
    cur.execute("SELECT setval('message_ids', GREATEST((SELECT last_value FROM message_ids), %s))",
                [summary.top_id])
    return summary


def _room_states(db: sqlite3.Connection) -> Iterator[tuple[str, str]]:
    for key, state in db.execute("SELECT key, state FROM rooms"):
        try:
            parsed = json.loads(state)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict) or "name" not in parsed:
            raise MigrateError(f"the record of the room {key!r} in accounts.db makes no sense ({state!r}); "
                               f"nothing was written.")
        yield key, json.dumps(parsed, ensure_ascii=False)


def _copy(cur: Any, table: str, cols: str, rows: Any) -> int:
    count = 0
    with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def _copy_messages(cur: Any, db: sqlite3.Connection, told: Any, schema: list[str]) -> int:
    """The room messages, with each room's numbers and folded words; the rooms' counters. The highest id."""
    since = time.monotonic()
    cur.execute("CREATE TEMPORARY TABLE migrated (id bigint, room text, seq bigint, ts bigint, sender text, "
                "sender_key text, cid text, text text, folded text, edited bigint, deleted boolean, changed bigint, "
                "reply_to bigint) ON COMMIT DROP")
    counters: dict[str, int] = {}
    top = 0
    have = {str(r[1]) for r in db.execute("PRAGMA table_info(messages)")}  # (a folder from before edits has none)
    extra = ", ".join(c if c in have else d for c, d in (("edited", "0"), ("deleted", "0"), ("changed", "NULL"),
                                                         ("reply_to", "NULL")))

    def numbered() -> Iterator[tuple[Any, ...]]:
        nonlocal top
        for mid, room, ts, sender, sender_key, cid, text, edited, deleted, changed, reply_to in db.execute(
                f"SELECT id, room, ts, sender, sender_key, cid, text, {extra} FROM messages ORDER BY room, id"):
            seq = counters[room] = counters.get(room, 0) + 1
            top = max(top, mid, changed or 0)
            yield mid, room, seq, ts, sender, sender_key, cid, text, fold(text), edited, bool(deleted), changed, reply_to

    count = _copy(cur, "migrated", "id, room, seq, ts, sender, sender_key, cid, text, folded, edited, deleted, changed, "
                  "reply_to", numbered())
    cur.execute("SET LOCAL maintenance_work_mem = '256MB'")  # the search index is built in memory in one go
    for index in MESSAGE_INDEXES:  # made again below, by the schema's own statements
        cur.execute(f"DROP INDEX IF EXISTS {index}")
    cur.execute("INSERT INTO messages (id, room, seq, ts, sender, sender_key, cid, text, words, edited, deleted, "
                "changed, reply_to) SELECT id, room, seq, ts, sender, sender_key, cid, text, "
                "to_tsvector('simple', folded), edited, deleted, changed, reply_to FROM migrated")
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'reactions'").fetchone() is not None:
        _copy(cur, "reactions", "message_id, user_key, emoji",
              db.execute("SELECT message_id, user_key, emoji FROM reactions"))
    for sql in schema:
        if sql.startswith("CREATE INDEX IF NOT EXISTS messages_"):
            cur.execute(sql)
    _copy(cur, "room_seq", "room, last_seq", counters.items())
    told("messages", count, since)
    return top
