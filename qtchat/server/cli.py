"""``qtchat-server``: a thin command-line shell around ChatServer."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from PySide6.QtCore import QCoreApplication

from qtchat import __version__
from qtchat.protocol import DEFAULT_MAX_FRAME
from qtchat.sysutil import QuitSignals, raise_open_file_limit

from .core import ChatServer, ServerConfig


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    d = ServerConfig()
    p = argparse.ArgumentParser(
        prog="qtchat-server",
        description="The qtchat chat server. Runs headless and logs to stderr; stop it with Ctrl+C or SIGTERM "
        "(clients are told 'bye').",
    )
    p.add_argument("--version", action="version", version=f"qtchat-server {__version__} (protocol 1)")
    p.add_argument("--host", default=d.host,
                   help="address to listen on: an IP address, localhost, 0.0.0.0 (all IPv4), :: (all IPv6) "
                        "or * (all) (default: %(default)s)")
    p.add_argument("--port", type=_port, default=d.port, help="TCP port, 0 picks a free one (default: %(default)s)")
    p.add_argument("--name", default=d.name, help="server name shown to clients (default: %(default)s)")
    p.add_argument("--motd", default=d.motd, help="message of the day sent to every user on login")
    p.add_argument("--max-clients", type=_positive_int, default=d.max_clients, metavar="N",
                   help="most connections at once; more are refused with 'server_full' (default: %(default)s)")
    p.add_argument("--max-frame", type=_positive_int, default=DEFAULT_MAX_FRAME, metavar="BYTES",
                   help="largest frame a client may send; larger ones are an error and a disconnect "
                        "(default: %(default)s)")
    p.add_argument("--max-output", type=_positive_int, default=d.max_output, metavar="BYTES",
                   help="unsent bytes allowed per client before a client that stopped reading is "
                        "disconnected (default: %(default)s)")
    p.add_argument("--handshake-timeout", type=_positive_float, default=d.handshake_timeout, metavar="SECONDS",
                   help="drop connections that send no hello for this long (default: %(default)s)")
    p.add_argument("--ping-interval", type=_positive_float, default=d.ping_interval, metavar="SECONDS",
                   help="ping a client silent for this long (default: %(default)s)")
    p.add_argument("--ping-timeout", type=_positive_float, default=d.ping_timeout, metavar="SECONDS",
                   help="drop a client still silent this long after the ping (default: %(default)s)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   help="stderr log level; 'info' logs connects, disconnects and errors, never chat text "
                        "(default: %(default)s)")
    return p


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig(
        host=args.host, port=args.port, name=args.name, motd=args.motd, max_clients=args.max_clients,
        max_frame=args.max_frame, max_output=args.max_output, handshake_timeout=args.handshake_timeout,
        ping_interval=args.ping_interval, ping_timeout=args.ping_timeout,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()), stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    log = logging.getLogger("qtchat.server")
    config = config_from_args(args)
    limit = raise_open_file_limit(config.max_clients + 64)
    if limit < config.max_clients + 16:
        log.warning("the open-file limit is %d: at most about %d clients can connect", limit, limit - 16)
    app = QCoreApplication.instance() or QCoreApplication([sys.argv[0]])
    app.setApplicationName("qtchat-server")
    server = ChatServer(config)
    try:
        server.listen()
    except OSError as exc:
        log.error("%s", exc)
        return 2
    server.stopped.connect(app.quit)
    signals = QuitSignals(lambda signum: server.shutdown("server shutting down"))
    code = app.exec()
    signals.uninstall()
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
