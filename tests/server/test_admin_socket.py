"""Where the admin channel lives: a private runtime folder of the user's, never the shared temporary folder;
a socket or file there that is not ours is refused (and left alone) by the server and by 'qtchat-server admin'."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from qtchat.server.admin import AdminChannel, channel_name

pytestmark = pytest.mark.skipif(os.name != "posix", reason="Unix sockets (Windows: a user-only named pipe)")


@pytest.fixture
def runtime(monkeypatch):
    folder = Path(tempfile.mkdtemp(prefix="qr-"))  # short: a socket's path has at most about 100 bytes
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(folder))
    yield folder
    for child in folder.iterdir():
        child.unlink()
    folder.rmdir()


def admin_cli(port: int, folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qtchat.server", "admin", "--port", str(port), "status"],
                          capture_output=True, text=True, timeout=30, env=dict(os.environ, XDG_RUNTIME_DIR=str(folder)))


def test_the_channel_is_a_socket_of_ours_in_the_private_runtime_folder(server, runtime):
    name = channel_name(server.port)
    assert Path(name).parent == runtime and not name.startswith(tempfile.gettempdir() + "/qtchat")
    channel = AdminChannel(server, name)
    channel.listen()
    info = os.lstat(name)
    assert info.st_uid == os.getuid() and (runtime.stat().st_mode & 0o077) == 0
    channel.close()


def test_a_file_in_the_way_is_refused_and_left_alone(server, runtime):
    name = channel_name(server.port)
    Path(name).write_text("not a socket")
    with pytest.raises(OSError, match="not a socket of yours"):
        AdminChannel(server, name).listen()
    assert Path(name).read_text() == "not a socket"
    result = admin_cli(server.port, runtime)
    assert result.returncode == 2 and "not a socket of yours" in result.stderr


@pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0, reason="making another user's socket needs root")
def test_another_users_socket_is_refused_and_left_alone(server, runtime):
    name = channel_name(server.port)
    other = socket.socket(socket.AF_UNIX)
    other.bind(name)
    other.listen()
    os.chown(name, 65534, 65534)
    try:
        with pytest.raises(OSError, match="not a socket of yours"):
            AdminChannel(server, name).listen()
        assert os.lstat(name).st_uid == 65534  # not removed, not replaced
        result = admin_cli(server.port, runtime)  # the operator's commands never go to it
        assert result.returncode == 2 and "not a socket of yours" in result.stderr
        other.settimeout(0.2)
        with pytest.raises(TimeoutError):
            other.accept()
    finally:
        other.close()


def assert_not_used(bad: Path) -> None:
    """The channel is refused, or put in another folder that is this user's own and private."""
    try:
        name = channel_name(4321)
    except OSError as exc:
        assert "refusing" in str(exc)
        return
    used = Path(name).parent
    assert used != bad
    assert used.lstat().st_uid == os.getuid() and (used.lstat().st_mode & 0o077) == 0


@pytest.mark.qt_log_ignore("QStandardPaths")  # (Qt says so too)
def test_a_runtime_folder_others_can_write_is_not_used(runtime):
    runtime.chmod(0o777)
    try:
        assert_not_used(runtime)
    finally:
        runtime.chmod(0o700)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0, reason="making another user's folder needs root")
@pytest.mark.qt_log_ignore("QStandardPaths")
def test_a_runtime_folder_of_another_user_is_not_used(runtime):
    os.chown(runtime, 65534, 65534)
    try:
        assert_not_used(runtime)
    finally:
        os.chown(runtime, os.getuid(), os.getgid())
