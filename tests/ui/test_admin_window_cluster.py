"""The admin window of a node of a cluster: every node's users with their node, kept up to date as users of
other nodes come and go; actions on a user of another node; settings another node's operator changed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import Qt

from qtchat.protocol import Bye
from qtchat.server import ChatServer
from qtchat.ui.admin_window import CLUSTER_COLUMNS, COLUMNS, AdminWindow
from tests.helpers import RawClient, outcome


@pytest.fixture
def clients(qtbot: Any) -> Iterator[Any]:
    made: list[RawClient] = []

    def connect(server: ChatServer, name: str) -> RawClient:
        client = RawClient(server.port, qtbot)
        made.append(client)
        client.login(name)
        return client

    yield connect
    for client in made:
        client.close()


def window(server: ChatServer, qtbot: Any) -> AdminWindow:
    made = AdminWindow(server, confirm=False)
    qtbot.addWidget(made)
    made.show()
    return made


def rows(admin: AdminWindow) -> dict[str, list[str]]:
    """Each row's cells as shown, by name."""
    proxy = admin.proxy
    return {proxy.index(r, 0).data(): [proxy.index(r, c).data() for c in range(proxy.columnCount())]
            for r in range(proxy.rowCount())}


def test_a_node_of_a_cluster_shows_every_nodes_users_with_their_node(cluster_nodes: Any, clients: Any,
                                                                     qtbot: Any) -> None:
    a, b = cluster_nodes(2)
    admin = window(a, qtbot)
    try:
        assert admin.model.columns == CLUSTER_COLUMNS
        assert admin.windowTitle().endswith(f", node {a.cluster.node}")
        assert admin.proxy.headerData(1, Qt.Orientation.Horizontal) == "Node"
        clients(a, "ann")
        bob = clients(b, "bob")
        qtbot.waitUntil(lambda: set(rows(admin)) == {"ann", "bob"}, timeout=3000)  # no join signal for bob here
        shown = rows(admin)
        node = CLUSTER_COLUMNS.index("Node")
        assert shown["ann"][node] == "this one" and shown["bob"][node] == b.cluster.node
        assert shown["bob"][CLUSTER_COLUMNS.index("Address")].startswith("127.0.0.1:")
        assert shown["bob"][CLUSTER_COLUMNS.index("Idle")] == ""  # only bob's node knows
        assert shown["ann"][CLUSTER_COLUMNS.index("Idle")].endswith(" s")
        qtbot.waitUntil(lambda: admin.clients_label.text() == "Clients: 1 / 10000 here, 1 on 1 other node", timeout=3000)
        for row in range(admin.proxy.rowCount()):
            if admin.proxy.index(row, 0).data() == "bob":
                admin.table.selectRow(row)
        assert admin.kick_button.isEnabled()
        admin.kick_selected("enough")
        bob.wait_closed()
        assert bob.of(Bye)[0].reason == "kicked: enough"
        qtbot.waitUntil(lambda: set(rows(admin)) == {"ann"}, timeout=3000)  # gone from the table: no leave signal
        qtbot.waitUntil(lambda: "Kicked bob." in admin.statusBar().currentMessage(), timeout=3000)
    finally:
        admin._closing = True


def test_settings_changed_by_another_nodes_operator_show_in_the_window(cluster_nodes: Any, qtbot: Any) -> None:
    a, b = cluster_nodes(2)
    admin = window(a, qtbot)
    try:
        qtbot.waitUntil(lambda: b.cluster.nodes() == [a.cluster.node], timeout=5000)  # b's Redis link is open
        outcome(qtbot, b.operator.set_accepting(False))
        qtbot.waitUntil(admin.accept_button.isChecked, timeout=5000)
        assert admin.accept_button.text() == "&Start accepting"
        assert not a.accepting  # and no echo of it back to b from the window's own toggle
        outcome(qtbot, b.operator.set_max_clients(77))
        qtbot.waitUntil(lambda: admin.limit.value() == 77, timeout=5000)
        admin.accept_button.setChecked(False)  # the operator here starts them again: on every node
        qtbot.waitUntil(lambda: b.accepting, timeout=5000)
        assert a.accepting
    finally:
        admin._closing = True


def test_one_machine_has_no_node_column(server: ChatServer, qtbot: Any) -> None:
    admin = window(server, qtbot)
    try:
        assert admin.model.columns == COLUMNS
        assert admin.proxy.columnCount() == len(COLUMNS)
        assert "other node" not in admin.clients_label.text()
    finally:
        admin._closing = True
