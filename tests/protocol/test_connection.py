"""The sans-I/O Connection on both sides, wired together with no network."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qtchat.protocol import (
    NEED_DATA,
    PEER_CLOSED,
    Bye,
    Connection,
    Error,
    ErrorCode,
    Hello,
    Joined,
    Left,
    Message,
    Ping,
    Pong,
    ProtocolError,
    Role,
    RoomInfo,
    SendableEvent,
    SendMessage,
    State,
    UnknownEvent,
    UserList,
    UsersRequest,
    Welcome,
)


def events(conn: Connection) -> list[Any]:
    out = []
    while (ev := conn.next_event()) is not NEED_DATA and ev is not PEER_CLOSED:
        out.append(ev)
    return out


def pair() -> tuple[Connection, Connection]:
    return Connection(Role.CLIENT), Connection(Role.SERVER)


CLIENT_SENT: list[SendableEvent] = [
    SendMessage("hi ~ there\n\U0001f600", "lobby", "c-1"),
    SendMessage("no cid"),
    UsersRequest("lobby"),
    Ping("p"),
    Pong("q"),
    Bye("gone"),
]
SERVER_SENT: list[SendableEvent] = [
    Message(id=1, ts=2, sender="al~ice", text="a\nb", room="lobby", cid="x"),
    Message(id=3, ts=4, sender="bob", text="no cid"),
    Joined("bob", 5),
    Left("bob", 6, reason="quit"),
    UserList(("a", "b"), more=True),
    Error("bad_text", "The message is empty.", False, "c9"),
    Ping("t"),
    Pong("u"),
    Bye("shutdown"),
]


def test_every_event_round_trips_after_a_handshake():
    client, server = pair()
    server.receive_data(client.send(Hello("alice", client="test 1")))
    hello = events(server)
    assert hello == [Hello("alice", 1, 1, "test 1")]
    welcome = Welcome(user="alice", server="s", name="n", rooms=(RoomInfo("lobby", "topic"),), motd="hi")
    client.receive_data(server.send(welcome))
    assert events(client) == [welcome]
    assert client.state is State.OPEN and server.state is State.OPEN
    server.receive_data(b"".join(client.send(e) for e in CLIENT_SENT))
    assert events(server) == CLIENT_SENT
    client.receive_data(b"".join(server.send(e) for e in SERVER_SENT))
    assert events(client) == SERVER_SENT


def test_server_requires_hello_first_and_it_is_fatal():
    _, server = pair()
    server.receive_data(b'{"type":"msg","text":"hi"}\n{"type":"hello","version":1,"user":"a"}\n')
    with pytest.raises(ProtocolError) as info:
        server.next_event()
    assert info.value.code is ErrorCode.HANDSHAKE_REQUIRED and info.value.fatal
    with pytest.raises(ProtocolError):
        server.next_event()  # stays failed
    assert server.state is State.CLOSED


def test_ping_and_bye_are_fine_before_hello():
    _, server = pair()
    server.receive_data(b'{"type":"ping","token":"x"}\n{"type":"bye"}\n')
    assert events(server) == [Ping("x"), Bye("")]


@pytest.mark.parametrize(
    ("version", "min_version", "ok"), [(1, None, True), (5, 1, True), (2, 2, False), (0, None, False)]
)
def test_version_negotiation(version, min_version, ok):
    _, server = pair()
    server.receive_data(Connection(Role.CLIENT).send(Hello("a", version, min_version)))
    if ok:
        assert events(server)[0].user == "a"
        assert server.version == 1
    else:
        with pytest.raises(ProtocolError) as info:
            server.next_event()
        assert info.value.code is ErrorCode.BAD_VERSION and info.value.fatal


def test_second_hello_is_a_non_fatal_error():
    client, server = pair()
    server.receive_data(client.send(Hello("a")))
    events(server)
    server.send(Welcome(user="a"))
    server.receive_data(b'{"type":"hello","version":1,"user":"b"}\n{"type":"ping","token":""}\n')
    with pytest.raises(ProtocolError) as info:
        server.next_event()
    assert info.value.code is ErrorCode.ALREADY_LOGGED_IN and not info.value.fatal
    assert events(server) == [Ping("")]


def test_too_many_bad_frames_in_a_row_turn_fatal():
    client, server = pair()
    server.receive_data(client.send(Hello("a")))
    events(server)
    server.send(Welcome(user="a"))
    server.receive_data(b"junk\n" * 25)
    fatal = None
    for _ in range(25):
        try:
            server.next_event()
        except ProtocolError as exc:
            if exc.fatal:
                fatal = exc
                break
    assert fatal is not None and fatal.code is ErrorCode.TOO_MANY_ERRORS


def test_client_ignores_unknown_server_frames():
    client, server = pair()
    client.send(Hello("a"))
    client.receive_data(server.send(Welcome(user="a")) + b'{"type":"presence","user":"b","away":true}\n')
    evs = events(client)
    assert isinstance(evs[1], UnknownEvent) and evs[1].type == "presence"


def test_peer_closed_after_the_last_frame():
    _, server = pair()
    server.receive_data(b'{"type":"ping","token":"x"}\n')
    server.receive_data(b"")
    assert server.next_event() == Ping("x")
    assert server.next_event() is PEER_CLOSED


def test_each_side_sends_only_its_own_events():
    client, server = pair()
    with pytest.raises(TypeError):
        client.send(Welcome(user="a"))
    with pytest.raises(TypeError):
        server.send(Hello("a"))


@pytest.mark.parametrize(
    "frame",
    [
        b'{"type":"hello","version":"1","user":"a"}',
        b'{"type":"hello","version":true,"user":"a"}',
        b'{"type":"hello","version":1}',
        b'{"type":"hello","version":1,"user":["a"]}',
        b'{"type":1}',
    ],
)
def test_malformed_hello_is_fatal_bad_frame(frame):
    _, server = pair()
    server.receive_data(frame + b"\n")
    with pytest.raises(ProtocolError) as info:
        server.next_event()
    assert info.value.fatal
    assert info.value.code in {ErrorCode.BAD_FRAME, ErrorCode.UNKNOWN_TYPE}


@given(st.binary(max_size=2000))
@settings(max_examples=1000, deadline=None)
def test_server_fed_arbitrary_bytes_raises_only_protocol_error(data):
    for prefix in (b"", Connection(Role.CLIENT).send(Hello("fuzz"))):
        _, server = pair()
        server.receive_data(prefix + data)
        for _ in range(10_000):
            try:
                ev = server.next_event()
            except ProtocolError as exc:
                if exc.fatal:
                    break
                continue
            if ev is NEED_DATA:
                break
            if isinstance(ev, Hello) and server.state is State.HANDSHAKE:
                server.send(Welcome(user="fuzz"))


@given(st.dictionaries(st.sampled_from(["type", "text", "room", "cid", "user", "version", "token"]),
                       st.none() | st.booleans() | st.integers() | st.text() | st.lists(st.integers())))
@settings(max_examples=1000, deadline=None)
def test_server_fed_arbitrary_objects_raises_only_protocol_error(obj):
    from qtchat.protocol import encode_frame

    client, server = pair()
    server.receive_data(client.send(Hello("fuzz")))
    events(server)
    server.send(Welcome(user="fuzz"))
    server.receive_data(encode_frame(obj))
    with contextlib.suppress(ProtocolError):
        events(server)


def test_protocol_package_never_imports_qt():
    code = "import sys, qtchat.protocol; print(any(m.startswith(('PySide6', 'shiboken')) for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@given(st.lists(st.text(min_size=1, max_size=32), max_size=40), st.integers(1, 10))
def test_fast_user_list_frames_equal_the_event_encoding(names, per_frame):
    from qtchat.protocol import encode_frame, encode_name, encode_user_lists

    frames = encode_user_lists("lobby", [encode_name(n) for n in names], per_frame)
    chunks = [names[i : i + per_frame] for i in range(0, len(names), per_frame)] or [[]]
    expected = [
        encode_frame(UserList(tuple(c), "lobby", more=i < len(chunks) - 1).to_wire()) for i, c in enumerate(chunks)
    ]
    assert frames == expected


def test_names_per_frame_keeps_worst_case_names_under_the_limit():
    from qtchat.protocol import encode_name, encode_user_lists, names_per_frame

    worst = ['"' * 16 + "\U0001f600" * 16] * 1000
    for max_frame in (1024, 4096, 65536):
        frames = encode_user_lists("lobby", [encode_name(n) for n in worst], names_per_frame(max_frame))
        assert all(len(f) <= max_frame for f in frames)


@pytest.mark.parametrize(
    ("text", "ok"),
    [("tab\tand\nnewline", True), ("zero\u200dwidth joiner \U0001f469\u200d\U0001f4bb", True),
     ("no\u00a0break space", True), ("rtl \u202eoverride", True),
     ("del\x7f", False), ("c1\x85", False), ("line\u2028sep", False), ("para\u2029sep", False), ("esc\x1b[31m", False)],
)
def test_message_text_rules(text, ok):
    from qtchat.protocol import check_text

    if ok:
        check_text(text)
    else:
        with pytest.raises(ProtocolError) as info:
            check_text(text)
        assert info.value.code is ErrorCode.BAD_TEXT


def test_errors_about_a_message_carry_its_cid():
    client, server = pair()
    server.receive_data(client.send(Hello("a")))
    events(server)
    server.send(Welcome(user="a"))
    for frame in (b'{"type":"msg","text":"hi","room":5,"cid":"c1"}', b'{"type":"msg","text":"hi","room":"\\ud800","cid":"c1"}',
                  b'{"type":"msg","text":7,"cid":"c1"}'):
        server.receive_data(frame + b"\n")
        with pytest.raises(ProtocolError) as info:
            server.next_event()
        assert info.value.ref == "c1" and not info.value.fatal


def test_null_min_version_means_absent_and_huge_numbers_are_bad_frames():
    _, server = pair()
    server.receive_data(b'{"type":"hello","version":1,"min_version":null,"user":"a"}\n')
    assert events(server)[0].min_version == 1
    client = Connection(Role.CLIENT)
    client.send(Hello("a"))
    client.receive_data(b'{"type":"welcome","version":1,"user":"a","rooms":[],"ping_interval":' + b"9" * 400 + b"}\n")
    with pytest.raises(ProtocolError) as info:
        client.next_event()
    assert info.value.code is ErrorCode.BAD_FRAME


def test_clean_line_removes_controls_but_keeps_text():
    from qtchat.protocol import clean_line

    assert clean_line("dinner \x1b[31m\nnow\x00") == "dinner  [31m now "
    assert clean_line("caf\u00e9 \U0001f600") == "caf\u00e9 \U0001f600"
