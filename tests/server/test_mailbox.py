"""Private messages to offline registered users: kept in the mailbox, acknowledged once stored, delivered at
the next login in batches until the client confirms them, limits, resends, retention and unregistering."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from qtchat.protocol import Delivered, Error, Message, Ping, Pong, SendMessage
from qtchat.server.accounts import hash_password
from qtchat.server.mailbox import HELD_BATCH
from qtchat.server.store import MessageStore
from tests.helpers import outcome

pytestmark = pytest.mark.backends

PASSWORD = "correct horse battery"
HASH = hash_password(PASSWORD)  # once: registering through the server would hash in its pool every time


def on_disk(folder: Path) -> list[tuple[int, str, str]]:
    """The mailbox as another process would read it from messages.db: (id, recipient key, text)."""
    with sqlite3.connect(folder / "messages.db") as db:
        return db.execute("SELECT id, user_key, text FROM mailbox ORDER BY id").fetchall()


def held_to(client, name: str = "bob") -> list[Message]:
    return [m for m in client.of(Message) if m.held and m.to == name]


def settle(client) -> None:
    """A ping's answer comes after everything the server sent before it."""
    token = f"settle{time.monotonic_ns()}"
    client.send(Ping(token))
    client.wait_event(Pong, token=token)


def offline_bob(server, connect):
    """A registered name 'bob' that is offline, and 'alice' logged in (unregistered) to write to him."""
    alice = connect(server.port)
    outcome(alice.qtbot, server.operator.register_account("bob", HASH))
    alice.login("alice")
    return alice


def bob_logs_in(server, connect):
    bob = connect(server.port)
    bob.login("Bob", password=PASSWORD)
    return bob


@pytest.mark.sqlite
def test_kept_after_storage_delivered_once_at_the_next_login_in_order(make_server, connect, tmp_path):
    server = make_server(data_dir=tmp_path)
    alice = offline_bob(server, connect)
    for i in range(3):
        alice.send(SendMessage(f"while you were out {i} ~ \U0001f600", cid=f"h{i}", to="BOB"))
        ack = alice.wait_event(Message, cid=f"h{i}")
        # the acknowledgement says "kept", and comes only once the message is on disk
        assert ack.held and ack.to == "bob" and ack.sender == "alice"
        assert (ack.id, "bob", ack.text) in on_disk(tmp_path)
    assert not alice.of(Error)
    stored = on_disk(tmp_path)
    bob = bob_logs_in(server, connect)
    bob.wait_for(lambda: len(held_to(bob, "Bob")) == 3)
    got = held_to(bob, "Bob")  # 'to' is the name as the recipient logged in with it
    assert [(m.id, m.text) for m in got] == [(i, t) for i, _, t in stored]
    assert [m.sender for m in got] == ["alice"] * 3 and [m.id for m in got] == sorted(m.id for m in got)
    bob.send(Delivered(got[-1].id))
    bob.wait_for(lambda: not on_disk(tmp_path))
    bob.close()
    again = bob_logs_in(server, connect)
    settle(again)
    assert not again.of(Message)  # confirmed: never again


@pytest.mark.sqlite
def test_kept_across_a_restart_and_sent_again_until_confirmed(make_server, connect, tmp_path):
    first = make_server(data_dir=tmp_path)
    alice = offline_bob(first, connect)
    for i in range(2):
        alice.send(SendMessage(f"kept {i}", cid=f"k{i}", to="bob"))
        alice.wait_event(Message, cid=f"k{i}")
    first.shutdown("restart")
    second = make_server(data_dir=tmp_path)
    assert second.backend.ids.last >= max(i for i, _, _ in on_disk(tmp_path))  # new ids stay above the kept ones
    bob = bob_logs_in(second, connect)
    bob.wait_for(lambda: len(held_to(bob, "Bob")) == 2)
    first_try = [(m.id, m.text) for m in held_to(bob, "Bob")]
    assert [t for _, t in first_try] == ["kept 0", "kept 1"]
    bob.close()  # gone before confirming: nothing is lost
    bob = bob_logs_in(second, connect)
    bob.wait_for(lambda: len(held_to(bob, "Bob")) == 2)
    assert [(m.id, m.text) for m in held_to(bob, "Bob")] == first_try
    bob.send(Delivered(first_try[0][0]))  # the first one only
    bob.wait_for(lambda: len(on_disk(tmp_path)) == 1)
    bob.close()
    bob = bob_logs_in(second, connect)
    bob.wait_for(lambda: len(held_to(bob, "Bob")) == 1)
    settle(bob)
    assert [(m.id, m.text) for m in held_to(bob, "Bob")] == first_try[1:]


@pytest.mark.sqlite
def test_an_unregistered_offline_name_is_refused_and_nothing_is_kept(make_server, connect, tmp_path):
    server = make_server(data_dir=tmp_path)
    alice = offline_bob(server, connect)
    alice.send(SendMessage("hello?", cid="u1", to="nobody"))
    error = alice.wait_event(Error, ref="u1")
    assert error.code == "user_offline" and "nobody" in error.message and "registered" in error.message
    settle(alice)
    assert not on_disk(tmp_path) and not alice.of(Message)
    none = make_server(data_dir=tmp_path / "none", mailbox_size=0)
    writer = offline_bob(none, connect)
    writer.send(SendMessage("hello?", cid="u2", to="bob"))
    error = writer.wait_event(Error, ref="u2")
    assert error.code == "user_offline" and "keeps no private messages" in error.message


@pytest.mark.sqlite
def test_a_full_mailbox_refuses_clearly_until_its_owner_logs_in(make_server, connect, tmp_path):
    server = make_server(data_dir=tmp_path, mailbox_size=3)
    alice = offline_bob(server, connect)
    for i in range(4):
        alice.send(SendMessage(f"m{i}", cid=f"c{i}", to="bob"))
    error = alice.wait_event(Error, ref="c3")
    assert error.code == "mailbox_full" and "3 messages waiting" in error.message and "bob" in error.message
    alice.wait_for(lambda: len([m for m in alice.of(Message) if m.held]) == 3)
    assert [t for _, _, t in on_disk(tmp_path)] == ["m0", "m1", "m2"]
    bob = bob_logs_in(server, connect)
    bob.wait_for(lambda: len(held_to(bob, "Bob")) == 3)
    bob.send(Delivered(held_to(bob, "Bob")[-1].id))
    bob.wait_for(lambda: not on_disk(tmp_path))
    bob.close()
    server_side = server.users
    alice.wait_for(lambda: "bob" not in server_side)
    alice.send(SendMessage("m3", cid="c3b", to="bob"))
    assert alice.wait_event(Message, cid="c3b").held


@pytest.mark.sqlite
def test_a_resent_held_message_is_kept_and_delivered_once_also_after_a_restart(make_server, connect, tmp_path):
    first = make_server(data_dir=tmp_path)
    alice = offline_bob(first, connect)
    alice.send(SendMessage("only once", cid="r1", to="bob"))
    ack = alice.wait_event(Message, cid="r1")
    alice.close()
    again = connect(first.port)
    again.login("alice")
    again.send(SendMessage("only once", cid="r1", to="bob"))  # its acknowledgement was lost, say
    repeat = again.wait_event(Message, cid="r1")
    assert (repeat.id, repeat.ts, repeat.held, repeat.to) == (ack.id, ack.ts, True, "bob")
    first.shutdown("restart")
    second = make_server(data_dir=tmp_path)
    third = connect(second.port)
    third.login("alice")
    third.send(SendMessage("only once", cid="r1", to="bob"))
    assert third.wait_event(Message, cid="r1").id == ack.id
    third.send(SendMessage("only once", cid="r2", to="bob"))  # another cid: another message
    assert third.wait_event(Message, cid="r2").id != ack.id
    assert [t for _, _, t in on_disk(tmp_path)] == ["only once", "only once"]
    bob = bob_logs_in(second, connect)
    bob.wait_for(lambda: len(held_to(bob, "Bob")) == 2)
    settle(bob)
    assert [m.cid for m in held_to(bob, "Bob")] == ["r1", "r2"]


@pytest.mark.sqlite
def test_a_full_mailbox_comes_in_batches_each_after_the_last_is_confirmed(make_server, connect, tmp_path):
    server = make_server(data_dir=tmp_path, mailbox_per_sender=0)  # one sender fills it: no share
    alice = offline_bob(server, connect)
    count = 2 * HELD_BATCH + 50
    for i in range(count):
        alice.send(SendMessage(f"n{i}", cid=f"n{i}", to="bob"))
    alice.wait_for(lambda: len([m for m in alice.of(Message) if m.held]) == count, timeout=20)
    bob = bob_logs_in(server, connect)
    bob.wait_for(lambda: len(held_to(bob, "Bob")) == HELD_BATCH)
    settle(bob)
    assert len(held_to(bob, "Bob")) == HELD_BATCH  # the next batch waits for the confirmation
    bob.send(Delivered(held_to(bob, "Bob")[HELD_BATCH // 2].id))  # half of it: no next batch yet
    bob.wait_for(lambda: len(on_disk(tmp_path)) == count - HELD_BATCH // 2 - 1)
    settle(bob)
    assert len(held_to(bob, "Bob")) == HELD_BATCH
    bob.send(Delivered(1 << 62))  # beyond what was sent: confirms what was sent, no more
    bob.wait_for(lambda: len(held_to(bob, "Bob")) == 2 * HELD_BATCH)
    assert len(on_disk(tmp_path)) == count - HELD_BATCH
    bob.send(Delivered(held_to(bob, "Bob")[-1].id))
    bob.wait_for(lambda: len(held_to(bob, "Bob")) == count)
    bob.send(Delivered(held_to(bob, "Bob")[-1].id))
    bob.wait_for(lambda: not on_disk(tmp_path))
    assert [m.text for m in held_to(bob, "Bob")] == [f"n{i}" for i in range(count)]
    assert not bob.of(Error)


def test_a_confirmation_with_nothing_delivered_is_a_clear_error(server, connect, qtbot):
    outcome(qtbot, server.operator.register_account("bob", HASH))
    bob = bob_logs_in(server, connect)
    bob.send(Delivered(5))
    error = bob.wait_event(Error)
    assert error.code == "bad_frame" and not error.fatal and "nothing to confirm" in error.message
    settle(bob)  # the session goes on


@pytest.mark.sqlite
def test_muted_senders_are_refused_as_before(server, connect, qtbot):
    alice = offline_bob(server, connect)
    outcome(qtbot, server.operator.mute("alice"))
    alice.send(SendMessage("let me in", cid="m1", to="bob"))
    assert alice.wait_event(Error, ref="m1").code == "muted"
    assert server.backend.store.mailbox_count("bob", 10) == 0


@pytest.mark.sqlite
def test_unregistering_a_name_drops_its_mailbox(make_server, connect, tmp_path, qtbot):
    server = make_server(data_dir=tmp_path)
    alice = offline_bob(server, connect)
    for i in range(2):
        alice.send(SendMessage(f"for bob {i}", cid=f"d{i}", to="bob"))
        alice.wait_event(Message, cid=f"d{i}")
    text = outcome(qtbot, server.operator.unregister_account("bob"))
    assert "free for anyone" in text and "2 private message(s) kept for them were deleted" in text
    assert not on_disk(tmp_path)
    alice.send(SendMessage("now?", cid="d3", to="bob"))
    assert alice.wait_event(Error, ref="d3").code == "user_offline"
    bob = connect(server.port)
    bob.login("bob")  # anyone's name now, with nothing waiting in it
    settle(bob)
    assert not bob.of(Message)


@pytest.mark.sqlite
def test_a_message_that_cannot_be_stored_is_refused_not_acknowledged(server, connect):
    alice = offline_bob(server, connect)
    # a real SQLite failure, as a full disk gives: the insert into the mailbox aborts
    server.backend.store.db.execute("CREATE TEMP TRIGGER refuse BEFORE INSERT ON mailbox BEGIN SELECT RAISE(ABORT, 'full'); END")
    alice.send(SendMessage("lost?", cid="f1", to="bob"))
    error = alice.wait_event(Error, ref="f1")
    assert error.code == "internal" and "not sent" in error.message
    settle(alice)
    assert not alice.of(Message)
    server.backend.store.db.execute("DROP TRIGGER refuse")
    alice.send(SendMessage("lost?", cid="f1", to="bob"))  # sent again: now kept, as a new message
    assert alice.wait_event(Message, cid="f1").held
    assert server.backend.store.mailbox_count("bob", 10) == 1


def test_retention_applies_to_the_mailbox():
    store = MessageStore(None, keep_days=1)
    now = int(time.time() * 1000)
    store.append([], mail=[(1, "bob", now - 2 * 86_400_000, "alice", "alice", None, "old"),
                           (2, "bob", now, "alice", "alice", None, "new")])
    assert store.max_id() == 2
    assert store.prune() == 1
    held, more = store.mailbox_page("bob", 0, 10)
    assert [m.text for m in held] == ["new"] and not more


@pytest.mark.sqlite
def test_a_login_taking_the_name_over_gets_what_the_old_session_did_not_confirm(make_server, connect, tmp_path):
    server = make_server(data_dir=tmp_path)
    alice = offline_bob(server, connect)
    for i in range(2):
        alice.send(SendMessage(f"t{i}", cid=f"t{i}", to="bob"))
        alice.wait_event(Message, cid=f"t{i}")
    old = bob_logs_in(server, connect)
    old.wait_for(lambda: len(held_to(old, "Bob")) == 2)
    old.send(Delivered(held_to(old, "Bob")[0].id))
    old.wait_for(lambda: len(on_disk(tmp_path)) == 1)
    new = connect(server.port)
    new.login("bob", password=PASSWORD)  # the same account from elsewhere: the old session gives way
    old.wait_closed()
    new.wait_for(lambda: len(held_to(new)) == 1)
    assert held_to(new)[0].text == "t1"
    alice.send(SendMessage("live now", cid="live", to="bob"))  # online: straight to them, not kept
    got = new.wait_event(Message, cid="live")
    assert not got.held and not alice.wait_event(Message, cid="live").held
    assert len(on_disk(tmp_path)) == 1


def held_acks(client) -> list[Message]:
    return [m for m in client.of(Message) if m.held]


def test_one_sender_gets_only_their_share_of_a_mailbox_and_others_can_still_write(make_server, connect):
    server = make_server(mailbox_size=5, mailbox_per_sender=2)
    alice = offline_bob(server, connect)
    # three at once, in one write: the third is counted against the two of the pass not stored yet
    alice.send_raw(b"".join(alice.conn.send(SendMessage(f"a{i}", cid=f"a{i}", to="bob")) for i in range(3)))
    error = alice.wait_event(Error, ref="a2")
    assert error.code == "mailbox_full" and not error.fatal
    assert "2 messages from you" in error.message and "your share" in error.message and "bob" in error.message
    alice.wait_for(lambda: len(held_acks(alice)) == 2)
    settle(alice)
    assert [m.cid for m in held_acks(alice)] == ["a0", "a1"]  # the refused one is not kept
    alice.send(SendMessage("a3", cid="a3", to="bob"))  # and stays refused once the two are stored
    assert alice.wait_event(Error, ref="a3").code == "mailbox_full"
    first = next(m for m in held_acks(alice) if m.cid == "a1")
    alice.send(SendMessage("a1", cid="a1", to="bob"))  # a resend (its acknowledgement lost): acknowledged again
    alice.wait_for(lambda: len([m for m in held_acks(alice) if m.cid == "a1"]) == 2)
    assert [m.id for m in held_acks(alice) if m.cid == "a1"] == [first.id] * 2
    carol = connect(server.port)
    carol.login("carol")
    for i in range(2):  # another sender has a share of their own
        carol.send(SendMessage(f"c{i}", cid=f"c{i}", to="bob"))
        assert carol.wait_event(Message, cid=f"c{i}").held
    dave = connect(server.port)
    dave.login("dave")
    dave.send(SendMessage("d0", cid="d0", to="bob"))
    assert dave.wait_event(Message, cid="d0").held
    dave.send(SendMessage("d1", cid="d1", to="bob"))  # the mailbox itself is full now: the whole-mailbox text
    error = dave.wait_event(Error, ref="d1")
    assert error.code == "mailbox_full" and "5 messages waiting" in error.message and "share" not in error.message
    settle(dave)
    assert [m.cid for m in held_acks(dave)] == ["d0"]
    bob = bob_logs_in(server, connect)
    bob.wait_for(lambda: len(held_to(bob, "Bob")) == 5)
    settle(bob)
    got = held_to(bob, "Bob")
    assert [m.text for m in got] == ["a0", "a1", "c0", "c1", "d0"]
    bob.send(Delivered(got[-1].id))
    bob.close()
    alice.wait_for(lambda: "bob" not in server.users)
    alice.send(SendMessage("a4", cid="a4", to="bob"))  # confirmed: alice's share is free again
    assert alice.wait_event(Message, cid="a4").held


def test_a_share_of_0_lets_one_sender_fill_the_whole_mailbox(make_server, connect):
    server = make_server(mailbox_size=4, mailbox_per_sender=0)
    alice = offline_bob(server, connect)
    for i in range(5):
        alice.send(SendMessage(f"a{i}", cid=f"z{i}", to="bob"))
    error = alice.wait_event(Error, ref="z4")
    assert error.code == "mailbox_full" and "4 messages waiting" in error.message
    alice.wait_for(lambda: len(held_acks(alice)) == 4)
    settle(alice)
    assert len(alice.of(Error)) == 1
