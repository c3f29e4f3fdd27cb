"""The main window's status bar: the connection's state (and the countdown to the next attempt), the server
(or the one hosted here), messages not yet acknowledged, TLS and latency."""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QLabel, QStatusBar

from qtchat.client import ChatClient, ClientState
from qtchat.client.models import literal_html
from qtchat.hosting import join_addresses
from qtchat.protocol.addresses import format_address
from qtchat.server import ChatServer

from .wording import STATE_TEXT

STATE_COLOR = {  # on a light window
    ClientState.OFFLINE: "#616161",
    ClientState.CONNECTING: "#855900",
    ClientState.ONLINE: "#1b6e20",
    ClientState.WAITING: "#b33900",
}
STATE_COLOR_DARK = {  # on a dark window (a dark palette): the light ones are too dark to read there
    ClientState.OFFLINE: "#bdbdbd",
    ClientState.CONNECTING: "#ffd54f",
    ClientState.ONLINE: "#81c995",
    ClientState.WAITING: "#ffb74d",
}


def state_color(state: ClientState, window: QColor) -> str:
    """The state's colour, readable on a window of that colour."""
    return (STATE_COLOR_DARK if window.lightness() < 128 else STATE_COLOR)[state]


class ConnectionStatus(QObject):
    """Fills the status bar's labels from what the client reports."""

    def __init__(self, client: ChatClient, bar: QStatusBar, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.client = client
        self.state_label = QLabel()
        self.server_label = QLabel()
        self.latency_label = QLabel()
        self.pending_label = QLabel()
        self.tls_label = QLabel()
        for label in (self.state_label, self.server_label, self.latency_label, self.pending_label, self.tls_label):
            label.setTextFormat(Qt.TextFormat.PlainText)
        bar.addWidget(self.state_label)
        bar.addWidget(self.server_label, 1)
        bar.addPermanentWidget(self.pending_label)
        bar.addPermanentWidget(self.tls_label)
        bar.addPermanentWidget(self.latency_label)
        self._retry_at = 0.0
        self._countdown = QTimer(self)
        self._countdown.timeout.connect(self._tick_countdown)

    def connect_client(self) -> None:
        c = self.client
        c.latency_changed.connect(lambda ms: self.latency_label.setText(f"{ms} ms"))
        c.pending_changed.connect(self._on_pending)
        c.reconnect_scheduled.connect(self._on_reconnect_scheduled)

    def show_state(self, s: ClientState, server: ChatServer | None) -> None:
        self.state_label.setText(STATE_TEXT[s])
        window = self.state_label.palette().color(QPalette.ColorRole.Window)
        self.state_label.setStyleSheet(f"color: {state_color(s, window)};")
        if s is not ClientState.ONLINE:
            self.latency_label.setText("")
        self.show_tls()
        if s is not ClientState.WAITING:
            self._countdown.stop()
        self.show_server(server)

    def show_tls(self) -> None:
        c = self.client
        on = c.state is ClientState.ONLINE and c.is_encrypted
        self.tls_label.setText("\N{LOCK} TLS" if on else "")
        self.tls_label.setToolTip(literal_html(c.tls_summary()) if on else "")

    def show_server(self, server: ChatServer | None) -> None:
        """Where we are: the server hosted here (if any), else the server we are logged in to."""
        c = self.client
        if server is not None and server.is_listening:
            where = ", ".join(join_addresses(server))
            self.server_label.setText(f"Hosting \N{EM DASH} others join at {where}")
        elif server is not None:
            self.server_label.setText("Hosting stopped")
        elif c.welcome is not None:
            # as the conversation's first line says it: the server's name, its address in brackets
            where = f"{c.welcome.name} ({c.address})" if c.welcome.name else c.address
            self.server_label.setText(f"{where} as {c.me}")
        else:
            self.server_label.setText(c.address)
        others = [format_address(*a) for a in c.targets if a != (c.host, c.port)]
        self.server_label.setToolTip(f"Connected to {c.address}. This server's other addresses: {', '.join(others)}."
                                     if others and c.welcome is not None and server is None else "")

    def _on_reconnect_scheduled(self, seconds: float) -> None:
        self._retry_at = time.monotonic() + seconds
        self._tick_countdown()
        self._countdown.start(1000)

    def _tick_countdown(self) -> None:
        left = max(0, round(self._retry_at - time.monotonic()))
        self.state_label.setText(f"{STATE_TEXT[ClientState.WAITING]} in {left} s (Ctrl+R: now)")

    def _on_pending(self, count: int) -> None:
        self.pending_label.setText(f"{count} unsent" if count else "")
