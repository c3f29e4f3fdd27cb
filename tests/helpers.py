"""A plain-socket test client that speaks through qtchat.protocol while pytest-qt drives the server.

The server runs on the test's own Qt event loop, so the client never blocks:
its socket is non-blocking and every wait goes through ``qtbot.waitUntil``,
which keeps the loop (and so the server) running.
"""

from __future__ import annotations

import json
import random
import socket
import ssl
from collections.abc import Callable
from typing import Any

from qtchat.protocol import (
    NEED_DATA,
    PEER_CLOSED,
    Connection,
    Error,
    Hello,
    ProtocolError,
    Role,
    SendableEvent,
    SendMessage,
    UserList,
    Welcome,
)


class RawClient:
    def __init__(self, port: int, qtbot: Any, rcvbuf: int | None = None, tls: ssl.SSLContext | None = None,
                 server_hostname: str = "localhost", source: str | None = None) -> None:
        self.qtbot = qtbot
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if source is not None:  # another loopback address (127.0.0.2...): another client address to the server
            self.sock.bind((source, 0))
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(("127.0.0.1", port))
        self.sock.setblocking(False)
        if tls is not None:  # the handshake, without blocking the loop that runs the server
            self.sock = tls.wrap_socket(self.sock, server_hostname=server_hostname, do_handshake_on_connect=False)
            assert isinstance(self.sock, ssl.SSLSocket)
            tls_sock = self.sock

            def handshake_done() -> bool:
                try:
                    tls_sock.do_handshake()
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    return False
                return True

            qtbot.waitUntil(handshake_done, timeout=5000)
        self.conn = Connection(Role.CLIENT, max_frame=1 << 20)
        self.events: list[Any] = []
        self.errors: list[ProtocolError] = []
        self.closed = False
        self.received = 0

    # ------------------------------------------------------------ sending

    def send_raw(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                sent = self.sock.send(view)
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                self.qtbot.wait(1)  # let the server read
                self.pump()
                continue
            view = view[sent:]

    def send(self, event: SendableEvent) -> None:
        self.send_raw(self.conn.send(event))

    def say(self, text: str, cid: str | None = None, room: str = "lobby") -> None:
        self.send(SendMessage(text=text, room=room, cid=cid))

    # ------------------------------------------------------------ receiving

    def pump(self) -> None:
        """Read whatever has arrived, without blocking, and decode it into self.events."""
        while not self.closed:
            try:
                data = self.sock.recv(1 << 20)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            except (ConnectionError, ssl.SSLError):  # a reset, or a TLS connection cut without close_notify
                data = b""
            self.received += len(data)
            self.conn.receive_data(data)
            if not data:
                self.closed = True
        while True:
            try:
                event = self.conn.next_event()
            except ProtocolError as exc:
                self.errors.append(exc)
                if exc.fatal:
                    break
                continue
            if event is NEED_DATA or event is PEER_CLOSED:
                break
            self.events.append(event)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        def check() -> bool:
            self.pump()
            return predicate()

        self.qtbot.waitUntil(check, timeout=int(timeout * 1000))

    def wait_event(self, kind: type, timeout: float = 5.0, **fields: Any) -> Any:
        """Wait for (and return) the first event of ``kind`` whose attributes match ``fields``."""
        found: list[Any] = []

        def match() -> bool:
            for ev in self.events:
                if isinstance(ev, kind) and all(getattr(ev, k) == v for k, v in fields.items()):
                    found.append(ev)
                    return True
            return False

        self.wait_for(match, timeout)
        return found[0]

    def of(self, kind: type) -> list[Any]:
        self.pump()
        return [ev for ev in self.events if isinstance(ev, kind)]

    def wait_closed(self, timeout: float = 5.0) -> None:
        self.wait_for(lambda: self.closed, timeout)

    # ------------------------------------------------------------ handshake

    def login(self, name: str, **hello: Any) -> Welcome:
        self.send(Hello(user=name, **hello))
        welcome: Welcome = self.wait_event(Welcome)
        self.wait_for(lambda: any(isinstance(e, UserList) and not e.more for e in self.events))
        return welcome

    def refused(self, name: str, **hello: Any) -> Error:
        """Send a hello that must be refused; return the error, after the server closed."""
        self.send(Hello(user=name, **hello))
        error: Error = self.wait_event(Error)
        self.wait_closed()
        return error

    def close(self) -> None:
        self.sock.close()
        self.closed = True


# ------------------------------------------------------------------ bad input

GARBAGE_KINDS = ("json", "utf8", "oversize", "types", "unknown", "nul", "numbers", "binary", "nesting", "valid")


def garbage_frame(rng: random.Random, max_frame: int = 65536) -> tuple[str, bytes]:
    """One malformed (or, now and then, valid) frame of a random kind, with its line feed, and the kind."""
    kind = rng.choice(GARBAGE_KINDS)
    if kind == "json":
        data = rng.choice([b"{not json", b'{"type":"msg",', b"}", b'{"type":"msg" "text":"x"}', b"'single'",
                           b'{"type":"ping","token":"\\x"}', b"NaN", b'{"a":1}{"b":2}'])
    elif kind == "utf8":
        data = b'{"type":"msg","text":"' + rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80"]) + b'"}'
    elif kind == "oversize":
        data = b'{"type":"msg","text":"' + b"o" * (max_frame + rng.randrange(1, 5000)) + b'"}'
    elif kind == "types":
        choices: list[tuple[str, Any]] = [("text", 5), ("text", None), ("room", []), ("cid", {}), ("limit", "x"),
                                          ("before", 1.5), ("version", True), ("token", 7), ("user", 3)]
        field, value = rng.choice(choices)
        frame_type = rng.choice(["msg", "history", "ping", "hello", "users", "join"])
        data = json.dumps({"type": frame_type, field: value}).encode()
    elif kind == "unknown":
        data = json.dumps({"type": rng.choice(["nope", "", "MSG", "admin", "kick", "\u202e"]), "x": 1}).encode()
    elif kind == "nul":
        data = rng.choice([b"\x00" * rng.randrange(1, 50), b'{"type":"msg","text":"a\x00b"}',
                           b'{"type":"msg","text":"a\\u0000b","cid":"nul"}'])
    elif kind == "numbers":
        number = rng.choice(["1" * 5000, "-1e999", "1e308", "9" * 40, str(2**64), "0.000001"])
        data = f'{{"type":"history","room":"lobby","before":{number},"limit":{number}}}'.encode()
    elif kind == "binary":
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))).replace(b"\n", b"")
    elif kind == "nesting":
        depth = rng.randrange(100, 20000)
        data = b"[" * depth + b"]" * depth
    else:
        data = rng.choice([b'{"type":"ping","token":"t"}', b'{"type":"rooms"}', b'{"type":"users"}'])
    return kind, data + b"\n"


def outcome(qtbot: Any, future: Any, timeout: int = 5000) -> Any:
    """The value of a server future (an operator action), once the loop has answered it: at once on SQLite, a
    pass later on a backend that answers later. Raises what the future failed with."""
    qtbot.waitUntil(future.done, timeout=timeout)
    return future.result()


def failure(qtbot: Any, future: Any, timeout: int = 5000) -> BaseException:
    """What a future failed with, once the loop has answered it; the test fails if it succeeded."""
    qtbot.waitUntil(future.done, timeout=timeout)
    exc = future.exception()
    assert exc is not None, f"expected a failure, got {future.result()!r}"
    return exc
