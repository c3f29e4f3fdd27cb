"""The search agent: a small process that runs the server's full-text searches off its event loop.

A search's cost cannot be bounded finely on the loop: SQLite's progress handler is not called while FTS5
builds a prefix's doclist or walks the doclists of common words, so one query of eight one-letter
prefixes over 100,000 messages held the loop for 40-300 ms whatever its budget said. Here it holds only
this process: the server sends the query through a pipe it watches like a socket and goes on serving
everyone; the searcher waits for the answer, the others do not. The agent reads ``messages.db`` with a
read-only connection of its own (WAL: readers never block the server's writer) and stops a search past
its budget (``too_costly``: the searcher is told to search for rarer words). It runs at a lower priority
(nice 10 on POSIX), so that on a busy machine the loop gets the CPU first.

The words, the FTS5 query and the LIKE scan for what the index does not hold yet are here, shared with
``store.py`` (which runs the same search on the loop when there is no agent: a database in memory).
Only the standard library is imported, so the agent starts in a few milliseconds. Requests on standard
input, one JSON object a line; answers on standard output, one a line, in the same order:

    {"query": Q, "rooms": [KEY, ...], "before": ID|null, "limit": N, "upto": ID|null, "budget": S,
     "max_bytes": B}
        ->  {"rows": [[id, room, ts, sender, text, cid], ...], "more": BOOL}
        or  {"error": "too_costly"}   or  {"error": TEXT}

``upto``: the highest id in the full-text index (what is above it is scanned); null: no index, scan all.
``python -m qtchat.server.search_agent DB``; in a bundle, the server's executable with ``--search-agent``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import sys
import time
import unicodedata
from collections.abc import Iterable
from typing import Any, TextIO

FLAG = "--search-agent"

Row = tuple[int, str, int, str, str, "str | None", int]

# a search word: letters and digits (what FTS5's unicode61 tokenizer keeps), anything else separates
_WORD = re.compile(r"[^\W_]+")
_NOT_WORD = re.compile(r"[\W_]+")
COLS = "id, room, ts, sender, text, cid, edited"


def query_words(query: str) -> list[str]:
    """The words of a search query, each to be matched as a word prefix."""
    return _WORD.findall(unicodedata.normalize("NFC", query))


def fts_query(words: Iterable[str]) -> str:
    """An FTS5 query for all ``words`` as prefixes, each quoted so that nothing in it is FTS5 syntax."""
    return " ".join('"' + w.replace('"', '""') + '"*' for w in words)


def fold(text: str) -> str:
    """Text as the LIKE fallback compares it: case-folded, without diacritics, every run of
    non-word characters one space, with a space in front (so a word prefix is ``% word%``)."""
    if text.isascii():  # the same, several times faster: ASCII is its own NFKD form, with no combining marks
        return " " + _NOT_WORD.sub(" ", text.lower())
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " " + _NOT_WORD.sub(" ", bare)


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def scan(db: sqlite3.Connection, words: list[str], rooms: list[str], *, above: int, below: int,
         limit: int) -> list[Row]:
    """The LIKE scan: messages of ``rooms`` with ids between ``above`` and ``below`` (exclusive) holding every
    word as a word prefix, newest first (the connection needs the function ``qtchat_fold``)."""
    marks = ",".join("?" * len(rooms))
    likes = " AND ".join(["qtchat_fold(text) LIKE ? ESCAPE '\\'"] * len(words))
    patterns = ["% " + like_escape(fold(w).strip()) + "%" for w in words]
    return db.execute(
        f"SELECT {COLS} FROM messages WHERE room IN ({marks}) AND id > ? AND id < ? AND {likes} "
        f"ORDER BY id DESC LIMIT ?", (*rooms, above, below, *patterns, limit)).fetchall()


def search_rows(db: sqlite3.Connection, query: str, rooms: list[str], *, before: int | None, limit: int,
                upto: int | None) -> tuple[list[Row], bool]:
    """Messages of ``rooms`` holding every word of ``query`` as a word prefix, newest first, with ids below
    ``before``: from the FTS5 index up to the id ``upto`` and by a scan above it (``upto`` None: no index, all
    scanned). Returns (at most ``limit`` rows, whether there are more)."""
    words = query_words(query)
    if not words or not rooms:
        return [], False
    top = before if before is not None else 1 << 62
    if upto is None:
        rows = scan(db, words, rooms, above=0, below=top, limit=limit + 1)
    else:
        rows = []
        if top > upto + 1:  # newer than the index: scanned (usually none, or a second's worth)
            rows = scan(db, words, rooms, above=upto, below=top, limit=limit + 1)
        if len(rows) <= limit:
            marks = ",".join("?" * len(rooms))
            rows += db.execute(
                f"SELECT m.id, m.room, m.ts, m.sender, m.text, m.cid, m.edited FROM messages_fts "
                f"CROSS JOIN messages AS m ON m.id = messages_fts.rowid "
                f"WHERE messages_fts MATCH ? AND messages_fts.rowid < ? AND m.room IN ({marks}) "
                f"ORDER BY messages_fts.rowid DESC LIMIT ?",
                (fts_query(words), min(top, upto + 1), *rooms, limit + 1 - len(rows))).fetchall()
    return rows[:limit], len(rows) > limit


class TooCostly(Exception):
    """A search stopped at its time budget."""


def within(db: sqlite3.Connection, budget: float, call: Any) -> Any:
    """``call()``, stopped (TooCostly) once it has run ``budget`` seconds (SQLite's progress handler)."""
    deadline = time.monotonic() + budget
    db.set_progress_handler(lambda: int(time.monotonic() > deadline), 2000)
    try:
        return call()
    except sqlite3.OperationalError as exc:
        if "interrupt" in str(exc):
            raise TooCostly from None
        raise
    finally:
        db.set_progress_handler(None, 0)


def open_reader(path: str) -> sqlite3.Connection:
    """A read-only connection to the server's messages.db (WAL: it never holds the writer up)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    db.create_function("qtchat_fold", 1, fold, deterministic=True)
    return db


def answer(db: sqlite3.Connection, request: dict[str, Any]) -> dict[str, Any]:
    """One search request's answer (see the module's text)."""
    try:
        rows, more = within(db, float(request["budget"]), lambda: search_rows(
            db, str(request["query"]), [str(r) for r in request["rooms"]], before=request.get("before"),
            limit=int(request["limit"]), upto=request.get("upto")))
    except TooCostly:
        return {"error": "too_costly"}
    except (sqlite3.Error, KeyError, TypeError, ValueError) as exc:
        return {"error": " ".join(str(exc).split()) or type(exc).__name__}
    size, kept = 0, list[list[Any]]()
    for row in rows:  # a page the server can send: the results frame is bounded anyway
        size += len(row[4]) + len(row[3]) + 64
        if kept and size > int(request.get("max_bytes", 1 << 20)):
            more = True
            break
        kept.append(list(row))
    return {"rows": kept, "more": more}


def serve(path: str, requests: Iterable[str] | None = None, answers: TextIO | None = None) -> int:
    """Answer requests until the end of input."""
    stdin = sys.stdin if requests is None else requests
    stdout = sys.stdout if answers is None else answers
    db = open_reader(path)
    try:
        for line in stdin:
            try:
                request = json.loads(line)
                reply = answer(db, request) if isinstance(request, dict) else {"error": "not a request"}
            except ValueError:
                reply = {"error": "not JSON"}
            stdout.write(json.dumps(reply, ensure_ascii=False, separators=(",", ":")) + "\n")
            stdout.flush()
    finally:
        db.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == [FLAG]:
        args = args[1:]
    with contextlib.suppress(ValueError, AttributeError):  # a Ctrl+C for the server: the server closes our input
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(AttributeError, OSError):  # searching yields the CPU to the server's loop (POSIX)
        os.nice(10)
    with contextlib.suppress(AttributeError):  # our input is UTF-8 JSON whatever the locale says
        sys.stdin.reconfigure(encoding="utf-8")  # type: ignore[union-attr]
        sys.stdout.reconfigure(encoding="utf-8")  # type: ignore[union-attr]
    return serve(args[0])


def run_if_asked() -> None:
    """For a bundle's entry point: when started as the search agent, be it and exit."""
    if sys.argv[1:2] == [FLAG]:
        sys.exit(main(sys.argv[2:]))


if __name__ == "__main__":
    sys.exit(main())
