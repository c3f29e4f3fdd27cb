"""``qtchat-server admin ...`` against a running server process, over its local admin channel."""

from __future__ import annotations

import subprocess
import sys

from qtchat.protocol import Bye, Notice
from tests.server.test_cli import BlockingClient, Proc


def admin(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qtchat.server", "admin", "--port", str(port), *args],
                          capture_output=True, text=True, timeout=30)


def test_admin_commands_act_on_the_running_server(tmp_path):
    proc = Proc("--data-dir", str(tmp_path))
    try:
        alice = BlockingClient(proc.port, "alice")
        bob = BlockingClient(proc.port, "bob")
        out = admin(proc.port, "users")
        assert out.returncode == 0, out.stderr
        assert "2 users" in out.stdout and "alice" in out.stdout and "bob" in out.stdout
        out = admin(proc.port, "broadcast", "back", "in", "5")
        assert out.returncode == 0 and "Sent to 2 users." in out.stdout
        bob.read_until(lambda: any(isinstance(e, Notice) for e in bob.events))
        assert [e.text for e in bob.events if isinstance(e, Notice)] == ["back in 5"]
        out = admin(proc.port, "kick", "alice", "--reason", "take a break")
        assert out.returncode == 0 and "Kicked alice." in out.stdout
        alice.read_until(lambda: any(isinstance(e, Bye) for e in alice.events))
        assert [e.reason for e in alice.events if isinstance(e, Bye)] == ["kicked: take a break"]
        out = admin(proc.port, "ban", "mallory", "--minutes", "30", "--reason", "spam")
        assert out.returncode == 0 and "mallory" in out.stdout
        assert "mallory" in admin(proc.port, "bans").stdout
        assert (tmp_path / "bans.json").exists()
        out = admin(proc.port, "kick", "nobody")
        assert out.returncode == 1 and "No user 'nobody'" in out.stdout
        assert "1 users" in admin(proc.port, "status").stdout
    finally:
        proc.stop()


def test_admin_without_a_server_says_so():
    out = admin(1, "status")
    assert out.returncode == 2
    assert "no qtchat-server of yours is running on port 1" in out.stderr
