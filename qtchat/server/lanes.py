"""Fakelag: a connection's frames acted upon at once while they are cheap and paid for, else held back and
served in turns, one frame per waiting connection at a time, a few milliseconds of every 5 (Ergo's and
InspIRCd's fakelag). A hello or a join holds what follows it until it is answered (``hold``/``release``).

``Lanes`` knows nothing of what a frame does: the server hands it ``dispatch`` (act on one frame),
``holds`` (does this frame, just acted upon, hold the ones after it?), ``flood`` (drop a connection
whose backlog grew too long) and the price of a frame (prices.py).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer

from qtchat.protocol import NEED_DATA, PEER_CLOSED, Hello, ProtocolError

from .peer import Connections, Peer

LAG_TICK_MS = 5  # how often frames held back (fakelag) are served...
LAG_TICK_SHARE_S = 0.003  # ...for about this long at most, in turns, so the loop serves everyone else between
AT_ONCE = 5.0  # a frame costing more than this (history, search, lists) always waits for its turn...
PER_READ = 20.0  # ...and so do cheap ones past this much work in one read of one connection


class Lanes:
    def __init__(self, connections: Connections, parent: QObject, *, dispatch: Callable[[Peer, object], None],
                 holds: Callable[[Peer, object], bool], flood: Callable[[Peer, str], None],
                 price: Callable[[object], float], backlog: Callable[[], int]) -> None:
        self.connections = connections
        self._dispatch = dispatch
        self._holds = holds
        self._flood = flood
        self._price = price
        self._backlog = backlog  # how many frames a connection may have waiting
        self._parent = parent
        self._lagged: dict[Peer, None] = {}  # connections with frames waiting, in the order of their turns
        self._timer = QTimer(parent)
        self._timer.setInterval(LAG_TICK_MS)
        self._timer.timeout.connect(self._serve)

    def take(self, peer: Peer) -> None:
        """Act on the frames received (in turns past their price). Frames after a hello that is still being
        checked (a password, the backend's answers) wait in the connection, undecoded, until its welcome."""
        conn = peer.conn
        spent = 0.0  # work acted on at once in this read: at most PER_READ, the rest takes turns
        while not peer.detached and not peer.held:
            try:
                event = conn.next_event()
            except ProtocolError as exc:
                self.connections.fail(peer, exc, report=True)
                continue
            if event is NEED_DATA or event is PEER_CLOSED:
                break
            if peer.work is None:
                self._act(peer, event)
                continue
            cost = self._price(event)
            if peer.backlog or cost > AT_ONCE or spent + cost > PER_READ or peer.work.take(cost, time.monotonic()) > 0:
                self._hold_back(peer, event)  # it waits for its price, or for its turn (fakelag)
                if isinstance(event, Hello):
                    peer.held = True  # nothing after it is decoded before it is answered
            else:
                spent += cost
                self._act(peer, event)

    def _act(self, peer: Peer, event: object) -> None:
        self._dispatch(peer, event)
        if self._holds(peer, event):
            peer.held = True
        elif isinstance(event, Hello):
            self.release(peer)

    def release(self, peer: Peer) -> None:
        """Act on what a held connection sent meanwhile (on the loop's next turn: the caller may be a future's)."""
        if peer.held:
            peer.held = False
            QTimer.singleShot(0, self._parent, lambda: self._resume(peer))

    def _resume(self, peer: Peer) -> None:
        if peer.detached:
            return
        if peer.backlog:
            self._lagged[peer] = None
            if not self._timer.isActive():
                self._timer.start()
        self.take(peer)

    def _hold_back(self, peer: Peer, event: object) -> None:
        backlog = peer.backlog
        if backlog is None:
            backlog = peer.backlog = deque()
        if len(backlog) >= self._backlog():
            self._flood(peer, "You sent requests faster than this server serves them, for too long.")
            return
        backlog.append(event)
        self._lagged[peer] = None
        if not self._timer.isActive():
            self._timer.start()

    def _serve(self) -> None:
        """Frames held back, in turns: one frame of each waiting connection in rotation, as its work units
        allow, until this tick's share of the loop is spent (the loop then serves everyone else)."""
        now = time.monotonic()
        deadline = now + LAG_TICK_SHARE_S
        self._timer.setInterval(LAG_TICK_MS)
        turns = len(self._lagged)
        while self._lagged and turns > 0 and time.monotonic() < deadline:
            turns -= 1
            peer = next(iter(self._lagged))
            del self._lagged[peer]  # to the end of the rotation, if it still waits
            backlog, work = peer.backlog, peer.work
            if peer.detached or not backlog or work is None:
                peer.backlog = None
                continue
            if peer.held:
                continue  # out of the rotation until released (_resume puts it back)
            if work.take(self._price(backlog[0]), now) == 0:
                turns = len(self._lagged) + 1  # something was served: another round may follow
                self._act(peer, backlog.popleft())
            if backlog and not peer.detached and not peer.held:
                self._lagged[peer] = None
            else:
                peer.backlog = None
        if not self._lagged:
            self._timer.stop()
        else:  # a frame that took long (a search up to its budget) leaves the loop to others twice as long
            overrun = time.monotonic() - now
            if overrun > LAG_TICK_SHARE_S:
                self._timer.setInterval(max(LAG_TICK_MS, int(overrun * 2000)))
