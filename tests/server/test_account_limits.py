"""The limits on accounts: registering, guessing and changing passwords, per address group and per account,
and the hashing pool's lanes that keep registered users' logins going. Real sockets from several loopback
addresses (127.0.0.x: all loopback on Linux)."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from qtchat.protocol import AccountStatus, Error, Hello, PasswordChange, Register, Welcome
from qtchat.server.accounts import LOGIN, OTHER, Hasher
from qtchat.server.guard import AccountLimits, Window, address_group
from tests.helpers import RawClient

pytestmark = pytest.mark.backends

PASSWORD = "correct horse battery"
OTHER_PASSWORD = "another horse battery"
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="127.0.0.x beyond .1 is Linux's")


@pytest.fixture
def clients(qtbot):
    made: list[RawClient] = []

    def make(port: int, source: str | None = None) -> RawClient:
        client = RawClient(port, qtbot, source=source)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def outcomes(qtbot, group: list[RawClient]) -> list[str]:
    """Each client's first answer to its hello: 'welcome' or the error's code."""
    def answered(c: RawClient) -> bool:
        return bool(c.of(Welcome) or c.of(Error))

    qtbot.waitUntil(lambda: all(answered(c) for c in group), timeout=20_000)
    return ["welcome" if c.of(Welcome) else c.of(Error)[0].code for c in group]


def test_ipv6_addresses_count_by_their_64_and_mapped_ipv4_as_ipv4():
    assert address_group("2001:db8:1:2::1") == address_group("2001:db8:1:2:ffff:ffff:ffff:fffe") == "2001:db8:1:2::/64"
    assert address_group("2001:db8:1:3::1") != address_group("2001:db8:1:2::1")
    assert address_group("::ffff:10.0.0.7") == "10.0.0.7" == address_group("10.0.0.7")
    assert address_group("10.0.0.8") != address_group("10.0.0.7")
    assert address_group("fe80::1%eth0") == "fe80::/64"


def test_a_window_counts_running_checks_and_forgets_old_events():
    window = Window(3, 60.0)
    window.start("a")
    window.start("a")
    window.add("a", 0.0)
    assert window.full("a", 1.0) and not window.full("b", 1.0)
    window.finish("a", 2.0, counted=False)  # a right password: no longer counted
    assert not window.full("a", 2.0)
    window.finish("a", 3.0, counted=True)  # a wrong one: an event at 3
    assert window.count("a", 3.0) == 2 and not window.full("a", 3.0)
    assert window.count("a", 61.0) == 1 and window.wait("a", 61.0) == pytest.approx(2.0)
    assert not Window(0, 60.0).full("a", 0.0)


def test_registrations_are_limited_per_address(make_server, clients, qtbot):
    server = make_server(account_limits=AccountLimits(registrations_per_address=3))
    group = [clients(server.port) for _ in range(5)]
    for i, c in enumerate(group):
        c.send(Hello(user=f"user{i}", password=PASSWORD, register=True))
    assert sorted(outcomes(qtbot, group)) == ["too_many_attempts"] * 2 + ["welcome"] * 3
    refused = [c.of(Error)[0] for c in group if c.of(Error)]
    assert all(e.fatal and e.retry_after and 0 < e.retry_after <= 61 for e in refused)
    assert sum(server.backend.account(f"user{i}") is not None for i in range(5)) == 3  # none made by the others
    late = clients(server.port)  # registering later in the session counts too
    late.login("later")
    late.send(Register(PASSWORD))
    error = late.wait_event(Error)
    assert (error.code, error.fatal) == ("too_many_attempts", False)
    assert server.backend.account("later") is None


@linux_only
def test_registrations_are_limited_in_total_whatever_the_address(make_server, clients, qtbot):
    server = make_server(account_limits=AccountLimits(registrations_per_address=0, registrations_total=4))
    group = [clients(server.port, f"127.0.0.{2 + i}") for i in range(6)]
    for i, c in enumerate(group):
        c.send(Hello(user=f"user{i}", password=PASSWORD, register=True))
    assert sorted(outcomes(qtbot, group)) == ["too_many_attempts"] * 2 + ["welcome"] * 4


def test_checks_still_running_count_against_the_wrong_password_limit(make_server, clients, qtbot):
    """25 wrong passwords sent at once from one address: 10 are checked, the rest refused unchecked (before:
    all 25 were checked, the wrong ones counted only once answered)."""
    server = make_server(account_limits=AccountLimits(jobs_per_address=64))
    owner = clients(server.port)
    owner.login("alice", password=PASSWORD, register=True)
    owner.close()
    group = [clients(server.port) for _ in range(25)]
    for c in group:
        c.send(Hello(user="alice", password="not the password"))
    results = outcomes(qtbot, group)
    assert results.count("auth_failed") == 10
    assert results.count("too_many_attempts") == 15


def test_one_address_queues_few_hashing_jobs(make_server, clients, qtbot):
    server = make_server(account_limits=AccountLimits(jobs_per_address=4, registrations_per_address=0))
    group = [clients(server.port) for _ in range(6)]
    for i, c in enumerate(group):
        c.send(Hello(user=f"user{i}", password=PASSWORD, register=True))
    assert sorted(outcomes(qtbot, group)) == ["server_busy"] * 2 + ["welcome"] * 4


@linux_only
def test_wrong_passwords_are_limited_per_account_from_many_addresses(make_server, clients, qtbot):
    server = make_server(account_limits=AccountLimits(failures_per_account=6))
    owner = clients(server.port)
    owner.login("alice", password=PASSWORD, register=True)
    owner.close()
    group = [clients(server.port, f"127.0.0.{2 + i}") for i in range(8) for _ in range(2)]
    for c in group:
        c.send(Hello(user="alice", password="not the password"))
    results = outcomes(qtbot, group)
    assert results.count("auth_failed") == 6 and results.count("too_many_attempts") == 10
    other = clients(server.port, "127.0.0.20")  # another account is not held back by alice's
    other.login("bob", password=PASSWORD, register=True)


def test_password_changes_are_limited_per_account_even_between_right_passwords(make_server, clients, qtbot):
    server = make_server(account_limits=AccountLimits(passwd_per_account=3))
    judy = clients(server.port)
    judy.login("judy", password=PASSWORD, register=True)
    passwords = [PASSWORD, OTHER_PASSWORD]
    for i in range(3):  # right every time
        judy.events.clear()
        judy.send(PasswordChange(passwords[i % 2], passwords[(i + 1) % 2]))
        judy.wait_for(lambda: any(e.password_changed for e in judy.of(AccountStatus)))
    stored = server.backend.account("judy").password_hash
    judy.events.clear()
    judy.send(PasswordChange(OTHER_PASSWORD, PASSWORD))
    error = judy.wait_event(Error)
    assert (error.code, error.ref, error.fatal) == ("too_many_attempts", "passwd", False)
    assert server.backend.account("judy").password_hash == stored  # not changed, and not even hashed
    assert server.hasher.pending == 0


@linux_only
def test_a_registered_users_login_is_never_starved_by_others_registering(make_server, clients, qtbot):
    """Many addresses registering as fast as they can fill at most their share of the hashing queue; the
    registered user's login still gets in (before: 'server_busy', fatal, with the queue full)."""
    server = make_server(account_limits=AccountLimits(registrations_per_address=0, registrations_total=0))
    owner = clients(server.port)
    owner.login("alice", password=PASSWORD, register=True)
    owner.close()
    qtbot.waitUntil(lambda: server.hasher.pending == 0)
    flood = [clients(server.port, f"127.0.0.{2 + i}") for i in range(18) for _ in range(5)]
    for i, c in enumerate(flood):
        c.send(Hello(user=f"flood{i}", password=PASSWORD, register=True))
    qtbot.waitUntil(lambda: sum(bool(c.of(Error)) for c in flood) >= 90 - 32, timeout=10_000)
    assert server.hasher.pending <= 32  # registrations take at most half of the queue...
    assert all(e.code == "server_busy" for c in flood for e in c.of(Error))
    alice = clients(server.port, "127.0.0.30")
    welcome = alice.login("alice", password=PASSWORD)  # ...and a login goes before them
    assert welcome.user == "alice"
    assert any(not c.of(Welcome) for c in flood)  # it did not wait for all the registrations


def test_the_hashing_pool_runs_logins_first_and_caps_each_address():
    hasher = Hasher(workers=1, max_pending=8, per_owner=3)
    gate = threading.Event()
    order: list[str] = []
    try:
        assert hasher.submit(gate.wait, (), lambda _: None, lane=OTHER)  # holds the one worker
        for i in range(3):
            assert hasher.submit(order.append, (f"other{i}",), lambda _: None, lane=OTHER, owner=f"10.0.0.{i}")
        assert not hasher.submit(order.append, ("refused",), lambda _: None, lane=OTHER)  # half of 8 is taken
        assert hasher.submit(order.append, ("login",), lambda _: None, lane=LOGIN, owner="10.0.0.9")
        assert hasher.submit(order.append, ("login",), lambda _: None, lane=LOGIN, owner="10.0.0.9")
        assert hasher.submit(order.append, ("login",), lambda _: None, lane=LOGIN, owner="10.0.0.9")
        assert not hasher.submit(order.append, ("fourth",), lambda _: None, lane=LOGIN, owner="10.0.0.9")
        gate.set()
        deadline = time.monotonic() + 5
        while len(order) < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert order == ["login"] * 3 + ["other0", "other1", "other2"]
    finally:
        gate.set()
        hasher.shutdown()


def test_a_window_forgets_keys_whose_events_all_left_it():
    from qtchat.server.guard import PRUNE_AT, Window

    window = Window(limit=3, seconds=60)
    for i in range(PRUNE_AT):
        window.add(f"10.0.{i // 256}.{i % 256}", 0.0)
    window.add("fresh", 61.0)  # past the bound: the old ones (a minute old) are forgotten
    assert len(window._events) == 1 and window.count("fresh", 61.0) == 1
