"""The client core with TLS: trust on first use, a changed certificate, CA-verified servers, and the
clear errors when one side speaks TLS and the other does not."""

from __future__ import annotations

import pytest
from PySide6.QtNetwork import QSslCertificate, QSslConfiguration

from qtchat.client import ChatClient, ClientState, Loss, Reason
from qtchat.protocol import Message
from qtchat.tls import format_fingerprint
from qtchat.ui.wording import reason_text


def refused(qtbot, client: ChatClient, port: int, tls: bool = True, host: str = "127.0.0.1") -> tuple[str, Reason]:
    with qtbot.waitSignal(client.login_failed, timeout=5000) as failed:
        client.connect_to(host, port, "alice", tls=tls)
    assert client.state is ClientState.OFFLINE
    return failed.args[0], failed.args[1]


def test_unknown_certificate_then_trusted_logs_in_and_chats(tls_server, connect, client, qtbot):
    fingerprint = tls_server.cert.fingerprint
    with qtbot.waitSignal(client.certificate_unknown, timeout=5000) as unknown, \
            qtbot.waitSignal(client.login_failed, timeout=5000) as failed:
        client.connect_to("127.0.0.1", tls_server.port, "alice", tls=True)
    assert unknown.args[:3] == ["127.0.0.1", tls_server.port, fingerprint]
    assert "self-signed" in unknown.args[3]
    assert failed.args[0] == "certificate_unknown"
    assert failed.args[1].loss is Loss.CERTIFICATE_UNKNOWN and failed.args[1].certificate.fingerprint == fingerprint
    assert format_fingerprint(fingerprint) in reason_text(failed.args[1])
    assert not tls_server.users  # never logged in
    qtbot.wait(200)
    assert client.state is ClientState.OFFLINE  # no retry

    client.trust_certificate("127.0.0.1", tls_server.port, format_fingerprint(fingerprint))
    with qtbot.waitSignal(client.logged_in, timeout=5000):
        client.connect_to("127.0.0.1", tls_server.port, "alice", tls=True)
    assert client.is_encrypted
    assert "pinned" in client.tls_summary() and format_fingerprint(fingerprint) in client.tls_summary()
    with qtbot.waitSignal(client.message_acked, timeout=3000):
        client.send_text("secret hello")

    # a reconnect after a loss keeps TLS and the pin
    with qtbot.waitSignal(client.connection_lost, timeout=5000):
        for session in list(tls_server.peers):
            session.socket.abort()
    with qtbot.waitSignal(client.logged_in, timeout=5000):
        pass
    assert client.is_encrypted
    with qtbot.waitSignal(client.message_acked, timeout=3000) as acked:
        client.send_text("after the reconnect")
    assert acked.args[1].text == "after the reconnect"


def test_changed_certificate_is_refused_loudly_without_retry(make_server, make_cert, client, qtbot):
    first = make_cert("first")
    server = make_server(tls_cert=first.cert_path, tls_key=first.key_path)
    port = server.port
    client.trust_certificate("127.0.0.1", port, first.fingerprint)
    with qtbot.waitSignal(client.logged_in, timeout=5000):
        client.connect_to("127.0.0.1", port, "alice", tls=True)

    # the server comes back on the same port with another certificate: found on the reconnect
    second = make_cert("second")
    with qtbot.waitSignal(server.stopped, timeout=5000):
        server.shutdown("restart")
    make_server(port=port, tls_cert=second.cert_path, tls_key=second.key_path)
    with qtbot.waitSignal(client.certificate_changed, timeout=10000) as changed, \
            qtbot.waitSignal(client.login_failed, timeout=10000) as failed:
        pass
    assert changed.args == ["127.0.0.1", port, first.fingerprint, second.fingerprint]
    assert failed.args[0] == "certificate_changed"
    assert failed.args[1].loss is Loss.CERTIFICATE_CHANGED
    text = reason_text(failed.args[1])
    assert "identity" in text and "changed" in text
    assert format_fingerprint(first.fingerprint) in text and format_fingerprint(second.fingerprint) in text
    qtbot.wait(300)
    assert client.state is ClientState.OFFLINE  # no retry
    assert client.pins.get("127.0.0.1", port) == first.fingerprint  # the old pin stays until removed

    client.forget_certificate("127.0.0.1", port)
    code, _ = refused(qtbot, client, port)
    assert code == "certificate_unknown"


def test_a_certificate_verified_by_a_ca_needs_no_pin(make_server, make_cert, client, qtbot):
    cert = make_cert(names=("chat.localhost",))
    server = make_server(tls_cert=cert.cert_path, tls_key=cert.key_path)
    config = QSslConfiguration.defaultConfiguration()
    config.setCaCertificates(QSslCertificate.fromPath(str(cert.cert_path)))  # trusted like a CA would be
    client.ssl_configuration = config
    client.certificate_unknown.connect(lambda *a: pytest.fail(f"asked about a verified certificate: {a}"))
    with qtbot.waitSignal(client.logged_in, timeout=5000):
        client.connect_to("localhost", server.port, "alice", tls=True)  # a name in the SAN
    assert client.is_encrypted and "verified" in client.tls_summary()
    assert client.pins.get("localhost", server.port) is None


def test_tls_client_to_a_plain_server_says_so(server, client, qtbot):
    code, reason = refused(qtbot, client, server.port, tls=True)
    assert code in ("network", "timeout") and reason.loss in (Loss.NOT_TLS, Loss.TLS_TIMEOUT)
    assert "plain (unencrypted) server" in reason_text(reason)


def test_plain_client_to_a_tls_server_says_it_may_need_tls(tls_server, client, qtbot):
    code, reason = refused(qtbot, client, tls_server.port, tls=False)
    assert code == "network"
    assert "Encrypted (TLS)" in reason_text(reason)


def test_plain_client_that_gets_tls_bytes_says_the_server_requires_tls(qtbot, client):
    from PySide6.QtNetwork import QHostAddress, QTcpServer

    fake = QTcpServer()
    assert fake.listen(QHostAddress(QHostAddress.SpecialAddress.LocalHost), 0)

    def answer_like_tls() -> None:
        sock = fake.nextPendingConnection()
        sock.write(b"\x15\x03\x03\x00\x02\x02\x46")  # a TLS alert record
        sock.disconnectFromHost()

    fake.newConnection.connect(answer_like_tls)
    _, reason = refused(qtbot, client, fake.serverPort(), tls=False)
    assert reason.loss is Loss.TLS_REQUIRED
    text = reason_text(reason)
    assert "answered with TLS" in text and "Encrypted (TLS)" in text
    fake.close()


def test_message_roundtrip_between_tls_and_plain_views_of_the_same_protocol(tls_server, client, qtbot):
    client.trust_certificate("127.0.0.1", tls_server.port, tls_server.cert.fingerprint)
    with qtbot.waitSignal(client.logged_in, timeout=5000):
        client.connect_to("127.0.0.1", tls_server.port, "alice", tls=True)
    with qtbot.waitSignal(client.message_received, timeout=3000) as got:
        client.send_text("hi \U0001f600 ~")
    assert isinstance(got.args[0], Message) and got.args[0].text == "hi \U0001f600 ~"
