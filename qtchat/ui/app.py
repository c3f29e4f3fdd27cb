"""``qtchat``: the desktop client's entry point."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from PySide6.QtWidgets import QApplication

from qtchat import __version__
from qtchat.client import ChatClient, Reason
from qtchat.client.settings import ClientSettings
from qtchat.hosting import start_local_server
from qtchat.protocol.addresses import parse_addresses
from qtchat.sysutil import QuitSignals

from .icon import app_icon
from .main_window import MainWindow
from .wording import reason_text


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qtchat",
        description="The qtchat desktop client. With no options it connects to the last server, "
        "or asks where to connect.",
    )
    p.add_argument("--version", action="version", version=f"qtchat {__version__} (protocol 1)")
    p.add_argument("--host", help="server to connect to (default: the last one, or 127.0.0.1); several addresses "
                   "of one server separated by commas (host or host:port, an IPv6 address in brackets) are "
                   "tried in turn, and another one when a connection drops")
    p.add_argument("--port", type=int, help="server port (default: the last one, or 4321)")
    p.add_argument("--user", help="username; with it, qtchat connects straight away")
    p.add_argument("--tls", action="store_true",
                   help="connect with TLS (encrypted); a certificate the system cannot verify is shown for you "
                        "to check and trust the first time")
    p.add_argument("--serve", action="store_true",
                   help="host a server on this computer (on --port) and join it (plain, for the local network)")
    p.add_argument("--self-test", action="store_true",
                   help="connect to --host/--port, send one message, wait for its acknowledgement and exit "
                        "0 (1 on failure); for checking an installation or a bundle")
    p.add_argument("--trust-fingerprint", metavar="SHA256",
                   help="with --self-test --tls: trust the server's certificate if it has this SHA-256 fingerprint")
    p.add_argument("--install-desktop-entry", action="store_true",
                   help="Linux: add qtchat to your desktop's application menu (for this user) and exit")
    return p


def self_test(host: str, port: int, user: str, timeout: float = 15.0, *, tls: bool = False,
              trust_fingerprint: str | None = None) -> int:
    """Log in, show the real window, send a message and wait for its acknowledgement."""
    import tempfile
    import time

    from PySide6.QtCore import QSettings, QTimer

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tempfile.mkdtemp(prefix="qtchat-"))
    app = QApplication.instance() or QApplication(sys.argv[:1])
    client = ChatClient()
    if trust_fingerprint:  # pinned in this run's temporary settings only
        for address in parse_addresses(host, port):
            client.trust_certificate(*address, trust_fingerprint)
    window = MainWindow(client, ClientSettings(), app_icon())
    window.show()
    result: dict[str, Any] = {"code": 1, "text": f"no answer from {host}:{port} within {timeout:g} s"}
    started = time.perf_counter()
    token = f"self-test {time.time_ns()}"

    def done(code: int, text: str) -> None:
        result.update(code=code, text=text)
        window._quitting = True
        client.quit()
        app.quit()

    client.logged_in.connect(lambda welcome: window.conversation.send(token))
    client.message_acked.connect(
        lambda cid, msg: done(0, f"ok: logged in as {client.me}{' over ' + client.tls_summary() if tls else ''}, "
                                 f"message {msg.id} acknowledged in {(time.perf_counter() - started) * 1000:.0f} ms"))
    client.login_failed.connect(lambda code, reason: done(1, f"login failed ({code}): {reason_text(reason)}"))
    QTimer.singleShot(int(timeout * 1000), app.quit)
    client.connect_to(host, port, user, tls=tls)
    app.exec()
    from qtchat.assets import resource_dir

    folder = resource_dir()
    if folder is None and result["code"] == 0:
        result.update(code=1, text="the resource files (icons, desktop entry) are missing")
    print(f"qtchat self-test: {result['text']}; resources: {folder}",
          file=sys.stdout if result["code"] == 0 else sys.stderr)
    return int(result["code"])


def install_desktop_entry() -> int:
    """Write the .desktop file and icons into the user's XDG data folder, pointing at this program."""
    import shutil
    from pathlib import Path

    from PySide6.QtCore import QStandardPaths

    from qtchat.assets import resource, resource_dir

    if not sys.platform.startswith("linux"):
        print("qtchat: desktop entries are a Linux (freedesktop) feature; nothing to do here", file=sys.stderr)
        return 1
    folder = resource_dir()
    if folder is None:
        print("qtchat: the resource files are missing from this installation", file=sys.stderr)
        return 1
    if getattr(sys, "frozen", False):
        command = f'"{sys.executable}"'
    elif shutil.which("qtchat"):
        command = f'"{shutil.which("qtchat")}"'
    else:
        command = f'"{sys.executable}" -m qtchat'
    data = Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation))
    entry = data / "applications" / "qtchat.desktop"
    entry.parent.mkdir(parents=True, exist_ok=True)
    text = (folder / "qtchat.desktop").read_text(encoding="utf-8")
    entry.write_text(text.replace("Exec=qtchat", f"Exec={command}"), encoding="utf-8")
    written = [entry]
    for size in (16, 24, 32, 48, 64, 128, 256, 512):
        png = resource(f"qtchat-{size}.png")
        if png is not None:
            target = data / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "qtchat.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(png, target)
            written.append(target)
    svg = resource("qtchat.svg")
    if svg is not None:
        target = data / "icons" / "hicolor" / "scalable" / "apps" / "qtchat.svg"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(svg, target)
        written.append(target)
    print(f"qtchat: installed {entry} (runs {command}) and {len(written) - 1} icons")
    return 0


def _check_trust_fingerprint(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    from qtchat.tls import normalize_fingerprint

    if not (args.self_test and args.tls):
        parser.error("--trust-fingerprint is for --self-test --tls only (the window asks you to check it)")
    try:
        normalize_fingerprint(args.trust_fingerprint)
    except ValueError as exc:
        parser.error(str(exc))


def _application() -> QApplication:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setOrganizationName("qtchat")
    app.setApplicationName("qtchat")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("qtchat")
    return app


def _connect_directly(args: argparse.Namespace, settings: ClientSettings, client: ChatClient,
                      window: MainWindow) -> bool:
    """Connect (and host) as the command line or the last session says; False when the user cancelled."""
    user = args.user or settings.user
    port = args.port or settings.port
    serve = args.serve or (settings.hosting and not (args.host or args.user))
    host = "127.0.0.1" if serve else (args.host or settings.host)
    tls = not serve and (args.tls or (settings.tls and not args.host))
    if not user:
        return window.open_connect_dialog()
    if serve:
        try:
            window.set_server(start_local_server(port))
        except OSError as exc:
            if not window.open_connect_dialog(f"Cannot host on port {port}: {exc}."):
                return False
    if window.server is not None or not serve:
        def on_first_failure(code: str, reason: Reason) -> None:
            client.login_failed.disconnect(on_first_failure)
            if client.welcome is None and not window.open_connect_dialog(reason_text(reason)):
                window.close()

        client.login_failed.connect(on_first_failure)
        client.connect_to(host, port, user, tls=tls)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.install_desktop_entry:
        return install_desktop_entry()
    if args.trust_fingerprint is not None:
        _check_trust_fingerprint(parser, args)
    if args.host is not None:
        try:
            parse_addresses(args.host, args.port or 4321)
        except ValueError as exc:
            parser.error(f"--host: {exc}")
    if args.self_test:
        return self_test(args.host or "127.0.0.1", args.port or 4321, args.user or "self-test", tls=args.tls,
                         trust_fingerprint=args.trust_fingerprint)
    app = _application()
    icon = app_icon()
    app.setWindowIcon(icon)
    settings = ClientSettings()
    client = ChatClient()
    window = MainWindow(client, settings, icon)

    def on_signal(signum: int) -> None:
        window.close()

    signals = QuitSignals(on_signal)
    direct = bool(args.user or args.host or args.serve) or settings.has_server
    if not (_connect_directly(args, settings, client, window) if direct else window.open_connect_dialog()):
        return 0
    window.show()
    code = app.exec()
    del signals  # stays installed: a second Ctrl+C while closing changes nothing
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
