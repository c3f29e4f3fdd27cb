"""The connect dialog's TLS flows (trust on first use, a changed certificate) and the status bar lock."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from qtchat.client import ChatClient, ClientState
from qtchat.client.settings import ClientSettings
from qtchat.tls import format_fingerprint
from qtchat.ui.connect_dialog import ConnectDialog


def tls_dialog(qtbot, port: int) -> tuple[ConnectDialog, ChatClient]:
    client = ChatClient()
    dialog = ConnectDialog(client, ClientSettings())
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.host.setEditText("127.0.0.1")
    dialog.port.setValue(port)
    dialog.user.setText("alice")
    dialog.tls.setChecked(True)
    return dialog, client


def test_unknown_certificate_shows_its_fingerprint_then_trust_connects(tls_server, qtbot):
    dialog, client = tls_dialog(qtbot, tls_server.port)
    qtbot.mouseClick(dialog.connect_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(dialog.cert_box.isVisible, timeout=5000)
    shown = dialog.cert_fingerprint.text()
    assert shown.replace("\n", ":") == format_fingerprint(tls_server.cert.fingerprint)
    assert dialog.cert_fingerprint.textFormat() == Qt.TextFormat.PlainText
    assert dialog.cert_fingerprint.font().fixedPitch() or dialog.cert_fingerprint.font().family()
    assert dialog.trust_button.isVisible() and not dialog.forget_button.isVisible()
    assert not dialog.error.isVisible()
    assert "self-signed" in dialog.cert_summary.text()
    with qtbot.waitSignal(dialog.accepted, timeout=5000):
        qtbot.mouseClick(dialog.trust_button, Qt.MouseButton.LeftButton)
    assert client.state is ClientState.ONLINE and client.is_encrypted
    settings = ClientSettings()
    assert settings.tls and f"127.0.0.1:{tls_server.port}" in settings.recent_tls
    client.quit()

    # next time, the recent entry brings its TLS setting back
    again = ConnectDialog(ChatClient(), ClientSettings())
    qtbot.addWidget(again)
    again.tls.setChecked(False)
    again.host.setCurrentText(f"127.0.0.1:{tls_server.port}")
    assert again.tls.isChecked()


def test_cancel_hides_the_certificate_and_trusts_nothing(tls_server, qtbot):
    dialog, client = tls_dialog(qtbot, tls_server.port)
    dialog.start()
    qtbot.waitUntil(dialog.cert_box.isVisible, timeout=5000)
    qtbot.mouseClick(dialog.cert_cancel, Qt.MouseButton.LeftButton)
    assert not dialog.cert_box.isVisible()
    assert client.pins.get("127.0.0.1", tls_server.port) is None
    assert dialog.connect_button.isEnabled()


def test_changed_certificate_is_loud_and_only_forgetting_leads_on(tls_server, qtbot):
    dialog, client = tls_dialog(qtbot, tls_server.port)
    old = "ab" * 32
    client.trust_certificate("127.0.0.1", tls_server.port, old)
    dialog.start()
    qtbot.waitUntil(dialog.cert_box.isVisible, timeout=5000)
    assert dialog.error.isVisible() and "changed" in dialog.error.text()
    assert dialog.error.textFormat() == Qt.TextFormat.PlainText
    text = dialog.cert_fingerprint.text().replace("\n", ":")
    assert format_fingerprint(old) in text and format_fingerprint(tls_server.cert.fingerprint) in text
    assert not dialog.trust_button.isVisible() and dialog.forget_button.isVisible()

    qtbot.mouseClick(dialog.forget_button, Qt.MouseButton.LeftButton)
    confirm = dialog.findChild(QMessageBox)
    assert confirm is not None and confirm.isVisible()
    forget = next(b for b in confirm.buttons() if b.text() == "Forget it")
    qtbot.mouseClick(forget, Qt.MouseButton.LeftButton)
    # the old pin is gone; the new certificate is shown to be checked, not trusted by itself
    qtbot.waitUntil(lambda: dialog.cert_box.isVisible() and dialog.trust_button.isVisible(), timeout=5000)
    assert client.pins.get("127.0.0.1", tls_server.port) is None
    assert client.state is ClientState.OFFLINE
    with qtbot.waitSignal(dialog.accepted, timeout=5000):
        qtbot.mouseClick(dialog.trust_button, Qt.MouseButton.LeftButton)
    assert client.pins.get("127.0.0.1", tls_server.port) == tls_server.cert.fingerprint
    client.quit()


def test_status_bar_shows_the_lock_when_encrypted(tls_server, server, window, qtbot):
    c = window.client
    c.trust_certificate("127.0.0.1", tls_server.port, tls_server.cert.fingerprint)
    with qtbot.waitSignal(c.logged_in, timeout=5000):
        c.connect_to("127.0.0.1", tls_server.port, "alice", tls=True)
    qtbot.waitUntil(lambda: window.tls_label.text() == "\N{LOCK} TLS")
    assert format_fingerprint(tls_server.cert.fingerprint) in window.tls_label.toolTip()
    with qtbot.waitSignal(c.logged_in, timeout=5000):
        c.connect_to("127.0.0.1", server.port, "alice")  # a plain server: no lock
    assert window.tls_label.text() == ""


def test_self_test_over_tls_with_a_given_fingerprint(make_cert, tmp_path):
    import os
    import subprocess
    import sys

    from tests.server.test_cli import Proc

    cert = make_cert()
    server = Proc("--data-dir", str(tmp_path / "data"), "--tls-cert", str(cert.cert_path),
                  "--tls-key", str(cert.key_path))
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    base = [sys.executable, "-m", "qtchat", "--self-test", "--tls", "--port", str(server.port)]
    try:
        out = subprocess.run([*base, "--trust-fingerprint", format_fingerprint(cert.fingerprint)],
                             capture_output=True, text=True, env=env, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "acknowledged" in out.stdout and "Encrypted (TLS" in out.stdout
        out = subprocess.run(base, capture_output=True, text=True, env=env, timeout=60)
        assert out.returncode == 1 and "certificate_unknown" in out.stderr
    finally:
        server.stop()
