from __future__ import annotations

import importlib.util
from pathlib import Path

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


# --- look-alikes (UTS #39 skeletons), invisible and blank names (issue 14) ---

LOOKALIKES = [
    ("a\u034fl\u180bice", "alice"),  # combining grapheme joiner, Mongolian free variation selector
    ("alic\ufe0fe", "alice"),  # variation selector
    ("alice\U000e0100", "alice"),  # variation selector supplement
    ("\u0410lice", "alice"),  # Cyrillic capital A
    ("\u0430lice", "Alice"),  # Cyrillic small a
    ("\u0455\u0435rver", "server"),  # Cyrillic dze and ie
    ("\u0410LICE", "alice"),  # a capital look-alike whose small letter looks Latin too
    ("\u03bf\u03c1en", "open"),  # Greek omicron, rho
]


@pytest.mark.parametrize(("a", "b"), LOOKALIKES)
def test_confusable_names_share_a_key(a, b):
    assert name_key(a) == name_key(b)


@pytest.mark.parametrize("raw", ["a\u034fl\u180bice", "alic\ufe0fe", "alice\U000e0100", "bob\u17b4", "\u3164",
                                 "\u2800", "\u115f\u1160", "\uffa0", "a\u2800b", "x\u00ady"])
def test_invisible_and_blank_names_are_refused(raw):
    with pytest.raises(ProtocolError) as info:
        validate_name(raw)
    assert info.value.code is ErrorCode.NAME_INVALID


def test_reserved_names_are_reached_by_lookalikes():
    with pytest.raises(ProtocolError) as info:
        validate_name("\u0455\u0435rver")
    assert info.value.code is ErrorCode.NAME_RESERVED


@pytest.mark.parametrize("name", ["alice", "Sam1", "b0b", "Ian", "mike", "a b", "x_y-z.9"])
def test_ascii_keys_are_as_before_skeletons(name):
    assert name_key(name) == " ".join(name.casefold().split())  # accounts and rooms keyed before still found


def test_the_vendored_table_is_what_the_generator_makes():
    pytest.importorskip("confusable_homoglyphs")
    path = Path(__file__).resolve().parents[2] / "tools" / "make_confusables.py"
    spec = importlib.util.spec_from_file_location("make_confusables", path)
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.render(tool.entries()) == tool.TARGET.read_text("utf-8")


@given(st.text(max_size=40))
def test_name_key_is_idempotent(raw):
    assert name_key(name_key(raw)) == name_key(raw)


_SWAPS = {"a": "\u0430", "e": "\u0435", "o": "\u043e", "p": "\u0440", "c": "\u0441", "x": "\u0445",
          "s": "\u0455", "i": "\u0456", "j": "\u0458", "y": "\u0443"}


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789 _", max_size=32), st.data())
def test_a_name_and_its_lookalikes_have_one_skeleton(name, data):
    swapped = "".join(
        _SWAPS[ch] if ch in _SWAPS and data.draw(st.booleans()) else ch for ch in name
    )
    marked = "".join(ch + data.draw(st.sampled_from(["", "\u034f", "\ufe0e", "\u180b"])) for ch in swapped)
    assert name_key(marked) == name_key(name) == name_key(name.upper())


@pytest.mark.parametrize("name", ["Νίκος", "Москва", "Κουζίνα", "Straße", "Ærø", "ALICE", "Dev Team"])
def test_a_names_key_does_not_depend_on_its_case_and_the_key_of_an_old_key_is_the_new_key(name: str) -> None:
    from qtchat.protocol.names import fold

    assert name_key(name) == name_key(name.lower()) == name_key(name.upper())
    assert name_key(fold(name)) == name_key(name)  # what stored keys are brought up to date with
