"""Server addresses as people and welcome.nodes write them (qtchat/protocol/addresses.py)."""

from __future__ import annotations

import pytest

from qtchat.protocol.addresses import MAX_ADDRESSES, format_addresses, parse_address, parse_addresses


def test_one_address_in_each_form() -> None:
    assert parse_address("chat.example.org", 4321) == ("chat.example.org", 4321)
    assert parse_address(" chat.example.org:4322 ", 4321) == ("chat.example.org", 4322)
    assert parse_address("127.0.0.1:1") == ("127.0.0.1", 1)
    assert parse_address("[::1]:65535") == ("::1", 65535)
    assert parse_address("[2001:DB8::1]", 4321) == ("2001:db8::1", 4321)
    assert parse_address("fe80::1", 9) == ("fe80::1", 9)  # a bare IPv6 address has no port


@pytest.mark.parametrize(("text", "words"), [
    ("", "empty"),
    ("host:0", "from 1 to 65535"),
    ("host:65536", "from 1 to 65535"),
    ("host:http", "from 1 to 65535"),
    ("host:", "from 1 to 65535"),
    ("bad host", "not a host name"),
    ("-host", "not a host name"),
    ("[::1", "IPv6 address as [::1]:4321"),
    ("[::1]x", "IPv6 address as [::1]:4321"),
    ("[nothing]:5", "not an IPv6 address"),
    ("1::2::3", "not an IPv6 address"),
    ("host", "needs a port"),
])
def test_a_bad_address_is_refused_with_a_sentence(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        parse_address(text, None if words == "needs a port" else 4321)


def test_several_addresses_in_order_each_once() -> None:
    assert parse_addresses("a, b:4322,[::1],a:4321,", 4321) == [("a", 4321), ("b", 4322), ("::1", 4321)]
    assert format_addresses(parse_addresses("a, b:4322,[::1]", 4321)) == "a:4321,b:4322,[::1]:4321"
    assert parse_addresses(format_addresses([("a", 1), ("::1", 2)])) == [("a", 1), ("::1", 2)]
    with pytest.raises(ValueError, match="Give the server's address"):
        parse_addresses(" , ", 4321)
    with pytest.raises(ValueError, match="'b:x'"):  # one bad entry refuses the list, and is named
        parse_addresses("a,b:x", 4321)
    with pytest.raises(ValueError, match=f"At most {MAX_ADDRESSES}"):
        parse_addresses(",".join(f"h{i}" for i in range(MAX_ADDRESSES + 1)), 1)
