"""Every request has a price: one client's valid requests, however many, take at most its share of the
server (fakelag, then a disconnect), searches are bounded before and while they run, and the room list
comes in pages."""

from __future__ import annotations

import pytest

from qtchat.protocol import (
    MAX_ROOMS_PAGE,
    Error,
    History,
    HistoryRequest,
    JoinRoom,
    Message,
    Ping,
    Pong,
    RoomJoined,
    RoomList,
    RoomsRequest,
    SearchRequest,
    SearchResults,
    SendMessage,
    SetTopic,
    TopicChanged,
)
from qtchat.server.limits import WorkBucket, WorkLimits
from qtchat.server.prices import price

pytestmark = pytest.mark.backends


def test_a_work_bucket_pays_what_it_holds_and_says_how_long_the_rest_waits():
    bucket = WorkBucket(WorkLimits(per_s=100, burst=400), now=0.0)
    assert bucket.take(300, 0.0) == 0.0
    assert bucket.take(150, 0.0) == pytest.approx(0.5)  # 100 left: 50 more come in half a second
    assert bucket.take(150, 0.2) == pytest.approx(0.3)  # nothing was taken by asking
    assert bucket.take(150, 0.5) == 0.0
    assert bucket.take(10_000, 0.5) > 0  # more than a whole burst: paid once the bucket is full...
    assert bucket.take(10_000, 4.5) == 0.0  # ...so every request can be served


def test_prices_follow_the_work_a_request_causes(server):
    rooms = server.rooms
    assert price(Pong("x"), rooms) == 0
    assert price(Ping("x"), rooms) < price(HistoryRequest(limit=50), rooms) < price(HistoryRequest(limit=500), rooms)
    assert price(SearchRequest("a b c"), rooms) > price(SearchRequest("a"), rooms)
    assert price(RoomsRequest(limit=10), rooms) < price(RoomsRequest(), rooms)


def test_a_flood_of_history_requests_waits_its_turn_and_bystanders_are_served(make_server, connect, qtbot):
    server = make_server(rate_work=100, rate_work_burst=400)
    flooder, bystander = connect(server.port), connect(server.port)
    flooder.login("flooder")
    bystander.login("bystander")
    # 150 pages of 500 at 52 units each: 7 are paid from the burst, then one every half second
    flooder.send_raw(b"".join(flooder.conn.send(HistoryRequest(limit=500)) for _ in range(150)))
    qtbot.waitUntil(lambda: server.peers and any(p.backlog for p in server.peers), timeout=3000)
    bystander.send(Ping("still-there"))
    bystander.wait_event(Pong, token="still-there", timeout=2)
    flooder.wait_for(lambda: len(flooder.of(History)) >= 5, timeout=3)  # the burst's pages (read them first)
    answered = len(flooder.of(History))
    assert answered <= 20  # held back, not refused: the rest comes at the connection's rate
    assert not flooder.of(Error)
    flooder.wait_for(lambda: len(flooder.of(History)) > answered, timeout=3)  # and it does come


def test_a_backlog_past_its_bound_is_a_flood_disconnect_and_no_one_else_notices(make_server, connect, qtbot):
    server = make_server(rate_work=100, rate_work_burst=400, max_backlog=50)
    flooder, bystander = connect(server.port), connect(server.port)
    flooder.login("flooder")
    bystander.login("bystander")
    flooder.send_raw(b"".join(flooder.conn.send(HistoryRequest(limit=500)) for _ in range(300)))
    flooder.wait_closed()
    error = flooder.of(Error)[-1]
    assert error.code == "flood" and error.fatal
    bystander.send(Ping("fine"))
    bystander.wait_event(Pong, token="fine")
    assert "bystander" in server.users and "flooder" not in server.users


def test_a_search_of_too_many_words_is_refused_before_it_runs(server, connect):
    alice = connect()
    alice.login("alice")
    alice.say("apples and pears", cid="a1")
    alice.send(SearchRequest(" ".join(f"w{i}" for i in range(9))))
    error = alice.wait_event(Error, code="search_too_broad")
    assert not error.fatal and "at most 8 words" in error.message
    assert not alice.of(SearchResults)
    alice.send(SearchRequest("apples"))  # the connection goes on
    assert [m.text for m in alice.wait_event(SearchResults).results] == ["apples and pears"]


def test_a_search_past_its_time_budget_is_stopped_and_says_so(make_server, connect, monkeypatch, backend_kind):
    import qtchat.server.memory_backend
    import qtchat.server.pg_backend
    import qtchat.server.sqlite_backend

    server = make_server(full_text=False)  # the scan of every message (SQLite without FTS5), the slowest way
    alice, bob = connect(server.port), connect(server.port)
    alice.login("alice")
    bob.login("bob")
    alice.send_raw(b"".join(alice.conn.send(SendMessage(f"number {i} about apples", cid=f"m{i}"))
                            for i in range(3000)))
    alice.wait_for(lambda: len(alice.of(Message)) >= 3000, timeout=30)  # all stored
    for module in (qtchat.server.sqlite_backend, qtchat.server.memory_backend):
        monkeypatch.setattr(module, "SEARCH_BUDGET_S", 0.0)
    monkeypatch.setattr(qtchat.server.pg_backend, "SEARCH_TIMEOUT_MS", 1)  # PostgreSQL's statement_timeout (0: none)
    # a scan of the whole history (it matches nothing), far past a budget of 0; PostgreSQL's index finds "zzz"
    # at once, but not every one of 3,000 messages with "n" and "a" within a millisecond
    alice.send(SearchRequest("n a" if backend_kind == "postgresql" else "zzz"))
    error = alice.wait_event(Error, code="search_too_broad")
    assert not error.fatal and "too long" in error.message
    bob.send(Ping("ok"))
    bob.wait_event(Pong, token="ok")


def test_the_room_list_comes_in_pages_that_fit_a_frame(make_server, connect):
    server = make_server(max_rooms_per_user=1000)
    owner, asker = connect(server.port), connect(server.port)
    owner.login("owner")
    asker.login("asker")
    names = [f"room {i:03d} " + "x" * 20 for i in range(450)]
    owner.send_raw(b"".join(owner.conn.send(JoinRoom(n)) for n in names))
    owner.wait_for(lambda: len(owner.of(RoomJoined)) == 450, timeout=20)
    # long topics: the whole list is far over one frame (64 KiB)
    owner.send_raw(b"".join(owner.conn.send(SetTopic(n, "t" * 300)) for n in names))
    owner.wait_for(lambda: len(owner.of(TopicChanged)) == 450, timeout=20)
    asker.send(RoomsRequest())
    first = asker.wait_event(RoomList)
    assert first.more and len(first.rooms) <= MAX_ROOMS_PAGE
    seen = [r.name for r in first.rooms]
    while True:
        count = len(asker.of(RoomList))
        asker.send(RoomsRequest(after=seen[-1]))
        asker.wait_for(lambda c=count: len(asker.of(RoomList)) > c)
        page = asker.of(RoomList)[-1]
        seen += [r.name for r in page.rooms]
        if not page.more:
            break
    assert sorted(seen) == sorted([*names, "lobby"]) and len(seen) == len(set(seen))  # all, each once
    assert len(asker.of(RoomList)) >= 3  # cut to fit frames, not only by count
