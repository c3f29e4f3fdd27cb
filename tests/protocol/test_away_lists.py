"""Who is away, in ``users`` frames: the fast path equals the event encoding, stays under the frame limit, and the
``away`` field decodes leniently (an entry a client cannot use is left out)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qtchat.protocol import (
    MAX_AWAY_MESSAGE,
    ProtocolError,
    UserList,
    away_entry,
    encode_frame,
    encode_name,
    encode_user_lists,
    names_per_frame,
)


@given(st.lists(st.text(st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1, max_size=32), max_size=40,
                unique=True), st.integers(1, 10), st.data())
def test_fast_user_list_frames_with_away_equal_the_event_encoding(names, per_frame, data):
    away = {n: data.draw(st.text(max_size=10)) for n in names if data.draw(st.booleans())}
    entries = {encode_name(n): away_entry(encode_name(n), encode_name(m)) for n, m in away.items()}
    frames = encode_user_lists("lobby", [encode_name(n) for n in names], per_frame, entries)
    decoded = [UserList.from_wire(json.loads(f)) for f in frames]
    for frame, d in zip(frames, decoded, strict=True):  # each frame is the event's encoding, its names' entries
        assert len(d.users) <= per_frame
        assert frame == encode_frame(UserList(d.users, "lobby", d.more, {n: away[n] for n in d.users if n in away})
                                     .to_wire())
    assert [n for d in decoded for n in d.users] == names
    assert all(d.more for d in decoded[:-1]) and not decoded[-1].more
    if not away:  # no entries: the frames of the names alone
        assert len(frames) == max(1, -(-len(names) // per_frame))


def test_long_away_messages_split_a_frame_and_keep_it_under_the_limit():
    worst = ['"' * 13 + "\U0001f600" * 16 + f"{i:03d}" for i in range(1000)]  # 32 code points, the longest encoded
    message = '"' * (MAX_AWAY_MESSAGE // 2) + "\U0001f600" * (MAX_AWAY_MESSAGE // 2)
    entries = {encode_name(n): away_entry(encode_name(n), encode_name(message)) for n in worst}
    for max_frame in (4096, 65536):
        frames = encode_user_lists("lobby", [encode_name(n) for n in worst], names_per_frame(max_frame), entries)
        assert all(len(f) <= max_frame for f in frames)
        decoded = [UserList.from_wire(json.loads(f)) for f in frames]
        assert [n for d in decoded for n in d.users] == worst  # every name once, in order
        assert all(d.more for d in decoded[:-1]) and not decoded[-1].more
        assert all(set(d.away) == set(d.users) and set(d.away.values()) == {message} for d in decoded)
        assert len(frames) > len(worst) / names_per_frame(max_frame)  # split further than the names alone


def test_the_away_field_keeps_what_a_client_can_use():
    base = {"type": "users", "room": "lobby", "users": ["a", "b"]}
    assert UserList.from_wire(base).away == {}
    assert UserList.from_wire({**base, "away": None}).away == {}
    odd = {"a": "lunch", "b": 5, "c": None, "d": "x" * (MAX_AWAY_MESSAGE + 1), "e": ""}
    assert UserList.from_wire({**base, "away": odd}).away == {"a": "lunch", "e": ""}
    assert "away" not in UserList(("a",)).to_wire()  # left out when nobody is away
    with pytest.raises(ProtocolError, match="must be an object"):
        UserList.from_wire({**base, "away": ["a"]})
    with pytest.raises(ProtocolError):
        UserList.from_wire({**base, "away": {"a": "x\ud800"}})  # a lone surrogate is still refused
