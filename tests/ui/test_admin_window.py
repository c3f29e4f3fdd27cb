"""The admin window over a live server core, with real clients."""

from __future__ import annotations

import pytest

from qtchat.protocol import Bye, Hello, Left, Notice
from qtchat.ui.admin_window import AdminWindow


@pytest.fixture
def admin(server, qtbot):
    window = AdminWindow(server, confirm=False)
    qtbot.addWidget(window)
    window.show()
    yield window
    window._closing = True


def select(window: AdminWindow, name: str) -> None:
    window.model.apply()
    for row in range(window.proxy.rowCount()):
        if window.proxy.index(row, 0).data() == name:
            window.table.selectRow(row)
            return
    raise AssertionError(f"{name} is not in the table")


def test_table_follows_connects_and_disconnects(admin, connect, qtbot):
    clients = [connect() for _ in range(3)]
    for name, c in zip(("ann", "ben", "cat"), clients, strict=True):
        c.login(name)
    qtbot.waitUntil(lambda: admin.model.rowCount() == 3, timeout=3000)
    names = sorted(admin.proxy.index(r, 0).data() for r in range(3))
    assert names == ["ann", "ben", "cat"]
    assert admin.proxy.index(0, 1).data().startswith("127.0.0.1:")
    clients[1].close()
    qtbot.waitUntil(lambda: admin.model.rowCount() == 2, timeout=3000)
    admin.filter.setText("ca")
    assert admin.proxy.rowCount() == 1 and admin.proxy.index(0, 0).data() == "cat"
    admin.filter.clear()
    qtbot.waitUntil(lambda: admin.clients_label.text().startswith("Clients: 2"), timeout=3000)


def test_many_connects_arrive_in_few_batches(admin, connect, qtbot):
    inserts = []
    admin.model.rowsInserted.connect(lambda *args: inserts.append(args))
    clients = [connect() for _ in range(200)]
    for i, c in enumerate(clients):
        c.send_raw(c.conn.send(Hello(user=f"m{i}")))
    qtbot.waitUntil(lambda: admin.model.rowCount() == 200, timeout=10000)
    assert len(inserts) <= 10  # batched, not one update per client


def test_kick_from_the_window_tells_the_user_and_is_logged(admin, connect, qtbot):
    alice, bob = connect(), connect()
    alice.login("alice")
    bob.login("bob")
    select(admin, "alice")
    admin.kick_selected("be nice")
    alice.wait_closed()
    assert alice.of(Bye)[0].reason == "kicked: be nice"
    assert bob.wait_event(Left, user="alice").reason == "kicked: be nice"
    qtbot.waitUntil(lambda: "kicked alice" in admin.log_view.toPlainText(), timeout=3000)
    assert "Kicked alice." in admin.statusBar().currentMessage()


def test_broadcast_and_mute_from_the_window(admin, connect, qtbot):
    clients = [connect() for _ in range(3)]
    for i, c in enumerate(clients):
        c.login(f"b{i}")
    admin.ask_broadcast("<i>maintenance</i> at noon")
    for c in clients:
        assert c.wait_event(Notice).text == "<i>maintenance</i> at noon"
    select(admin, "b1")
    assert admin.mute_button.text() == "&Mute"
    admin.toggle_mute_selected()
    assert admin.mute_button.text() == "Un&mute"
    assert "muted" in clients[1].wait_event(Notice, text="You have been muted by the operator.").text
    qtbot.waitUntil(lambda: "muted b1" in admin.log_view.toPlainText(), timeout=3000)
    # user-supplied text stays literal in the log pane
    assert "broadcast to 3 users: <i>maintenance</i> at noon" in admin.log_view.toPlainText()


def test_closing_stops_the_server_and_says_bye(admin, server, connect, qtbot):
    alice = connect()
    alice.login("alice")
    with qtbot.waitSignal(server.stopped, timeout=5000):
        admin.close()
    alice.wait_closed()
    assert alice.of(Bye)
    assert not server.is_listening


def test_users_already_connected_are_listed_when_the_window_opens(server, connect, qtbot):
    early = connect()
    early.login("early")
    window = AdminWindow(server, confirm=False)
    qtbot.addWidget(window)
    assert [window.proxy.index(r, 0).data() for r in range(window.proxy.rowCount())] == ["early"]
    window._closing = True


def test_ban_from_the_window_refuses_the_reconnect(admin, connect, monkeypatch):
    from PySide6.QtWidgets import QDialog

    from qtchat.ui.admin_window import BanDialog

    def accept(self: BanDialog) -> int:
        self.reason.setText("spam")
        return int(QDialog.DialogCode.Accepted)

    monkeypatch.setattr(BanDialog, "exec", accept)
    mallory = connect()
    mallory.login("mallory")
    select(admin, "mallory")
    admin.ban_selected()
    mallory.wait_closed()
    assert mallory.of(Bye)[0].reason == "banned: spam"
    error = connect().refused("mallory")
    assert error.code == "banned" and "spam" in error.message


def test_server_admin_flag_runs_the_window_and_the_channel(tmp_path):
    import os
    import re
    import signal
    import subprocess
    import sys
    import time

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "qtchat.server", "--admin", "--port", "0", "--data-dir",
                             str(tmp_path)], stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stderr is not None
        port = None
        deadline = time.monotonic() + 20
        while port is None and time.monotonic() < deadline:
            match = re.search(r"listening on 127\.0\.0\.1:(\d+)", proc.stderr.readline())
            port = int(match.group(1)) if match else None
        assert port, "no listening line"
        out = subprocess.run([sys.executable, "-m", "qtchat.server", "admin", "--port", str(port), "status"],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0 and "0 users" in out.stdout
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_the_window_reads_snapshots_and_acts_on_the_connection_it_shows(admin, connect, qtbot):
    import dataclasses

    from qtchat.server import UserSnapshot

    first = connect()
    first.login("alice")
    select(admin, "alice")
    shown = admin.selected()
    assert isinstance(shown, UserSnapshot)
    with pytest.raises(dataclasses.FrozenInstanceError):
        shown.name = "mallory"  # type: ignore[misc]
    # alice reconnects before the operator clicks: the row on screen is the old connection
    first.close()
    qtbot.waitUntil(lambda: "alice" not in admin.server.users, timeout=3000)
    second = connect()
    second.login("alice")
    admin._report(admin.operator.kick(shown.id, "old row"))  # what Kick does with the row it shows
    assert "no longer connected" in admin.statusBar().currentMessage()
    assert not second.of(Bye)  # the new alice was not kicked
    assert "alice" in admin.server.users
