"""The data folder and its files are private: password hashes and held private messages are in them."""

from __future__ import annotations

import logging
import os
import stat

import pytest

from qtchat.protocol import Message

pytestmark = [pytest.mark.sqlite, pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")]


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_data_folder_and_its_files_are_private(make_server, connect, tmp_path, qtbot):
    folder = tmp_path / "new" / "qtchat-server"
    old = os.umask(0o022)  # the usual one, that made them 0755 and 0644
    try:
        server = make_server(data_dir=folder)
        alice = connect(server.port)
        alice.login("alice", password="correct horse battery", register=True)
        alice.say("kept", cid="c1")
        alice.wait_event(Message, cid="c1")
        outcome = server.operator.ban(name="eve", reason="")
        qtbot.waitUntil(outcome.done)
    finally:
        os.umask(old)
    assert mode(folder) == 0o700
    files = sorted(p.name for p in folder.iterdir())
    assert {"accounts.db", "messages.db", "bans.json", "messages.db-wal"} <= set(files)
    assert {name: mode(folder / name) for name in files} == dict.fromkeys(files, 0o600)


def test_an_existing_folder_others_can_read_is_warned_of_and_its_files_made_private(make_server, tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    tmp_path.chmod(0o755)
    (tmp_path / "accounts.db").touch(mode=0o644)
    (tmp_path / "accounts.db").chmod(0o644)
    make_server(data_dir=tmp_path)
    assert any("can be read by other users" in r.getMessage() and str(tmp_path) in r.getMessage()
               for r in caplog.records)
    assert mode(tmp_path / "accounts.db") == 0o600
    assert mode(tmp_path) == 0o755  # the operator's folder: told, not changed


def test_no_history_writes_no_messages_file(make_server, tmp_path):
    make_server(data_dir=tmp_path, history=False)
    assert not (tmp_path / "messages.db").exists()
    assert mode(tmp_path / "accounts.db") == 0o600
