"""Reactions (reactions.py; the store's checks: backend.py, point 11), over real sockets on every backend:
toggled per user, totalled with several users, one frame per message and pass, pages carry the totals and
the reader's own, never who gave what; bad ones refused to the giver alone."""

from __future__ import annotations

from typing import Any

import pytest

from qtchat.protocol import (
    REACTIONS,
    DeleteMessage,
    Error,
    History,
    HistoryRequest,
    Message,
    MessageDeleted,
    React,
    Reactions,
)

pytestmark = pytest.mark.backends
UP, PARTY = REACTIONS[0], REACTIONS[3]


def newest(client: Any) -> list[Message]:
    client.events = [e for e in client.events if not isinstance(e, History)]
    client.send(HistoryRequest(limit=20))
    return list(client.wait_event(History).messages)


def test_reactions_toggle_and_total_across_users_one_frame_per_message_and_pass(server: Any, connect: Any) -> None:
    alice, bob, carol = connect(), connect(), connect()
    for client, name in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
        client.login(name)
    alice.say("ship it?", cid="a1")
    msg = alice.wait_event(Message, cid="a1")
    carol.wait_event(Message, cid="a1")
    # several reactions in one read: one pass, so one frame for the room (and bob's own, once)
    bob.send_raw(b"".join(bob.conn.send(e) for e in (React(msg.id, UP), React(msg.id, PARTY), React(msg.id, UP, on=False),
                                                      React(msg.id, UP))))
    carol.wait_for(lambda: any(isinstance(e, Reactions) for e in carol.events))
    carol.qtbot.wait(100)
    frames = carol.of(Reactions)
    assert len(frames) == 1 and frames[0].reactions == {UP: 1, PARTY: 1} and not frames[0].yours
    own = bob.wait_event(Reactions, yours=True)
    assert own.mine == (UP, PARTY) and own.reactions == {UP: 1, PARTY: 1}
    assert len(bob.of(Reactions)) == 2  # the room's frame and bob's own

    carol.send(React(msg.id, UP))
    assert alice.wait_event(Reactions, reactions={UP: 2, PARTY: 1}).id == msg.id
    bob.send(React(msg.id, PARTY, on=False))
    bob.send(React(msg.id, PARTY, on=False))  # taking back one not given: nothing changes
    alice.wait_event(Reactions, reactions={UP: 2})

    (seen_by_bob,) = newest(bob)
    assert (seen_by_bob.reactions, seen_by_bob.mine) == ({UP: 2}, (UP,))
    (seen_by_alice,) = newest(alice)
    assert (seen_by_alice.reactions, seen_by_alice.mine) == ({UP: 2}, ())  # totals, and none of hers


def test_bad_reactions_are_refused_to_the_giver_alone(server: Any, connect: Any) -> None:
    alice, bob = connect(), connect()
    alice.login("alice")
    bob.login("bob")
    alice.say("hello", cid="a1")
    msg = alice.wait_event(Message, cid="a1")
    bob.send(React(msg.id, "\N{PILE OF POO}"))
    assert bob.wait_event(Error, ref=f"react:{msg.id}").code == "bad_reaction"
    bob.send(React(msg.id + 999, UP))
    assert bob.wait_event(Error, ref=f"react:{msg.id + 999}").code == "no_such_message"
    alice.send(DeleteMessage(msg.id))
    bob.wait_event(MessageDeleted, id=msg.id)
    bob.send(React(msg.id, UP))
    bob.wait_for(lambda: len(bob.of(Error)) == 3)
    assert bob.of(Error)[2].code == "no_such_message" and not any(e.fatal for e in bob.of(Error))
    alice.qtbot.wait(100)
    assert not alice.of(Reactions) and not bob.of(Reactions)


@pytest.mark.sqlite
def test_reactions_outlive_a_restart(make_server: Any, connect: Any, tmp_path: Any) -> None:
    first = make_server(data_dir=tmp_path)
    alice = connect(first.port)
    alice.login("alice")
    alice.say("keep this", cid="a1")
    msg = alice.wait_event(Message, cid="a1")
    alice.send(React(msg.id, PARTY))
    alice.wait_event(Reactions, yours=True)
    first.shutdown("restart")
    alice.wait_closed()
    second = make_server(data_dir=tmp_path)
    again = connect(second.port)
    again.login("alice")
    (kept,) = newest(again)
    assert (kept.reactions, kept.mine) == ({PARTY: 1}, (PARTY,))


def test_a_deleted_message_shows_no_reactions(server: Any, connect: Any) -> None:
    alice, bob = connect(), connect()
    alice.login("alice")
    bob.login("bob")
    alice.say("short-lived", cid="a1")
    msg = alice.wait_event(Message, cid="a1")
    bob.send(React(msg.id, UP))
    alice.wait_event(Reactions, reactions={UP: 1})
    alice.send(DeleteMessage(msg.id))
    bob.wait_event(MessageDeleted, id=msg.id)
    (gone,) = newest(bob)
    assert gone.deleted and gone.reactions == {} and gone.mine == ()
