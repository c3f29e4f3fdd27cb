"""``qtchat-server``: a thin command-line shell around ChatServer.

The admin window (``--admin``) is a widget, so it is not imported here: the
``qtchat-server`` command is qtchat/server_app.py, which hands it in.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QTimer

from qtchat import __version__
from qtchat.protocol import DEFAULT_MAX_FRAME
from qtchat.protocol.addresses import format_address, parse_addresses
from qtchat.protocol.events import MAX_BAN_MINUTES
from qtchat.sysutil import QuitSignals, raise_open_file_limit

from .admin import AdminChannel, channel_name, check_socket
from .config import ServerConfig
from .core import ChatServer
from .guard import AccountLimits
from .startup import open_server


def _whole(low: int, high: int | None = None, unit: str = "") -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` (to ``high``), or a clear error naming what was given."""
    unit = f" {unit}" if unit else ""
    wanted = (f"a whole number{unit} from {low} to {high}" if high is not None else
              f"a positive whole number{unit}" if low == 1 else f"a whole number{unit}, {low} or more")

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    return parse


def _real(wanted: str, ok: Callable[[float], bool]) -> Callable[[str], float]:
    """An argparse type: a finite number for which ``ok`` holds, or a clear error naming what was given."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and ok(value)):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    return parse


_positive_int = _whole(1)
_count = _whole(0)
_frame_size = _whole(1024, 16 * 1024 * 1024, "of bytes")
_port = _whole(0, 65535)
_positive_float = _real("a number of seconds greater than 0", lambda v: v > 0)
_window = _real("a number of seconds, 0 or more (at most ten years)", lambda v: 0 <= v <= 10 * 365 * 86400)
_days = _real("a number of days greater than 0", lambda v: v > 0)
_rate = _real("a number, 0 or more (below 10^12)", lambda v: 0 <= v < 1e12)
_ban_minutes = _real(f"a number of minutes greater than 0, at most {MAX_BAN_MINUTES} (ten years; leave "
                     f"--minutes out for a ban for good)", lambda v: 0 < v <= MAX_BAN_MINUTES)


def _account_flags(p: argparse.ArgumentParser, d: AccountLimits) -> None:
    acc = p.add_argument_group(
        "limits on accounts",
        "Against password guessing, mass registration and hashing floods; see docs/SECURITY.md. Each count is "
        "a sliding window of --account-window seconds; an IPv4 address counts alone, an IPv6 address by its /64. "
        "Past a limit the answer is 'too_many_attempts' and nothing is hashed. 0 turns a limit off.")
    acc.add_argument("--account-window", type=_positive_float, default=d.window, metavar="SECONDS",
                     help="how long every count below is kept (default: %(default)s)")
    acc.add_argument("--failures-per-address", type=_count, default=d.failures_per_address, metavar="N",
                     help="wrong passwords (logins and password changes) from one address (default: %(default)s)")
    acc.add_argument("--failures-per-account", type=_count, default=d.failures_per_account, metavar="N",
                     help="wrong passwords for one account, from anywhere (default: %(default)s)")
    acc.add_argument("--registrations-per-address", type=_count, default=d.registrations_per_address, metavar="N",
                     help="registrations tried from one address (default: %(default)s)")
    acc.add_argument("--registrations-total", type=_count, default=d.registrations_total, metavar="N",
                     help="registrations tried on the whole server (default: %(default)s)")
    acc.add_argument("--passwd-per-account", type=_count, default=d.passwd_per_account, metavar="N",
                     help="password changes tried by one account, right or wrong (default: %(default)s)")
    acc.add_argument("--hash-jobs-per-address", type=_count, default=d.jobs_per_address, metavar="N",
                     help="password checks of one address queued or running at once; more get 'server_busy' "
                          "(default: %(default)s)")


def account_limits_from_args(args: argparse.Namespace) -> AccountLimits:
    return AccountLimits(
        window=args.account_window, failures_per_address=args.failures_per_address,
        failures_per_account=args.failures_per_account, registrations_per_address=args.registrations_per_address,
        registrations_total=args.registrations_total, passwd_per_account=args.passwd_per_account,
        jobs_per_address=args.hash_jobs_per_address)


def _nodes(text: str) -> tuple[str, ...]:
    """--nodes: host:port entries, comma-separated, each with its port (an IPv6 host in brackets)."""
    try:
        return tuple(format_address(*a) for a in parse_addresses(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    d = ServerConfig()
    p = argparse.ArgumentParser(
        prog="qtchat-server",
        description="The qtchat chat server. Runs headless and logs to stderr; stop it with Ctrl+C or SIGTERM "
        "(clients are told 'bye').",
        epilog="Also: 'qtchat-server admin --help' (operate a running server) and 'qtchat-server migrate --help' "
        "(copy a data folder into PostgreSQL for a cluster).",
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
    p.add_argument("--max-frame", type=_frame_size, default=DEFAULT_MAX_FRAME, metavar="BYTES",
                   help="largest frame a client may send; larger ones are an error and a disconnect "
                        "(default: %(default)s)")
    p.add_argument("--max-output", type=_positive_int, default=d.max_output, metavar="BYTES",
                   help="unsent bytes allowed per client before a client that stopped reading is "
                        "disconnected (default: %(default)s)")
    p.add_argument("--handshake-timeout", type=_positive_float, default=d.handshake_timeout, metavar="SECONDS",
                   help="drop connections that complete no hello for this long, however slowly they send "
                        "(default: %(default)s)")
    p.add_argument("--ping-interval", type=_positive_float, default=d.ping_interval, metavar="SECONDS",
                   help="ping a client silent for this long (default: %(default)s)")
    p.add_argument("--ping-timeout", type=_positive_float, default=d.ping_timeout, metavar="SECONDS",
                   help="drop a client still silent this long after the ping (default: %(default)s)")
    p.add_argument("--max-rooms", type=_positive_int, default=d.max_rooms_per_user, metavar="N",
                   help="rooms one user may be in at once (default: %(default)s)")
    p.add_argument("--typing-max-members", type=_count, default=d.typing_max_members, metavar="N",
                   help="relay typing indicators only in rooms of at most N members; 0: in all (default: %(default)s)")
    lim = p.add_argument_group(
        "limits per connection",
        "Against floods and connection exhaustion; see docs/SECURITY.md. 0 turns a limit off. A chat message "
        "over a rate limit is refused with 'slow_down' (the client may send it again later); a client that "
        "keeps flooding is disconnected with 'flood'.")
    lim.add_argument("--rate-messages", type=_rate, default=d.rate_messages, metavar="PER_S",
                     help="chat messages (and topic changes) per second (default: %(default)s)")
    lim.add_argument("--rate-burst", type=_positive_int, default=d.rate_burst, metavar="N",
                     help="chat messages a client may send at once after a quiet spell (default: %(default)s)")
    lim.add_argument("--rate-bytes", type=_count, default=d.rate_bytes, metavar="BYTES_PER_S",
                     help="bytes received per second, all frames counted (default: %(default)s)")
    lim.add_argument("--rate-bytes-burst", type=_positive_int, default=d.rate_bytes_burst, metavar="BYTES",
                     help="bytes a client may send at once after a quiet spell; never less than --max-frame + 2; "
                          "a client that runs this far into debt is disconnected (default: %(default)s)")
    lim.add_argument("--flood-after", type=_count, default=d.flood_after, metavar="N",
                     help="disconnect a client after more than N refused messages within --flood-window "
                          "(default: %(default)s)")
    lim.add_argument("--flood-window", type=_positive_float, default=d.flood_window, metavar="SECONDS",
                     help="see --flood-after (default: %(default)s)")
    lim.add_argument("--rate-work", type=_rate, default=d.rate_work, metavar="UNITS_PER_S",
                     help="what a connection's requests may cost the server, in work units per second (about "
                          "0.1 ms each; a history page of 500 is 52, a search 20-60): frames past it wait their turn "
                          "(default: %(default)s)")
    lim.add_argument("--rate-work-burst", type=_rate, default=d.rate_work_burst, metavar="UNITS",
                     help="work units a connection may spend at once after a quiet spell (default: %(default)s)")
    lim.add_argument("--max-backlog", type=_positive_int, default=d.max_backlog, metavar="N",
                     help="frames of one connection waiting their turn before it is disconnected with 'flood' "
                          "(default: %(default)s)")
    lim.add_argument("--max-per-address", type=_count, default=d.max_per_address, metavar="N",
                     help="simultaneous connections from one IP address, loopback included; more are refused "
                          "with 'too_many_connections' (default: %(default)s)")
    _account_flags(p, d.account_limits)
    p.add_argument("--data-dir", type=Path, metavar="DIR",
                   help="where the server keeps its state (messages.db, the history; bans.json); "
                        "default: the platform's data folder")
    p.add_argument("--database", metavar="URL",
                   help="run as a node of a cluster: keep everything in this PostgreSQL database instead of the "
                        "data folder (postgresql://user@host:port/dbname; several nodes share one; "
                        "see docs/SCALING.md)")
    p.add_argument("--redis", metavar="URL",
                   help="with --database: the Redis server the nodes of a cluster pass each other's messages through "
                        "(redis://host:port/0); without it they still chat, through PostgreSQL, within about half "
                        "a second")
    p.add_argument("--nodes", type=_nodes, default=(), metavar="HOST:PORT,...",
                   help="the addresses of the cluster's nodes, announced to clients at login (welcome.nodes): a "
                        "client whose node goes away reconnects to another one of them by itself")
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="read options from this TOML file first (keys are the long options without '--', e.g. "
                        "port = 4321, database = \"postgresql://...\", require-accounts = true); options given "
                        "on the command line win. Environment variables QTCHAT_SERVER_<OPTION> (e.g. "
                        "QTCHAT_SERVER_DATABASE) come between the two")
    p.add_argument("--keep-days", type=_days, metavar="DAYS",
                   help="history retention: forget messages older than this, private messages waiting for "
                        "offline users too (default: keep)")
    p.add_argument("--keep-messages", type=_positive_int, metavar="N",
                   help="history retention: keep at most N messages per room (default: keep all)")
    p.add_argument("--no-history", action="store_true",
                   help="keep no message history (nothing is written to disk; history requests get nothing; "
                        "private messages to offline users are not kept either)")
    p.add_argument("--edit-window", type=_window, default=d.edit_window, metavar="SECONDS",
                   help="how long after sending a room message its author may edit it (deleting has no limit); 0: "
                        "no edits (default: %(default)s)")
    p.add_argument("--mailbox-size", type=_count, default=d.mailbox_size, metavar="N",
                   help="private messages kept for a registered user who is offline, delivered at their next "
                        "login; more are refused with 'mailbox_full', 0 keeps none (default: %(default)s)")
    p.add_argument("--mailbox-per-sender", type=_count, default=d.mailbox_per_sender, metavar="N",
                   help="of those, how many one sender may have waiting in one user's mailbox; more from them "
                        "are refused with 'mailbox_full', others can still write; 0: no share (default: %(default)s)")
    p.add_argument("--require-accounts", action="store_true",
                   help="admit registered names only (a name is registered with a password by its user, "
                        "or by 'qtchat-server admin register NAME')")
    p.add_argument("--no-registration", action="store_true",
                   help="users cannot register names themselves; only 'qtchat-server admin register' can")
    p.add_argument("--admin", action="store_true",
                   help="open the admin window (connected users, kick, ban, broadcast) while serving")
    p.add_argument("--no-admin-channel", action="store_true",
                   help="do not open the local admin channel used by 'qtchat-server admin ...'")
    tls = p.add_argument_group(
        "TLS (encryption)",
        "With --tls-cert and --tls-key every connection is TLS (the same protocol inside TLS; plain clients "
        "are refused). --generate-cert makes a self-signed certificate to start with; clients then check its "
        "SHA-256 fingerprint once, the first time they connect.")
    tls.add_argument("--tls-cert", type=Path, metavar="FILE",
                     help="PEM certificate (or chain, the server's own first) to serve with TLS")
    tls.add_argument("--tls-key", type=Path, metavar="FILE", help="PEM private key of --tls-cert (no passphrase)")
    tls.add_argument("--generate-cert", action="store_true",
                     help="write a self-signed certificate and its private key (EC P-256, valid two years), "
                          "print its fingerprint and exit")
    tls.add_argument("--cert-out", type=Path, metavar="FILE",
                     help="with --generate-cert: where to write the certificate (default: cert.pem in the data folder)")
    tls.add_argument("--key-out", type=Path, metavar="FILE",
                     help="with --generate-cert: where to write the private key, readable by you only "
                          "(default: key.pem in the data folder)")
    tls.add_argument("--cert-name", action="append", default=[], metavar="HOSTNAME",
                     help="with --generate-cert: a host name or address clients use to reach the server "
                          "(repeat for several); localhost, 127.0.0.1 and ::1 are always included")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   help="stderr log level; 'info' logs connects, disconnects and errors, never chat text "
                        "(default: %(default)s)")
    return p


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig(
        host=args.host, port=args.port, name=args.name, motd=args.motd, max_clients=args.max_clients,
        max_frame=args.max_frame, max_output=args.max_output, handshake_timeout=args.handshake_timeout,
        ping_interval=args.ping_interval, ping_timeout=args.ping_timeout, data_dir=args.data_dir,
        database=args.database, redis=args.redis, nodes=args.nodes,
        keep_days=args.keep_days, keep_messages=args.keep_messages, history=not args.no_history,
        mailbox_size=args.mailbox_size, mailbox_per_sender=args.mailbox_per_sender, edit_window=args.edit_window,
        require_accounts=args.require_accounts, registration=not args.no_registration,
        max_rooms_per_user=args.max_rooms, rate_messages=args.rate_messages, rate_burst=args.rate_burst,
        rate_bytes=args.rate_bytes, rate_bytes_burst=args.rate_bytes_burst, flood_after=args.flood_after,
        flood_window=args.flood_window, max_per_address=args.max_per_address, rate_work=args.rate_work,
        rate_work_burst=args.rate_work_burst, max_backlog=args.max_backlog, typing_max_members=args.typing_max_members,
        account_limits=account_limits_from_args(args), tls_cert=args.tls_cert, tls_key=args.tls_key,
    )


def default_data_dir() -> Path:
    from PySide6.QtCore import QStandardPaths

    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation)
    return Path(base or Path.home()) / "qtchat-server"


def migrate_main(argv: Sequence[str]) -> int:
    """``qtchat-server migrate ...`` (migrate.py: imported only then, it needs psycopg)."""
    from .migrate import migrate_main as run

    return run(argv)


AdminWindow = Callable[[ServerConfig, bool], int]  # (config, open the admin channel) -> exit code


def main(argv: Sequence[str] | None = None, *, admin_window: AdminWindow | None = None) -> int:
    """Run the server (headless, or with ``admin_window`` for ``--admin``); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = SUBCOMMANDS.get(next(iter(argv), ""))  # qtchat-server admin ..., qtchat-server migrate ...
    if command is not None:
        return command(argv[1:])
    parser = build_parser()
    args = parse_with_presets(parser, argv)
    if args.generate_cert:
        return generate_cert_main(args)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together: give both, or neither")
    if args.cert_out or args.key_out or args.cert_name:
        parser.error("--cert-out, --key-out and --cert-name go with --generate-cert")
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()), stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    log = logging.getLogger("qtchat.server")
    config = config_from_args(args)
    if config.data_dir is None and not config.database:
        config.data_dir = default_data_dir()
    limit = raise_open_file_limit(config.max_clients + 64)
    if limit < config.max_clients + 16:
        log.warning("the open-file limit is %d: at most about %d clients can connect", limit, limit - 16)
    if args.admin:
        if admin_window is None:
            parser.error("--admin: this program has no admin window (run the qtchat-server command)")
        return admin_window(config, not args.no_admin_channel)
    return serve(config, admin_channel=not args.no_admin_channel)


def serve(config: ServerConfig, *, admin_channel: bool) -> int:
    """Run the server headless until it stops; the exit code."""
    log = logging.getLogger("qtchat.server")
    app = QCoreApplication.instance() or QCoreApplication([sys.argv[0]])
    app.setApplicationName("qtchat-server")
    running: list[ChatServer] = []

    def ready(server: ChatServer) -> None:
        running.append(server)
        server.stopped.connect(app.quit)
        if admin_channel:
            try:
                AdminChannel(server, channel_name(server.port)).listen()
            except OSError as exc:
                log.error("%s", exc)
                app.exit(2)

    def failed(why: str) -> None:
        log.error("%s", why)
        app.exit(2)

    # kept installed until the process ends: a second Ctrl+C while closing changes nothing
    signals = QuitSignals(lambda signum: running[0].shutdown("server shutting down") if running else app.exit(1))
    QTimer.singleShot(0, lambda: open_server(config, ready, failed))
    code = app.exec()
    del signals
    return int(code)


def parse_with_presets(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """The command line, after the config file's options and the environment's (the command line wins)."""
    args = parser.parse_args(argv)
    try:
        preset = [*config_file_args(parser, args.config), *environment_args(parser, os.environ)]
    except ValueError as exc:
        parser.error(str(exc))
    if preset:
        args = parser.parse_args([*preset, *argv])
    if args.redis and not args.database:
        parser.error("--redis goes with --database (the nodes of a cluster share both)")
    if args.database and args.data_dir:
        parser.error("--database and --data-dir do not go together: a node of a cluster keeps nothing in a folder")
    return args


def config_file_args(parser: argparse.ArgumentParser, path: Path | None) -> list[str]:
    """The options of a TOML config file as command-line arguments (ValueError with the reason)."""
    if path is None:
        return []
    try:
        with path.open("rb") as f:
            table = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"--config: cannot read {path}: {exc}") from None
    return _as_args(parser, table, f"{path}")


def environment_args(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> list[str]:
    """QTCHAT_SERVER_<OPTION> variables as command-line arguments (a flag's variable: 1/true/yes or 0/false/no)."""
    table: dict[str, object] = {}
    for name, value in env.items():
        if name.startswith("QTCHAT_SERVER_"):
            option = name[len("QTCHAT_SERVER_"):].lower()
            flag = _options(parser).get(option.replace("_", "-"))
            if flag is not None and flag.nargs == 0:
                if value.lower() not in ("1", "true", "yes", "0", "false", "no", ""):
                    raise ValueError(f"{name}={value!r}: a flag's variable is 1/true/yes or 0/false/no")
                table[option] = value.lower() in ("1", "true", "yes")
            else:
                table[option] = value
    return _as_args(parser, table, "the environment (QTCHAT_SERVER_...)")


_NOT_PRESET = {"help", "version", "config", "admin", "generate-cert"}


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {s[2:]: a for a in parser._actions for s in a.option_strings if s.startswith("--")}


def _as_args(parser: argparse.ArgumentParser, table: Mapping[str, object], where: str) -> list[str]:
    options = _options(parser)
    args: list[str] = []
    for key, value in table.items():
        name = key.replace("_", "-")
        action = options.get(name)
        if action is None or name in _NOT_PRESET:
            raise ValueError(f"{where}: {key!r} is not an option that can be set there")
        if action.nargs == 0:  # a flag
            if not isinstance(value, bool):
                raise ValueError(f"{where}: {key!r} is a flag: true or false")
            if value:
                args.append(f"--{name}")
            continue
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, (dict, list, bool)):
                raise ValueError(f"{where}: {key!r} takes a value, not {item!r}")
            args += [f"--{name}", str(item)]
    return args


def generate_cert_main(args: argparse.Namespace) -> int:
    """``qtchat-server --generate-cert``: write a self-signed certificate and key, say how to use them."""
    import os
    import shlex
    import subprocess

    from qtchat.tls import format_fingerprint, generate_certificate

    folder = args.data_dir or default_data_dir()
    cert_path = (args.cert_out or folder / "cert.pem").absolute()
    key_path = (args.key_out or folder / "key.pem").absolute()
    if cert_path == key_path:
        print("qtchat-server: the certificate and the key need two different files", file=sys.stderr)
        return 2
    if not (args.cert_out and args.key_out) and not folder.exists():
        folder.mkdir(mode=0o700, parents=True)  # the data folder, private as the server makes it
    try:
        made = generate_certificate(cert_path, key_path, args.cert_name)
    except OSError as exc:
        print(f"qtchat-server: cannot write the certificate: {exc}", file=sys.stderr)
        return 2
    command = ["qtchat-server", "--tls-cert", str(cert_path), "--tls-key", str(key_path)]
    shown = subprocess.list2cmdline(command) if os.name == "nt" else shlex.join(command)
    print(f"Wrote a self-signed certificate for {', '.join(made.names)} (valid two years)\n"
          f"  certificate: {cert_path}\n"
          f"  private key: {key_path} (keep it secret: readable by you only)\n"
          f"SHA-256 fingerprint (tell your users: their client shows it the first time they connect):\n"
          f"  {format_fingerprint(made.fingerprint)}\n"
          f"Start the server with it:\n"
          f"  {shown}")
    return 0


def _target(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?")
    p.add_argument("--id", type=_count, metavar="N",
                   help="the user with this connection id (as 'users' lists them), exactly the one you saw")


def build_admin_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qtchat-server admin",
        description="Operate a running qtchat-server from this machine, as the user that runs it "
        "(over its local admin channel).",
    )
    p.add_argument("--port", type=_port, default=ServerConfig().port, help="the server's port (default: %(default)s)")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    sub.add_parser("status", help="users, connections, messages")
    sub.add_parser("users", help="list connected users")
    kick = sub.add_parser("kick", help="disconnect a user, telling them why (with --room: only out of that room)")
    _target(kick)
    kick.add_argument("--room", help="remove the user from this room only, as its operators can")
    kick.add_argument("--reason", default="")
    ban = sub.add_parser("ban", help="ban a name and/or an address (kicks who matches)")
    _target(ban)
    ban.add_argument("--address", help="an IP address to ban")
    ban.add_argument("--minutes", type=_ban_minutes, help="ban for this long (default: for good)")
    ban.add_argument("--reason", default="")
    unban = sub.add_parser("unban", help="lift the bans on a name or an address")
    unban.add_argument("target")
    sub.add_parser("bans", help="list the bans")
    for name in ("mute", "unmute"):
        _target(sub.add_parser(name, help=f"{name} a user"))
    bc = sub.add_parser("broadcast", help="send a notice to everyone")
    bc.add_argument("text", nargs="+")
    sub.add_parser("pause", help="stop accepting new connections")
    sub.add_parser("resume", help="accept new connections again")
    limit = sub.add_parser("limit", help="change the client limit")
    limit.add_argument("count", type=_positive_int)
    sub.add_parser("accounts", help="list the registered names")
    register = sub.add_parser("register", help="register a name (asks for its password)")
    register.add_argument("name")
    register.add_argument("--op", action="store_true", help="give it the operator role (kick and ban from the client)")
    sub.add_parser("unregister", help="delete a name's account").add_argument("name")
    sub.add_parser("passwd", help="set a new password for a registered name (asks for it)").add_argument("name")
    sub.add_parser("op", help="give a registered name the operator role").add_argument("name")
    sub.add_parser("deop", help="take the operator role away").add_argument("name")
    return p


def _ask_password(name: str) -> str:
    """The new password for ``name``, asked twice on the terminal (or one line from a pipe), hashed here:
    the password itself never travels to the server."""
    import getpass

    from qtchat.protocol import check_password

    from .accounts import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass(f"Password for {name}: ")
        if getpass.getpass("Again: ") != password:
            raise SystemExit("qtchat-server admin: the passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    problem = check_password(password)
    if problem is not None:
        raise SystemExit(f"qtchat-server admin: {problem}")
    return hash_password(password)


def _check_target(args: argparse.Namespace) -> None:
    given = (args.name is not None) + (args.id is not None)
    if given == 2 or (given == 0 and not getattr(args, "address", None)):
        extra = ", --address, or a name or --id with --address" if args.cmd == "ban" else " (not both)"
        raise SystemExit(f"qtchat-server admin {args.cmd}: give a name or --id{extra}")


def admin_request(args: argparse.Namespace) -> dict[str, Any]:
    cmd = args.cmd
    if cmd in ("kick", "mute", "unmute", "ban"):
        _check_target(args)
    if cmd == "ban":
        return {"cmd": "ban", "name": args.name, "id": args.id, "address": args.address, "reason": args.reason,
                "seconds": args.minutes * 60 if args.minutes else None}
    if cmd in ("pause", "resume"):
        return {"cmd": "accept", "on": cmd == "resume"}
    if cmd == "register":
        return {"cmd": "register", "name": args.name, "admin": args.op, "hash": _ask_password(args.name)}
    if cmd == "passwd":
        return {"cmd": "passwd", "name": args.name, "hash": _ask_password(args.name)}
    fields = {k: v for k, v in vars(args).items() if k not in ("cmd", "port")}
    if cmd == "broadcast":
        fields["text"] = " ".join(args.text)
    return {"cmd": cmd, **fields}


def admin_main(argv: Sequence[str]) -> int:
    """``qtchat-server admin ...``: send one command to the running server and print its answer."""
    from PySide6.QtNetwork import QLocalSocket

    from qtchat.protocol import encode_frame

    args = build_admin_parser().parse_args(argv)
    app = QCoreApplication.instance() or QCoreApplication([sys.argv[0]])
    del app
    try:
        name = channel_name(args.port)
        mine = check_socket(name)
    except OSError as exc:
        print(f"qtchat-server admin: {exc}", file=sys.stderr)
        return 2
    sock = QLocalSocket()
    if os.name != "nt" and not mine:
        print(f"qtchat-server admin: no qtchat-server of yours is running on port {args.port} (no {name})",
              file=sys.stderr)
        return 2
    sock.connectToServer(name)
    if not sock.waitForConnected(3000):
        print(f"qtchat-server admin: no qtchat-server of yours is running on port {args.port} "
              f"({sock.errorString()})", file=sys.stderr)
        return 2
    sock.write(encode_frame(admin_request(args)))
    sock.waitForBytesWritten(3000)
    data = b""
    while not data.endswith(b"\n") and sock.waitForReadyRead(5000):
        data += bytes(sock.readAll().data())
    sock.disconnectFromServer()
    if not data:
        print("qtchat-server admin: the server did not answer", file=sys.stderr)
        return 2
    reply = json.loads(data)
    print(reply.get("message", ""))
    for row in reply.get("users", []) if isinstance(reply.get("users"), list) else []:
        name = row["name"] if row["name"].isascii() else f"{row['name']} ({ascii(row['name'])[1:-1]})"
        print(f"  {row['id']:>6}  {name:<32} {row['peer']:<22} idle {row['idle_s']:>7.1f} s  {row['messages']:>6} msgs"
              f"{'  (muted)' if row.get('muted') else ''}{'  on node ' + row['node'] if row.get('node') else ''}")
    for line in reply.get("bans", []):
        print(f"  {line}")
    for account in reply.get("accounts", []):
        print(f"  {account['name']:<32}{'  operator' if account.get('admin') else ''}")
    return 0 if reply.get("ok") else 1


SUBCOMMANDS: dict[str, Callable[[Sequence[str]], int]] = {"admin": admin_main, "migrate": migrate_main}


if __name__ == "__main__":
    sys.exit(main())
