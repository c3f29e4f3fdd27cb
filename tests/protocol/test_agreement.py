"""Where PROTOCOL.md and the code disagreed (issue 14), each decided and pinned: a frame without a string
``type`` is ``bad_frame``; a frame of exactly ``max_frame`` bytes ended by CR LF is accepted; an error's
``ref`` holds a room name as sent (up to 100 characters); ``bye`` carries an optional machine-readable code."""

from __future__ import annotations

import pytest

from qtchat.protocol import (
    NEED_DATA,
    Bye,
    ByeCode,
    Connection,
    Error,
    ErrorCode,
    FrameDecoder,
    Hello,
    ProtocolError,
    Role,
    Welcome,
    encode_frame,
)
from qtchat.protocol.events import MAX_REF, MAX_ROOM_NAME


def open_server() -> Connection:
    server = Connection(Role.SERVER)
    server.receive_data(encode_frame(Hello(user="alice").to_wire()))
    server.next_event()
    server.send(Welcome(user="alice"))
    return server


@pytest.mark.parametrize("frame", [b'{"text":"hi"}', b'{"type":5}', b'{"type":null}', b'{"type":["msg"]}',
                                   b'{"type":{"a":1}}', b'{"type":true}'])
def test_a_frame_without_a_string_type_is_bad_frame(frame):
    server = open_server()
    server.receive_data(frame + b"\n")
    with pytest.raises(ProtocolError) as info:
        server.next_event()
    assert info.value.code is ErrorCode.BAD_FRAME and not info.value.fatal
    assert '"type"' in info.value.message


def test_a_client_too_calls_a_server_frame_without_a_string_type_bad_frame():
    client = Connection(Role.CLIENT)
    client.receive_data(b'{"type":7}\n')
    with pytest.raises(ProtocolError) as info:
        client.next_event()
    assert info.value.code is ErrorCode.BAD_FRAME


def test_an_unknown_string_type_is_still_unknown_type():
    server = open_server()
    server.receive_data(b'{"type":"nope"}\n')
    with pytest.raises(ProtocolError) as info:
        server.next_event()
    assert info.value.code is ErrorCode.UNKNOWN_TYPE


@pytest.mark.parametrize("chunks", [1, 2, 3, 7])
def test_a_frame_of_exactly_max_frame_bytes_with_crlf_is_accepted(chunks):
    frame = b'{"a":"' + b"x" * (100 - 8) + b'"}'
    assert len(frame) == 100
    data = frame + b"\r\n"
    decoder = FrameDecoder(max_frame=100)
    step = max(1, len(data) // chunks)
    for start in range(0, len(data), step):
        decoder.feed(data[start:start + step])
    assert decoder.next_frame() == frame
    decoder.feed(b"y" * 101 + b"\r\n")
    with pytest.raises(ProtocolError) as info:
        decoder.next_frame()
    assert info.value.code is ErrorCode.FRAME_TOO_LARGE


def test_an_errors_ref_holds_a_room_name_as_sent():
    assert MAX_REF >= MAX_ROOM_NAME
    room = "r" * MAX_ROOM_NAME
    client = Connection(Role.CLIENT)
    client.receive_data(encode_frame(Welcome(user="alice").to_wire()))
    assert isinstance(client.next_event(), Welcome)
    client.receive_data(encode_frame(Error("room_invalid", "Too long.", False, room).to_wire()))
    error = client.next_event()
    assert isinstance(error, Error) and error.ref == room
    assert client.next_event() is NEED_DATA


def test_bye_has_an_optional_code():
    assert Bye("kicked: spam", ByeCode.KICKED).to_wire() == {"type": "bye", "reason": "kicked: spam",
                                                             "code": "kicked"}
    assert Bye("see you").to_wire() == {"type": "bye", "reason": "see you"}  # as before: no code
    assert Bye.from_wire({"type": "bye"}) == Bye()
    assert ByeCode.parse("banned") is ByeCode.BANNED
    assert ByeCode.parse("from_a_later_version") is None and ByeCode.parse("") is None
