"""Server addresses as people and ``welcome.nodes`` write them: ``host``, ``host:port``, ``[IPv6]:port``, several
separated by commas. Shared by the client (``qtchat --host a,b:4322``, the connect dialog, announced nodes) and the
server (``qtchat-server --nodes``). No I/O: a host name is checked for its form only, never looked up."""

from __future__ import annotations

import ipaddress
import re

Address = tuple[str, int]

MAX_ADDRESSES = 64  # addresses in one list, at most
_HOST = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252}[A-Za-z0-9_.])?\Z")


def _port(text: str, whole: str) -> int:
    if not text.isascii() or not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"The port of {whole!r} must be a number from 1 to 65535.")
    return int(text)


def _ipv6(text: str, whole: str) -> str:
    try:
        return str(ipaddress.IPv6Address(text.split("%", 1)[0])) + ("%" + text.split("%", 1)[1] if "%" in text else "")
    except ValueError:
        raise ValueError(f"{whole!r} is not an IPv6 address.") from None


def parse_address(text: str, default_port: int | None = None) -> Address:
    """``(host, port)`` of ``host``, ``host:port``, ``[IPv6]``, ``[IPv6]:port`` or a bare IPv6 address; the port
    is ``default_port`` when the text has none (and required when that is None). Raises ValueError with a
    sentence for the user."""
    whole = text.strip()
    if not whole:
        raise ValueError("An address is empty.")
    port: int | None = default_port
    if whole.startswith("["):
        inside, bracket, rest = whole[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"{whole!r} is not an address: write an IPv6 address as [::1]:4321.")
        host = _ipv6(inside, whole)
        if rest:
            port = _port(rest[1:], whole)
    elif whole.count(":") > 1:
        host = _ipv6(whole, whole)  # a bare IPv6 address: no port can follow it
    else:
        host, colon, rest = whole.partition(":")
        if colon:
            port = _port(rest, whole)
        if not _HOST.match(host):
            raise ValueError(f"{host!r} is not a host name or an address.")
    if port is None:
        raise ValueError(f"{whole!r} needs a port: host:port.")
    return host, port


def parse_addresses(text: str, default_port: int | None = None) -> list[Address]:
    """The addresses of a comma-separated list (see parse_address), in order, each once; at least one and at
    most MAX_ADDRESSES. Raises ValueError with a sentence for the user."""
    parts = [part for part in text.split(",") if part.strip()]
    if not parts:
        raise ValueError("Give the server's address: host or host:port.")
    if len(parts) > MAX_ADDRESSES:
        raise ValueError(f"At most {MAX_ADDRESSES} addresses can be given for one server.")
    return list(dict.fromkeys(parse_address(part, default_port) for part in parts))


def format_address(host: str, port: int) -> str:
    """``host:port``, an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def format_addresses(addresses: list[Address] | tuple[Address, ...]) -> str:
    """The comma-separated list parse_addresses reads back."""
    return ",".join(format_address(host, port) for host, port in addresses)
