"""Fuzzing the decoder and the server side of Connection: whatever bytes come, in whatever chunks,
only ProtocolError escapes, nothing is held beyond the frame limit, and the state stays consistent.

A few thousand cases in all (well under 20 s); tools/badinput.py runs 100,000+ of the same kind.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qtchat.protocol import (
    NEED_DATA,
    PEER_CLOSED,
    Bye,
    Connection,
    ErrorCode,
    FrameDecoder,
    Hello,
    Ping,
    Pong,
    ProtocolError,
    Role,
    State,
    Welcome,
)
from qtchat.protocol.events import CLIENT_EVENTS

CLIENT_EVENT_TYPES = frozenset(CLIENT_EVENTS.values())
CLIENT_ACCEPTED_BEFORE_HANDSHAKE = (Hello, Ping, Pong, Bye)

MAX_FRAME = 256
FUZZ = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ------------------------------------------------------------------ strategies

awkward_strings = st.sampled_from(
    ["", " ", "lobby", "alice", "\ud800", "\udfff", "\x00", "\u202e", "\u200b", "\n", "a" * 300, "#room",
     "\U0001f600", "ADMIN", "\uff21"]
)
awkward_numbers = st.sampled_from(
    [0, -1, 1, 2**31, 2**53, 2**63, 2**64, -(2**63), 10**400, 1.5, -0.0, 1e308, True, False]
)
json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20) | (
    awkward_strings | awkward_numbers
)
json_value = st.recursive(json_leaf, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c,
                                                                                           max_size=4), max_leaves=10)

VALID: list[dict[str, Any]] = [
    {"type": "hello", "version": 1, "user": "alice", "client": "fuzz"},
    {"type": "msg", "room": "lobby", "text": "hi", "cid": "c1"},
    {"type": "msg", "to": "bob", "text": "psst", "cid": "c2"},
    {"type": "users", "room": "lobby"},
    {"type": "history", "room": "lobby", "before": 12345, "limit": 50},
    {"type": "join", "room": "Dev"},
    {"type": "part", "room": "Dev"},
    {"type": "rooms"},
    {"type": "topic", "room": "Dev", "topic": "t"},
    {"type": "delivered", "upto": 12345},
    {"type": "ping", "token": "k"},
    {"type": "pong", "token": "k"},
    {"type": "bye", "reason": "r"},
]


@st.composite
def mutated_frame(draw: st.DrawFn) -> bytes:
    """A valid client frame with fields changed, deleted or added, sometimes with its bytes corrupted."""
    frame = dict(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from([*frame.keys(), "type", "text", "user", "room", "cid", "limit", "after"]))
        if draw(st.booleans()) and key in frame:
            del frame[key]
        else:
            frame[key] = draw(json_value)
    data = json.dumps(frame, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 4)) == 0 and data:
        pos = draw(st.integers(0, len(data) - 1))
        data = data[:pos] + draw(st.binary(min_size=1, max_size=3)) + data[pos + 1 :]
    return data


json_ish_frame = st.one_of(
    mutated_frame(),
    json_value.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=40),
    st.sampled_from([b"[" * 5000, b"{" * 5000, b'{"type":"msg","text":"' + b"x" * 400 + b'"}', b"\x00" * 10,
                     b'{"type":"hello","version":1e999,"user":"a"}', b"\xff\xfe", b"\r", b'{"type":NaN}']),
)
stream = st.lists(json_ish_frame, max_size=12).map(lambda frames: b"\n".join(frames) + b"\n")


@st.composite
def chunked(draw: st.DrawFn, data: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=8)))
    parts, start = [], 0
    for cut in [*cuts, len(data)]:
        parts.append(data[start:cut])
        start = cut
    return parts


# ------------------------------------------------------------------ checks


def drain_decoder(decoder: FrameDecoder, out: list[bytes]) -> bool:
    """Take every frame; True once the decoder failed (which must be a fatal frame_too_large)."""
    while True:
        try:
            frame = decoder.next_frame()
        except ProtocolError as exc:
            assert exc.code is ErrorCode.FRAME_TOO_LARGE and exc.fatal
            return True
        if frame is None:
            return False
        assert frame and b"\n" not in frame and len(frame) <= decoder.max_frame
        out.append(frame)


def drain_connection(conn: Connection, handshake: bool, events: list[Any] | None = None) -> str:
    """Take every event; check each against the rules; 'fatal', 'eof' or 'need'."""
    errors_in_a_row = 0
    while True:
        state = conn.state
        try:
            event = conn.next_event()
        except ProtocolError as exc:
            assert isinstance(exc.code, ErrorCode) and exc.message
            if state is State.HANDSHAKE:
                assert exc.fatal, "every error before the handshake is fatal"
            if exc.fatal:
                assert conn.state is State.CLOSED
                try:
                    conn.next_event()
                except ProtocolError as again:
                    assert again is exc  # a fatal error repeats, it never turns into events
                else:
                    raise AssertionError("events after a fatal error") from None
                return "fatal"
            errors_in_a_row += 1
            assert errors_in_a_row <= conn.max_consecutive_errors
            continue
        errors_in_a_row = 0
        assert conn.buffered <= conn.max_frame + 1
        if event is NEED_DATA:
            return "need"
        if event is PEER_CLOSED:
            return "eof"
        assert type(event) in CLIENT_EVENT_TYPES
        if events is not None:
            events.append(event)
        if handshake and conn.state is State.HANDSHAKE:
            assert isinstance(event, CLIENT_ACCEPTED_BEFORE_HANDSHAKE)
        if conn.state is State.OPEN:
            assert not isinstance(event, Hello)


def open_server_connection() -> Connection:
    conn = Connection(Role.SERVER, max_frame=MAX_FRAME)
    conn.receive_data(b'{"type":"hello","version":1,"user":"alice"}\n')
    assert isinstance(conn.next_event(), Hello)
    conn.send(Welcome(user="alice"))
    assert conn.state is State.OPEN
    return conn


# ------------------------------------------------------------------ tests


@FUZZ
@given(st.data(), st.binary(max_size=2000) | stream)
def test_decoder_any_bytes_any_chunks(data: st.DataObject, raw: bytes) -> None:
    whole, split = FrameDecoder(MAX_FRAME), FrameDecoder(MAX_FRAME)
    got_whole: list[bytes] = []
    got_split: list[bytes] = []
    whole.feed(raw)
    failed_whole = drain_decoder(whole, got_whole)
    failed_split = False
    for part in data.draw(chunked(raw)):
        split.feed(part)
        assert split.buffered <= MAX_FRAME + 1
        failed_split = drain_decoder(split, got_split) or failed_split
        if failed_split:
            break
    assert failed_split == failed_whole
    assert got_split == got_whole  # the same frames however the bytes were cut


@FUZZ
@given(st.data(), stream | st.binary(max_size=600), st.booleans(), st.booleans())
def test_server_connection_any_frames_any_chunks(data: st.DataObject, raw: bytes, handshake_done: bool,
                                                 eof: bool) -> None:
    conn = open_server_connection() if handshake_done else Connection(Role.SERVER, max_frame=MAX_FRAME)
    outcome = "need"
    for part in data.draw(chunked(raw)):
        conn.receive_data(part)
        outcome = drain_connection(conn, handshake=not handshake_done)
        if outcome == "fatal":
            break
    if eof and outcome != "fatal":
        conn.receive_data(b"")
        assert drain_connection(conn, handshake=not handshake_done) == "eof"


@FUZZ
@given(st.lists(mutated_frame(), min_size=1, max_size=30))
def test_open_session_survives_mutated_frames_and_stays_in_step(frames: list[bytes]) -> None:
    """After the handshake a bad frame costs only itself: a good frame after it comes through."""
    conn = open_server_connection()
    conn.max_consecutive_errors = 1000
    conn.receive_data(b"\n".join(f.replace(b"\n", b" ") for f in frames) + b'\n{"type":"ping","token":"end"}\n')
    events: list[Any] = []
    outcome = drain_connection(conn, handshake=False, events=events)
    if outcome != "fatal":  # only a frame over the limit ends the session
        assert outcome == "need" and conn.state is State.OPEN
        assert events[-1] == Ping("end")
    else:
        assert any(len(f.replace(b"\n", b" ")) > MAX_FRAME for f in frames)
