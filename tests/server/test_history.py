"""Durable history: stored before it is sent, paged, resumed, kept across restarts and crashes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket

import pytest

from qtchat.protocol import (
    NEED_DATA,
    PEER_CLOSED,
    Connection,
    Hello,
    History,
    HistoryRequest,
    Message,
    Role,
    SendMessage,
    Welcome,
)
from tests.helpers import RawClient
from tests.server.test_cli import NO_LIMITS, Proc

pytestmark = pytest.mark.backends

def all_history(client: RawClient, room: str = "lobby") -> list[Message]:
    """Page backwards from the newest message to the first."""
    got: list[Message] = []
    before = None
    while True:
        count = len(client.of(History))
        client.send(HistoryRequest(room, before=before, limit=500))

        def arrived(count: int = count) -> bool:
            return len(client.of(History)) > count

        client.wait_for(arrived, timeout=10)
        page = client.of(History)[-1]
        got = list(page.messages) + got
        if not page.more:
            return got
        before = page.messages[0].id


def test_latest_page_and_paging_back_through_10000_messages(server, connect, qtbot):
    alice = connect()
    alice.login("alice")
    for i in range(10_000):
        alice.send(SendMessage(f"m{i}", cid=str(i)))
        if i % 500 == 499:
            alice.wait_for(lambda i=i: len(alice.of(Message)) > i - 100, timeout=10)
    alice.wait_for(lambda: len(alice.of(Message)) == 10_000, timeout=20)
    alice.send(HistoryRequest(limit=50))
    latest = alice.wait_event(History)
    assert [m.text for m in latest.messages] == [f"m{i}" for i in range(9950, 10_000)]
    assert latest.more
    history = all_history(alice)
    assert [m.text for m in history] == [f"m{i}" for i in range(10_000)]
    ids = [m.id for m in history]
    assert ids == sorted(ids) and len(set(ids)) == 10_000


def test_after_resumes_without_gap_or_duplicate(server, connect):
    alice, bob = connect(), connect()
    alice.login("alice")
    bob.login("bob")
    for i in range(30):
        alice.say(f"x{i}", cid=f"c{i}")
    bob.wait_for(lambda: len(bob.of(Message)) == 30)
    seen = bob.of(Message)[9].id
    bob.send(HistoryRequest(after=seen, limit=12))
    first = bob.wait_event(History)
    assert [m.text for m in first.messages] == [f"x{i}" for i in range(10, 22)] and first.more
    bob.send(HistoryRequest(after=first.messages[-1].id, limit=12))
    bob.wait_for(lambda: len(bob.of(History)) == 2)
    second = bob.of(History)[1]
    assert [m.text for m in second.messages] == [f"x{i}" for i in range(22, 30)] and not second.more


@pytest.mark.sqlite
def test_history_and_ids_survive_a_restart_and_a_resend_is_not_stored_twice(make_server, connect, tmp_path):
    first = make_server(data_dir=tmp_path)
    alice = connect(first.port)
    alice.login("alice")
    alice.say("before the restart", cid="r1")
    old = alice.wait_event(Message, cid="r1")
    first.shutdown("restart")
    alice.wait_closed()
    second = make_server(data_dir=tmp_path)
    again = connect(second.port)
    again.login("alice")
    again.say("before the restart", cid="r1")  # its ack was lost: the client resends
    again.say("after the restart", cid="r2")
    ack = again.wait_event(Message, cid="r1")
    new = again.wait_event(Message, cid="r2")
    assert ack.id == old.id
    assert new.id > old.id
    assert [m.text for m in all_history(again)] == ["before the restart", "after the restart"]


def test_retention_keeps_the_newest_messages(make_server, connect, qtbot):
    server = make_server(keep_messages=5)
    alice = connect(server.port)
    alice.login("alice")
    for i in range(12):
        alice.say(f"k{i}")
    alice.wait_for(lambda: len(alice.of(Message)) == 12)
    server.backend.prune()  # PostgreSQL: its deletes are answered later
    qtbot.waitUntil(lambda: [m.text for m in all_history(alice)] == [f"k{i}" for i in range(7, 12)], timeout=5000)


class Writer:
    """A blocking client that sends messages and records which were acknowledged."""

    def __init__(self, port: int, name: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.conn = Connection(Role.CLIENT)
        self.sock.sendall(self.conn.send(Hello(name)))
        self.name = name
        self.acked: dict[str, int] = {}
        self.welcomed = False
        while not self.welcomed:
            self.read()

    def read(self) -> bool:
        try:
            data = self.sock.recv(1 << 20)
        except (ConnectionError, TimeoutError, OSError):
            data = b""
        self.conn.receive_data(data)
        while (ev := self.conn.next_event()) not in (NEED_DATA, PEER_CLOSED):
            if isinstance(ev, Welcome):
                self.welcomed = True
            elif isinstance(ev, Message) and ev.sender == self.name and ev.cid:
                self.acked[ev.cid] = ev.id
        return bool(data)


def test_sigkill_mid_stream_loses_no_acknowledged_message(tmp_path):
    proc = Proc("--data-dir", str(tmp_path), *NO_LIMITS)  # the writers send as fast as they can
    writers = [Writer(proc.port, f"w{i}") for i in range(3)]
    for w in writers:
        w.sock.settimeout(0.05)
    killed = False
    for round_ in range(400):
        for w in writers:
            with contextlib.suppress(OSError):
                w.sock.sendall(w.conn.send(SendMessage(f"{w.name}-{round_}", cid=f"{w.name}-{round_}")))
            w.read()
        if round_ == 250:
            os.kill(proc.proc.pid, signal.SIGKILL)
            killed = True
            break
    assert killed
    proc.proc.wait(10)
    for w in writers:
        w.sock.settimeout(0.5)
        while w.read():
            pass
    acked = {cid: mid for w in writers for cid, mid in w.acked.items()}
    assert len(acked) > 100  # the stream was well under way
    restarted = Proc("--data-dir", str(tmp_path))
    try:
        reader = Writer(restarted.port, "reader")
        reader.sock.settimeout(10)
        stored: list[Message] = []
        before = None
        while True:
            reader.sock.sendall(reader.conn.send(HistoryRequest(before=before, limit=500)))
            page = None
            while page is None:
                data = reader.sock.recv(1 << 20)
                reader.conn.receive_data(data)
                while (ev := reader.conn.next_event()) not in (NEED_DATA, PEER_CLOSED):
                    if isinstance(ev, History):
                        page = ev
            stored = list(page.messages) + stored
            if not page.more:
                break
            before = page.messages[0].id
        by_cid: dict[str, list[int]] = {}
        for m in stored:
            by_cid.setdefault(m.cid or "", []).append(m.id)
        for cid, mid in acked.items():
            assert by_cid.get(cid) == [mid], f"{cid} acknowledged as {mid} but stored as {by_cid.get(cid)}"
        assert all(len(ids) == 1 for ids in by_cid.values())  # nothing twice
    finally:
        restarted.stop()



@pytest.mark.sqlite
def test_no_history_keeps_nothing(make_server, connect, tmp_path):
    server = make_server(history=False, data_dir=tmp_path)
    alice = connect(server.port)
    alice.login("alice")
    alice.say("not kept", cid="n")
    alice.wait_event(Message, cid="n")
    alice.send(HistoryRequest())
    assert alice.wait_event(History).messages == ()
    assert not (tmp_path / "messages.db").exists()


def test_resends_after_a_restart_are_looked_up_in_the_minutes_before_it(tmp_path):
    from qtchat.server.store import RESEND_WINDOW_S, MessageStore

    path = tmp_path / "messages.db"
    store = MessageStore(path)
    top = 1_800_000_000_000_000  # message ids are microseconds
    old = top - (RESEND_WINDOW_S + 60) * 1_000_000
    store.append([(old, "lobby", old // 1000, "ann", "ann", "c-old", "long before"),
                  (top - 5_000_000, "lobby", top // 1000 - 5000, "ann", "ann", "c-new", "just before"),
                  (top, "lobby", top // 1000, "bob", "bob", "c-bob", "the last one")])
    store.close()
    store = MessageStore(path)  # the restart
    assert [c for c, *_ in store.recent_cids("ann", 10)] == ["c-new"]
    assert [c for c, *_ in store.recent_cids("bob", 10)] == ["c-bob"]
    store.append([(top + 1, "lobby", top // 1000, "ann", "ann", "c-later", "after the restart")])
    assert [c for c, *_ in store.recent_cids("ann", 10)] == ["c-new"]  # the server remembers later ones itself
    store.close()


def test_the_store_finds_a_resend_however_old_and_keeps_it_once(tmp_path):
    from qtchat.server.store import RESEND_WINDOW_S, RESENDS, MessageStore

    path = tmp_path / "messages.db"
    store = MessageStore(path)
    top = 1_800_000_000_000_000
    old = top - (RESEND_WINDOW_S * 100) * 1_000_000  # long before any restart's window
    store.append([(old, "lobby", old // 1000, "ann", "ann", "c1", "long ago"),
                  (top, "lobby", top // 1000, "bob", "bob", "c9", "bob's")])
    store.close()
    store = MessageStore(path)  # after a restart
    resent = store.append([(top + 1, "lobby", 1, "ann", "ann", "c1", "long ago"),  # the resend
                           (top + 2, "lobby", 2, "ann", "ann", "c1", "other text"),  # new: another text
                           (top + 3, "design", 3, "ann", "ann", "c1", "long ago"),  # new: another room
                           (top + 4, "lobby", 4, "bob", "bob", "c1", "long ago"),  # new: another sender
                           (top + 5, "lobby", 5, "ann", "ann", None, "long ago")])  # new: no cid
    assert resent == {0: (old, old // 1000)}
    assert [m.id for m in store.page("lobby", limit=10)[0]] == [old, top, top + 2, top + 4, top + 5]
    assert [m.id for m in store.page("design", limit=10)[0]] == [top + 3]
    plan = " ".join(str(r[-1]) for r in store.db.execute("EXPLAIN QUERY PLAN " + RESENDS, ("[]",)))
    assert "SEARCH messages USING INDEX messages_resend" in plan  # a lookup per row, not a scan
    store.close()
