"""A broken ban file stops the server from starting (and is left as it was); ban lengths are checked
wherever they come in."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest

from qtchat.server import ChatServer, ServerConfig
from qtchat.server.admin import execute
from qtchat.server.bans import BanFileError, BanList
from tests.helpers import outcome

SERVER = [sys.executable, "-m", "qtchat.server"]
ENTRY = '{"name_key": "eve", "address": null, "until": %s, "reason": "", "created": 1700000000}'
BROKEN: dict[str, str | bytes] = {
    "garbage": "this is not json {",
    "a list": "[1, 2, 3]",
    "bans not a list": '{"version": 1, "bans": {"eve": 1}}',
    "an entry of the wrong shape": '{"version": 1, "bans": [{"name": "eve"}]}',
    "until tomorrow": '{"version": 1, "bans": [%s]}' % (ENTRY % '"tomorrow"'),
    "until past the end of time": '{"version": 1, "bans": [%s]}' % (ENTRY % "1e300"),
    "no name nor address": '{"version": 1, "bans": [{"name_key": null, "address": null, "until": null, '
                           '"reason": "", "created": 1}]}',
    "not UTF-8": b"\xff\xfe{}",
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_ban_file_stops_the_start_with_exit_2_and_is_kept(tmp_path, case):
    path = tmp_path / "bans.json"
    content = BROKEN[case]
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    before = path.read_bytes()
    result = subprocess.run([*SERVER, "--port", "0", "--data-dir", str(tmp_path), "--no-admin-channel"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "ban list" in result.stderr and str(path) in result.stderr
    assert "listening" not in result.stderr  # never served without its bans
    assert path.read_bytes() == before


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs file modes that hold for this user")
def test_an_unreadable_ban_file_stops_the_start(tmp_path):
    path = tmp_path / "bans.json"
    path.write_text('{"version": 1, "bans": []}')
    path.chmod(0)
    try:
        with pytest.raises(BanFileError, match="cannot read the ban list"):
            ChatServer(ServerConfig(port=0, data_dir=tmp_path))
    finally:
        path.chmod(0o600)


def test_a_good_ban_file_still_loads(tmp_path):
    path = tmp_path / "bans.json"
    path.write_text('{"version": 1, "bans": [%s]}' % (ENTRY % "null"))
    assert BanList(path).match("eve", None) is not None


@pytest.mark.parametrize("seconds", [1e17, -5, 0, math.nan, math.inf, -math.inf, "3600", True])
def test_a_ban_of_a_length_out_of_range_is_refused_and_listing_still_works(server, qtbot, seconds):
    reply = outcome(qtbot, execute(server.operator, {"cmd": "ban", "name": "eve", "seconds": seconds}))
    assert reply["ok"] is False and "ban lasts" in reply["message"]
    assert server.operator.bans() == []
    with pytest.raises(ValueError, match="ban lasts"):
        outcome(qtbot, server.operator.ban(name="eve", seconds=seconds))  # the admin window's way in
    assert server.operator.bans() == []
    listed = outcome(qtbot, execute(server.operator, {"cmd": "bans"}))
    assert listed["ok"] is True and listed["bans"] == []


def test_a_ban_of_ten_years_is_fine(server, qtbot):
    reply = outcome(qtbot, execute(server.operator, {"cmd": "ban", "name": "eve", "seconds": 10 * 365 * 86400}))
    assert reply["ok"] is True
    assert "until" in outcome(qtbot, execute(server.operator, {"cmd": "bans"}))["bans"][0]


@pytest.mark.parametrize("minutes", ["1e17", "-1", "nan", "inf", "0"])
def test_the_admin_command_refuses_a_bad_length_before_sending_it(minutes):
    result = subprocess.run([*SERVER, "admin", "--port", "1", "ban", "eve", "--minutes", minutes],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--minutes" in result.stderr and "ten years" in result.stderr
