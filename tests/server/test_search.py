"""Full-text search (FTS5, and the LIKE scan without it) and history pages around a message."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qtchat.protocol import (
    Error,
    History,
    HistoryRequest,
    Message,
    PartRoom,
    SearchRequest,
    SearchResults,
    encode_event,
)
from qtchat.server import sqlite_backend
from qtchat.server.store import MessageStore
from tests.helpers import RawClient
from tests.server.test_markers import join, say_all

pytestmark = pytest.mark.backends

def ask(client: RawClient, event: Any, kind: type) -> Any:
    """Send a request and wait for the next frame of ``kind``, its answer."""
    count = len(client.of(kind))
    client.send(event)
    client.wait_for(lambda: len(client.of(kind)) > count, timeout=30)
    return client.of(kind)[count]


def search(client: RawClient, query: str, **fields: Any) -> SearchResults:
    results: SearchResults = ask(client, SearchRequest(query, **fields), SearchResults)
    return results


def texts(results: SearchResults) -> list[str]:
    return [m.text for m in results.results]


@pytest.mark.sqlite
def test_search_finds_a_message_among_100000_only_in_rooms_you_are_in(make_server, connect, tmp_path, monkeypatch):
    # what is searched is tested here, not the time budget (test_prices.py): a broad search of 33,000 rows can
    # pass 10 ms on a loaded machine
    monkeypatch.setattr(sqlite_backend, "SEARCH_BUDGET_S", 2.0)
    store = MessageStore(tmp_path / "messages.db")
    rooms = ("lobby", "dev", "secret")
    mid = 1_000_000
    for batch in range(10):
        rows: list[Any] = []
        for i in range(10_000):
            mid += 1
            n = batch * 10_000 + i
            rows.append((mid, rooms[n % 3], mid // 1000, "bob", "bob", None, f"filler message {n} about nothing"))
        store.append(rows)
    store.append([(mid + 1, "dev", 0, "bob", "bob", None, "the needle is in Dev"),
                  (mid + 2, "secret", 0, "bob", "bob", None, "a secret needle"),
                  (mid + 3, "lobby", 0, "bob", "bob", None, "needle in the lobby")])
    # indexed, as a running server's timer keeps it: a search no longer scans 100,000 unindexed messages on
    # the loop (it would run past its time budget: search_too_broad, tested in test_prices.py)
    store.index_pending()
    store.close()
    server = make_server(data_dir=tmp_path)
    ann, ben = connect(server.port), connect(server.port)
    ann.login("ann")
    ben.login("ben")
    join(ann, "Dev")
    join(ben, "Secret")
    found = search(ann, "needle")
    assert texts(found) == ["needle in the lobby", "the needle is in Dev"] and not found.more
    assert [m.room for m in found.results] == ["lobby", "Dev"]  # the room's name as it is now
    assert found.room is None and found.query == "needle"
    in_dev = search(ann, "NEEDLE", room="dev")
    assert texts(in_dev) == ["the needle is in Dev"] and in_dev.room == "Dev"
    ann.send(SearchRequest("needle", room="secret"))  # exists, but ann is not in it
    error = ann.wait_event(Error)
    assert error.code == "no_such_room" and not error.fatal and error.ref == "search"  # routed to the search
    assert not [m for r in ann.of(SearchResults) for m in r.results if m.room.lower() == "secret"]
    assert texts(search(ben, "needle")) == ["needle in the lobby", "a secret needle"]
    ann.send(PartRoom("Dev"))
    assert texts(search(ann, "needle")) == ["needle in the lobby"]  # only rooms you are in now
    assert len(search(ann, "filler", limit=100).results) == 100


@pytest.fixture(params=[True, False], ids=["fts5", "like-scan"])
def any_server(request, make_server, tmp_path):
    server = make_server(data_dir=tmp_path, full_text=request.param)
    assert server.backend.store.fts is request.param
    return server


@pytest.mark.sqlite
def test_prefix_case_diacritics_and_query_syntax_taken_literally(any_server, connect):
    ann = connect(any_server.port)
    ann.login("ann")
    say_all(ann, ["Release on FRIDAY", "Café Über alles", 'the "quoted" AND (grouped) NEAR* star-thing',
                  "release notes", "under_score with e\u0301cole"])
    assert texts(search(ann, "rel fri")) == ["Release on FRIDAY"]  # every word, each a prefix
    assert texts(search(ann, "RELEASE")) == ["release notes", "Release on FRIDAY"]  # newest first
    assert texts(search(ann, "cafe über")) == ["Café Über alles"]
    assert texts(search(ann, "ÉCOLE score")) == ["under_score with e\u0301cole"]
    syntax = 'the "quoted" AND (grouped) NEAR* star-thing'
    for query in ['"quoted', "AND", "NEAR(", "(grouped)", "star-thing", 'quo* "and" near/gr']:
        assert texts(search(ann, query)) == [syntax], query
    for query in ["*", '"', "-", "()", "^", ":"]:  # no words at all: nothing, and no error
        got = search(ann, query)
        assert got.results == () and not got.more
    assert texts(search(ann, "release OR friday")) == []  # OR is a word here, not an operator
    assert not ann.of(Error)


@pytest.mark.sqlite
def test_newest_first_paging_and_a_message_acknowledged_a_moment_ago(any_server, connect):
    ann = connect(any_server.port)
    ann.login("ann")
    sent = say_all(ann, [f"page item {i}" for i in range(25)])
    got: list[Message] = []
    before = None
    pages = 0
    while True:
        page = search(ann, "item", before=before, limit=10)
        pages += 1
        got += page.results
        assert page.before == before
        if not page.more:
            break
        before = page.results[-1].id
    assert pages == 3
    assert [m.id for m in got] == [m.id for m in reversed(sent)]
    ann.say("just now", cid="now")
    ann.wait_event(Message, cid="now")
    assert texts(search(ann, "just")) == ["just now"]  # indexed before the search runs


@pytest.mark.sqlite
def test_pruned_messages_are_not_found(make_server, connect, tmp_path):
    for full_text in (True, False):
        data = tmp_path / str(full_text)
        server = make_server(data_dir=data, keep_messages=5, full_text=full_text)
        ann = connect(server.port)
        ann.login("ann")
        say_all(ann, [f"prunable k{i}" for i in range(12)])
        assert len(search(ann, "prunable", limit=100).results) == 12
        server.backend.store.index_pending()  # indexed (as the index timer does), so that pruning must unindex
        server.backend.prune()
        assert texts(search(ann, "prunable", limit=100)) == [f"prunable k{i}" for i in range(11, 6, -1)]
        if full_text:
            # the index agrees with the table (raises if an entry of a deleted message were left)
            server.backend.store.db.execute("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")
            assert server.backend.store.db.execute("SELECT COUNT(*) FROM messages_fts").fetchone()[0] == 5
        ann.close()
        server.shutdown("next")


def test_results_fit_the_frame_limit(make_server, connect):
    server = make_server(max_frame=4096)
    ann = connect(server.port)
    ann.login("ann")
    say_all(ann, ['"' * 1500 + f" big{i}" for i in range(6)])
    got = search(ann, "big")
    assert got.more and 1 <= len(got.results) < 6
    assert len(encode_event(got)) <= 4096


def test_search_without_history_finds_nothing(make_server, connect):
    server = make_server(history=False)
    ann = connect(server.port)
    ann.login("ann")
    say_all(ann, ["not kept"])
    assert search(ann, "kept").results == ()


def test_history_around_a_message(server, connect):
    ann = connect()
    ann.login("ann")
    msgs = say_all(ann, [f"m{i}" for i in range(21)])

    def around(mid: int, limit: int) -> History:
        page: History = ask(ann, HistoryRequest(around=mid, limit=limit), History)
        assert page.around == mid
        return page

    def names(page: History) -> list[str]:
        return [m.text for m in page.messages]

    page = around(msgs[10].id, 5)
    assert names(page) == ["m8", "m9", "m10", "m11", "m12"] and page.more and page.newer
    page = around(msgs[10].id, 4)
    assert names(page) == ["m8", "m9", "m10", "m11"] and page.more and page.newer
    page = around(msgs[1].id, 5)  # few older: the newer side fills the page
    assert names(page) == ["m0", "m1", "m2", "m3", "m4"] and not page.more and page.newer
    page = around(msgs[20].id, 5)
    assert names(page) == ["m16", "m17", "m18", "m19", "m20"] and page.more and not page.newer
    page = around(msgs[20].id + 1000, 3)  # no such message: the ones around where it would be
    assert names(page) == ["m18", "m19", "m20"] and page.more and not page.newer
    page = around(msgs[0].id, 50)
    assert names(page) == [f"m{i}" for i in range(21)] and not page.more and not page.newer
    assert page.before is None and page.after is None


def test_history_around_fits_the_frame_limit_keeping_the_message_itself(make_server, connect):
    server = make_server(max_frame=4096)
    ann = connect(server.port)
    ann.login("ann")
    msgs = say_all(ann, ['"' * 700 + f" n{i}" for i in range(9)])
    page: History = ask(ann, HistoryRequest(around=msgs[4].id, limit=9), History)
    ids = [m.id for m in page.messages]
    assert msgs[4].id in ids and 1 <= len(ids) < 9 and ids == sorted(ids)
    assert page.more and page.newer
    assert len(encode_event(page)) <= 4096


def test_messages_the_index_does_not_hold_yet_are_found_by_scanning(tmp_path):
    store = MessageStore(tmp_path / "messages.db")
    store.append([(i, "lobby", i, "bob", "bob", None, f"apple {i}") for i in range(1, 11)])
    assert store.index_pending() == 10 and store.fts_upto == 10
    store.append([(i, "lobby", i, "bob", "bob", None, f"apple {i}") for i in range(11, 16)])
    rows, more = store.search("apple", ["lobby"], limit=8)  # 5 from the scan, 3 from the index
    assert [r.id for r in rows] == list(range(15, 7, -1)) and more
    rows, more = store.search("apple", ["lobby"], before=rows[-1].id, limit=8)
    assert [r.id for r in rows] == list(range(7, 0, -1)) and not more
    rows, _ = store.search("apple", ["lobby"], before=13, limit=3)
    assert [r.id for r in rows] == [12, 11, 10]
    store.close()
    again = MessageStore(tmp_path / "messages.db")  # where the index stopped is kept
    assert again.fts_upto == 10 and again.index_pending() == 5
    again.close()


@given(st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_no_query_reaches_fts5_syntax(query):
    for store in query_stores():
        rows, _ = store.search(query, ["lobby"])  # never an FTS5 syntax error, whatever the text
        assert all(r.room == "lobby" for r in rows)


def _query_store(full_text: bool) -> MessageStore:
    store = MessageStore(None, full_text=full_text)
    store.append([(i, "lobby", i, "bob", "bob", None, t) for i, t in enumerate(
        ['AND OR NOT NEAR "quote" * ( ) : ^ + - {col}', "plain words", "Ünïcödé ﬁ ß ǅ 😀 עברית"], 1)])
    store.index_pending()
    return store


@functools.cache
def query_stores() -> tuple[MessageStore, MessageStore]:
    """One store with the index and one scanning, made once for all the examples."""
    return _query_store(True), _query_store(False)
