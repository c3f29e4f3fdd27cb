"""Small portable process helpers for the Qt programs: quit signals and the open-file limit."""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable

from PySide6.QtCore import QObject, QSocketNotifier


class QuitSignals(QObject):
    """Calls ``on_quit`` when the process gets SIGINT or SIGTERM, while a Qt event loop runs.

    Python runs its signal handlers only when it gets control; under Qt's
    event loop it may not for a long time. ``signal.set_wakeup_fd`` writes a
    byte to a socket pair that a QSocketNotifier watches, so the loop wakes
    and Python runs the handler at once. Works with sockets on Windows too
    (where only SIGINT, from Ctrl+C, exists in practice).
    """

    def __init__(self, on_quit: Callable[[int], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._on_quit = on_quit
        self._rsock, self._wsock = socket.socketpair()
        self._rsock.setblocking(False)
        self._wsock.setblocking(False)
        signal.set_wakeup_fd(self._wsock.fileno())
        self._notifier = QSocketNotifier(self._rsock.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._drain)
        # kept for the life of the process: a second Ctrl+C while closing changes nothing
        for signum in (signal.SIGINT, getattr(signal, "SIGTERM", None)):
            if signum is not None:
                signal.signal(signum, self._handle)

    def _drain(self) -> None:
        try:
            while self._rsock.recv(512):
                pass
        except OSError:
            pass

    def _handle(self, signum: int, frame: object) -> None:
        self._on_quit(signum)


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
