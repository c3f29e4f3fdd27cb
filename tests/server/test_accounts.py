"""Accounts: registered names, passwords, required accounts, the operator role, the admin command line."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading

import pytest

from qtchat.protocol import (
    AccountStatus,
    BanRequest,
    Bye,
    Error,
    KickRequest,
    Message,
    Notice,
    PasswordChange,
    Register,
    Welcome,
)
from qtchat.server.accounts import KDF_NICE, Hasher, hash_password, verify_password
from qtchat.server.guard import AccountLimits
from tests.helpers import outcome
from tests.server.test_cli import BlockingClient, Proc

pytestmark = pytest.mark.backends

PASSWORD = "correct horse battery"


def test_password_hashes_verify_and_differ_by_salt():
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first != second and first.startswith("scrypt$16384$8$1$")
    assert PASSWORD not in first
    assert verify_password(PASSWORD, first) and verify_password(PASSWORD, second)
    assert not verify_password("correct horse battery!", first)
    assert not verify_password(PASSWORD, "scrypt$broken")


def test_a_registered_name_needs_its_password(server, connect, caplog):
    caplog.set_level(logging.DEBUG)
    alice = connect()
    welcome = alice.login("alice", password=PASSWORD, register=True)
    assert welcome.user == "alice"
    assert alice.wait_event(AccountStatus) == AccountStatus(registered=True, admin=False)
    alice.close()
    assert connect().refused("ALICE").code == "auth_required"
    assert connect().refused("alice", password="wrong password").code == "auth_failed"
    assert connect().refused("alice", password=PASSWORD, register=True).code == "name_registered"
    again = connect()
    again.login("Alice", password=PASSWORD)
    assert again.wait_event(AccountStatus).registered
    assert connect().refused("alice").code == "name_taken"
    third = connect()  # the owner from elsewhere: the old session gives way
    third.login("alice", password=PASSWORD)
    again.wait_event(Bye)
    assert again.of(Bye)[0].reason == "logged in elsewhere"
    assert not any(PASSWORD in record.getMessage() for record in caplog.records)  # never logged


def test_an_unregistered_name_logs_in_as_before_and_can_register_later(server, connect):
    bob = connect()
    bob.login("bob")
    assert bob.wait_event(AccountStatus) == AccountStatus(registered=False, admin=False)
    bob.send(Register("short"))
    assert bob.wait_event(Error).code == "bad_password"
    bob.send(Register(PASSWORD))
    bob.wait_for(lambda: any(e.registered for e in bob.of(AccountStatus)))
    bob.say("still chatting")
    bob.close()
    assert connect().refused("bob").code == "auth_required"
    connect().login("bob", password=PASSWORD)


def test_required_accounts_and_closed_registration(make_server, connect):
    server = make_server(require_accounts=True)
    error = connect(server.port).refused("carol")
    assert error.code == "account_required" and "register the name first" in error.message
    connect(server.port).login("carol", password=PASSWORD, register=True)
    closed = make_server(require_accounts=True, registration=False)
    error = connect(closed.port).refused("dave")
    assert error.code == "account_required" and "ask its operator" in error.message
    assert connect(closed.port).refused("dave", password=PASSWORD, register=True).code == "registration_closed"


def test_wrong_passwords_from_one_address_are_limited(server, connect):
    connect().login("erin", password=PASSWORD, register=True)
    for _ in range(10):
        assert connect().refused("erin", password="not the password").code == "auth_failed"
    error = connect().refused("erin", password=PASSWORD)
    assert error.code == "too_many_attempts" and "wait" in error.message


@pytest.mark.sqlite
def test_accounts_survive_a_restart(make_server, connect, tmp_path):
    first = make_server(data_dir=tmp_path)
    connect(first.port).login("frank", password=PASSWORD, register=True)
    first.shutdown("restart")
    second = make_server(data_dir=tmp_path)
    assert connect(second.port).refused("frank").code == "auth_required"
    connect(second.port).login("frank", password=PASSWORD)


def test_operators_kick_and_ban_from_the_client_others_may_not(server, connect, qtbot):
    outcome(qtbot, server.operator.register_account("oper", hash_password(PASSWORD), admin=True))
    oper = connect()
    oper.login("oper", password=PASSWORD)
    assert oper.wait_event(AccountStatus) == AccountStatus(registered=True, admin=True)
    pest = connect()
    pest.login("pest")
    pest.send(KickRequest("oper", "no"))
    assert pest.wait_event(Error).code == "forbidden"
    oper.send(KickRequest("pest", "calm down"))
    pest.wait_event(Bye)
    assert pest.of(Bye)[0].reason == "kicked: calm down (by oper)"
    assert oper.wait_event(Notice).text == "Kicked pest."
    pest2 = connect()
    pest2.login("pest")
    oper.send(BanRequest("pest", minutes=10, reason="again"))
    pest2.wait_closed()
    assert connect().refused("pest").code == "banned"
    outcome(qtbot, server.operator.set_operator("oper", False))
    oper.wait_for(lambda: AccountStatus(registered=True, admin=False) in oper.of(AccountStatus))


def test_the_admin_command_line_registers_names_with_a_password_from_stdin(tmp_path):
    proc = Proc("--data-dir", str(tmp_path))

    def admin(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "qtchat.server", "admin", "--port", str(proc.port), *args],
                              input=stdin, capture_output=True, text=True, timeout=30)

    try:
        out = admin("register", "grace", "--op", stdin=PASSWORD + "\n")
        assert out.returncode == 0 and "Registered grace as an operator." in out.stdout, out.stderr
        assert admin("register", "heidi", stdin="short\n").returncode != 0
        listing = admin("accounts").stdout
        assert "grace" in listing and "operator" in listing and "heidi" not in listing
        client = BlockingClient(proc.port, "grace", password=PASSWORD)
        client.read_until(lambda: any(isinstance(e, AccountStatus) for e in client.events))
        assert [e for e in client.events if isinstance(e, AccountStatus)] == [AccountStatus(True, True)]
        assert any(isinstance(e, Welcome) for e in client.events)
        out = admin("unregister", "grace")
        assert out.returncode == 0 and "free for anyone" in out.stdout
    finally:
        proc.stop()


NEW_PASSWORD = "staple battery horse correct"


def test_a_user_changes_their_own_password(server, connect, caplog):
    caplog.set_level(logging.DEBUG)
    ivan = connect()
    ivan.login("ivan", password=PASSWORD, register=True)
    ivan.wait_event(AccountStatus)
    ivan.send(PasswordChange(PASSWORD, NEW_PASSWORD))
    assert ivan.wait_event(AccountStatus, password_changed=True) == AccountStatus(True, False, password_changed=True)
    ivan.say("still here after the change")  # the session goes on
    ivan.wait_for(lambda: any(m.text == "still here after the change" for m in ivan.of(Message)))
    ivan.close()
    assert connect().refused("ivan", password=PASSWORD).code == "auth_failed"
    connect().login("ivan", password=NEW_PASSWORD)
    records = [r.getMessage() for r in caplog.records]
    assert any("ivan changed their password" in text for text in records)
    assert not any(PASSWORD in text or NEW_PASSWORD in text for text in records)  # never logged


def test_a_wrong_old_password_changes_nothing_and_counts_as_a_wrong_password(make_server, connect, caplog):
    caplog.set_level(logging.DEBUG)
    server = make_server(account_limits=AccountLimits(passwd_per_account=0))  # (that limit is tested below)
    judy = connect(server.port)
    judy.login("judy", password=PASSWORD, register=True)
    judy.send(PasswordChange("not the password", NEW_PASSWORD))
    error = judy.wait_event(Error)
    assert (error.code, error.ref, error.fatal) == ("auth_failed", "passwd", False)
    assert "current password is wrong" in error.message
    assert not any(e.password_changed for e in judy.of(AccountStatus))
    for _ in range(9):  # ten wrong passwords from this address within a minute, logins and changes together
        judy.events.clear()
        judy.send(PasswordChange("still not it", NEW_PASSWORD))
        assert judy.wait_event(Error).code == "auth_failed"
    judy.events.clear()
    judy.send(PasswordChange(PASSWORD, NEW_PASSWORD))  # the right one, but too late
    error = judy.wait_event(Error)
    assert (error.code, error.ref, error.fatal) == ("too_many_attempts", "passwd", False)
    judy.say("not disconnected")
    judy.wait_for(lambda: any(m.text == "not disconnected" for m in judy.of(Message)))
    assert connect(server.port).refused("judy", password=PASSWORD).code == "too_many_attempts"
    records = [r.getMessage() for r in caplog.records]
    assert not any(secret in text for text in records
                   for secret in (PASSWORD, NEW_PASSWORD, "not the password", "still not it"))


def test_a_weak_new_password_or_an_unregistered_name_is_refused(server, connect):
    kate = connect()
    kate.login("kate", password=PASSWORD, register=True)
    for new, why in (("", "at least 8"), ("short", "at least 8"), (PASSWORD, "same as the old")):
        kate.events.clear()
        kate.send(PasswordChange(PASSWORD, new))
        error = kate.wait_event(Error)
        assert (error.code, error.ref) == ("bad_password", "passwd") and why in error.message, error
    leo = connect()
    leo.login("leo")
    leo.send(PasswordChange(PASSWORD, NEW_PASSWORD))
    error = leo.wait_event(Error)
    assert (error.code, error.ref, error.fatal) == ("account_required", "passwd", False)
    assert "not registered" in error.message
    kate.close()
    connect().login("kate", password=PASSWORD)  # none of the refused changes took


def test_a_password_change_before_login_is_a_handshake_error(server, connect):
    stranger = connect()
    stranger.send(PasswordChange(PASSWORD, NEW_PASSWORD))
    error = stranger.wait_event(Error)
    assert error.code == "handshake_required" and error.fatal
    stranger.wait_closed()


def test_password_change_frames_keep_secrets_out_of_repr():
    change = PasswordChange(PASSWORD, NEW_PASSWORD)
    assert PASSWORD not in repr(change) and NEW_PASSWORD not in repr(change)
    assert PasswordChange.from_wire(change.to_wire()) == change


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a nice value per thread is Linux's")
def test_hashing_threads_run_nicer_than_the_event_loop(qtbot):
    def my_nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    loop_nice = my_nice()
    hasher = Hasher(workers=1)
    results: list[int] = []
    assert hasher.submit(my_nice, (), results.append)
    qtbot.waitUntil(lambda: bool(results), timeout=5000)  # the result comes back on the event loop
    hasher.shutdown()
    assert results == [min(19, loop_nice + KDF_NICE)] and (results[0] > loop_nice or loop_nice == 19)
    assert my_nice() == loop_nice  # the event loop's thread (and the process) keep their priority


def test_frames_sent_right_after_a_hello_wait_for_its_welcome(server, connect):
    """A client may send its first requests with its hello, in one write: they are answered after the welcome,
    while the password is checked (the hashing pool) or the backend answers later, never refused with
    ``handshake_required``."""
    from qtchat.protocol import Hello, History, HistoryRequest, SendMessage

    owner = connect()
    owner.login("carol")
    owner.send(Register(PASSWORD))
    owner.wait_for(lambda: any(e.registered for e in owner.of(AccountStatus)))
    owner.close()
    for name, password in (("carol", PASSWORD), ("dave", None)):
        client = connect()
        client.send_raw(client.conn.send(Hello(user=name, password=password))
                        + client.conn.send(HistoryRequest(limit=5))
                        + client.conn.send(SendMessage(f"pipelined by {name}", cid="p1")))
        client.wait_event(Message, cid="p1")
        client.wait_event(History)
        kinds = [type(e) for e in client.events]
        assert kinds[0] is Welcome and History in kinds  # (the page and the acknowledgement in either order)
        assert not client.of(Error) and not client.closed
