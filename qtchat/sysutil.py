"""Small portable process helpers for the Qt programs: quit signals and the open-file limit."""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable

from PySide6.QtCore import QObject, QSocketNotifier


class QuitSignals(QObject):
    """Calls ``on_quit`` when the process gets SIGINT or SIGTERM, while a Qt event loop runs, at a safe point.

    Python runs a signal handler between two bytecodes of whatever Python code the
    main thread runs (the server's flush, say), so the handler here does nothing:
    ``signal.set_wakeup_fd`` has the interpreter write the signal's number to a socket
    pair that a QSocketNotifier watches, and ``on_quit`` runs from the event loop
    when it reads that byte, between two events, never inside another handler. Under
    Qt's loop Python may not get control for a long time, and the notifier wakes the
    loop at once. Works with sockets on Windows too (where only SIGINT, from Ctrl+C,
    exists in practice).
    """

    def __init__(self, on_quit: Callable[[int], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._on_quit = on_quit
        self._rsock, self._wsock = socket.socketpair()
        self._rsock.setblocking(False)
        self._wsock.setblocking(False)
        self._signums = {int(s) for s in (signal.SIGINT, getattr(signal, "SIGTERM", None)) if s is not None}
        self._pending: list[int] = []  # signals seen by the handler, in case the wakeup byte was lost
        signal.set_wakeup_fd(self._wsock.fileno(), warn_on_full_buffer=False)
        self._notifier = QSocketNotifier(self._rsock.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._drain)
        # kept for the life of the process: a second Ctrl+C while closing changes nothing
        for signum in self._signums:
            signal.signal(signum, self._handle)

    def _drain(self) -> None:
        received: list[int] = []
        try:
            while chunk := self._rsock.recv(512):
                received.extend(chunk)
        except OSError:
            pass
        pending, self._pending = self._pending, []
        for signum in dict.fromkeys(received + pending):  # once each, in order
            if signum in self._signums:
                self._on_quit(signum)

    def _handle(self, signum: int, frame: object) -> None:
        """In the middle of any Python code: only note it (the wakeup byte wakes the loop)."""
        self._pending.append(signum)


def raise_open_file_limit(wanted: int) -> int:
    """Raise the soft limit on open files towards ``wanted`` (capped by the hard limit).

    Returns the limit now in force, or ``wanted`` where the platform has no
    such limit to raise (Windows).
    """
    try:
        import resource
    except ImportError:
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return int(soft)
