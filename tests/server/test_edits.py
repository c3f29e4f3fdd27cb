"""Editing and deleting room messages (edits.py; the store's checks: backend.py, point 9), over real sockets on
every backend: live to every member, the same in history, around pages, catch-up and search; refusals answered
to the asker alone, with nothing sent to anyone else."""

from __future__ import annotations

from typing import Any

import pytest

from qtchat.protocol import (
    DeleteMessage,
    EditMessage,
    Error,
    History,
    HistoryRequest,
    JoinRoom,
    Message,
    MessageDeleted,
    MessageEdited,
    RoomState,
    SearchRequest,
    SearchResults,
)
from tests.helpers import RawClient

pytestmark = pytest.mark.backends
PASSWORD = "correct horse battery"


def page(client: RawClient, **request: Any) -> History:
    client.events = [e for e in client.events if not isinstance(e, History)]
    client.send(HistoryRequest(**request))
    found: History = client.wait_event(History)
    return found


def search(client: RawClient, query: str) -> list[Message]:
    client.events = [e for e in client.events if not isinstance(e, SearchResults)]
    client.send(SearchRequest(query))
    return list(client.wait_event(SearchResults).results)


def posted(client: RawClient, text: str, cid: str) -> Message:
    client.say(text, cid=cid)
    ack: Message = client.wait_event(Message, cid=cid)
    return ack


def test_an_edit_reaches_every_member_and_is_what_history_around_catch_up_and_search_show(server: Any,
                                                                                        connect: Any) -> None:
    alice, bob = connect(), connect()
    alice.login("alice")
    bob.login("bob")
    first = posted(alice, "the meeting is on tusday", "c1")
    posted(alice, "bring snacks", "c2")
    bob.wait_event(Message, cid="c2")
    seen = first.id  # bob's client saw everything up to here

    alice.send(EditMessage(first.id, "the meeting is on tuesday"))
    for client in (alice, bob):  # the editor's copy is its acknowledgement
        edited = client.wait_event(MessageEdited, id=first.id)
        assert (edited.text, edited.by, edited.room) == ("the meeting is on tuesday", "alice", "lobby")
        assert edited.edited >= first.ts
    assert not alice.errors and not alice.of(Error)

    newest = page(bob, limit=10).messages
    assert [(m.text, bool(m.edited)) for m in newest] == [("the meeting is on tuesday", True), ("bring snacks", False)]
    assert page(bob, around=first.id, limit=10).messages[0].text == "the meeting is on tuesday"
    caught_up = page(bob, after=seen)  # a client that was away since it saw the first message
    assert [m.text for m in caught_up.messages] == ["bring snacks"]
    assert [(m.id, m.text) for m in caught_up.changed] == [(first.id, "the meeting is on tuesday")]
    assert not caught_up.changed_more
    later = posted(alice, "later", "c3")
    assert page(bob, after=later.id).changed == ()  # nothing changed since a message newer than the edit

    assert search(bob, "tusday") == []  # the replaced text is never found again
    assert [m.id for m in search(bob, "tuesday")] == [first.id]
    assert search(bob, "tuesday")[0].edited


def test_a_deletion_reaches_everyone_and_leaves_a_placeholder_nowhere_found(server: Any, connect: Any) -> None:
    alice, bob = connect(), connect()
    alice.login("alice")
    bob.login("bob")
    gone = posted(alice, "a secret password", "c1")
    posted(alice, "oops", "c2")
    alice.send(DeleteMessage(gone.id))
    for client in (alice, bob):
        deleted = client.wait_event(MessageDeleted, id=gone.id)
        assert (deleted.by, deleted.room) == ("alice", "lobby")
    kept = page(bob, limit=10).messages
    assert [(m.text, m.deleted) for m in kept] == [("", True), ("oops", False)]
    assert search(bob, "secret") == []
    alice.send(EditMessage(gone.id, "back again"))  # a deleted message stays deleted
    refused = alice.wait_event(Error, ref=f"edit:{gone.id}")
    assert refused.code == "no_such_message" and not refused.fatal
    alice.send(DeleteMessage(gone.id))
    assert alice.wait_event(Error, ref=f"delete:{gone.id}").code == "no_such_message"
    assert not bob.of(MessageEdited) and len(bob.of(MessageDeleted)) == 1


def test_someone_elses_unknown_or_too_old_messages_are_refused_and_nobody_hears_of_it(make_server: Any,
                                                                                     connect: Any) -> None:
    server = make_server(edit_window=0.2)
    alice, bob = connect(server.port), connect(server.port)
    alice.login("alice")
    bob.login("bob")
    mine = posted(alice, "alice's words", "c1")
    bob.send(EditMessage(mine.id, "bob's words in alice's mouth"))
    bob.send(DeleteMessage(mine.id))  # bob is no operator
    bob.send(EditMessage(mine.id + 1_000_000, "nothing there"))
    bob.send(EditMessage(mine.id + 1, "elsewhere", room="nowhere"))
    codes = [bob.wait_event(Error, ref=ref).code for ref in
             (f"edit:{mine.id}", f"delete:{mine.id}", f"edit:{mine.id + 1_000_000}", f"edit:{mine.id + 1}")]
    assert codes == ["not_author", "not_author", "no_such_message", "no_such_room"]
    assert all(not e.fatal for e in bob.of(Error))
    alice.qtbot.wait(300)  # past the edit window
    alice.send(EditMessage(mine.id, "too late now"))
    assert alice.wait_event(Error, ref=f"edit:{mine.id}").code == "too_late"
    alice.send(DeleteMessage(mine.id))  # deleting has no window
    alice.wait_event(MessageDeleted, id=mine.id)
    assert not alice.of(MessageEdited) and not bob.of(MessageEdited)
    assert not bob.closed and not alice.closed
    assert [(m.text, m.deleted) for m in page(bob, limit=5).messages] == [("", True)]


def test_an_unregistered_name_edits_only_what_it_sent_on_this_connection(server: Any, connect: Any) -> None:
    first = connect()
    first.login("guest")
    earlier = posted(first, "typo hre", "c1")
    first.send(EditMessage(earlier.id, "typo here"))
    first.wait_event(MessageEdited, id=earlier.id)
    first.close()
    again = connect()
    again.login("guest")  # the same name, maybe another person
    again.send(EditMessage(earlier.id, "someone else's words"))
    assert again.wait_event(Error, ref=f"edit:{earlier.id}").code == "not_author"
    assert [m.text for m in page(again, limit=5).messages] == ["typo here"]


def test_a_registered_user_edits_from_another_session_and_an_operator_deletes_in_their_room(server: Any,
                                                                                           connect: Any) -> None:
    alice = connect()
    alice.login("alice", password=PASSWORD, register=True)
    alice.send(JoinRoom("den"))
    alice.wait_event(RoomState, room="den")  # alice made it: its operator
    bob = connect()
    bob.login("bob")
    bob.send(JoinRoom("den"))
    bob.wait_event(RoomState, room="den")
    said = posted(alice, "first draft", "c1")
    alice.close()
    again = connect()
    again.login("alice", password=PASSWORD)  # the account's other session
    again.send(EditMessage(said.id, "second draft"))
    bob.wait_event(MessageEdited, id=said.id, text="second draft")

    rude = posted(bob, "something rude", "b1")
    rude = bob.wait_event(Message, cid="b1")
    bob.say("in den", cid="b2", room="den")
    in_den = bob.wait_event(Message, cid="b2")
    again.send(JoinRoom("den"))
    again.wait_event(RoomState, room="den")
    again.send(DeleteMessage(rude.id))  # not an operator of the lobby (no server admin)
    assert again.wait_event(Error, ref=f"delete:{rude.id}").code == "not_author"
    again.send(DeleteMessage(in_den.id, room="den"))
    deleted = bob.wait_event(MessageDeleted, id=in_den.id)
    assert (deleted.by, deleted.room) == ("alice", "den")


def test_edits_and_deletions_count_against_the_message_rate(make_server: Any, connect: Any) -> None:
    server = make_server(rate_messages=1, rate_burst=2)
    alice = connect(server.port)
    alice.login("alice")
    said = posted(alice, "one", "c1")
    for n in range(3):
        alice.send(EditMessage(said.id, f"one, take {n}"))
    slow = alice.wait_event(Error, code="slow_down")
    assert slow.ref == f"edit:{said.id}" and slow.retry_after
    assert not alice.closed


@pytest.mark.sqlite
def test_edits_and_deletions_outlive_a_restart_and_the_index_follows_them(make_server: Any, connect: Any,
                                                                          tmp_path: Any) -> None:
    first = make_server(data_dir=tmp_path)
    alice = connect(first.port)
    alice.login("alice")
    kept = posted(alice, "colour of the sky", "c1")
    gone = posted(alice, "remove this sentence", "c2")
    for n in range(3):
        posted(alice, f"filler {n}", f"f{n}")
    assert [m.id for m in search(alice, "colour")] == [kept.id]  # indexed before the change
    alice.send(EditMessage(kept.id, "color of the sea"))
    alice.send(DeleteMessage(gone.id))
    alice.wait_event(MessageDeleted, id=gone.id)
    first.shutdown("restart")
    alice.wait_closed()

    second = make_server(data_dir=tmp_path)
    bob = connect(second.port)
    bob.login("bob")
    texts = [(m.text, bool(m.edited), m.deleted) for m in page(bob, limit=10).messages][:2]
    assert texts == [("color of the sea", True, False), ("", False, True)]
    assert search(bob, "colour") == [] and search(bob, "remove") == [] and search(bob, "sky") == []
    assert [m.id for m in search(bob, "sea")] == [kept.id]
    caught_up = page(bob, after=kept.id - 1)
    assert {m.id for m in caught_up.changed} == set()  # both changed messages are newer than that id...
    caught_up = page(bob, after=gone.id)
    assert [(m.id, m.deleted) for m in caught_up.changed] == [(kept.id, False), (gone.id, True)]  # ...these not


def test_resending_someone_elses_stored_message_does_not_make_it_yours(server: Any, connect: Any,
                                                                        backend_kind: str) -> None:
    if backend_kind == "sqlite":
        pytest.skip("one machine's SQLite recognises a resend among the sender's newest 64 only (backend.py, point 8)")
    first = connect()
    first.login("guest")
    theirs = posted(first, "the first guest's words", "g1")
    for n in range(70):  # past the server's own cache of the name's newest 64: the store recognises the resend
        first.say(f"filler {n}", cid=f"f{n}")
    first.wait_event(Message, cid="f69")
    first.close()
    again = connect()
    again.login("guest")  # someone else takes the name, and sends the first one's cid and text again
    ack = posted(again, "the first guest's words", "g1")
    assert ack.id == theirs.id  # recognised as that message...
    again.send(EditMessage(theirs.id, "put in their mouth"))
    assert again.wait_event(Error, ref=f"edit:{theirs.id}").code == "not_author"  # ...but it is not theirs
    again.send(DeleteMessage(theirs.id))
    assert again.wait_event(Error, ref=f"delete:{theirs.id}").code == "not_author"
