"""The outbox keeps the order typed when the server refuses messages with slow_down and answers late.

A scripted server on a real socket (qtchat.protocol's server side) decides, frame by frame, what it refuses
and how long its answer takes: the timings that only a loaded machine produces with the real server.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QTimer
from PySide6.QtNetwork import QHostAddress, QTcpServer, QTcpSocket

from qtchat.client import ChatClient, ClientState
from qtchat.protocol import Error, Hello, Message, SendMessage, Welcome
from qtchat.protocol.connection import NEED_DATA, PEER_CLOSED, Connection, Role

# what the server does with the nth copy of a text: (answer after ms, refuse with retry_after s, or None: take it)
Rule = tuple[int, float | None]


class ScriptedServer:
    """Answers a hello with a welcome; answers each msg in the order received, as its rule says. A later
    answer waits for the earlier ones (a server answers in order). As qtchat's server does, a refusal holds
    back the messages after it for as long as it said to wait (server.limits: "Order")."""

    def __init__(self, rules: Callable[[str, int], Rule]) -> None:
        self.rules = rules
        self.received: list[str] = []  # every msg's text, in the order it came
        self.accepted: list[str] = []  # the texts stored, in the order stored
        self._copies: dict[str, int] = {}
        self._ready_at = 0.0  # ms on the server's clock when the last answer queued goes
        self._clock = 0.0
        self._blocked_until = 0.0
        self._sock: QTcpSocket | None = None
        self._conn = Connection(Role.SERVER)
        self.tcp = QTcpServer()
        assert self.tcp.listen(QHostAddress(QHostAddress.SpecialAddress.LocalHost), 0)
        self.tcp.newConnection.connect(self._accept)
        self._timer = QTimer()
        self._timer.setInterval(5)
        self._timer.timeout.connect(self._tick)
        self._timer.start()
        self._queue: list[tuple[float, Callable[[], None]]] = []

    @property
    def port(self) -> int:
        return self.tcp.serverPort()

    def _accept(self) -> None:
        self._sock = self.tcp.nextPendingConnection()
        self._sock.readyRead.connect(self._read)

    def _read(self) -> None:
        assert self._sock is not None
        self._conn.receive_data(bytes(self._sock.readAll().data()))
        while (event := self._conn.next_event()) not in (NEED_DATA, PEER_CLOSED):
            if isinstance(event, Hello):
                self._write(Welcome(user=event.user))
            elif isinstance(event, SendMessage):
                self._on_message(event)

    def _on_message(self, event: SendMessage) -> None:
        self.received.append(event.text)
        copy = self._copies[event.text] = self._copies.get(event.text, 0) + 1
        after_ms, retry_after = self.rules(event.text, copy)
        if retry_after is None and self._clock < self._blocked_until:
            retry_after = (self._blocked_until - self._clock) / 1000
        if retry_after is not None:
            self._blocked_until = max(self._blocked_until, self._clock + retry_after * 1000)
        self._ready_at = max(self._ready_at, self._clock) + after_ms

        def answer() -> None:
            if retry_after is not None:
                self._write(Error("slow_down", "Too fast.", ref=event.cid, retry_after=retry_after))
            elif event.text in self.accepted:  # a resend: acknowledged again, not stored twice
                self._write(Message(id=self.accepted.index(event.text) + 1, ts=1, sender="alice", text=event.text,
                                    cid=event.cid))
            else:
                self.accepted.append(event.text)
                self._write(Message(id=len(self.accepted), ts=1, sender="alice", text=event.text, cid=event.cid))

        self._queue.append((self._ready_at, answer))

    def _tick(self) -> None:
        self._clock += 5
        while self._queue and self._queue[0][0] <= self._clock:
            self._queue.pop(0)[1]()

    def _write(self, event: Welcome | Message | Error) -> None:
        assert self._sock is not None
        self._sock.write(self._conn.send(event))

    def close(self) -> None:
        self._timer.stop()
        if self._sock is not None:
            self._sock.abort()
        self.tcp.close()


def login(qtbot, client: ChatClient, server: ScriptedServer) -> None:
    with qtbot.waitSignal(client.logged_in, timeout=5000):
        client.connect_to("127.0.0.1", server.port, "alice")


def test_a_refused_resend_answered_late_still_goes_before_the_messages_typed_after_it(client, qtbot):
    # "00".."02" pasted: all refused, the refusal of "02" late (a loaded server); the first resend of "01" is
    # refused too, its answer later than the wait for "02": "02" must not go again before "01" has its answer
    # (the server's hold after refusing "01" is over by then: it would take "02" first)
    def rules(text: str, copy: int) -> Rule:
        if copy == 1:
            return (300 if text == "02" else 0), 0.2
        if (text, copy) == ("01", 2):
            return 600, 0.2
        return 0, None

    server = ScriptedServer(rules)
    login(qtbot, client, server)
    failed: list[str] = []
    client.message_failed.connect(lambda cid, code, text: failed.append(code))
    for i in range(3):
        client.send_text(f"{i:02d}")
    qtbot.waitUntil(lambda: not client.pending, timeout=10_000)
    assert failed == []
    assert server.accepted == ["00", "01", "02"]  # in the order typed
    assert client.state is ClientState.ONLINE
    server.close()


def test_a_message_typed_while_others_wait_for_their_resend_goes_after_them(client, qtbot):
    # "00" refused with a short wait (the client waits at least 0.2 s): "01", typed while "00" waits for its
    # resend, waits with it and goes after it (sent at once, the server, its hold over, would take it first)
    server = ScriptedServer(lambda text, copy: (0, 0.02) if (text, copy) == ("00", 1) else (0, None))
    login(qtbot, client, server)
    client.send_text("00")
    qtbot.waitUntil(lambda: server.received == ["00"], timeout=3000)
    qtbot.wait(60)  # the refusal is in, the server's hold is over, the client's wait is not
    client.send_text("01")
    qtbot.wait(20)
    assert server.received == ["00"] or server.received[:2] == ["00", "00"]  # "01" not sent before "00" again
    qtbot.waitUntil(lambda: not client.pending, timeout=5000)
    assert server.received == ["00", "00", "01"] and server.accepted == ["00", "01"]
    server.close()


def test_a_message_answered_at_once_is_not_held_back_by_nothing(client, qtbot):
    server = ScriptedServer(lambda text, copy: (0, None))
    login(qtbot, client, server)
    for i in range(5):
        client.send_text(f"{i:02d}")
    qtbot.waitUntil(lambda: not client.pending, timeout=3000)
    assert server.received == server.accepted == [f"{i:02d}" for i in range(5)]  # each sent once, in order
    server.close()
