"""Starting a server on its backend: at once on one machine, once PostgreSQL answered for a node of a cluster.

``open_server(config, on_ready, on_failed)`` builds the ``ChatServer`` (listening) and hands it to
``on_ready``; what stops it (a data folder or a ban file it cannot use, a database that cannot be
reached, a port in use) goes to ``on_failed`` as a sentence. With ``config.database`` the PostgreSQL
backend (pg_backend.py) is opened first, on the event loop, which must be running for it.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable
from concurrent.futures import Future
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .config import ServerConfig
from .core import ChatServer

log = logging.getLogger("qtchat.server")


def resolve_dsn(dsn: str) -> str:
    """``dsn`` with each host name looked up once, as ``hostaddr`` beside it (the host name stays, for TLS
    and the password file): the connections made later on the event loop then resolve nothing. It blocks,
    so it is called before the server starts serving. ValueError with the reason when it cannot."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error as exc:
        raise ValueError(f"--database: not a PostgreSQL address ({exc})") from None
    hosts = str(params.get("host") or "").split(",") if params.get("host") else []
    if params.get("hostaddr") or not hosts or all(h.startswith(("/", "@")) for h in hosts):
        return dsn
    found = []
    for host in hosts:
        try:
            ipaddress.ip_address(host)
            found.append(host)
            continue
        except ValueError:
            pass
        try:
            found.append(str(socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0][4][0]))
        except OSError as exc:
            raise ValueError(f"--database: cannot find the PostgreSQL host {host!r}: {exc}") from None
    params["hostaddr"] = ",".join(found)
    return make_conninfo("", **params)


def resolve_redis(url: str) -> str:
    """``url`` with its host name looked up once (before serving, as ``resolve_dsn``); ValueError if it cannot."""
    parts = urlsplit(url)
    if parts.scheme != "redis" or not parts.hostname:  # (no TLS to Redis yet: redis_link.py)
        raise ValueError(f"--redis: not a Redis address: {url!r} (redis://host:port/0)")
    try:
        ipaddress.ip_address(parts.hostname)
        return url
    except ValueError:
        pass
    try:
        address = str(socket.getaddrinfo(parts.hostname, None, type=socket.SOCK_STREAM)[0][4][0])
    except OSError as exc:
        raise ValueError(f"--redis: cannot find the Redis host {parts.hostname!r}: {exc}") from None
    host = f"[{address}]" if ":" in address else address
    auth = parts.netloc.rpartition("@")[0]
    netloc = (auth + "@" if auth else "") + host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def open_server(config: ServerConfig, on_ready: Callable[[ChatServer], None],
                on_failed: Callable[[str], None]) -> None:
    """Build and start the server on its backend; ``on_ready(server)`` or ``on_failed(why)``, once."""
    if not config.database:
        try:
            server = ChatServer(config)  # a data folder or a ban file it cannot use: OSError
            server.listen()
        except OSError as exc:
            on_failed(str(exc))
            return
        on_ready(server)
        return

    from .pg_backend import PostgresBackend

    try:
        dsn = resolve_dsn(config.database)
        redis = resolve_redis(config.redis) if config.redis else None
        backend = PostgresBackend(dsn, history=config.history, keep_days=config.keep_days,
                                  keep_messages=config.keep_messages, redis=redis)
    except ValueError as exc:
        on_failed(str(exc))
        return
    log.info("connecting to PostgreSQL")

    def opened(future: Future[None]) -> None:
        exc = future.exception()
        if exc is not None:
            backend.close()
            backend.deleteLater()
            on_failed(f"cannot use the PostgreSQL database: {exc}")
            return
        server = ChatServer(config, backend=backend)
        try:
            server.listen()
        except OSError as again:
            server.deleteLater()  # and the backend with it
            on_failed(str(again))
            return
        on_ready(server)

    backend.open().add_done_callback(opened)
