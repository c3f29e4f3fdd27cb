"""Durable commits off the loop: the sync agent (sync_agent.py) and the server's side of it (syncer.py).

A message is acknowledged only once the agent has synced its commit; while the agent (the disk) is slow, the
loop keeps serving everyone else; a dead agent is replaced and nothing waits forever; a sync that fails
refuses the pass and takes its messages back."""

from __future__ import annotations

import io
import logging
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from qtchat.protocol import Error, Message, Ping, Pong
from qtchat.server import ChatServer, ServerConfig
from qtchat.server.sqlite_backend import SqliteBackend
from qtchat.server.store import MessageStore
from qtchat.server.sync_agent import Agent, serve, wal_of
from tests.conftest import NO_LIMITS

pytestmark = pytest.mark.sqlite

# a stand-in for a disk whose fsync fails (EIO): it cannot be made to fail for real without root and a
# device-mapper target; everything else here is the real agent
FAILING_DISK = [sys.executable, "-c",
                "import sys\nfor line in sys.stdin:\n    print('error [Errno 5] Input/output error', flush=True)"]


def history_ids(folder: Path) -> list[int]:
    db = sqlite3.connect(str(folder / "messages.db"))
    try:
        return [row[0] for row in db.execute("SELECT id FROM messages ORDER BY id")]
    finally:
        db.close()


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="stopping a process needs POSIX signals")
def test_acknowledged_only_once_synced_and_the_loop_serves_others_meanwhile(make_server, connect, tmp_path):
    server = make_server(data_dir=tmp_path)
    syncer = server.backend.syncer
    assert syncer is not None and syncer.by_agent
    alice, bob = connect(server.port), connect(server.port)
    alice.login("alice")
    bob.login("bob")
    pid = syncer.agent_pid
    assert pid
    os.kill(pid, signal.SIGSTOP)  # the disk hangs
    try:
        alice.say("held back", cid="c1")
        bob.send(Ping(token="still there?"))
        bob.wait_event(Pong, token="still there?")  # the loop is not waiting for the disk
        alice.send(Ping(token="me too"))
        alice.wait_event(Pong, token="me too")
        assert not any(m.text == "held back" for m in alice.of(Message) + bob.of(Message))  # not acknowledged
        assert history_ids(tmp_path)  # though committed (in the log, not yet synced)
    finally:
        os.kill(pid, signal.SIGCONT)
    alice.wait_event(Message, cid="c1")
    bob.wait_event(Message, text="held back")


def test_a_dead_agent_is_replaced_and_nothing_waits_for_it(make_server, connect, tmp_path, caplog, qtbot):
    caplog.set_level(logging.WARNING)
    server = make_server(data_dir=tmp_path)
    syncer = server.backend.syncer
    alice = connect(server.port)
    alice.login("alice")
    first = syncer.agent_pid
    os.kill(first, getattr(signal, "SIGKILL", signal.SIGTERM))
    alice.say("after the crash", cid="c2")
    alice.wait_event(Message, cid="c2")  # synced here, or by the new agent
    qtbot.waitUntil(lambda: syncer.by_agent and syncer.agent_pid != first)
    alice.say("and again", cid="c3")
    alice.wait_event(Message, cid="c3")
    assert "the sync agent stopped" in caplog.text
    assert len(history_ids(tmp_path)) == 2


def test_a_failed_sync_refuses_the_pass_and_takes_its_messages_back(qtbot, connect, tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    server = ChatServer(ServerConfig(host="127.0.0.1", port=0, data_dir=tmp_path, **NO_LIMITS),
                        backend=SqliteBackend(tmp_path, sync_command=FAILING_DISK))
    server.listen()
    try:
        alice, bob = connect(server.port), connect(server.port)
        alice.login("alice")
        bob.login("bob")
        alice.say("never on disk", cid="lost")
        error = alice.wait_event(Error, ref="lost")
        assert error.code == "internal"
        bob.send(Ping(token="after"))
        bob.wait_event(Pong, token="after")
        assert not any(m.text == "never on disk" for m in alice.of(Message) + bob.of(Message))
        assert history_ids(tmp_path) == []  # committed, then taken back
        assert "Input/output error" in caplog.text
    finally:
        server.shutdown()


def test_the_agent_checkpoints_a_large_log_into_the_database(tmp_path):
    store = MessageStore(tmp_path / "messages.db", synced_elsewhere=True)
    rows: list[tuple[int, str, int, str, str, str | None, str]] = [
        (i, "lobby", i, "alice", "alice", None, "x" * 3000) for i in range(1, 400)
    ]
    store.append(rows)
    database = tmp_path / "messages.db"
    before = database.stat().st_size
    assert wal_of(database).stat().st_size > 1 << 20  # no automatic checkpoint: all of it is in the log
    answers = io.StringIO()
    agent_dbs = [database]
    serve(agent_dbs, ["sync\n", "bogus\n", "quit\n", "sync\n"], answers)
    assert answers.getvalue().splitlines()[0] == "ok"
    assert answers.getvalue().splitlines()[1].startswith("error unknown request")
    assert len(answers.getvalue().splitlines()) == 2  # nothing after quit
    agent = Agent(agent_dbs, checkpoint_at=1)
    agent.sync()
    agent.close()
    assert database.stat().st_size > before + 1_000_000  # the log's pages are in the database now
    assert len(store.page("lobby", limit=500)[0]) == 399
    store.close()


def test_the_log_starts_over_after_a_checkpoint_and_keeps_every_row(tmp_path):
    # The loop's connection syncs nothing, not even the log's header when a write starts the log over
    # after the agent's checkpoint (a disk stall on the loop with synchronous=NORMAL); what is synced
    # (by the agent) and closed survives, and the database stays sound.
    database = tmp_path / "messages.db"
    store = MessageStore(database, synced_elsewhere=True)
    assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 0  # OFF: the loop never waits on a disk
    agent = Agent([database], checkpoint_at=1)
    store.append([(1, "lobby", 1, "alice", "alice", None, "x" * 3000)])
    agent.sync()  # synced and checkpointed: the next write starts the log over
    size = wal_of(database).stat().st_size
    store.append([(2, "lobby", 2, "alice", "alice", None, "y")])
    assert wal_of(database).stat().st_size == size  # written over from the start, not appended
    agent.sync()
    agent.close()
    store.close()  # the last connection: its checkpoint is synced (FULL) and the log removed
    assert not wal_of(database).exists()
    db = sqlite3.connect(str(database))
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert [r[0] for r in db.execute("SELECT text FROM messages ORDER BY id")] == ["x" * 3000, "y"]
    finally:
        db.close()


def test_without_a_data_folder_there_is_nothing_to_sync(make_server, connect):
    server = make_server()
    assert server.backend.syncer is None
    alice = connect(server.port)
    alice.login("alice")
    alice.say("in memory", cid="m")
    alice.wait_event(Message, cid="m")
