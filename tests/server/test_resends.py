"""Resends recognised by the store (backend.py, point 8): a message sent again with its cid after a reconnect
is acknowledged with the stored message's id and ts, relayed to nobody and stored once, however old it is
(not only among the sender's newest 64, which the server remembers itself: resends.py).

Run on PostgreSQL and in memory (tests/server/conftest.py; not SQLite: backend.py, point 8); the same on several
nodes at once: test_cluster.py."""

from __future__ import annotations

from typing import Any

import pytest

from qtchat.protocol import History, HistoryRequest, JoinRoom, Left, Message, RoomState
from qtchat.server.resends import RECENT_CIDS_PER_USER
from tests.helpers import RawClient

pytestmark = pytest.mark.backends


@pytest.fixture(autouse=True)
def _not_on_sqlite(backend_kind: str) -> None:
    """One machine's SQLite does not look resends up (the index would cost a third of every insert: backend.py,
    point 8); there the cache of each sender's newest 64 is the check (tests/server/test_history.py)."""
    if backend_kind == "sqlite":
        pytest.skip("SQLite recognises a resend among the sender's newest 64 only")


def stored(client: RawClient, room: str = "lobby") -> list[Message]:
    """The room's whole history as the store keeps it (at most 500 messages here)."""
    client.send(HistoryRequest(room=room, after=0, limit=500))
    page = client.wait_event(History, room=room)
    client.events.remove(page)
    assert not page.more
    return list(page.messages)


def test_a_resend_older_than_the_newest_64_is_acknowledged_as_stored_and_not_relayed(server: Any,
                                                                                      connect: Any) -> None:
    bob = connect()
    bob.login("bob")
    first = connect()
    first.login("alice")
    count = 100
    assert count > RECENT_CIDS_PER_USER  # the first ones are no longer in the server's cache
    for n in range(count):
        first.say(f"message {n}", cid=f"c{n}")
    first.wait_for(lambda: len(first.of(Message)) == count)
    originals = {m.cid: m for m in first.of(Message)}
    bob.wait_for(lambda: len(bob.of(Message)) == count)
    first.close()
    bob.wait_event(Left, user="alice")

    again = connect()
    again.login("alice")
    again.say("message 0", cid="c0")  # its acknowledgement was lost, so the client sends it again
    again.say("message 1 changed", cid="c1")  # the same cid with another text: a new message
    again.say("after", cid="c100")
    ack = again.wait_event(Message, cid="c0")
    assert (ack.id, ack.ts, ack.text, ack.sender) == (originals["c0"].id, originals["c0"].ts, "message 0", "alice")
    bob.wait_event(Message, cid="c100")
    relayed = [m.text for m in bob.of(Message)][count:]
    assert relayed == ["message 1 changed", "after"]  # not the resend
    changed = again.wait_event(Message, cid="c1")
    assert changed.id > originals[f"c{count - 1}"].id
    again.wait_event(Message, cid="c100")
    assert [m.id for m in again.of(Message)].count(originals["c0"].id) == 1  # acknowledged once, to the sender

    history = stored(bob)
    assert [m.cid for m in history].count("c0") == 1
    assert [m.text for m in history if m.cid == "c1"] == ["message 1", "message 1 changed"]
    assert len(history) == count + 2
    assert [m.id for m in history] == sorted(m.id for m in history)

    again.say("message 0", cid="c0")  # and once more: now the server's own cache knows it
    again.wait_for(lambda: len([m for m in again.of(Message) if m.cid == "c0"]) == 2)
    assert {m.id for m in again.of(Message) if m.cid == "c0"} == {originals["c0"].id}
    assert len(stored(bob)) == count + 2


def test_a_pass_with_resends_and_new_messages_in_two_rooms(server: Any, connect: Any) -> None:
    bob = connect()
    bob.login("bob")
    alice = connect()
    alice.login("alice")
    for client in (bob, alice):
        client.send(JoinRoom("design"))
        client.wait_event(RoomState, room="design")
    for n in range(RECENT_CIDS_PER_USER + 6):  # the first six leave the server's cache
        alice.say(f"lobby {n}", cid=f"l{n}")
    alice.say("design 0", cid="d0", room="design")
    alice.wait_for(lambda: len(alice.of(Message)) == RECENT_CIDS_PER_USER + 7)
    before = {m.cid: m.id for m in alice.of(Message)}
    alice.close()
    bob.wait_event(Left, user="alice")

    again = connect()
    again.login("alice")
    again.send(JoinRoom("design"))
    again.wait_event(RoomState, room="design")
    for n in range(6):  # in one pass: resends in both rooms, and new messages between them
        again.say(f"lobby {n}", cid=f"l{n}")
        again.say(f"design {n}", cid=f"d{n}", room="design")
    again.wait_for(lambda: len(again.of(Message)) == 12)
    acks = {m.cid: m.id for m in again.of(Message)}
    assert all(acks[cid] == before[cid] for cid in ["d0", *(f"l{n}" for n in range(6))])
    assert not {acks[f"d{n}"] for n in range(1, 6)} & set(before.values())
    bob.wait_for(lambda: len([m for m in bob.of(Message) if m.room == "design"]) == 6)
    assert [m.text for m in bob.of(Message) if m.room == "design"] == [f"design {n}" for n in range(6)]
    assert len([m for m in bob.of(Message) if m.room == "lobby"]) == RECENT_CIDS_PER_USER + 6  # none relayed again
    assert len(stored(bob)) == RECENT_CIDS_PER_USER + 6
    assert [m.text for m in stored(bob, "design")] == [f"design {n}" for n in range(6)]
