"""Typing indicators on the server: one frame per room per pass, never stored, not in big rooms, refused
when flooded (a clear code, counted by the rate limiter, nothing else disturbed), private ones to one person."""

from __future__ import annotations

import json
import socket

import pytest

from qtchat.protocol import (
    TYPING_BURST,
    Error,
    ErrorCode,
    History,
    HistoryRequest,
    Joined,
    JoinRoom,
    Message,
    Ping,
    Pong,
    RoomState,
    SendMessage,
    Typing,
    TypingChanged,
    encode_event,
)
from tests.helpers import RawClient

LIMITS = {"rate_messages": 10, "rate_burst": 20, "rate_bytes": 64 * 1024}  # the rate limiter on (tests turn it off)


def logged_in(connect, *names: str) -> list[RawClient]:
    clients = []
    for name in names:
        client = connect()
        client.login(name)
        clients.append(client)
    for client in clients:  # everyone's arrival seen, so that later waits see only what follows
        client.wait_for(lambda c=client: set(names) <= seen_names(c))
    return clients


def seen_names(client: RawClient) -> set[str]:
    from qtchat.protocol import UserList

    names = {n for e in client.of(UserList) for n in e.users}
    return names | {e.user for e in client.of(Joined)}


def typing_frames(client: RawClient, room: str | None = "lobby") -> list[TypingChanged]:
    return [e for e in client.of(TypingChanged) if e.room == room]


def settle(sender: RawClient, *watchers: RawClient, text: str = "settled") -> None:
    """Everything the server did before this point has reached the watchers: a message sent after it has."""
    sender.say(text)
    for watcher in watchers:
        watcher.wait_event(Message, text=text)


@pytest.mark.backends
def test_typing_frames_of_one_pass_make_one_frame_per_room(make_server, qtbot):
    server = make_server(notice_delay=0.5)  # a pass's notices go out together: here, everyone's typing
    ana, bo, cy, dee = (RawClient(server.port, qtbot) for _ in range(4))
    for client, name in ((ana, "ana"), (bo, "bo"), (cy, "cy"), (dee, "dee")):
        client.login(name)
    dee.wait_for(lambda: {"ana", "bo", "cy"} <= seen_names(dee))
    # in one pass: ana starts, stops and starts again; bo starts; cy starts and stops
    ana.send_raw(encode_event(Typing()) + encode_event(Typing(on=False)) + encode_event(Typing()))
    bo.send(Typing())
    cy.send_raw(encode_event(Typing()) + encode_event(Typing(on=False)))
    frame = dee.wait_event(TypingChanged, room="lobby")
    assert set(frame.on) == {"ana", "bo"} and frame.off == ("cy",)  # each one's last state, once
    settle(ana, dee, ana, bo)
    assert typing_frames(dee) == [frame]  # one frame for the pass, not six
    assert len(typing_frames(bo)) == 1  # every member gets the one frame (typists ignore their own name)
    for client in (ana, bo, cy, dee):
        client.close()


@pytest.mark.backends
def test_typing_again_after_ones_own_message_in_the_same_pass_comes_after_it(connect, qtbot):
    ana, bo, cy = logged_in(connect, "ana", "bo", "cy")
    # in one pass: cy types, ana types, posts, and types the next one at once (the message is ana's stop)
    cy.send(Typing())
    ana.send_raw(encode_event(Typing()) + ana.conn.send(SendMessage("one", cid="a1")) + encode_event(Typing()))
    bo.wait_event(Message, text="one")
    settle(ana, bo)
    seen = [e for e in bo.events if isinstance(e, Message | TypingChanged)]
    first = next(i for i, e in enumerate(seen) if isinstance(e, Message) and e.text == "one")
    after = [e for e in seen[first + 1:] if isinstance(e, TypingChanged)]
    assert len(after) == 1 and "ana" in after[0].on  # after the message: ana is still shown as typing
    before = [e for e in seen[:first] if isinstance(e, TypingChanged)]
    assert len(before) <= 1 and all("ana" in e.on for e in before)  # before it, the pass's one frame


@pytest.mark.backends
def test_typing_is_never_stored_and_each_pass_brings_its_own_frame(connect, qtbot):
    ana, bo = logged_in(connect, "ana", "bo")
    ana.send(Typing())
    first = bo.wait_event(TypingChanged, on=("ana",))
    ana.send(Typing(on=False))
    second = bo.wait_event(TypingChanged, off=("ana",))
    assert first.room == second.room == "lobby"
    settle(ana, bo)
    bo.send(HistoryRequest("lobby"))
    page = bo.wait_event(History)
    assert [m.text for m in page.messages] == ["settled"]  # only the message: typing is not kept


@pytest.mark.backends
def test_a_room_above_the_limit_gets_no_typing_and_a_small_one_does(make_server, qtbot):
    server = make_server(typing_max_members=2)
    ana, bo, cy = (RawClient(server.port, qtbot) for _ in range(3))
    for client, name in ((ana, "ana"), (bo, "bo"), (cy, "cy")):
        client.login(name)
    bo.wait_for(lambda: {"ana", "cy"} <= seen_names(bo))
    for client in (ana, bo):
        client.send(JoinRoom("pair"))
        client.wait_event(RoomState, room="pair")
    ana.send(Typing())  # the lobby has three members: more than 2
    ana.send(Typing(room="pair"))  # two: told
    assert bo.wait_event(TypingChanged, room="pair").on == ("ana",)
    settle(ana, bo, cy)
    assert typing_frames(bo) == [] and typing_frames(cy) == []
    assert not ana.of(Error)  # not an error: the server just does not relay it
    for client in (ana, bo, cy):
        client.close()


@pytest.mark.backends
def test_a_typing_flood_gets_its_code_and_disturbs_nothing_else(make_server, qtbot):
    server = make_server(**LIMITS)
    ana, bo, cy = (RawClient(server.port, qtbot) for _ in range(3))
    for client, name in ((ana, "ana"), (bo, "bo"), (cy, "cy")):
        client.login(name)
    cy.wait_for(lambda: {"ana", "bo"} <= seen_names(cy))
    flood = TYPING_BURST + 4
    ana.send_raw(b"".join(encode_event(Typing(on=i % 2 == 0)) for i in range(flood)))
    ana.wait_for(lambda: len(ana.of(Error)) == 4)
    errors = ana.of(Error)
    assert {e.code for e in errors} == {ErrorCode.TYPING_TOO_FAST.value}
    assert all(not e.fatal and e.ref == "typing" and e.retry_after and e.retry_after > 0 for e in errors)
    assert "typing" in errors[0].message
    # ana's messages are not held back by it, bo's typing still goes through, ana is still connected
    ana.say("still here", cid="c1")
    assert cy.wait_event(Message, text="still here").sender == "ana"
    assert ana.wait_event(Message, cid="c1").text == "still here"
    bo.send(Typing())
    assert "bo" in cy.wait_event(TypingChanged, on=("bo",)).on
    settle(bo, cy)
    assert not bo.of(Error) and not cy.of(Error) and not ana.closed
    assert len([f for f in typing_frames(cy) if "ana" in f.on + f.off]) >= 1  # what was within the limit told
    for client in (ana, bo, cy):
        client.close()


@pytest.mark.backends
def test_refused_typing_counts_as_warnings_until_a_flood_disconnects(make_server, qtbot):
    server = make_server(**LIMITS, flood_after=3)
    ana, bo = (RawClient(server.port, qtbot) for _ in range(2))
    ana.login("ana")
    bo.login("bo")
    bo.wait_for(lambda: "ana" in seen_names(bo))
    ana.send_raw(b"".join(encode_event(Typing()) for _ in range(TYPING_BURST + 10)))
    ana.wait_closed()
    codes = [e.code for e in ana.of(Error)]
    assert codes[:3] == [ErrorCode.TYPING_TOO_FAST.value] * 3 and codes[-1] == ErrorCode.FLOOD.value
    assert not bo.closed
    bo.say("fine", cid="b1")
    bo.wait_event(Message, cid="b1")
    bo.close()


@pytest.mark.backends
def test_private_typing_goes_to_its_recipient_only(connect, qtbot):
    ana, bo, cy = logged_in(connect, "ana", "bo", "cy")
    ana.send(Typing(to="BO"))
    got = bo.wait_event(TypingChanged, on=("ana",))
    assert got.room is None  # private: the conversation with ana
    ana.send(Typing(to="bo", on=False))
    assert bo.wait_event(TypingChanged, off=("ana",)).room is None
    ana.send(Typing(to="nobody-here"))  # offline (or unknown): nowhere, and no error
    ana.send(Typing(room="not-joined"))  # a room ana is not in: nothing either
    settle(ana, bo, cy)
    assert cy.of(TypingChanged) == [] and ana.of(TypingChanged) == [] and not ana.of(Error)


@pytest.mark.backends
def test_a_muted_user_types_to_nobody(connect, server, qtbot):
    ana, bo = logged_in(connect, "ana", "bo")
    server.muted.add("ana")
    ana.send(Typing())
    ana.send(Typing(to="bo"))
    ana.send(Ping("after"))
    ana.wait_event(Pong, token="after")
    server.muted.discard("ana")  # so that ana's message can say that all before it was done
    settle(ana, bo)
    assert bo.of(TypingChanged) == []


def test_a_version_1_client_that_knows_no_typing_keeps_working(server, connect, qtbot):
    """A raw socket speaking JSON lines, as a client written before typing existed: it never sends typing,
    gets the frames it does not know (and may ignore), and chats as before."""
    ana = connect()
    ana.login("ana")
    old = socket.create_connection(("127.0.0.1", server.port))
    old.setblocking(False)
    old.sendall(b'{"type":"hello","version":1,"user":"oldtimer"}\n')
    received = bytearray()

    def frames() -> list[dict[str, object]]:
        try:
            while chunk := old.recv(65536):
                received.extend(chunk)
        except BlockingIOError:
            pass
        return [json.loads(line) for line in bytes(received).splitlines() if line.strip()]

    qtbot.waitUntil(lambda: any(f["type"] == "welcome" for f in frames()), timeout=5000)
    ana.wait_event(Joined, user="oldtimer")
    ana.send(Typing())
    qtbot.waitUntil(lambda: any(f["type"] == "typing" for f in frames()), timeout=5000)
    typing = next(f for f in frames() if f["type"] == "typing")
    assert typing == {"type": "typing", "room": "lobby", "on": ["ana"], "off": []}  # a frame it may ignore
    old.sendall(b'{"type":"msg","text":"hello from 1999","cid":"o1"}\n')
    assert ana.wait_event(Message, text="hello from 1999").sender == "oldtimer"
    ana.say("hi oldtimer")
    qtbot.waitUntil(lambda: any(f.get("text") == "hi oldtimer" for f in frames()), timeout=5000)
    assert not any(f["type"] == "error" for f in frames())
    old.close()


def test_typing_reaches_members_and_recipients_on_other_nodes(cluster_nodes, clients, qtbot):
    a, b = cluster_nodes(2)
    ann = clients(a, "ann", "design")
    bob = clients(b, "bob", "design")
    ann.send(Typing(room="design"))  # in the room's batch: published with it
    assert bob.wait_event(TypingChanged, room="design", timeout=10).on == ("ann",)
    qtbot.waitUntil(lambda: a.cluster.remote_user("bob") is not None, timeout=10_000)
    ann.send(Typing(to="bob"))  # to the node bob is on, and to bob only
    assert bob.wait_event(TypingChanged, room=None, timeout=10).on == ("ann",)
    settle(ann, ann, bob)
    assert [e for e in ann.of(TypingChanged) if e.room is None] == []
