"""The server with TLS: the same protocol inside TLS, plain or broken clients dropped alone, bad files refused."""

from __future__ import annotations

import logging
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile

import pytest

from qtchat.protocol import Message
from qtchat.server import ChatServer, ServerConfig
from qtchat.tls import TlsSetupError, format_fingerprint, generate_certificate
from tests.helpers import RawClient

pytestmark = pytest.mark.backends

SERVER = [sys.executable, "-m", "qtchat.server"]


def trusting(cert_path) -> ssl.SSLContext:
    """A client context that trusts exactly this (self-signed) certificate, checking the host name."""
    return ssl.create_default_context(cafile=str(cert_path))


def test_tls_clients_log_in_and_chat(tls_server, qtbot):
    ctx = trusting(tls_server.cert.cert_path)
    alice = RawClient(tls_server.port, qtbot, tls=ctx)
    bob = RawClient(tls_server.port, qtbot, tls=ctx, server_hostname="127.0.0.1")  # an IP in the SAN too
    assert isinstance(alice.sock, ssl.SSLSocket) and alice.sock.version() in ("TLSv1.2", "TLSv1.3")
    alice.login("alice")
    bob.login("bob")
    alice.say("hello over TLS \U0001f512", cid="c1")
    assert bob.wait_event(Message, cid="c1").text == "hello over TLS \U0001f512"
    assert alice.wait_event(Message, cid="c1").sender == "alice"  # the acknowledgement
    bob.close()
    alice.say("still here", cid="c2")
    alice.wait_event(Message, cid="c2")


def test_plain_and_garbage_clients_are_dropped_without_disturbing_others(tls_server, qtbot, caplog):
    alice = RawClient(tls_server.port, qtbot, tls=trusting(tls_server.cert.cert_path))
    alice.login("alice")
    with caplog.at_level(logging.INFO, logger="qtchat.server"):
        plain = RawClient(tls_server.port, qtbot)
        plain.send_raw(b'{"type":"hello","version":1,"user":"bob"}\n')
        plain.wait_closed()
        garbage = RawClient(tls_server.port, qtbot)
        garbage.send_raw(b"\x16\x03\x01\x00\x05hello, not quite TLS\r\n\r\n")
        garbage.wait_closed()
        qtbot.waitUntil(lambda: len(tls_server.peers) == 1)
    assert plain.received == 0  # nothing in clear text, not even an error
    assert len(re.findall(r"TLS handshake with 127\.0\.0\.1:\d+ failed", caplog.text)) == 2
    assert tls_server.user_names() == ["alice"]
    alice.say("unbothered", cid="c1")
    alice.wait_event(Message, cid="c1")


def test_a_stalled_tls_handshake_is_bounded_by_the_handshake_timeout(make_server, make_cert, qtbot):
    cert = make_cert()
    server = make_server(tls_cert=cert.cert_path, tls_key=cert.key_path, handshake_timeout=0.3)
    silent = RawClient(server.port, qtbot)  # connects, never says a TLS word
    silent.wait_closed(timeout=5)
    assert not server.peers


def test_tls_client_that_never_says_hello_gets_the_handshake_timeout_error(make_server, make_cert, qtbot):
    from qtchat.protocol import Error

    cert = make_cert()
    server = make_server(tls_cert=cert.cert_path, tls_key=cert.key_path, handshake_timeout=0.3)
    quiet = RawClient(server.port, qtbot, tls=trusting(cert.cert_path))
    assert quiet.wait_event(Error).code == "handshake_timeout"
    quiet.wait_closed()


def test_unusable_tls_files_refuse_to_start(make_cert, tmp_path, qtbot):
    one, two = make_cert("one"), make_cert("two")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    cases = [
        (tmp_path / "missing.pem", one.key_path, "Cannot read the TLS certificate"),
        (junk, one.key_path, "holds no PEM certificate"),
        (one.cert_path, junk, "holds no PEM private key"),
        (one.cert_path, two.key_path, "does not belong to the certificate"),
        (one.cert_path, None, "needs both"),
    ]
    for cert, key, expected in cases:
        server = ChatServer(ServerConfig(port=0, tls_cert=cert, tls_key=key))
        with pytest.raises(TlsSetupError, match=expected):
            server.listen()
        assert not server.is_listening
        server.deleteLater()


def test_fingerprint_is_the_one_generated(tls_server):
    assert tls_server.tls and tls_server.fingerprint == tls_server.cert.fingerprint


def test_generated_key_is_private_and_existing_files_are_kept(make_cert):
    made = make_cert()
    if os.name == "posix":
        assert made.key_path.stat().st_mode & 0o777 == 0o600
    before = made.cert_path.read_bytes()
    with pytest.raises(FileExistsError, match="exists already"):
        generate_certificate(made.cert_path, made.key_path)
    assert made.cert_path.read_bytes() == before


def test_cli_generate_cert_then_serve_with_it(tmp_path):
    data = tmp_path / "data"
    out = subprocess.run([*SERVER, "--generate-cert", "--data-dir", str(data), "--cert-name", "chat.example.org"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    cert, key = data / "cert.pem", data / "key.pem"
    assert cert.exists() and key.exists()
    printed = re.search(r"((?:[0-9A-F]{2}:){31}[0-9A-F]{2})", out.stdout)
    assert printed and "--tls-cert" in out.stdout
    proc = subprocess.Popen([*SERVER, "--port", "0", "--tls-cert", str(cert), "--tls-key", str(key),
                             "--data-dir", str(data), "--no-admin-channel"],
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        port = int(re.search(r"listening on 127\.0\.0\.1:(\d+) with TLS", first).group(1))  # type: ignore[union-attr]
        log = proc.stderr.readline() + proc.stderr.readline()
        assert printed.group(1) in log
        ctx = ssl.create_default_context(cafile=str(cert))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                ctx.wrap_socket(raw, server_hostname="chat.example.org") as tls:
            tls.sendall(b'{"type":"hello","version":1,"user":"ann"}\n')
            assert b'"welcome"' in tls.recv(65536)
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def test_cli_refuses_to_start_with_unusable_tls_files(tmp_path):
    out = subprocess.run([*SERVER, "--port", "0", "--tls-cert", str(tmp_path / "none.pem"), "--tls-key",
                          str(tmp_path / "none.key"), "--data-dir", tempfile.mkdtemp(prefix="qtchat-test-")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "Cannot read the TLS certificate" in out.stderr
    out = subprocess.run([*SERVER, "--tls-cert", "x.pem"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "go together" in out.stderr
    out = subprocess.run([*SERVER, "--help"], capture_output=True, text=True, timeout=60)
    assert "--tls-cert" in out.stdout and "--generate-cert" in out.stdout


def test_fingerprint_format():
    assert format_fingerprint("ab" * 32) == ":".join(["AB"] * 32)
