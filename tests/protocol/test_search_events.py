"""The read-marker, search and around-history events: round trips, wire shapes and validation."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qtchat.protocol import (
    NEED_DATA,
    PEER_CLOSED,
    Connection,
    ErrorCode,
    Hello,
    History,
    HistoryRequest,
    MarkRead,
    Message,
    ProtocolError,
    Role,
    RoomInfo,
    RoomJoined,
    RoomList,
    SearchRequest,
    SearchResults,
    SendableEvent,
    Welcome,
    encode_frame,
)


def events(conn: Connection) -> list[Any]:
    out = []
    while (ev := conn.next_event()) is not NEED_DATA and ev is not PEER_CLOSED:
        out.append(ev)
    return out


def open_pair() -> tuple[Connection, Connection]:
    client, server = Connection(Role.CLIENT), Connection(Role.SERVER)
    server.receive_data(client.send(Hello("alice")))
    events(server)
    client.receive_data(server.send(Welcome(user="alice")))
    events(client)
    return client, server


def to_server(obj: dict[str, Any]) -> Any:
    """Decode one client frame on an open server connection: the event, or raises ProtocolError."""
    _, server = open_pair()
    server.receive_data(encode_frame(obj))
    got = events(server)
    assert len(got) == 1
    return got[0]


def wire(event: Any) -> dict[str, Any]:
    return json.loads(encode_frame(event.to_wire()))


def test_new_client_events_round_trip_with_the_documented_shapes():
    client, server = open_pair()
    sent: list[SendableEvent] = [
        MarkRead("lobby", 1795677099673163),
        SearchRequest("release friday", "Dev Team", 1795677099673163, 50),
        SearchRequest("just words"),
        HistoryRequest("lobby", around=1795677099673163, limit=20),
    ]
    server.receive_data(b"".join(client.send(e) for e in sent))
    assert events(server) == sent
    assert wire(sent[0]) == {"type": "read", "room": "lobby", "id": 1795677099673163}
    assert wire(sent[1]) == {"type": "search", "query": "release friday", "room": "Dev Team",
                             "before": 1795677099673163, "limit": 50}
    assert wire(sent[2]) == {"type": "search", "query": "just words", "limit": 50}
    assert wire(sent[3]) == {"type": "history", "room": "lobby", "limit": 20, "around": 1795677099673163}


def test_new_server_events_round_trip_with_the_documented_shapes():
    client, server = open_pair()
    hit = Message(id=7, ts=8, sender="alice", text="release on friday", room="Dev Team")
    sent: list[SendableEvent] = [
        SearchResults("release friday", (hit, Message(id=5, ts=6, sender="bob", text="Release?")), more=True),
        SearchResults("x", (), room="Dev Team", before=99),
        History((Message(id=1, ts=2, sender="a", text="b"),), around=1, more=True, newer=True),
        History((), around=3),
        RoomJoined(RoomInfo("Dev Team", "t", 3, read=5, unread=2)),
        RoomList((RoomInfo("lobby", "", 4),)),
    ]
    client.receive_data(b"".join(server.send(e) for e in sent))
    assert events(client) == sent
    assert wire(sent[0]) == {
        "type": "results", "query": "release friday",
        "results": [{"id": 7, "ts": 8, "room": "Dev Team", "from": "alice", "text": "release on friday"},
                    {"id": 5, "ts": 6, "room": "lobby", "from": "bob", "text": "Release?"}],
        "more": True,
    }
    assert wire(sent[1])["room"] == "Dev Team" and wire(sent[1])["before"] == 99
    assert wire(sent[2])["around"] == 1 and wire(sent[2])["newer"] is True
    assert "newer" not in wire(sent[3])  # omitted when false
    assert wire(sent[4]) == {"type": "room", "name": "Dev Team", "topic": "t", "members": 3, "read": 5, "unread": 2}
    assert wire(sent[5])["rooms"] == [{"name": "lobby", "topic": "", "members": 4}]  # no read/unread


def test_welcome_carries_read_and_unread_and_omits_them_when_unknown():
    welcome = Welcome(user="a", rooms=(RoomInfo("lobby", "", read=12, unread=1000),))
    assert wire(welcome)["rooms"] == [{"name": "lobby", "topic": "", "read": 12, "unread": 1000}]
    assert Welcome.from_wire(wire(welcome)) == welcome
    assert wire(Welcome(user="a"))["rooms"] == [{"name": "lobby", "topic": ""}]


@pytest.mark.parametrize(("frame", "words"), [
    ({"type": "search", "query": ""}, "empty"),
    ({"type": "search", "query": " \t\n "}, "empty"),
    ({"type": "search", "query": "x" * 201}, "longer than 200"),
    ({"type": "search"}, "missing"),
    ({"type": "search", "query": 5}, "string"),
    ({"type": "search", "query": "a", "before": -1}, "ids"),
    ({"type": "search", "query": "a", "before": "1"}, "integer"),
    ({"type": "search", "query": "a", "limit": True}, "integer"),
    ({"type": "search", "query": "a", "room": 3}, "string"),
    ({"type": "read", "room": "lobby"}, "missing"),
    ({"type": "read", "room": "lobby", "id": True}, "integer"),
    ({"type": "read", "room": "lobby", "id": 1 << 63}, "ids"),
    ({"type": "read", "room": 1, "id": 1}, "string"),
    ({"type": "history", "around": 5, "before": 6}, "at most one"),
    ({"type": "history", "around": 5, "after": 6}, "at most one"),
    ({"type": "history", "around": -5}, "ids"),
])
def test_bad_new_frames_are_non_fatal_bad_frame_errors_with_a_clear_sentence(frame, words):
    _, server = open_pair()
    server.receive_data(encode_frame(frame) + encode_frame({"type": "ping", "token": "after"}))
    with pytest.raises(ProtocolError) as info:
        server.next_event()
    assert info.value.code is ErrorCode.BAD_FRAME and not info.value.fatal
    assert words in info.value.message and info.value.message.endswith(".")
    assert len(events(server)) == 1  # the stream goes on


def test_search_query_is_trimmed_and_limit_clamped():
    got = to_server({"type": "search", "query": "  " + "q" * 200 + "  ", "limit": 1000})
    assert got == SearchRequest("q" * 200, limit=100)
    assert to_server({"type": "search", "query": "a", "limit": 0}).limit == 1
    assert to_server({"type": "search", "query": "a", "room": None, "before": None}) == SearchRequest("a")


def test_read_defaults_to_the_lobby_like_the_other_room_frames():
    assert to_server({"type": "read", "id": 3}) == MarkRead("lobby", 3)


@given(st.text(max_size=300), st.none() | st.integers(-5, 1 << 64), st.none() | st.integers(-5, 500))
@settings(max_examples=300, deadline=None)
def test_any_search_frame_is_an_event_or_a_protocol_error(query, before, limit):
    frame: dict[str, Any] = {"type": "search", "query": query, "before": before, "limit": limit}
    try:
        got = to_server(frame)
    except ProtocolError as exc:
        assert not exc.fatal
        return
    assert isinstance(got, SearchRequest)
    assert got.query == query.strip() and 1 <= len(got.query) <= 200
    assert 1 <= got.limit <= 100
    assert got.before is None or 0 <= got.before < 1 << 63
    assert SearchRequest.from_wire(got.to_wire()) == got


@given(st.integers(0, (1 << 63) - 1), st.text(min_size=1, max_size=100))
def test_read_markers_round_trip(mid, room):
    event = MarkRead(room, mid)
    with contextlib.suppress(ProtocolError):  # a room with a lone surrogate is a protocol error
        assert MarkRead.from_wire(json.loads(encode_frame(event.to_wire()))) == event


@given(st.lists(st.tuples(st.integers(0, 1 << 53), st.text(max_size=50), st.text(min_size=1, max_size=20)),
                max_size=20), st.booleans())
def test_search_results_round_trip(rows, more):
    results = tuple(Message(id=i, ts=i, sender="s", text=t, room=r) for i, t, r in rows)
    event = SearchResults("q", results, more=more)
    with contextlib.suppress(ProtocolError):
        assert SearchResults.from_wire(json.loads(encode_frame(event.to_wire()))) == event
