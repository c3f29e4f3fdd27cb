"""qtchat-server as a process: arguments, logging, SIGTERM, and no spinning after disconnects."""

from __future__ import annotations

import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qtchat import __version__
from qtchat.protocol import NEED_DATA, PEER_CLOSED, Bye, Connection, Hello, Left, Role, Welcome

SERVER = [sys.executable, "-m", "qtchat.server"]
NO_LIMITS = ("--rate-messages", "0", "--rate-bytes", "0", "--max-per-address", "0")  # for tests that flood


def run(*args: str) -> subprocess.CompletedProcess[str]:
    data = ["--data-dir", tempfile.mkdtemp(prefix="qtchat-test-")] \
        if args[:1] != ("admin",) and "--database" not in args and "--data-dir" not in args else []
    return subprocess.run([*SERVER, *args, *data], capture_output=True, text=True, timeout=60)


class Proc:
    """A qtchat-server process on a free port, found from its log line."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        if "--data-dir" not in args and "--database" not in args and not (env or {}).get("QTCHAT_SERVER_DATABASE"):
            args = (*args, "--data-dir", tempfile.mkdtemp(prefix="qtchat-test-"))  # never the user's own history
        self.proc = subprocess.Popen(
            [*SERVER, "--port", "0", *args], stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1", **(env or {})),
        )
        assert self.proc.stderr is not None
        self.log: list[str] = []
        while not self.log or not (match := re.search(r"listening on 127\.0\.0\.1:(\d+)", self.log[-1])):
            line = self.proc.stderr.readline()
            assert line, "".join(self.log)
            self.log.append(line)
        self.port = int(match.group(1))

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=20)
        return err or ""


class BlockingClient:
    def __init__(self, port: int, name: str, password: str | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.conn = Connection(Role.CLIENT)
        self.sock.sendall(self.conn.send(Hello(name, password=password)))
        self.events: list[object] = []
        self.read_until(lambda: any(isinstance(e, Welcome) for e in self.events))

    def read_until(self, done) -> None:
        while not done():
            data = self.sock.recv(65536)
            self.conn.receive_data(data)
            while (ev := self.conn.next_event()) not in (NEED_DATA, PEER_CLOSED):
                self.events.append(ev)
            if not data:
                self.events.append(PEER_CLOSED)
                return


@pytest.fixture
def server_proc() -> Iterator[Proc]:
    proc = Proc()
    yield proc
    proc.stop()


def test_version_and_help():
    out = run("--version")
    assert out.returncode == 0 and __version__ in out.stdout
    out = run("--help")
    assert out.returncode == 0
    for flag in ("--host", "--port", "--max-clients", "--max-frame", "--handshake-timeout", "--mailbox-size"):
        assert flag in out.stdout


def test_mailbox_size_reaches_the_config():
    from qtchat.server.cli import build_parser, config_from_args

    assert config_from_args(build_parser().parse_args([])).mailbox_size == 1000
    assert config_from_args(build_parser().parse_args(["--mailbox-size", "0"])).mailbox_size == 0
    assert config_from_args(build_parser().parse_args([])).mailbox_per_sender == 100
    assert config_from_args(build_parser().parse_args(["--mailbox-per-sender", "7"])).mailbox_per_sender == 7


def test_typing_max_members_reaches_the_config_and_welcome():
    from qtchat.server.cli import build_parser, config_from_args
    from qtchat.server.config import announced_limits

    assert config_from_args(build_parser().parse_args([])).typing_max_members == 50
    cfg = config_from_args(build_parser().parse_args(["--typing-max-members", "0"]))  # 0: every room
    assert cfg.typing_max_members == 0 and announced_limits(cfg)["typing_members"] == 0
    assert announced_limits(config_from_args(build_parser().parse_args(["--typing-max-members", "7"])))[
        "typing_members"] == 7


@pytest.mark.parametrize("args", [["--port", "70000"], ["--max-clients", "0"], ["--max-frame", "x"],
                                  ["--mailbox-size", "-1"], ["--typing-max-members", "-3"]])
def test_bad_arguments_exit_2_with_a_message(args):
    out = run(*args)
    assert out.returncode == 2
    assert "error" in out.stderr


def test_busy_port_is_a_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        out = run("--port", str(taken.getsockname()[1]))
    assert out.returncode == 2
    assert "cannot listen" in out.stderr


def test_bad_host_is_a_clear_error():
    out = run("--host", "not an address", "--port", "0")
    assert out.returncode == 2
    assert "not an IP address" in out.stderr


def test_sigterm_says_bye_to_everyone_and_exits_0(server_proc):
    clients = [BlockingClient(server_proc.port, f"c{i}") for i in range(5)]
    server_proc.proc.send_signal(signal.SIGTERM)
    for c in clients:
        c.read_until(lambda c=c: PEER_CLOSED in c.events)
        byes = [e for e in c.events if isinstance(e, Bye)]
        assert byes and "shutting down" in byes[0].reason
    # wait, without a second signal: Python restores the default handlers while it exits
    _, err = server_proc.proc.communicate(timeout=20)
    assert server_proc.proc.returncode == 0
    assert "stopped" in err


def test_log_has_connects_and_disconnects_but_no_chat_text(server_proc):
    a = BlockingClient(server_proc.port, "alice")
    b = BlockingClient(server_proc.port, "bob")
    from qtchat.protocol import SendMessage

    a.sock.sendall(a.conn.send(SendMessage("secret words")))
    a.sock.close()
    b.read_until(lambda: any(isinstance(e, Left) for e in b.events))
    err = server_proc.stop()
    assert "alice joined from 127.0.0.1:" in err
    assert "alice left" in err
    assert "secret words" not in err


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads CPU time from /proc")
def test_no_spinning_after_clients_disconnect():
    server_proc = Proc(*NO_LIMITS)  # 21 connections from 127.0.0.1
    try:
        _no_spinning(server_proc)
    finally:
        server_proc.stop()


def _no_spinning(server_proc: Proc) -> None:
    def cpu_seconds() -> float:
        fields = Path(f"/proc/{server_proc.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    clients = [BlockingClient(server_proc.port, f"d{i}") for i in range(20)]
    for c in clients[:10]:
        c.sock.close()  # orderly close
    for c in clients[10:]:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.sock.close()  # reset
    time.sleep(0.5)
    before = cpu_seconds()
    time.sleep(1.5)
    used = cpu_seconds() - before
    assert used < 0.3, f"the idle server used {used:.2f} s of CPU in 1.5 s"
    probe = BlockingClient(server_proc.port, "probe")  # and it still serves
    assert any(isinstance(e, Welcome) for e in probe.events)
