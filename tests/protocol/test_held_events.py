"""Private messages kept for offline users: ``held`` on ``msg``, the ``delivered`` confirmation, round trips
and validation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qtchat.protocol import Delivered, ErrorCode, Message, ProtocolError, SendableEvent, encode_frame

from .test_search_events import events, open_pair, to_server


def wire(event: Any) -> dict[str, Any]:
    return json.loads(encode_frame(event.to_wire()))


def test_held_messages_and_the_confirmation_round_trip_with_the_documented_shapes():
    client, server = open_pair()
    server.receive_data(client.send(Delivered(1795677099680000)))
    assert events(server) == [Delivered(1795677099680000)]
    assert wire(Delivered(5)) == {"type": "delivered", "upto": 5}
    ack = Message(id=1795677099680000, ts=1795677099680, sender="alice", text="see you", cid="7f3c-9", to="bob",
                  held=True)
    delivered = Message(id=1795677099680000, ts=1795677099680, sender="alice", text="see you", to="bob", held=True)
    live = Message(id=1, ts=2, sender="alice", text="now", to="bob")
    sent: list[SendableEvent] = [ack, delivered, live]
    client.receive_data(b"".join(server.send(e) for e in sent))
    assert events(client) == sent
    assert wire(ack) == {"type": "msg", "id": 1795677099680000, "ts": 1795677099680, "to": "bob", "from": "alice",
                         "text": "see you", "cid": "7f3c-9", "held": True}
    assert "held" not in wire(live)  # omitted when false
    assert "held" not in wire(Message(id=1, ts=2, sender="a", text="room"))


@pytest.mark.parametrize(("frame", "words"), [
    ({"type": "delivered"}, "missing"),
    ({"type": "delivered", "upto": None}, "missing"),
    ({"type": "delivered", "upto": -1}, "ids"),
    ({"type": "delivered", "upto": 1 << 63}, "ids"),
    ({"type": "delivered", "upto": "5"}, "integer"),
    ({"type": "delivered", "upto": True}, "integer"),
    ({"type": "delivered", "upto": 1.5}, "integer"),
])
def test_bad_confirmations_are_non_fatal_bad_frame_errors_with_a_clear_sentence(frame, words):
    _, server = open_pair()
    server.receive_data(encode_frame(frame) + encode_frame({"type": "ping", "token": "after"}))
    with pytest.raises(ProtocolError) as info:
        server.next_event()
    assert info.value.code is ErrorCode.BAD_FRAME and not info.value.fatal
    assert words in info.value.message and info.value.message.endswith(".")
    assert len(events(server)) == 1  # the stream goes on


@pytest.mark.parametrize(("frame", "words"), [
    ({"type": "msg", "id": 1, "ts": 2, "room": "lobby", "from": "a", "text": "t", "held": True}, "only for private"),
    ({"type": "msg", "id": 1, "ts": 2, "to": "b", "from": "a", "text": "t", "held": "yes"}, "true or false"),
    ({"type": "msg", "id": 1, "ts": 2, "to": "b", "from": "a", "text": "t", "held": 1}, "true or false"),
])
def test_a_server_msg_with_a_bad_held_field_is_refused_clearly(frame, words):
    client, _ = open_pair()
    client.receive_data(encode_frame(frame))
    with pytest.raises(ProtocolError) as info:
        client.next_event()
    assert info.value.code is ErrorCode.BAD_FRAME and words in info.value.message


def test_a_client_cannot_send_held_and_the_server_ignores_it_on_a_client_msg():
    # "held" is the server's to set: on a client's msg it is an unknown field, ignored like any other
    got = to_server({"type": "msg", "to": "bob", "text": "hi", "cid": "1", "held": True})
    assert got.to == "bob" and not hasattr(got, "held")


@given(st.integers(0, (1 << 63) - 1))
def test_any_valid_confirmation_round_trips(upto):
    assert Delivered.from_wire(wire(Delivered(upto))) == Delivered(upto)


@given(st.one_of(st.none(), st.booleans(), st.integers(-(1 << 70), 1 << 70), st.floats(allow_nan=False, allow_infinity=False),
                 st.text(max_size=10), st.lists(st.integers(), max_size=2)))
@settings(max_examples=300, deadline=None)
def test_any_confirmation_frame_is_an_event_or_a_non_fatal_error(upto):
    try:
        got = to_server({"type": "delivered", "upto": upto})
    except ProtocolError as exc:
        assert not exc.fatal and exc.code is ErrorCode.BAD_FRAME
        return
    assert isinstance(got, Delivered) and got.upto == upto and 0 <= upto < 1 << 63


@given(st.integers(0, 1 << 53), st.integers(0, 1 << 45), st.text(min_size=1, max_size=40),
       st.text(min_size=1, max_size=32), st.none() | st.text(max_size=64), st.booleans())
def test_private_messages_round_trip_held_or_not(mid, ts, text, to, cid, held):
    event = Message(id=mid, ts=ts, sender="alice", text=text, to=to, cid=cid, held=held)
    try:
        back = Message.from_wire(wire(event))
    except ProtocolError as exc:  # a lone surrogate in a string
        assert exc.code is ErrorCode.BAD_UTF8
        return
    assert back == event
