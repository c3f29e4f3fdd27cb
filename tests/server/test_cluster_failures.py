"""A cluster when things break: a node killed with SIGKILL mid-stream, Redis killed and started again, PostgreSQL
restarted. Nodes are real ``qtchat-server --database --redis`` processes; PostgreSQL and Redis are the test
session's own (tests/services.py).

What is held: every message any client saw acknowledged is in every client's view exactly once, in the same
order; the clients of a dead node resume on another (resending what was not acknowledged, with its cid: the
node recognises what the dead one had stored); meanwhile the others keep chatting."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from qtchat.protocol import (
    Error,
    History,
    HistoryRequest,
    Joined,
    JoinRoom,
    Left,
    Message,
    RoomState,
    SendMessage,
    UserList,
    UsersRequest,
)
from tests.helpers import RawClient
from tests.server.test_cli import NO_LIMITS, Proc

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(postgres_server: Any, redis_server: Any) -> Iterator[Any]:
    """Factory: ``start(count)`` nodes on one new database and the session's Redis."""
    procs: list[Proc] = []
    database = postgres_server.new_database()

    def start(count: int) -> list[Proc]:
        made = [Proc("--database", postgres_server.dsn(database), "--redis", redis_server.url, *NO_LIMITS)
                for _ in range(count)]
        procs.extend(made)
        return made

    yield start
    for proc in procs:
        if proc.proc.poll() is None:
            proc.proc.kill()
        proc.proc.communicate(timeout=20)


def acked(client: RawClient, cids: set[str]) -> dict[str, int]:
    """The client's own messages among ``cids`` that it saw acknowledged (its copy came back), by cid."""
    mine = {"a": "wa", "b": "wb"}
    return {m.cid: m.id for m in client.of(Message) if m.cid in cids and m.sender == mine[m.cid[0]]}


def killed_ms(monotonic: float) -> int:
    """A ``time.monotonic()`` moment as the server's milliseconds since the epoch."""
    return int((time.time() - (time.monotonic() - monotonic)) * 1000)


def everything(client: RawClient) -> list[int]:
    """The lobby's whole history, page by page after the last id seen, as a resuming client reads it."""
    seen: list[int] = []
    while True:
        client.send(HistoryRequest(after=seen[-1] if seen else 0, limit=200))
        page = client.wait_event(History, timeout=10)
        client.events.remove(page)
        seen += [m.id for m in page.messages]
        if not page.more:
            return seen


def test_a_node_killed_mid_stream_loses_nothing_acknowledged(cluster: Any, qtbot: Any) -> None:
    a, b, c = cluster(3)
    writer_a, writer_b = RawClient(a.port, qtbot), RawClient(b.port, qtbot)
    readers = [RawClient(b.port, qtbot), RawClient(c.port, qtbot)]
    writer_a.login("wa")
    writer_b.login("wb")
    for n, r in enumerate(readers):
        r.login(f"r{n}")
    texts = {f"a{n}": f"from a {n}" for n in range(300)} | {f"b{n}": f"from b {n}" for n in range(300)}
    for n in range(300):
        writer_a.send(SendMessage(texts[f"a{n}"], cid=f"a{n}"))
        writer_b.send(SendMessage(texts[f"b{n}"], cid=f"b{n}"))
        # up to 100 unacknowledged, more than the newest 64 a node remembers per sender (RECENT_CIDS_PER_USER):
        # the node the writer resumes on finds the older resends in PostgreSQL, under the room's lock
        def caught_up(n: int = n) -> bool:
            return len(acked(writer_a, set(texts))) > n - 100

        writer_a.wait_for(caught_up, timeout=20)
        if n == 150:
            os.kill(a.proc.pid, signal.SIGKILL)  # mid-stream: some of a's messages stored, some not
            break
    seen_acked = acked(writer_a, {c for c in texts if c[0] == "a"})
    writer_a.wait_closed(timeout=10)
    # no wait for PostgreSQL to be done with the dead node's connections: a pass it had sent may still commit
    # while the writer's resends reach node b, and whichever locks the room second finds the other's copy

    again = RawClient(b.port, qtbot)  # writer a resumes on node b, resending what it saw no acknowledgement for
    again.login("wa")
    for n in range(300):  # (after 150 it had sent nothing yet)
        cid = f"a{n}"
        if cid not in seen_acked:
            again.send(SendMessage(texts[cid], cid=cid))
    for n in range(151, 300):
        writer_b.send(SendMessage(texts[f"b{n}"], cid=f"b{n}"))
    a_cids, b_cids = {c for c in texts if c[0] == "a"}, {c for c in texts if c[0] == "b"}
    again.wait_for(lambda: len(acked(again, a_cids - set(seen_acked))) == 300 - len(seen_acked), timeout=30)
    writer_b.wait_for(lambda: len(acked(writer_b, b_cids)) == 300, timeout=30)
    assert not again.of(Error) and not writer_b.of(Error)
    resent = acked(again, a_cids - set(seen_acked))
    assert not set(resent) & set(seen_acked)
    every_ack = {**seen_acked, **resent, **acked(writer_b, b_cids)}
    assert len(every_ack) == 600

    for r in readers:  # each reader: every acknowledged message exactly once, in one order
        def has_all(r: RawClient = r) -> bool:
            return {m.id for m in r.of(Message)} >= set(every_ack.values())

        r.wait_for(has_all, timeout=30)
    views = [[m.id for m in r.of(Message)] for r in readers]
    assert views[0] == views[1]
    assert len(views[0]) == len(set(views[0])) == 600  # a resend already stored was not shown again
    assert views[0] == sorted(views[0])
    assert everything(readers[1]) == views[0]  # and the stored history agrees


def test_redis_killed_and_started_again_loses_nothing(cluster: Any, redis_server: Any, qtbot: Any) -> None:
    a, b = cluster(2)
    writer, reader = RawClient(a.port, qtbot), RawClient(b.port, qtbot)
    writer.login("writer")
    reader.login("reader")
    writer.send(SendMessage("before", cid="m0"))
    reader.wait_event(Message, cid="m0", timeout=10)
    redis_server.stop()
    try:
        for n in range(1, 21):
            writer.send(SendMessage(f"while redis is down {n}", cid=f"m{n}"))
        reader.wait_for(lambda: len(reader.of(Message)) == 21, timeout=15)  # through PostgreSQL
    finally:
        redis_server.start()
    qtbot.wait(1500)  # the nodes connect to Redis again (every second)
    for n in range(21, 41):
        writer.send(SendMessage(f"after {n}", cid=f"m{n}"))
    reader.wait_for(lambda: len(reader.of(Message)) == 41, timeout=15)
    assert [m.cid for m in reader.of(Message)] == [f"m{n}" for n in range(41)]
    # Redis came back empty: the nodes wrote their part again, so the name is still held once, and nobody left
    assert RawClient(b.port, qtbot).refused("writer").code == "name_taken"
    assert [e for e in reader.of(Left) if e.user == "writer"] == []
    reader.send(UsersRequest())
    reader.wait_for(lambda: any("writer" in u.users for u in reader.of(UserList)[1:]), timeout=5)


def test_a_killed_nodes_users_leave_within_5_s_and_its_movers_do_not(cluster: Any, qtbot: Any) -> None:
    a, b = cluster(2)
    stayer, mover, reader = RawClient(a.port, qtbot), RawClient(a.port, qtbot), RawClient(b.port, qtbot)
    stayer.login("stayer")
    mover.login("mover")
    reader.login("reader")
    for client in (stayer, reader):
        client.send(JoinRoom("design"))
        client.wait_event(RoomState, room="design")

    def listed() -> bool:
        reader.send(UsersRequest("design"))
        qtbot.wait(100)
        return any("stayer" in u.users for u in reader.of(UserList) if u.room == "design")

    qtbot.waitUntil(listed, timeout=5000)
    qtbot.wait(1500)  # the join notices (held up to the notice delay) have all arrived
    os.kill(a.proc.pid, signal.SIGKILL)
    killed = time.monotonic()
    mover.wait_closed(timeout=5)
    moved = RawClient(b.port, qtbot)  # the mover's client follows to the other node at once
    moved.login("mover")
    # its dead node's lease still runs, but Redis closed that node's connections: the name moved at once
    assert time.monotonic() - killed < 0.4
    reader.wait_event(Left, user="stayer", room="design", reason="server lost", timeout=6)
    reader.wait_event(Left, user="stayer", room="lobby", reason="server lost", timeout=1)
    assert time.monotonic() - killed < 5
    qtbot.wait(1000)
    assert [e for e in reader.of(Left) if e.user == "mover"] == []  # moved: did not leave
    assert [e for e in reader.of(Joined) if e.user == "mover" and e.ts > killed_ms(killed)] == []
    assert not moved.of(Error)


def test_postgresql_restarted_gives_clear_errors_then_serves_again(cluster: Any, postgres_server: Any,
                                                                   qtbot: Any) -> None:
    (a,) = cluster(1)
    writer = RawClient(a.port, qtbot)
    writer.login("writer")
    writer.send(SendMessage("kept", cid="k0"))
    writer.wait_event(Message, cid="k0", timeout=10)
    postgres_server.stop()
    try:
        writer.send(SendMessage("while it is down", cid="d1"))
        error = writer.wait_event(Error, ref="d1", timeout=30)
        assert error.code == "internal" and not error.fatal
        assert not [m for m in writer.of(Message) if m.cid == "d1"]
    finally:
        postgres_server.start()

    def stored_again() -> bool:
        writer.send(SendMessage("after the restart", cid=f"r{len(writer.of(Error))}"))
        qtbot.wait(300)
        return any(m.text == "after the restart" for m in writer.of(Message))

    qtbot.waitUntil(stored_again, timeout=30_000)
    history = everything(writer)
    texts = [m.text for m in writer.of(Message) if m.id in set(history)]
    assert "kept" in texts and "while it is down" not in texts
