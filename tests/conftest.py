"""Test setup: Qt offscreen, enough file descriptors, and a live server fixture."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before anything imports Qt

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from qtchat.sysutil import raise_open_file_limit

raise_open_file_limit(8192)


@pytest.fixture(autouse=True)
def private_settings(tmp_path):
    """QSettings in a temporary folder: tests never read or write the user's real settings."""
    from PySide6.QtCore import QCoreApplication, QSettings

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    QCoreApplication.setOrganizationName("qtchat-tests")
    QCoreApplication.setApplicationName("qtchat")


# Tests set their scenes up faster than any person types (thousands of messages, hundreds of clients,
# all from 127.0.0.1), so the servers they make have the per-connection limits off unless a test
# asks for them; the limits' own tests (tests/server/test_bad_input.py) pass them explicitly.
NO_LIMITS: dict[str, Any] = {"rate_messages": 0, "rate_bytes": 0, "max_per_address": 0, "rate_work": 0}


BACKENDS = ("sqlite", "memory-later", "postgresql")  # what a test marked 'backends' runs on (tests/server/conftest.py)


@pytest.fixture
def backend_kind() -> str:
    """The storage backend of the servers make_server makes: SQLite, unless a test runs on every one."""
    return "sqlite"


@pytest.fixture
def make_server(qtbot, backend_kind, request):
    """Factory: a ChatServer listening on 127.0.0.1, a free port, with the given config fields
    (and the per-connection limits off, unless given), on the backend ``backend_kind`` names
    ("postgresql": a new database of the session's PostgreSQL server for each server made)."""
    from qtchat.server import ChatServer, MemoryBackend, ServerConfig
    from qtchat.server.backend import Backend

    servers: list[ChatServer] = []

    def make(**overrides: Any) -> ChatServer:
        config = ServerConfig(**{"host": "127.0.0.1", "port": 0, **NO_LIMITS, **overrides})
        backend: Backend | None = None
        if backend_kind == "memory-later":  # answers on a later loop pass, as a database over a socket does
            assert config.data_dir is None, "a test that keeps a data folder runs on SQLite only"
            backend = MemoryBackend(history=config.history, keep_days=config.keep_days,
                                    keep_per_room=config.keep_messages or 20_000, answer_later=True)
        elif backend_kind == "postgresql":
            assert config.data_dir is None, "a test that keeps a data folder runs on SQLite only"
            backend = open_postgres(qtbot, request.getfixturevalue("postgres_server"), config)
        server = ChatServer(config, backend=backend)
        server.listen()
        servers.append(server)
        return server

    yield make
    stop_servers(qtbot, servers)


def stop_servers(qtbot, servers) -> None:
    for server in servers:
        server.shutdown("test over")
        qtbot.waitUntil(lambda s=server: not s.peers, timeout=5000)
        server.deleteLater()


@pytest.fixture
def cluster_nodes(qtbot, request):
    """Factory: ``make(count, redis=True, announce=False)``, that many in-process nodes sharing one new database of
    the session's PostgreSQL (and its Redis); ``announce``: each names them all in welcome (``--nodes``)."""
    from qtchat.server import ChatServer, ServerConfig

    made: list[ChatServer] = []

    def make(count: int, *, redis: bool = True, announce: bool = False) -> list[ChatServer]:
        postgres_server = request.getfixturevalue("postgres_server")
        database = postgres_server.new_database()
        servers = []
        for _ in range(count):
            config = ServerConfig(host="127.0.0.1", port=0, **NO_LIMITS)
            config.redis = request.getfixturevalue("redis_server").url if redis else None
            server = ChatServer(config, backend=open_postgres(qtbot, postgres_server, config, database))
            server.listen()
            servers.append(server)
        if announce:  # the ports are known once they listen; welcome reads the config at each login
            for server in servers:
                server.config.nodes = tuple(f"127.0.0.1:{s.port}" for s in servers)
        made.extend(servers)
        return servers

    yield make
    stop_servers(qtbot, made)


def open_postgres(qtbot, postgres_server, config, database: str | None = None):
    """A PostgresBackend on a new database (or ``database``), opened: what the server is built on."""
    from qtchat.server.pg_backend import PostgresBackend

    backend = PostgresBackend(postgres_server.dsn(database or postgres_server.new_database()),
                              history=config.history, keep_days=config.keep_days, keep_messages=config.keep_messages,
                              redis=config.redis)
    opened = backend.open()
    qtbot.waitUntil(opened.done, timeout=10_000)
    opened.result()
    return backend


@pytest.fixture
def server(make_server):
    return make_server()


@pytest.fixture
def connect(qtbot, server) -> Iterator[Callable[..., object]]:
    """Factory: a RawClient connected to ``server`` (pass port= for another server)."""
    from tests.helpers import RawClient

    clients: list[RawClient] = []

    def make(port: int | None = None) -> RawClient:
        client = RawClient(port if port is not None else server.port, qtbot)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server for the whole session, started here (tests/services.py): a test takes a new
    database of its own with ``postgres_server.new_database()``."""
    from tests.services import postgres

    with postgres() as pg:
        yield pg


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A real Redis server for the whole session, started here (tests/services.py)."""
    from tests.services import redis

    with redis(tmp_path_factory.mktemp("redis")) as r:
        yield r


@pytest.fixture
def make_cert(tmp_path):
    """Factory: a self-signed certificate and key in a temp folder, made as --generate-cert makes them."""
    from qtchat.tls import GeneratedCertificate, generate_certificate

    def make(label: str = "server", names: tuple[str, ...] = ()) -> GeneratedCertificate:
        folder = tmp_path / f"tls-{label}"
        return generate_certificate(folder / "cert.pem", folder / "key.pem", names)

    return make


@pytest.fixture
def tls_server(make_server, make_cert):
    """A ChatServer with TLS on, its certificate made by make_cert; ``.cert`` is the GeneratedCertificate."""
    cert = make_cert()
    server = make_server(tls_cert=cert.cert_path, tls_key=cert.key_path)
    server.cert = cert
    return server
