"""A full disk is reported as what it is. SQLite rolls a transaction back by itself on SQLITE_FULL; a
ROLLBACK after that failed with "cannot rollback - no transaction is active" and hid the cause. The disk is
made full for real: the database may grow no further (``PRAGMA max_page_count``)."""

from __future__ import annotations

import logging
import sqlite3

import pytest

from qtchat.protocol import Error, Message
from qtchat.server.store import MessageStore


def fill_up(db: sqlite3.Connection) -> None:
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages + 1}")


def rows(start: int, count: int) -> list[tuple[int, str, int, str, str, str | None, str]]:
    return [(i, "lobby", i, "alice", "alice", None, "x" * 4000) for i in range(start, start + count)]


def test_append_on_a_full_disk_raises_the_real_cause_and_keeps_nothing(tmp_path):
    store = MessageStore(tmp_path / "messages.db")
    store.append(rows(1, 1))
    fill_up(store.db)
    with pytest.raises(sqlite3.OperationalError, match="full") as caught:
        store.append(rows(2, 100))
    assert "cannot rollback" not in str(caught.value)
    assert not store.db.in_transaction
    assert store.max_id() == 1  # none of the pass
    store.db.execute("PRAGMA max_page_count = 1073741823")
    store.append(rows(2, 3))  # and the store goes on once there is room
    assert store.max_id() == 4
    store.close()


def test_indexing_on_a_full_disk_raises_the_real_cause(tmp_path):
    store = MessageStore(tmp_path / "messages.db")
    if not store.fts:
        pytest.skip("this SQLite has no FTS5")
    store.append(rows(1, 300))
    fill_up(store.db)
    with pytest.raises(sqlite3.OperationalError, match="full") as caught:
        store.index_pending()
    assert "cannot rollback" not in str(caught.value)
    assert store.fts_upto == 0 and not store.db.in_transaction
    store.close()


@pytest.mark.sqlite
def test_the_log_names_a_full_disk_and_the_sender_hears_of_it(make_server, connect, tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    server = make_server(data_dir=tmp_path)
    alice = connect(server.port)
    alice.login("alice")
    fill_up(server.backend.store.db)
    alice.say("y" * 30_000, cid="big")
    error = alice.wait_event(Error, ref="big")
    assert error.code == "internal"
    assert not alice.of(Message)  # never acknowledged
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "full" in logged and "cannot rollback" not in logged
