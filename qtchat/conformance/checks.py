"""The checks: what a qtchat server must do, as PROTOCOL.md says, tried over a few connections.

Each check adds one Result (PASS or FAIL, with what was expected and what came). A section that loses
its connection fails where it stands and the next section goes on. Nothing waits without a deadline.
"""

from __future__ import annotations

import json
import secrets
import ssl
import time
from dataclasses import dataclass
from typing import Any

from qtchat.protocol import PROTOCOL_VERSION, ProtocolError
from qtchat.protocol.events import SERVER_EVENTS

from .wire import Frame, Peer, short


@dataclass(frozen=True, slots=True)
class Result:
    name: str
    ok: bool
    expected: str
    got: str
    skipped: bool = False  # not tried (ok stays True): ``got`` says why

    def line(self) -> str:
        if self.skipped:
            return f"SKIP {self.name}: {self.got}"
        if self.ok:
            return f"PASS {self.name}"
        return f"FAIL {self.name}: expected {self.expected}; got {self.got}"


class Suite:
    """One run against one address: ``run()`` returns the results, in order."""

    a: Peer  # the sections' two logged-in users (set by the handshake and versions sections)
    b: Peer
    room: str  # the room the rooms section made, for the history section
    history_ids: list[int]  # the ids of the five messages the history section posted there, oldest first

    def __init__(self, host: str, port: int, timeout: float = 5.0, tls: ssl.SSLContext | None = None, *,
                 handshake_timeout: float | None = None) -> None:
        self.host, self.port, self.timeout, self.tls = host, port, timeout, tls
        self.handshake_timeout = handshake_timeout  # the server's, when the caller knows it (welcome cannot say)
        self.tag = "cf" + secrets.token_hex(3)  # names and rooms of this run: no clash with others
        self.results: list[Result] = []
        self.peers: list[Peer] = []
        self.max_frame = 65536
        self.limits: dict[str, Any] = {}  # welcome.limits, as the server announced them
        self._cids = 0

    # ------------------------------------------------------------ helpers

    def check(self, name: str, ok: bool, expected: str, got: Any) -> bool:
        self.results.append(Result(name, bool(ok), expected, got if isinstance(got, str) else short(got)))
        return bool(ok)

    def skip(self, name: str, why: str) -> None:
        self.results.append(Result(name, True, "", why, skipped=True))

    def limit(self, name: str) -> float:
        """A limit of welcome.limits, 0 when the server announced none (or not a positive number)."""
        value = self.limits.get(name)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else 0.0

    def connect(self) -> Peer:
        peer = Peer(self.host, self.port, self.timeout, self.tls)
        self.peers.append(peer)
        return peer

    def cid(self) -> str:
        self._cids += 1
        return f"{self.tag}-{self._cids}"

    def login(self, who: str, **hello: Any) -> tuple[Peer, Frame | None]:
        peer = self.connect()
        peer.send({"type": "hello", "version": PROTOCOL_VERSION, "user": f"{self.tag}-{who}",
                   "client": "qtchat-conformance", **hello})
        welcome = peer.wait_type("welcome")
        peer.wait(lambda f: f.get("type") == "users" and f.get("more") is False)
        return peer, welcome

    def post(self, peer: Peer, text: str, room: str = "lobby", cid: str | None = None) -> Frame | None:
        """Send a message and wait for its acknowledgement (waiting out slow_down, a few times)."""
        cid = cid or self.cid()
        for _ in range(4):
            peer.send({"type": "msg", "room": room, "text": text, "cid": cid})
            answer = peer.wait(lambda f: (f.get("cid") == cid and f.get("type") == "msg") or
                               (f.get("type") == "error" and f.get("ref") == cid))
            if answer is None or answer.get("code") != "slow_down":
                return answer
            time.sleep(min(float(answer.get("retry_after") or 1.0), 5.0))
        return None

    def refused(self, name: str, first: bytes, code: str) -> None:
        """A fresh connection sends ``first``: a fatal ``code`` error, then the server closes."""
        peer = self.connect()
        peer.send_raw(first)
        error = peer.wait(lambda f: f.get("type") == "error")
        self.check(name, error is not None and error.get("code") == code and error.get("fatal") is True,
                   f"a fatal {code} error", error)
        self.check(f"{name}: connection closed", peer.wait_closed(), "the server closes the connection",
                   "still open")
        peer.close()

    def hello(self, user: str, **fields: Any) -> bytes:
        return json.dumps({"type": "hello", "version": PROTOCOL_VERSION, "user": user, **fields}).encode() + b"\n"

    # ------------------------------------------------------------ running

    def run(self) -> list[Result]:
        from . import sections  # the sections, in order

        for section in sections.ALL:
            try:
                section(self)
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                self.check(f"{section.__name__}: ran to its end", False, "no exception", repr(exc))
                if "a" not in self.__dict__ or ("b" not in self.__dict__ and section is not sections.ALL[0]):
                    break  # no login to go on with
        self.declared()
        for peer in self.peers:
            peer.close()
        return self.results

    def declared(self) -> None:
        """Every frame the server sent decodes under the protocol's declarations (unknown types aside)."""
        bad: list[str] = []
        count = 0
        for peer in self.peers:
            for frame in peer.received:
                cls = SERVER_EVENTS.get(frame.get("type"))  # type: ignore[arg-type]
                if cls is None:
                    if frame.get("type") is None or "unparsable" in frame:
                        bad.append(short(frame))
                    continue
                count += 1
                try:
                    cls.from_wire(frame)
                except (ProtocolError, ValueError, TypeError) as exc:
                    bad.append(f"{short(frame, 100)} ({exc})")
        self.check(f"every frame the server sent is well-formed ({count} frames)", not bad,
                   "JSON objects that fit PROTOCOL.md's fields", "; ".join(bad[:3]))
