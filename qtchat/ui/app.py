"""``qtchat``: the desktop client's entry point."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPixmap
from PySide6.QtWidgets import QApplication, QDialog

from qtchat import __version__
from qtchat.client import ChatClient
from qtchat.client.host import start_local_server
from qtchat.client.settings import ClientSettings
from qtchat.sysutil import QuitSignals

from .connect_dialog import ConnectDialog
from .main_window import MainWindow


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qtchat",
        description="The qtchat desktop client. With no options it connects to the last server, "
        "or asks where to connect.",
    )
    p.add_argument("--version", action="version", version=f"qtchat {__version__} (protocol 1)")
    p.add_argument("--host", help="server to connect to (default: the last one, or 127.0.0.1)")
    p.add_argument("--port", type=int, help="server port (default: the last one, or 4321)")
    p.add_argument("--user", help="username; with it, qtchat connects straight away")
    p.add_argument("--serve", action="store_true",
                   help="host a server on this computer (on --port) and join it")
    return p


def app_icon() -> QIcon:
    """The application icon: a speech bubble, drawn so it needs no file."""
    icon = QIcon()
    for size in (16, 24, 32, 48, 64, 128, 256):
        pm = QPixmap(size, size)
        pm.fill(Qt.GlobalColor.transparent)
        p = QPainter(pm)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        s = size / 64
        path = QPainterPath()
        path.addRoundedRect(QRectF(4 * s, 6 * s, 56 * s, 40 * s), 12 * s, 12 * s)
        tail = QPainterPath()
        tail.moveTo(QPointF(16 * s, 44 * s))
        tail.lineTo(QPointF(12 * s, 58 * s))
        tail.lineTo(QPointF(30 * s, 44 * s))
        path = path.united(tail)
        p.fillPath(path, QColor("#1e88e5"))
        p.setBrush(QColor("white"))
        p.setPen(Qt.PenStyle.NoPen)
        for x in (20, 32, 44):
            p.drawEllipse(QPointF(x * s, 26 * s), 4 * s, 4 * s)
        p.end()
        icon.addPixmap(pm)
    return icon


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setOrganizationName("qtchat")
    app.setApplicationName("qtchat")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("qtchat")
    icon = app_icon()
    app.setWindowIcon(icon)
    settings = ClientSettings()
    client = ChatClient()
    window = MainWindow(client, settings, icon)
    def on_signal(signum: int) -> None:
        window.close()

    signals = QuitSignals(on_signal)

    def ask(error: str | None = None) -> bool:
        dialog = ConnectDialog(client, settings)
        dialog.setWindowIcon(icon)
        if error:
            dialog.show_error(error)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            if dialog.server is not None:
                dialog.server.shutdown("cancelled")
            return False
        if dialog.server is not None:
            window.set_server(dialog.server)
        return True

    direct = bool(args.user or args.host or args.serve) or settings.has_server
    if direct:
        user = args.user or settings.user
        port = args.port or settings.port
        serve = args.serve or (settings.hosting and not (args.host or args.user))
        host = "127.0.0.1" if serve else (args.host or settings.host)
        if not user:
            if not ask():
                return 0
        else:
            if serve:
                try:
                    window.set_server(start_local_server(port))
                except OSError as exc:
                    if not ask(f"Cannot host on port {port}: {exc}."):
                        return 0
            if window.server is not None or not serve:
                def on_first_failure(code: str, text: str) -> None:
                    client.login_failed.disconnect(on_first_failure)
                    if client.welcome is None and not ask(text):
                        window.close()

                client.login_failed.connect(on_first_failure)
                client.connect_to(host, port, user)
    elif not ask():
        return 0
    window.show()
    code = app.exec()
    del signals  # stays installed: a second Ctrl+C while closing changes nothing
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
