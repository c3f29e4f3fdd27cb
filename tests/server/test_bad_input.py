"""Bad input against a live server on 127.0.0.1: garbage, slowloris, half-open peers, connection churn,
floods and connection exhaustion. The server keeps serving everyone else, and nothing they sent is lost.

The per-connection limits are on here with their defaults unless a test says otherwise.
"""

from __future__ import annotations

import os
import random
import socket
import struct
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from qtchat.protocol import Error, ErrorCode, Hello, Joined, Left, Message, Ping, Pong, UserList, Welcome
from qtchat.server import ServerConfig
from tests.helpers import RawClient, garbage_frame

pytestmark = pytest.mark.backends

DEFAULTS = {k: getattr(ServerConfig(), k) for k in ("rate_messages", "rate_bytes", "max_per_address")}
KNOWN_CODES = {c.value for c in ErrorCode}


def left_users(client: RawClient) -> set[str]:
    return {e.user for e in client.of(Left)}


def chat_pair(port: int, qtbot: Any) -> tuple[RawClient, RawClient]:
    alice, bob = RawClient(port, qtbot), RawClient(port, qtbot)
    alice.login("alice")
    bob.login("bob")
    return alice, bob


def test_garbage_from_several_clients_while_two_chat_loses_nothing(make_server, qtbot):
    server = make_server(**DEFAULTS)
    alice, bob = chat_pair(server.port, qtbot)
    rng = random.Random(8)
    everyone: list[RawClient] = []
    strangers: list[RawClient] = []

    def newcomer(slot: int) -> RawClient:
        client = RawClient(server.port, qtbot)
        everyone.append(client)
        if slot < 6:  # six log in first; two send their garbage as strangers
            client.send(Hello(user=f"bad{slot}-{len(everyone)}"))
            client.wait_event(Welcome)
        else:
            strangers.append(client)
        return client

    bad = [newcomer(slot) for slot in range(8)]
    kinds_sent: set[str] = set()
    per_chatter = 18  # under the default burst of 20: the chatters are never told to slow down
    for round_ in range(per_chatter):
        alice.say(f"a{round_}", cid=f"a{round_}")
        bob.say(f"b{round_}", cid=f"b{round_}")
        for slot in range(len(bad)):
            client = bad[slot]
            client.pump()
            if client.closed:  # dropped by the server: a new one takes its place
                client = bad[slot] = newcomer(slot)
            kind, frame = garbage_frame(rng, server.config.max_frame)
            kinds_sent.add(kind)
            try:
                client.send_raw(frame)
            except OSError:
                client.closed = True  # the server dropped it (as it may), mid-send
        qtbot.wait(5)
    for me, other, prefix in ((alice, bob, "b"), (bob, alice, "a")):
        me.wait_for(partial(lambda c: len(c.of(Message)) == 2 * per_chatter, me), timeout=10)
        got = [m.text for m in me.of(Message) if m.sender == other.of(Welcome)[0].user]
        assert got == [f"{prefix}{i}" for i in range(per_chatter)], "every message of the other, in order"
        assert not me.of(Error)
    assert kinds_sent >= {"json", "utf8", "oversize", "types", "unknown", "nul", "numbers", "nesting"}
    for client in everyone:
        client.wait_for(partial(lambda c: c.closed or bool(c.of(Error)), client))
        errors = client.of(Error)
        assert errors, "every bad client was told what was wrong"
        assert {e.code for e in errors} <= KNOWN_CODES
        assert all(e.message for e in errors)
        fatal = [e for e in errors if e.fatal]
        assert len(fatal) <= 1 and (not fatal or fatal[0] is errors[-1]), "nothing after a fatal error"
    for client in strangers:  # before the handshake every error is fatal: told once, then dropped
        client.wait_closed()
        assert client.of(Error)[-1].fatal
    assert len(everyone) > 8, "some bad clients were disconnected (and replaced)"
    for client in everyone:
        client.close()
    qtbot.waitUntil(lambda: len(server.peers) == 2, timeout=5000)
    assert sorted(server.user_names()) == ["alice", "bob"]
    alice.say("still fine", cid="end")
    assert bob.wait_event(Message, cid="end").text == "still fine"


def test_slowloris_clients_are_dropped_by_the_handshake_timeout_while_others_log_in(make_server, qtbot):
    server = make_server(**DEFAULTS, handshake_timeout=0.5)
    lorises = [RawClient(server.port, qtbot) for _ in range(5)]
    hello = b'{"type":"hello","version":1,"user":"slowpoke"}\n'
    alice, bob = chat_pair(server.port, qtbot)
    for byte in hello[:30]:  # one byte each 40 ms: the hello would take about 2 s
        for loris in lorises:
            if not loris.closed:
                try:
                    loris.send_raw(bytes([byte]))
                except OSError:
                    loris.closed = True
                loris.pump()
        qtbot.wait(40)
        if all(loris.closed for loris in lorises):
            break
    for loris in lorises:
        loris.wait_closed(timeout=3)
        if loris.of(Error):  # the error may be lost when the loris writes after the close (a reset)
            assert loris.of(Error)[0].code == "handshake_timeout"
    alice.say("hi bob", cid="1")
    assert bob.wait_event(Message, cid="1").text == "hi bob"
    qtbot.waitUntil(lambda: len(server.peers) == 2, timeout=3000)


def test_peers_that_stop_reading_or_go_silent_are_dropped(make_server, qtbot):
    # the chatter here sends big messages fast, so the rate limits are off; the output cap and ping are small
    server = make_server(max_output=64 * 1024, ping_interval=1.0, ping_timeout=0.5)
    alice, bob = chat_pair(server.port, qtbot)
    stalled = RawClient(server.port, qtbot, rcvbuf=4096)  # logs in, then never reads again
    stalled.send(Hello(user="stalled"))
    silent = RawClient(server.port, qtbot)  # reads, but never answers a ping: as good as gone
    silent.login("silent")
    bob.wait_event(Joined, user="silent")
    answered: set[str] = set()

    def keep_alive() -> bool:
        """Answer the chatters' pings; always True."""
        for me in (alice, bob):
            for ping in me.of(Ping):
                if ping.token + me.of(Welcome)[0].user not in answered:
                    answered.add(ping.token + me.of(Welcome)[0].user)
                    me.send(Pong(ping.token))
        return True

    sent = 0
    while not {"stalled", "silent"} <= left_users(bob) and sent < 300:
        alice.say("z" * 30000, cid=str(sent))
        sent += 1
        silent.pump()
        keep_alive()
        qtbot.wait(5)
    bob.wait_for(lambda: keep_alive() and {"stalled", "silent"} <= left_users(bob), timeout=5)
    reasons = {e.user: e.reason for e in bob.of(Left)}
    assert "not reading" in reasons["stalled"]
    assert reasons["silent"] == "ping timeout"
    bob.wait_for(lambda: keep_alive() and len(bob.of(Message)) == sent, timeout=10)
    qtbot.waitUntil(lambda: len(server.peers) == 2, timeout=3000)
    stalled.close()
    silent.close()


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="counts open files in /proc")
def test_connect_disconnect_cycles_leave_no_sessions_and_no_open_files(make_server, qtbot):
    server = make_server(**{**DEFAULTS, "max_per_address": 0})

    def cycles(batches: int) -> None:
        for batch in range(batches):
            clients = [RawClient(server.port, qtbot) for _ in range(10)]
            for i, client in enumerate(clients):
                if i % 3 == 0:
                    client.login(f"c{batch}-{i}")
                elif i % 3 == 1:
                    client.send_raw(b'{"type":"hel')  # half a hello
                else:  # a whole hello, and gone before the welcome is written (a write to a closed peer)
                    client.send(Hello(user=f"gone{batch}-{i}"))
            for i, client in enumerate(clients):
                if i % 2:  # half of them reset the connection instead of closing it
                    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
            qtbot.waitUntil(lambda: not server.peers, timeout=5000)

    cycles(3)  # warm up: Qt opens what it keeps for good on first use
    before = len(os.listdir("/proc/self/fd"))
    cycles(30)  # 300 connections
    qtbot.waitUntil(lambda: not server.peers and not server.users and not server.connections.per_address, timeout=5000)
    assert len(os.listdir("/proc/self/fd")) <= before
    assert server.user_names() == []


def test_message_flood_gets_slow_down_with_its_cid_then_flood_while_a_chatter_is_unaffected(make_server, qtbot):
    server = make_server(rate_messages=5, rate_burst=5, rate_bytes=0, flood_after=10, flood_window=10)
    alice, bob = chat_pair(server.port, qtbot)
    flooder = RawClient(server.port, qtbot)
    flooder.login("flooder")
    for i in range(6):
        flooder.say(f"f{i}", cid=f"f{i}")
    refused = flooder.wait_event(Error, code="slow_down")
    assert refused.ref == "f5" and not refused.fatal
    assert refused.retry_after is not None and 0 < refused.retry_after <= 0.2
    assert "wait" in refused.message.lower()
    alice.say("normal", cid="n1")
    bob.wait_event(Message, cid="n1")
    for i in range(6, 40):
        try:
            flooder.say(f"f{i}", cid=f"f{i}")
        except OSError:
            break
    flooder.wait_closed()
    errors = flooder.of(Error)
    assert errors[-1].code == "flood" and errors[-1].fatal
    slow = [e for e in errors if e.code == "slow_down"]
    assert [e.ref for e in slow] == [f"f{i}" for i in range(5, 5 + len(slow))]
    assert len(slow) == 10  # flood_after
    assert bob.wait_event(Left, user="flooder").reason == "flooding"
    alice.say("after", cid="n2")
    bob.wait_event(Message, cid="n2")
    relayed = [m.text for m in bob.of(Message) if m.sender == "flooder"]
    assert relayed == [f"f{i}" for i in range(5)], "refused messages are not relayed"
    assert [m.cid for m in bob.of(Message) if m.sender == "alice"] == ["n1", "n2"]


def test_byte_flood_is_refused_then_disconnected(make_server, qtbot):
    server = make_server(max_frame=4096, rate_messages=0, rate_bytes=4096, rate_bytes_burst=8192)
    alice, bob = chat_pair(server.port, qtbot)
    heavy = RawClient(server.port, qtbot)
    heavy.login("heavy")
    heavy.send_raw(b'{"type":"ping","token":"%s"}\n' % (b"p" * 150) * 60)  # ~10 KB: in debt
    heavy.wait_for(lambda: len(heavy.of(Pong)) == 60)
    heavy.say("in debt", cid="d1")
    refused = heavy.wait_event(Error, code="slow_down")
    assert refused.ref == "d1" and refused.retry_after and refused.retry_after > 0
    heavy.send_raw(b'{"type":"ping"}\n' * 1000)  # 16 KB more: twice the burst in debt
    heavy.wait_closed()
    assert heavy.of(Error)[-1].code == "flood"
    assert bob.wait_event(Left, user="heavy").reason == "flooding"
    alice.say("fine", cid="x")
    assert bob.wait_event(Message, cid="x").text == "fine"


def test_connections_over_the_per_address_cap_are_refused(make_server, qtbot):
    server = make_server(**{**DEFAULTS, "max_per_address": 3})
    first = [RawClient(server.port, qtbot) for _ in range(3)]
    for i, client in enumerate(first):
        client.login(f"u{i}")
    extra = RawClient(server.port, qtbot)
    extra.wait_closed()
    error = extra.of(Error)[0]
    assert error.code == "too_many_connections" and error.fatal
    assert "3" in error.message and "127.0.0.1" in error.message
    first[0].close()
    qtbot.waitUntil(lambda: server.connections.per_address.get("127.0.0.1") == 2, timeout=3000)
    again = RawClient(server.port, qtbot)
    assert again.login("u-again").user == "u-again"
    names = {n for ev in again.of(UserList) for n in ev.users}
    assert names == {"u1", "u2", "u-again"}


def test_welcome_announces_the_limits(make_server, qtbot):
    server = make_server(**DEFAULTS)
    welcome = RawClient(server.port, qtbot).login("alice")
    cfg = server.config
    assert welcome.limits["messages_per_s"] == cfg.rate_messages
    assert welcome.limits["bytes_per_s"] == cfg.rate_bytes
    assert welcome.limits["max_rooms"] == cfg.max_rooms_per_user
    assert welcome.limits["max_per_address"] == cfg.max_per_address
