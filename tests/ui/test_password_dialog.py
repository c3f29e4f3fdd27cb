"""Chat > Change password…: the menu action, and the dialog against a real server (offscreen)."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QLineEdit

from qtchat.server.accounts import hash_password
from qtchat.ui.main_window import MainWindow
from qtchat.ui.password_dialog import PasswordDialog
from tests.helpers import outcome

PASSWORD = "correct horse battery"
NEW_PASSWORD = "staple battery horse correct"


def online(qtbot, w: MainWindow, port: int, user: str, password: str | None = None) -> None:
    w.client.password = password
    with qtbot.waitSignal(w.client.logged_in, timeout=5000):
        w.client.connect_to("127.0.0.1", port, user)
    qtbot.waitUntil(lambda: w.client.registered == (password is not None), timeout=5000)


def fill(dialog: PasswordDialog, old: str, new: str, again: str) -> None:
    for edit, text in ((dialog.old_edit, old), (dialog.new_edit, new), (dialog.again_edit, again)):
        edit.setText(text)


def test_the_action_is_there_for_registered_names_only(server, window, qtbot):
    assert not window.password_action.isEnabled()  # offline
    online(qtbot, window, server.port, "mallory")
    assert not window.password_action.isEnabled() and window.register_action.isEnabled()
    window.client.register_name(PASSWORD)
    qtbot.waitUntil(window.password_action.isEnabled, timeout=5000)
    assert not window.register_action.isEnabled()
    seen: list[object] = []

    def close_it() -> None:
        dialog = QApplication.activeModalWidget()
        seen.append(dialog)
        assert dialog is not None
        dialog.close()

    QTimer.singleShot(0, close_it)
    window.password_action.trigger()  # modal: returns once close_it closed it
    assert len(seen) == 1 and isinstance(seen[0], PasswordDialog)
    assert window.client.password == PASSWORD


def test_the_dialog_checks_its_fields_and_shows_the_servers_answer(server, connect, window, qtbot):
    outcome(qtbot, server.operator.register_account("nina", hash_password(PASSWORD)))
    online(qtbot, window, server.port, "nina", PASSWORD)
    dialog = PasswordDialog(window.client, window)
    qtbot.addWidget(dialog)
    dialog.show()
    assert all(e.echoMode() == QLineEdit.EchoMode.Password for e in (dialog.old_edit, dialog.new_edit, dialog.again_edit))
    assert dialog.status.textFormat() == Qt.TextFormat.PlainText
    assert not dialog.ok_button.isEnabled() and dialog.status.text() == "Type your current password."
    fill(dialog, PASSWORD, "short", "short")
    assert not dialog.ok_button.isEnabled() and "at least 8" in dialog.status.text()
    fill(dialog, PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "x")
    assert not dialog.ok_button.isEnabled() and "twice" in dialog.status.text()
    fill(dialog, PASSWORD, PASSWORD, PASSWORD)
    assert not dialog.ok_button.isEnabled() and "same as the current" in dialog.status.text()

    # a wrong current password: the server refuses, the dialog stays open and says so
    fill(dialog, "not the password", NEW_PASSWORD, NEW_PASSWORD)
    assert dialog.ok_button.isEnabled() and dialog.status.text() == ""
    with qtbot.waitSignal(window.client.password_change_failed, timeout=5000):
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert dialog.isVisible()
    assert dialog.status.text().startswith("Not changed: The current password is wrong")
    assert dialog.old_edit.text() == "" and dialog.new_edit.text() == NEW_PASSWORD and dialog.old_edit.isEnabled()
    assert window.client.password == PASSWORD

    # the right one: the dialog closes, the lobby says so, and reconnects use the new password
    dialog.old_edit.setText(PASSWORD)
    with qtbot.waitSignal(dialog.accepted, timeout=5000):
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
        assert not dialog.ok_button.isEnabled() and not dialog.new_edit.isEnabled()  # waiting for the server
    assert window.client.password == NEW_PASSWORD
    window.workspace.lobby.log.flush()
    assert any(ln.kind == "notice" and ln.text == "Your password was changed." for ln in window.workspace.lobby.log.lines)
    window.client.quit()
    qtbot.waitUntil(lambda: "nina" not in server.user_names(), timeout=5000)
    assert connect().refused("nina", password=PASSWORD).code == "auth_failed"
    connect().login("nina", password=NEW_PASSWORD)
