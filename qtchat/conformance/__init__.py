"""A conformance suite for qtchat servers: ``python -m qtchat.conformance HOST:PORT``.

Anyone writing another server (or checking a deployed one) runs it against an address: it logs in
with generated names (``cf`` and six hex digits), tries what docs/PROTOCOL.md promises over a few
connections, prints one line per check (PASS, FAIL, or SKIP when the server gives no way to check) and a
summary, and exits 0 only when no check failed.
It speaks plain sockets and imports nothing of qtchat but ``qtchat.protocol`` (no Qt).
"""

from __future__ import annotations

from .checks import Result, Suite


def run(host: str, port: int, timeout: float = 5.0, *, handshake_timeout: float | None = None) -> list[Result]:
    """Every check's result against ``host:port``, in order (the handshake timeout is checked only when given)."""
    return Suite(host, port, timeout, handshake_timeout=handshake_timeout).run()


__all__ = ["Result", "Suite", "run"]
