"""One connection of the conformance suite: a blocking socket with a deadline on every wait.

Frames are sent as raw bytes (so that malformed ones can be sent too) and read back as JSON objects; a
server's ``ping`` is answered at once. Every frame received is kept in ``inbox`` until a wait takes it,
so frames that arrive in another order than their causes (PROTOCOL.md allows it) are still found.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

from qtchat.protocol import encode_frame

Frame = dict[str, Any]
Match = Callable[[Frame], bool]


class Closed(Exception):
    """The server closed the connection while we waited."""


class Peer:
    """A connection to the server under test."""

    def __init__(self, host: str, port: int, timeout: float, tls: ssl.SSLContext | None = None) -> None:
        self.timeout = timeout
        raw = socket.create_connection((host, port), timeout=timeout)
        self.sock: socket.socket = tls.wrap_socket(raw, server_hostname=host) if tls is not None else raw
        self.inbox: list[Frame] = []
        self.received: list[Frame] = []  # every frame, in order (for the declaration check)
        self.closed = False
        self._buffer = b""

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, frame: Frame) -> None:
        self.send_raw(encode_frame(frame))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
        self.closed = True

    # ------------------------------------------------------------ receiving

    def wait(self, match: Match, timeout: float | None = None) -> Frame | None:
        """The first frame (kept or new) that matches, or None when none came in time (or it closed)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            for i, frame in enumerate(self.inbox):
                if match(frame):
                    return self.inbox.pop(i)
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                return None
            self._read(left)

    def wait_type(self, kind: str, timeout: float | None = None, **fields: Any) -> Frame | None:
        return self.wait(lambda f: f.get("type") == kind and all(f.get(k) == v for k, v in fields.items()),
                         timeout)

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Whether the server closed the connection in time (frames before the close are kept)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._read(left)
        return True

    def quiet(self, seconds: float) -> None:
        """Read whatever comes for ``seconds`` (keeping it), to see that something does not come."""
        deadline = time.monotonic() + seconds
        while not self.closed and (left := deadline - time.monotonic()) > 0:
            self._read(left)

    def _read(self, left: float) -> None:
        self.sock.settimeout(max(0.01, left))
        try:
            data = self.sock.recv(1 << 16)
        except TimeoutError:
            return
        except (ConnectionError, ssl.SSLError, OSError):
            data = b""
        if not data:
            self.closed = True
            return
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self._take(line.rstrip(b"\r"))

    def _take(self, line: bytes) -> None:
        if not line:
            return
        try:
            frame = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            frame = {"type": None, "unparsable": line[:200].decode("utf-8", "replace")}
        if not isinstance(frame, dict):
            frame = {"type": None, "unparsable": repr(frame)[:200]}
        self.received.append(frame)
        if frame.get("type") == "ping" and isinstance(frame.get("token", ""), str):
            self.send({"type": "pong", "token": frame.get("token", "")})
            return
        self.inbox.append(frame)


def short(frame: Frame | None, limit: int = 160) -> str:
    """A frame as a line for a report, cut to ``limit`` characters."""
    if frame is None:
        return "nothing (timed out or closed)"
    text = json.dumps(frame, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 3] + "..."
