"""Server tests marked ``backends`` run once per storage backend (tests/conftest.py: BACKENDS), unless they are
also marked ``sqlite`` (they need what only a data folder on disk does: a restart, the database itself); and
``clients``, the clients of a cluster's in-process nodes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from qtchat.protocol import JoinRoom, RoomState
from qtchat.server import ChatServer
from tests.conftest import BACKENDS
from tests.helpers import RawClient


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marked = metafunc.definition.get_closest_marker("backends") is not None
    if marked and "backend_kind" in metafunc.fixturenames and metafunc.definition.get_closest_marker("sqlite") is None:
        metafunc.parametrize("backend_kind", BACKENDS)


@pytest.fixture
def clients(qtbot: Any) -> Iterator[Any]:
    """Factory: ``connect(server, name=None, *rooms)``, clients of in-process nodes (test_cluster*.py)."""
    made: list[RawClient] = []

    def connect(server: ChatServer, name: str | None = None, *rooms: str) -> RawClient:
        """A client of that node, logged in as ``name`` (None: not logged in), in ``rooms``."""
        client = RawClient(server.port, qtbot)
        made.append(client)
        if name is not None:
            client.login(name)
        for room in rooms:
            client.send(JoinRoom(room))
            client.wait_event(RoomState, room=room)
        return client

    yield connect
    for client in made:
        client.close()
