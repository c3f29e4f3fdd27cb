"""The account limits' flags (--account-window, --failures-per-address, ...): they reach the server, and bad
numbers (for these and every other number flag) stop qtchat-server with a clear message before it listens."""

from __future__ import annotations

import socket

import pytest

from qtchat.protocol import NEED_DATA, PEER_CLOSED, Connection, Error, Hello, Role, Welcome
from qtchat.server.cli import build_parser, config_from_args
from qtchat.server.guard import AccountLimits
from tests.server.test_cli import Proc, run

PASSWORD = "correct horse battery"


def register(port: int, name: str) -> Welcome | Error:
    """Register ``name`` in a hello over a fresh connection: the Welcome, or the Error that refused it."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        conn = Connection(Role.CLIENT)
        sock.sendall(conn.send(Hello(name, password=PASSWORD, register=True)))
        while data := sock.recv(65536):
            conn.receive_data(data)
            while (ev := conn.next_event()) not in (NEED_DATA, PEER_CLOSED):
                if isinstance(ev, Welcome | Error):
                    return ev
    raise AssertionError(f"{name}: closed without an answer")


def test_every_account_flag_reaches_the_config():
    args = ["--account-window", "7.5", "--failures-per-address", "1", "--failures-per-account", "2",
            "--registrations-per-address", "3", "--registrations-total", "4", "--passwd-per-account", "5",
            "--hash-jobs-per-address", "6"]
    assert config_from_args(build_parser().parse_args(args)).account_limits == AccountLimits(
        window=7.5, failures_per_address=1, failures_per_account=2, registrations_per_address=3,
        registrations_total=4, passwd_per_account=5, jobs_per_address=6)
    assert config_from_args(build_parser().parse_args([])).account_limits == AccountLimits()  # the defaults
    assert config_from_args(build_parser().parse_args(["--registrations-total", "0"])).account_limits \
        .registrations_total == 0  # 0: that limit off


def test_registrations_per_address_reaches_the_server_over_real_sockets():
    proc = Proc("--registrations-per-address", "1")
    try:
        first = register(proc.port, "alice")
        second = register(proc.port, "bob")
    finally:
        proc.stop()
    assert isinstance(first, Welcome)
    assert isinstance(second, Error) and second.code == "too_many_attempts" and second.fatal


def test_without_the_flag_a_second_registration_is_taken():
    proc = Proc()
    try:
        answers = [register(proc.port, "alice"), register(proc.port, "bob")]
    finally:
        proc.stop()
    assert all(isinstance(a, Welcome) for a in answers)


@pytest.mark.parametrize(("flag", "value", "wanted"), [
    ("--account-window", "0", "a number of seconds greater than 0"),
    ("--account-window", "nan", "a number of seconds greater than 0"),
    ("--failures-per-address", "-1", "a whole number, 0 or more"),
    ("--failures-per-account", "x", "a whole number, 0 or more"),
    ("--registrations-per-address", "1.5", "a whole number, 0 or more"),
    ("--registrations-total", "", "a whole number, 0 or more"),
    ("--passwd-per-account", "-3", "a whole number, 0 or more"),
    ("--hash-jobs-per-address", "many", "a whole number, 0 or more"),
    ("--port", "x", "a whole number from 0 to 65535"),  # the other number flags say it the same way
    ("--max-clients", "0", "a positive whole number"),
    ("--max-frame", "10", "a whole number of bytes from 1024 to 16777216"),
    ("--handshake-timeout", "inf", "a number of seconds greater than 0"),
    ("--rate-messages", "-1", "a number, 0 or more (below 10^12)"),
])
def test_a_bad_number_exits_2_with_the_flag_what_it_expects_and_what_came(flag, value, wanted):
    out = run(flag, value, "--port", "0") if flag != "--port" else run(flag, value)
    assert out.returncode == 2
    assert f"{flag}: expected {wanted}, got {value!r}" in out.stderr
    assert "listening on" not in out.stderr  # no server started
    assert "invalid" not in out.stderr  # not argparse's own "invalid _count value"


def test_help_lists_the_account_flags():
    out = run("--help")
    assert out.returncode == 0 and "limits on accounts" in out.stdout
    for flag in ("--account-window", "--failures-per-address", "--failures-per-account", "--registrations-per-address",
                 "--registrations-total", "--passwd-per-account", "--hash-jobs-per-address"):
        assert flag in out.stdout
