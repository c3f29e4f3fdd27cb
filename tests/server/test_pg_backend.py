"""PostgresBackend (qtchat/server/pg_backend.py) on a real PostgreSQL server: what only it does.

The server's behaviour on it is tested by every test marked ``backends`` (tests/server/conftest.py); here:
what it keeps across a restart, ids in order with two nodes writing one room, a pass whose connection
breaks before or after its commit (through a real TCP proxy that cuts it), search, retention.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from PySide6.QtCore import QObject
from PySide6.QtNetwork import QHostAddress, QTcpServer, QTcpSocket

from qtchat.server import pg_backend
from qtchat.server.backend import PassBatch, Posted
from qtchat.server.memory_backend import MemoryBackend
from qtchat.server.pg_backend import PostgresBackend
from qtchat.server.pg_schema import ts_query
from qtchat.server.pgloop import PgConnectionLost
from qtchat.server.store import SearchTooCostly
from tests.helpers import failure as failed_with
from tests.helpers import outcome

wait = partial(outcome, timeout=15_000)
failure = partial(failed_with, timeout=15_000)


class CutProxy(QObject):
    """A TCP proxy to PostgreSQL on 127.0.0.1 that a test can cut: ``hold_requests`` keeps what the client
    sends from the server, ``hold_answers`` keeps the server's answers from the client; ``cut()`` closes
    every connection through it (new ones still pass)."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port_to = port
        self.hold_requests = False
        self.hold_answers = False
        self.pairs: list[tuple[QTcpSocket, QTcpSocket]] = []
        self.listener = QTcpServer(self)
        self.listener.newConnection.connect(self._accept)
        assert self.listener.listen(QHostAddress(QHostAddress.SpecialAddress.LocalHost), 0)

    @property
    def port(self) -> int:
        return int(self.listener.serverPort())

    def _accept(self) -> None:
        while self.listener.hasPendingConnections():
            client = self.listener.nextPendingConnection()
            upstream = QTcpSocket(self)
            upstream.connectToHost(QHostAddress(QHostAddress.SpecialAddress.LocalHost), self.port_to)
            client.readyRead.connect(lambda c=client, u=upstream: self._forward(c, u, self.hold_requests))
            upstream.readyRead.connect(lambda c=client, u=upstream: self._forward(u, c, self.hold_answers))
            self.pairs.append((client, upstream))

    def _forward(self, source: QTcpSocket, target: QTcpSocket, hold: bool) -> None:
        if hold:
            return  # left unread: it stays in the socket until the cut
        data = source.readAll()
        target.write(data)

    def cut(self) -> None:
        for client, upstream in self.pairs:
            client.abort()
            upstream.abort()
        self.pairs = []


@pytest.fixture
def database(postgres_server: Any) -> str:
    return str(postgres_server.new_database())


@pytest.fixture
def opened(qtbot: Any, postgres_server: Any, database: str) -> Iterator[Any]:
    """Factory: an opened PostgresBackend on the test's database (or through ``port``)."""
    made: list[PostgresBackend] = []

    def make(*, port: int | None = None, **kwargs: Any) -> PostgresBackend:
        dsn = postgres_server.dsn(database)
        if port is not None:
            dsn = dsn.replace(f":{postgres_server.port}/", f":{port}/")
        backend = PostgresBackend(dsn, **kwargs)
        wait(qtbot, backend.open())
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


def posted(room: str, text: str, *, sender: str = "ann", cid: str | None = None) -> Posted:
    return Posted(room, room, int(time.time() * 1000), sender, sender.lower(), cid, text)


def test_ts_query_is_every_word_a_prefix() -> None:
    assert ts_query("Café") == "('cafe':*)"
    assert ts_query("e-mail adr") == "('e':*) & ('mail':*) & ('adr':*)"
    assert ts_query("   ") is None
    assert ts_query("'; DROP TABLE messages; --") == "('drop':*) & ('table':*) & ('messages':*)"


def test_what_is_kept_outlives_the_node(qtbot: Any, opened: Any) -> None:
    first = opened()
    wait(qtbot, first.create_account("ann", "Ann", "hash-1"))
    wait(qtbot, first.set_admin("ann", True))
    first.bans.add("Mallory", None, None, "spam")
    wait(qtbot, first.save_room("design", {"name": "design", "creator": "ann", "creator_name": "Ann",
                                           "operators": {"ann": "Ann"}, "invite_only": True}))
    wait(qtbot, first.save_join("design", "ann", 5))
    batch = PassBatch(messages=[posted("design", "hello"), posted("design", "again", cid="c1")],
                      markers={("ann", "design"): 7}, mail=[(first.next_id(), "bob", 1, "Ann", "ann", "m1", "psst")])
    wait(qtbot, first.store_pass(batch))
    assert 0 < batch.messages[0].id < batch.messages[1].id
    first.close()

    again = opened()
    account = again.account("ann")
    assert account is not None and account.admin and account.password_hash == "hash-1"
    assert again.bans.match("mallory", None) is not None
    record = again.room_record("design")
    assert record is not None and record.invite_only and record.joined == {"ann": 5}
    page = wait(qtbot, again.page("design", before=None, after=None, limit=10))
    assert [(m.text, m.cid) for m in page.messages] == [("hello", None), ("again", "c1")]
    assert [m.id for m in page.messages] == [m.id for m in batch.messages]
    assert wait(qtbot, again.marker("ann", "design")) == 7
    held, more = wait(qtbot, again.mailbox_page("bob", 0, 10))
    assert [(h.text, h.cid) for h in held] == [("psst", "m1")] and not more
    recent = wait(qtbot, again.recent_cids("ann", 10))
    assert {(r.cid, r.where, r.held) for r in recent} == {("c1", "design", False), ("m1", "@bob", True)}
    refused = failure(qtbot, again.create_account("ann", "Ann", "hash-2"))
    assert isinstance(refused, ValueError)
    kept = again.account("ann")
    assert kept is not None and kept.password_hash == "hash-1"


def test_two_nodes_writing_one_room_give_one_order(qtbot: Any, opened: Any) -> None:
    a, b = opened(), opened()
    batches = []
    for n in range(100):  # both nodes' passes in flight at once
        for node, name in ((a, "a"), (b, "b")):
            batch = PassBatch(messages=[posted("lobby", f"{name}{n}-{k}") for k in range(3)])
            batches.append((batch, node.store_pass(batch)))
    for _, future in batches:
        wait(qtbot, future)
    stamped = sorted(m.id for batch, _ in batches for m in batch.messages)
    assert len(set(stamped)) == 600
    seen: list[int] = []
    after = 0
    while True:  # a reader resuming page by page "after the last id it saw" gets each exactly once
        page = wait(qtbot, a.page("lobby", before=None, after=after, limit=64))
        seen += [m.id for m in page.messages]
        if not page.more:
            break
        after = seen[-1]
    assert seen == stamped
    for batch, _ in batches:  # a pass's messages are in its order, each under the id it was stamped with
        ids = [m.id for m in batch.messages]
        assert ids == sorted(ids)
    texts = {m.id: m.text for m in wait(qtbot, b.page("lobby", before=None, after=0, limit=600)).messages}
    assert all(texts[m.id] == m.text for batch, _ in batches for m in batch.messages)
    private = [a.next_id() for _ in range(5)] + [b.next_id() for _ in range(5)]
    assert len(set(private) | set(stamped)) == 610  # ids outside rooms never meet a room's


def test_a_pass_cut_before_its_commit_fails_and_stores_nothing(qtbot: Any, opened: Any, postgres_server: Any) -> None:
    proxy = CutProxy(postgres_server.port)
    node = opened(port=proxy.port)
    wait(qtbot, node.store_pass(PassBatch(messages=[posted("lobby", "first")])))
    proxy.hold_requests = True
    pending = node.store_pass(PassBatch(messages=[posted("lobby", "lost on the way")]))
    qtbot.wait(100)
    assert not pending.done()
    proxy.hold_requests = False
    proxy.cut()
    assert isinstance(failure(qtbot, pending), PgConnectionLost)
    page = wait(qtbot, node.page("lobby", before=None, after=None, limit=10))
    assert [m.text for m in page.messages] == ["first"]


def test_a_pass_whose_answer_is_lost_is_found_stored(qtbot: Any, opened: Any, postgres_server: Any) -> None:
    proxy = CutProxy(postgres_server.port)
    node = opened(port=proxy.port)
    proxy.hold_answers = True
    batch = PassBatch(messages=[posted("lobby", "one"), posted("lobby", "two")], markers={("ann", "lobby"): 3})
    pending = node.store_pass(batch)
    other = opened()  # the commit happens though its answer never comes
    qtbot.waitUntil(lambda: len(wait(qtbot, other.page("lobby", before=None, after=None, limit=10)).messages) == 2,
                    timeout=10_000)
    assert not pending.done()
    proxy.hold_answers = False
    proxy.cut()
    wait(qtbot, pending)  # succeeded: found stored, with the ids it took
    stored = wait(qtbot, other.page("lobby", before=None, after=None, limit=10)).messages
    assert [m.id for m in batch.messages] == [m.id for m in stored]


def test_a_pass_waits_while_postgresql_cannot_be_reached(qtbot: Any, opened: Any, postgres_server: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pg_backend, "CHECK_RETRY_MS", 50)
    proxy = CutProxy(postgres_server.port)
    node = opened(port=proxy.port)
    proxy.hold_answers = True
    pending = node.store_pass(PassBatch(messages=[posted("lobby", "kept")]))
    qtbot.wait(200)
    port = proxy.port
    proxy.listener.close()  # no new connection gets through while the answer is unknown
    proxy.cut()
    qtbot.wait(400)
    assert not pending.done()  # neither "stored" nor "failed" can be said yet
    assert proxy.listener.listen(QHostAddress(QHostAddress.SpecialAddress.LocalHost), port)
    proxy.hold_answers = False
    wait(qtbot, pending)
    assert pending.exception() is None


def test_search_folds_as_the_scan_does(qtbot: Any, opened: Any) -> None:
    node = opened()
    memory = MemoryBackend()
    texts = ["Café au lait", "send an E-Mail to Zoë", "the cafeteria", "3.14159 is pi", "ÉCOLE normale",
             "naïve approach", "no match here", "emails@example.org", "under_score word", "straße"]
    for backend in (node, memory):
        wait(qtbot, backend.store_pass(PassBatch(messages=[posted("lobby", t) for t in texts])))
    for query in ["cafe", "CAFÉ", "e-mail", "mail", "zoe", "14159", "ecole norm", "naive", "example org", "pi",
                  "under", "score", "xyz", "a"]:
        got = wait(qtbot, node.search(query, ["lobby"], before=None, limit=50)).messages
        expected = wait(qtbot, memory.search(query, ["lobby"], before=None, limit=50)).messages
        assert [m.text for m in got] == [m.text for m in expected], query
    assert wait(qtbot, node.search("cafe", ["elsewhere"], before=None, limit=50)).messages == []


def test_a_search_past_its_time_is_too_broad(qtbot: Any, opened: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    node = opened()
    for n in range(10):
        wait(qtbot, node.store_pass(PassBatch(messages=[posted("lobby", f"a{n} ab abc {k} " * 20)
                                                        for k in range(1000)])))
    monkeypatch.setattr(pg_backend, "SEARCH_TIMEOUT_MS", 1)
    assert isinstance(failure(qtbot, node.search("a ab abc", ["lobby"], before=None, limit=50)), SearchTooCostly)
    monkeypatch.setattr(pg_backend, "SEARCH_TIMEOUT_MS", 5000)
    assert len(wait(qtbot, node.search("a9 ab", ["lobby"], before=None, limit=50)).messages) == 50


def test_retention_keeps_the_newest_per_room(qtbot: Any, opened: Any) -> None:
    node = opened(keep_messages=3)
    for room in ("lobby", "design"):
        wait(qtbot, node.store_pass(PassBatch(messages=[posted(room, f"{room}{n}") for n in range(10)])))
    node.prune()
    qtbot.waitUntil(lambda: len(wait(qtbot, node.page("lobby", before=None, after=0, limit=50)).messages) == 3,
                    timeout=10_000)
    for room in ("lobby", "design"):
        page = wait(qtbot, node.page(room, before=None, after=0, limit=50))
        assert [m.text for m in page.messages] == [f"{room}7", f"{room}8", f"{room}9"]


def test_a_resend_is_found_under_the_rooms_lock_and_takes_no_number(qtbot: Any, opened: Any, postgres_server: Any,
                                                                      database: str) -> None:
    a, b = opened(), opened()
    first = PassBatch(messages=[posted("lobby", "one", cid="c1"), posted("lobby", "two")])
    wait(qtbot, a.store_pass(first))
    original = first.messages[0]
    mixed = PassBatch(messages=[posted("lobby", "one", cid="c1"), posted("lobby", "three", cid="c3"),
                                posted("lobby", "ONE", cid="c1"), posted("design", "one", cid="c1"),
                                posted("lobby", "one", cid="c1", sender="bob")])
    only_resends = PassBatch(messages=[posted("lobby", "one", cid="c1")])
    for resend in (mixed.messages[0], only_resends.messages[0]):
        resend.ts = original.ts + 1234  # sent again later
    pending = [a.store_pass(mixed), b.store_pass(only_resends)]  # both passes in flight at once
    for future in pending:
        wait(qtbot, future)
    for again in (mixed.messages[0], only_resends.messages[0]):  # the stored message's id and ts
        assert (again.again, again.id, again.ts) == (True, original.id, original.ts)
    # new: another cid, the same cid with another text, in another room, from another sender
    assert [m.again for m in mixed.messages[1:]] == [False] * 4
    assert len({m.id for m in mixed.messages[1:]} | {original.id}) == 5
    rows = postgres_server.psql("SELECT string_agg(seq || ':' || text, ',' ORDER BY id) FROM messages "
                                "WHERE room = 'lobby'", database).strip()
    assert rows == "1:one,2:two,3:three,4:ONE,5:one"  # the resends took no number: none is missing
    assert postgres_server.psql("SELECT room || '=' || last_seq FROM room_seq ORDER BY room",
                                database).split() == ["design=1", "lobby=5"]


def test_two_nodes_storing_the_same_resend_at_once_store_it_once(qtbot: Any, opened: Any, postgres_server: Any,
                                                                   database: str) -> None:
    a, b = opened(), opened()
    pairs = []
    for n in range(30):  # the first copy of each on both nodes at once: whichever locks the room first stores it
        pair = [PassBatch(messages=[posted("lobby", f"race {n}", cid=f"r{n}")]) for _ in (a, b)]
        pairs.append((pair, [a.store_pass(pair[0]), b.store_pass(pair[1])]))
    for _, futures in pairs:
        for future in futures:
            wait(qtbot, future)
    for pair, _ in pairs:
        one, other = pair[0].messages[0], pair[1].messages[0]
        assert one.id == other.id and one.ts == other.ts
        assert sorted([one.again, other.again]) == [False, True]
    assert postgres_server.psql("SELECT count(*) || ' ' || max(seq) FROM messages", database).strip() == "30 30"


def test_a_resend_whose_answer_is_lost_is_found_with_its_stored_message(qtbot: Any, opened: Any,
                                                                           postgres_server: Any) -> None:
    proxy = CutProxy(postgres_server.port)
    node = opened(port=proxy.port)
    first = PassBatch(messages=[posted("lobby", "one", cid="c1")])
    wait(qtbot, node.store_pass(first))
    proxy.hold_answers = True
    batch = PassBatch(messages=[posted("lobby", "one", cid="c1"), posted("lobby", "two", cid="c2")])
    pending = node.store_pass(batch)
    other = opened()
    qtbot.waitUntil(lambda: len(wait(qtbot, other.page("lobby", before=None, after=None, limit=10)).messages) == 2,
                    timeout=10_000)
    proxy.hold_answers = False
    proxy.cut()
    wait(qtbot, pending)  # found stored through the pass's token row
    again, new = batch.messages
    assert (again.again, again.id, again.ts) == (True, first.messages[0].id, first.messages[0].ts)
    stored = wait(qtbot, other.page("lobby", before=None, after=None, limit=10)).messages
    assert [m.id for m in stored] == [first.messages[0].id, new.id] and not new.again
