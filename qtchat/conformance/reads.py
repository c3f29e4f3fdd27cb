"""Sections that read stored messages: pages around a message, and search."""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from .checks import Suite
from .wire import Frame, Peer


def around(s: Suite) -> None:
    """history around an id: about half older, the message, the rest newer, a short side filled from the
    other; more says older ones exist, newer that newer ones do; around with before is bad_frame."""
    a: Peer = s.a
    ids: list[int] = getattr(s, "history_ids", [])
    if len(ids) != 5:
        s.skip("history around", "the history section posted no five messages")
        return
    pages: list[tuple[str, int, int, list[int], bool, bool]] = [
        ("centred on a message", ids[2], 3, ids[1:4], True, True),
        ("the oldest: the newer side fills the page", ids[0], 4, ids[0:4], False, True),
        ("the newest: the older side fills the page", ids[4], 3, ids[2:5], True, False),
    ]
    for what, mid, limit, want, more, newer in pages:
        a.send({"type": "history", "room": s.room, "around": mid, "limit": limit})
        page = a.wait_type("history")
        got = [m.get("id") for m in (page or {}).get("messages") or []]
        ok = page is not None and got == want and page.get("more", False) is more and \
            page.get("newer", False) is newer and page.get("around") == mid
        s.check(f"history around: {what}", ok, f"ids {want}, around {mid}, more {str(more).lower()}, newer "
                f"{str(newer).lower()}", page if page is None else f"ids {got}, around {page.get('around')}, more "
                f"{page.get('more')}, newer {page.get('newer')}")
    a.send({"type": "history", "room": s.room, "around": ids[2], "before": ids[3]})
    error = a.wait(lambda f: f.get("type") in ("error", "history"))
    s.check("history around: with before too is bad_frame", error is not None and error.get("code") == "bad_frame"
            and error.get("fatal") is False, '{"code":"bad_frame","fatal":false}', error)


def search(s: Suite) -> None:
    """Every word as the start of a word, case and diacritics ignored, newest first, paged with before; in one
    room; a room you are not in is no_such_room; more than 8 words is search_too_broad."""
    a: Peer = s.a
    word = "zq" + secrets.token_hex(4)  # a word no other message holds
    acks = [s.post(a, text, room=s.room) for text in (f"Café {word} Über", f"café {word}x über alles")]
    ids = [f.get("id") for f in acks if f is not None and f.get("type") == "msg"]
    if not s.check("search: two messages posted", len(ids) == 2, "two acknowledgements", f"{len(ids)}"):
        return
    _pages(s, a, word, ids)
    _refusals(s, a, word)


def _pages(s: Suite, a: Peer, word: str, ids: list[object]) -> None:
    query = f"{word[:-2].upper()} cafe UBER"
    first = _search(a, {"query": query, "limit": 1})
    s.check("search: prefixes, case and diacritics ignored, newest first", _ids(first) == ids[1:] and
            first is not None and first.get("more") is True and first.get("query") == query,
            f"ids {ids[1:]}, more true", first)
    older = _search(a, {"query": query, "limit": 1, "before": ids[1], "room": s.room})
    s.check("search: the next page, in one room", _ids(older) == ids[:1] and older is not None and
            older.get("more") is False and older.get("before") == ids[1] and older.get("room") is not None and all(r.get("room", "").lower() == s.room.lower() for r in
                                               older.get("results") or []),
            f"ids {ids[:1]}, more false, before {ids[1]} and room {s.room!r} repeated", older)
    none = _search(a, {"query": f"{word} nothingelse"})
    s.check("search: every word must match", none is not None and _ids(none) == [], "no results", none)


def _refusals(s: Suite, a: Peer, word: str) -> None:
    for what, ask, code in (("a room you are not in", {"query": word, "room": f"{s.tag} nowhere"}, "no_such_room"),
                            ("more than 8 words", {"query": " ".join(f"w{i}" for i in range(9))}, "search_too_broad")):
        error = _search(a, ask)
        s.check(f"search: {what} is {code}", error is not None and error.get("code") == code and
                error.get("fatal") is False and error.get("ref") == "search",
                f'{{"code":"{code}","fatal":false,"ref":"search"}}', error)


def _search(peer: Peer, fields: Mapping[str, object]) -> Frame | None:
    peer.send({"type": "search", **fields})
    return peer.wait(lambda f: f.get("type") == "results" or (f.get("type") == "error" and f.get("ref") != "passwd"))


def _ids(results: Frame | None) -> list[object]:
    return [r.get("id") for r in (results or {}).get("results") or []]
