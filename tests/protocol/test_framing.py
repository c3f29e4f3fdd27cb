"""Framing: splitting, merging, limits, and bytes that must only ever raise ProtocolError."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qtchat.protocol import ErrorCode, FrameDecoder, ProtocolError, decode_frame, encode_frame

json_scalars = st.none() | st.booleans() | st.integers() | st.text()
json_objects = st.dictionaries(
    st.text(), st.recursive(json_scalars, lambda c: st.lists(c) | st.dictionaries(st.text(), c), max_leaves=8)
)


def drain(decoder: FrameDecoder) -> list[bytes]:
    frames = []
    while (frame := decoder.next_frame()) is not None:
        frames.append(frame)
    return frames


def test_frames_are_compact_json_lines():
    frame = encode_frame({"type": "msg", "text": "a~b\nc \U0001f600"})
    assert frame == '{"type":"msg","text":"a~b\\nc \U0001f600"}\n'.encode()
    assert frame.count(b"\n") == 1


def test_crlf_and_blank_lines_are_tolerated():
    d = FrameDecoder()
    d.feed(b'{"a":1}\r\n\n\r\n{"b":2}\n')
    assert drain(d) == [b'{"a":1}', b'{"b":2}']


def test_frame_at_the_limit_passes_and_one_byte_more_fails():
    d = FrameDecoder(max_frame=10)
    d.feed(b"x" * 10 + b"\n")
    assert drain(d) == [b"x" * 10]
    d.feed(b"y" * 11 + b"\n")
    with pytest.raises(ProtocolError) as info:
        d.next_frame()
    assert info.value.code is ErrorCode.FRAME_TOO_LARGE and info.value.fatal


def test_frame_at_the_limit_with_crlf_split_across_reads():
    d = FrameDecoder(max_frame=10)
    d.feed(b"x" * 10 + b"\r")
    d.feed(b"\n")
    assert drain(d) == [b"x" * 10]


def test_overlong_unfinished_frame_fails_without_buffering_it():
    d = FrameDecoder(max_frame=100)
    d.feed(b'{"ok":1}\n' + b"z" * 60)
    d.feed(b"z" * 60)
    assert d.buffered == 0  # dropped, not kept
    assert d.next_frame() == b'{"ok":1}'  # frames before it still come out
    with pytest.raises(ProtocolError):
        d.next_frame()
    d.feed(b"more\n")
    with pytest.raises(ProtocolError):
        d.next_frame()


def test_byte_at_a_time_is_linear_and_correct():
    frame = encode_frame({"text": "x" * 60000})
    d = FrameDecoder()
    for i in range(len(frame)):
        d.feed(frame[i : i + 1])
    assert drain(d) == [frame[:-1]]


@given(st.lists(json_objects, max_size=20), st.data())
@settings(max_examples=300, deadline=None)
def test_any_split_of_a_stream_decodes_to_the_same_frames(objs, data):
    stream = b"".join(encode_frame(o) for o in objs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=30)))
    d = FrameDecoder(max_frame=1 << 20)
    out: list[bytes] = []
    prev = 0
    for cut in [*cuts, len(stream)]:
        d.feed(stream[prev:cut])
        prev = cut
        out.extend(drain(d))
    assert [decode_frame(f) for f in out] == [json.loads(json.dumps(o)) for o in objs]


@given(st.lists(st.binary(max_size=300), max_size=20), st.integers(1, 200))
@settings(max_examples=500, deadline=None)
def test_arbitrary_bytes_raise_nothing_but_protocol_error(chunks, limit):
    d = FrameDecoder(max_frame=limit)
    for chunk in chunks:
        d.feed(chunk)
        assert d.buffered <= limit + 1  # the limit, plus the "\r" a "\r\n" may end with
        while True:
            try:
                frame = d.next_frame()
            except ProtocolError as exc:
                assert exc.fatal
                break
            if frame is None:
                break
            assert len(frame) <= limit
            try:
                decode_frame(frame)
            except ProtocolError as exc:
                assert not exc.fatal


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"\xc3\x28", ErrorCode.BAD_UTF8),
        (b"{", ErrorCode.BAD_JSON),
        (b'{"a":NaN}', ErrorCode.BAD_JSON),
        (b"[" * 100000, ErrorCode.BAD_JSON),
        (b'"str"', ErrorCode.BAD_FRAME),
        (b"\xef\xbb\xbf{}", ErrorCode.BAD_JSON),
    ],
)
def test_decode_frame_errors(raw, code):
    with pytest.raises(ProtocolError) as info:
        decode_frame(raw)
    assert info.value.code is code
    assert not info.value.fatal
