from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qtchat.protocol import ErrorCode, ProtocolError, name_key, validate_name


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Alice", "alice"),
        ("ALICE", "\uff41\uff4c\uff49\uff43\uff45"),  # fullwidth
        ("stra\u00dfe", "STRASSE"),  # casefold
        ("\ufb01sh", "fish"),  # ligature
        ("caf\u00e9", "cafe\u0301"),  # composed vs combining accent
        ("a  b", "a b"),
    ],
)
def test_lookalikes_share_a_key(a, b):
    assert name_key(validate_name(a)[0]) == name_key(validate_name(b)[0])


def test_display_name_is_trimmed_but_otherwise_kept():
    assert validate_name("  Zo\u00eb \U0001f600 ") == ("Zo\u00eb \U0001f600", "zo\u00eb \U0001f600")


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", ErrorCode.NAME_INVALID),
        (" \t ", ErrorCode.NAME_INVALID),
        ("a" * 33, ErrorCode.NAME_INVALID),
        ("bad\x00", ErrorCode.NAME_INVALID),
        ("rtl\u202eoverride", ErrorCode.NAME_INVALID),
        ("line\u2028sep", ErrorCode.NAME_INVALID),
        ("@mention", ErrorCode.NAME_INVALID),
        ("/cmd", ErrorCode.NAME_INVALID),
        ("Root", ErrorCode.NAME_RESERVED),
        ("\uff53\uff45\uff52\uff56\uff45\uff52", ErrorCode.NAME_RESERVED),  # fullwidth "server"
    ],
)
def test_invalid_names(raw, code):
    with pytest.raises(ProtocolError) as info:
        validate_name(raw)
    assert info.value.code is code
    assert info.value.fatal


def test_exactly_32_characters_is_fine():
    assert validate_name("n" * 32)[0] == "n" * 32


@given(st.text(max_size=40))
def test_validate_name_only_raises_protocol_error(raw):
    try:
        name, key = validate_name(raw)
    except ProtocolError:
        return
    assert 1 <= len(name) <= 32
    assert name == name.strip()
    assert key == name_key(name)


def test_error_codes_parse_to_the_enum_and_unknown_ones_to_none() -> None:
    from qtchat.protocol import ErrorCode

    assert ErrorCode.parse("name_taken") is ErrorCode.NAME_TAKEN
    assert ErrorCode.parse("from_a_later_version") is None
