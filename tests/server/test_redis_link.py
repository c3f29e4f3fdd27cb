"""The Redis client on the Qt loop (qtchat/server/redis_link.py), against a real Redis server.

Each test keeps to keys under a prefix of its own (its name), or a database of its own."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, TypeVar

import pytest
from PySide6.QtCore import QObject, Qt, QTimer

from qtchat.server.redis_link import RedisConnectionLost, RedisError, RedisLink, RedisSubscriber, encode
from tests.helpers import failure as failed_with
from tests.helpers import outcome
from tests.services import free_port

T = TypeVar("T")


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    return f"test:{request.node.name}:"


@pytest.fixture
def make_link(qtbot: Any, redis_server: Any) -> Iterator[Callable[..., RedisLink]]:
    """Factory: an open RedisLink to the test server (``db``: another database)."""
    links: list[RedisLink] = []

    def make(db: int = 0, url: str | None = None) -> RedisLink:
        link = RedisLink(url or f"{redis_server.url}/{db}")
        links.append(link)
        wait(qtbot, link.open())
        return link

    yield make
    for link in links:
        link.close()


@pytest.fixture
def make_subscriber(qtbot: Any, redis_server: Any) -> Iterator[Callable[[], tuple[RedisSubscriber, list[Any]]]]:
    """Factory: an open RedisSubscriber and the list its messages go to, as (channel, payload)."""
    subs: list[RedisSubscriber] = []

    def make() -> tuple[RedisSubscriber, list[Any]]:
        got: list[Any] = []
        sub = RedisSubscriber(redis_server.url, lambda channel, payload: got.append((channel, payload)))
        subs.append(sub)
        wait(qtbot, sub.open())
        return sub, got

    yield make
    for sub in subs:
        sub.close()


# the helpers' waits, with more time: a reconnect or a flood can take a while on a loaded machine
wait = partial(outcome, timeout=10_000)
failure = partial(failed_with, timeout=10_000)


# ------------------------------------------------------------ encoding and addresses


def test_commands_are_encoded_as_arrays_of_bulk_strings() -> None:
    assert encode(["SET", b"k\r\n", 42, "é"]) == b"*4\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$2\r\n42\r\n$2\r\n\xc3\xa9\r\n"
    with pytest.raises(TypeError):
        encode(["SET", "k", True])
    with pytest.raises(ValueError):
        encode([])


@pytest.mark.parametrize("url", ["redis://localhost:6379", "redis://redis.example.com/0", "redis://:pw@db:6379"])
def test_a_host_name_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="numeric"):
        RedisLink(url)
    with pytest.raises(ValueError, match="numeric"):
        RedisSubscriber(url, lambda channel, payload: None)


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379", "redis://127.0.0.1:6379/x", "redis://127.0.0.1:99999"])
def test_a_bad_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError):
        RedisLink(url)


def test_an_ipv6_address_and_the_defaults() -> None:
    a = RedisLink("redis://[::1]").address
    assert (a.host, a.port, a.db, a.password) == ("::1", 6379, 0, None)
    b = RedisLink("redis://user:p%40ss@10.0.0.2:7000/3").address
    assert (b.host, b.port, b.db, b.username, b.password) == ("10.0.0.2", 7000, 3, "user", "p@ss")


# ------------------------------------------------------------ commands


def test_replies_bytes_int_none_and_lists(qtbot: Any, make_link: Callable[..., RedisLink], prefix: str) -> None:
    link = make_link()
    assert isinstance(link.client_id, int)
    assert wait(qtbot, link.command("SET", prefix + "s", "value")) == b"OK"
    assert wait(qtbot, link.command("GET", prefix + "s")) == b"value"
    assert wait(qtbot, link.command("INCR", prefix + "n")) == 1
    assert wait(qtbot, link.command("INCRBY", prefix + "n", 41)) == 42
    assert wait(qtbot, link.command("GET", prefix + "missing")) is None
    assert wait(qtbot, link.command("RPUSH", prefix + "l", "a", b"b", 3)) == 3
    assert wait(qtbot, link.command("LRANGE", prefix + "l", 0, -1)) == [b"a", b"b", b"3"]
    assert wait(qtbot, link.command("DEL", prefix + "s", prefix + "n", prefix + "l")) == 3


def test_a_database_number_in_the_url_is_selected(qtbot: Any, make_link: Callable[..., RedisLink],
                                                   prefix: str) -> None:
    seven, zero = make_link(db=7), make_link(db=0)
    wait(qtbot, seven.command("SET", prefix + "k", "in 7"))
    assert wait(qtbot, seven.command("GET", prefix + "k")) == b"in 7"
    assert wait(qtbot, zero.command("GET", prefix + "k")) is None
    wait(qtbot, seven.command("DEL", prefix + "k"))


def test_ten_thousand_commands_sent_at_once_are_answered_in_order(qtbot: Any, make_link: Callable[..., RedisLink],
                                                                  prefix: str) -> None:
    link = make_link()
    futures = [link.command("INCR", prefix + "n") for _ in range(10_000)]
    assert not any(f.done() for f in futures)  # nothing is answered before the loop runs
    wait(qtbot, futures[-1])
    assert [f.result() for f in futures] == list(range(1, 10_001))
    wait(qtbot, link.command("DEL", prefix + "n"))


def test_commands_sent_while_opening_go_after_the_handshake(qtbot: Any, redis_server: Any, prefix: str) -> None:
    link = RedisLink(f"{redis_server.url}/4")
    opened = link.open()
    assert link.open() is opened
    written = link.command("SET", prefix + "k", "early")
    read = link.command("GET", prefix + "k")
    assert wait(qtbot, read) == b"early" and written.result() == b"OK" and opened.done()
    assert wait(qtbot, link.command("DEL", prefix + "k")) == 1
    link.close()


def test_an_error_reply_fails_that_command_only(qtbot: Any, make_link: Callable[..., RedisLink], prefix: str) -> None:
    link = make_link()
    wait(qtbot, link.command("SET", prefix + "s", "not a number"))
    bad = link.command("INCR", prefix + "s")
    unknown = link.command("NO-SUCH-COMMAND")
    after = link.command("GET", prefix + "s")
    exc = failure(qtbot, bad)
    assert type(exc) is RedisError and "not an integer" in str(exc)
    assert "unknown command" in str(failure(qtbot, unknown))
    assert wait(qtbot, after) == b"not a number"
    assert wait(qtbot, link.command("DEL", prefix + "s")) == 1


def test_a_pipeline_answers_every_reply_with_an_error_in_its_place(qtbot: Any, make_link: Callable[..., RedisLink],
                                                                   prefix: str) -> None:
    link = make_link()
    key = prefix + "k"
    before = link.command("SET", key, 1)
    replies = wait(qtbot, link.pipeline([["INCR", key], ["LPUSH", key, "x"], ["GET", key], ["DEL", key]]))
    assert before.result() == b"OK"
    assert replies[0] == 2 and replies[2:] == [b"2", 1]
    assert isinstance(replies[1], RedisError) and "WRONGTYPE" in str(replies[1])
    assert wait(qtbot, link.pipeline([])) == []
    assert wait(qtbot, link.command("PING")) == b"PONG"


def test_a_transaction_answers_its_replies_as_a_list(qtbot: Any, make_link: Callable[..., RedisLink],
                                                     prefix: str) -> None:
    link = make_link()
    replies = wait(qtbot, link.pipeline([["MULTI"], ["SET", prefix + "k", "v"], ["INCR", prefix + "k"],
                                         ["EXEC"], ["DEL", prefix + "k"]]))
    assert replies[:3] == [b"OK", b"QUEUED", b"QUEUED"] and replies[4] == 1
    assert replies[3][0] == b"OK" and isinstance(replies[3][1], RedisError)


def test_binary_values_every_byte_and_a_megabyte(qtbot: Any, make_link: Callable[..., RedisLink],
                                                 prefix: str) -> None:
    link = make_link()
    every = bytes(range(256)) * 4
    big = os.urandom(1024 * 1024)
    wait(qtbot, link.pipeline([["SET", prefix + "every", every], ["SET", prefix + "big", big]]))
    assert wait(qtbot, link.command("GET", prefix + "every")) == every
    assert wait(qtbot, link.command("GET", prefix + "big")) == big
    assert wait(qtbot, link.command("DEL", prefix + "every", prefix + "big")) == 2


def test_credentials_in_the_url_are_sent_with_auth(qtbot: Any, make_link: Callable[..., RedisLink],
                                                   redis_server: Any, prefix: str) -> None:
    admin = make_link()
    user = f"qtchat-{time.monotonic_ns()}"
    wait(qtbot, admin.command("ACL", "SETUSER", user, "on", ">s3cret", "~*", "&*", "+@all"))
    try:
        link = make_link(url=f"redis://{user}:s3cret@127.0.0.1:{redis_server.port}/2")
        assert wait(qtbot, link.command("ACL", "WHOAMI")) == user.encode()
        wrong = RedisLink(f"redis://{user}:wrong@127.0.0.1:{redis_server.port}")
        lost: list[str] = []
        wrong.on_lost = lost.append
        exc = failure(qtbot, wrong.open())
        assert isinstance(exc, RedisError) and "WRONGPASS" in str(exc)
        assert not wrong.is_open and lost == []
        assert isinstance(failure(qtbot, wrong.command("PING")), RedisConnectionLost)
    finally:
        wait(qtbot, admin.command("ACL", "DELUSER", user))


def test_opening_where_nothing_listens_fails_the_open_only(qtbot: Any) -> None:
    link = RedisLink(f"redis://127.0.0.1:{free_port()}")
    lost: list[str] = []
    link.on_lost = lost.append
    assert isinstance(failure(qtbot, link.open()), RedisConnectionLost)
    assert lost == [] and not link.is_open
    assert isinstance(failure(qtbot, link.command("PING")), RedisConnectionLost)  # at once: not connected


def test_close_fails_what_waits(qtbot: Any, make_link: Callable[..., RedisLink], prefix: str) -> None:
    link = make_link()
    lost: list[str] = []
    link.on_lost = lost.append
    blocked = link.command("BLPOP", prefix + "never", 0)
    qtbot.wait(50)
    link.close()
    assert isinstance(blocked.exception(), RedisConnectionLost)
    assert lost == []
    assert isinstance(link.command("PING").exception(), RedisConnectionLost)


def test_a_link_deleted_with_its_parent_closes_its_connection(qtbot: Any, redis_server: Any,
                                                              make_link: Callable[..., RedisLink]) -> None:
    watcher = make_link()
    parent = QObject()
    link = RedisLink(redis_server.url, parent)
    wait(qtbot, link.open())
    link.command("BLPOP", "test:never", 0)  # waiting when its owner goes
    gone = link.client_id
    assert gone is not None
    assert wait(qtbot, watcher.command("CLIENT", "LIST", "ID", gone)) != b""
    del link
    parent.deleteLater()  # pytest-qt fails the test on any exception raised in a slot meanwhile
    qtbot.waitUntil(lambda: wait(qtbot, watcher.command("CLIENT", "LIST", "ID", gone)) == b"")


# ------------------------------------------------------------ losing the connection


def test_a_killed_connection_fails_its_pending_commands_and_is_opened_again(
        qtbot: Any, make_link: Callable[..., RedisLink], prefix: str) -> None:
    link, killer = make_link(), make_link()
    lost: list[str] = []
    link.on_lost = lost.append
    victim = wait(qtbot, link.command("CLIENT", "ID"))
    assert victim == link.client_id
    answered = link.command("SET", prefix + "k", "v")
    blocked = [link.command("BLPOP", prefix + "never", 0) for _ in range(3)]
    assert wait(qtbot, answered) == b"OK"
    assert wait(qtbot, killer.command("CLIENT", "KILL", "ID", victim)) == 1
    for future in blocked:
        assert isinstance(failure(qtbot, future), RedisConnectionLost)
    qtbot.waitUntil(lambda: bool(lost))
    qtbot.wait(50)
    assert len(lost) == 1 and not link.is_open
    assert isinstance(link.command("PING").exception(), RedisConnectionLost)
    wait(qtbot, link.open())
    assert link.client_id != victim
    assert wait(qtbot, link.command("GET", prefix + "k")) == b"v"
    assert wait(qtbot, link.command("DEL", prefix + "k")) == 1
    assert len(lost) == 1


# ------------------------------------------------------------ publish and subscribe


def test_two_subscribers_by_channel_and_by_pattern(qtbot: Any, make_link: Callable[..., RedisLink],
                                                   make_subscriber: Callable[[], tuple[RedisSubscriber, list[Any]]],
                                                   prefix: str) -> None:
    link = make_link()
    (by_channel, got1), (by_pattern, got2) = make_subscriber(), make_subscriber()
    wait(qtbot, by_channel.subscribe(prefix + "room:a", prefix + "room:b"))
    wait(qtbot, by_pattern.psubscribe(prefix + "room:*"))
    counts = wait(qtbot, link.pipeline([["PUBLISH", prefix + "room:a", f"m{i}"] for i in range(100)]
                                       + [["PUBLISH", prefix + "room:c", "only the pattern"]]))
    assert counts == [2] * 100 + [1]
    qtbot.waitUntil(lambda: len(got1) == 100 and len(got2) == 101)
    assert got1 == [((prefix + "room:a").encode(), f"m{i}".encode()) for i in range(100)]
    assert got2 == [*got1, ((prefix + "room:c").encode(), b"only the pattern")]


def test_binary_payloads_through_pub_sub(qtbot: Any, make_link: Callable[..., RedisLink],
                                         make_subscriber: Callable[[], tuple[RedisSubscriber, list[Any]]],
                                         prefix: str) -> None:
    link = make_link()
    sub, got = make_subscriber()
    channel = prefix + "bin"
    wait(qtbot, sub.subscribe(channel))
    every, big = bytes(range(256)), os.urandom(1024 * 1024)
    payloads = [every, b"", b"\r\n*3\r\n$7\r\nmessage\r\n", big, every[::-1]]
    wait(qtbot, link.pipeline([["PUBLISH", channel, p] for p in payloads]))
    qtbot.waitUntil(lambda: len(got) == len(payloads))
    assert [p for _, p in got] == payloads


def test_a_killed_subscriber_subscribes_again_when_opened(
        qtbot: Any, make_link: Callable[..., RedisLink],
        make_subscriber: Callable[[], tuple[RedisSubscriber, list[Any]]], prefix: str) -> None:
    link = make_link()
    sub, got = make_subscriber()
    lost: list[str] = []
    sub.on_lost = lost.append
    wait(qtbot, sub.subscribe(prefix + "ch"))
    wait(qtbot, sub.psubscribe(prefix + "p:*"))
    assert wait(qtbot, link.command("PUBLISH", prefix + "ch", "before")) == 1
    qtbot.waitUntil(lambda: len(got) == 1)
    assert sub.client_id is not None
    assert wait(qtbot, link.command("CLIENT", "KILL", "ID", sub.client_id)) == 1
    qtbot.waitUntil(lambda: bool(lost))
    assert not sub.is_open
    assert wait(qtbot, link.command("PUBLISH", prefix + "ch", "while away")) == 0
    assert isinstance(failure(qtbot, sub.subscribe(prefix + "later")), RedisConnectionLost)
    wait(qtbot, sub.open())  # subscribed again before this is done
    counts = wait(qtbot, link.pipeline([["PUBLISH", prefix + "ch", "after"], ["PUBLISH", prefix + "p:x", "pattern"],
                                        ["PUBLISH", prefix + "later", "remembered"]]))
    assert counts == [1, 1, 1]
    qtbot.waitUntil(lambda: len(got) == 4)
    assert [p for _, p in got] == [b"before", b"after", b"pattern", b"remembered"]
    assert len(lost) == 1


def test_an_error_reply_fails_that_subscription_only(qtbot: Any, make_link: Callable[..., RedisLink],
                                                     redis_server: Any, prefix: str) -> None:
    admin = make_link()
    user = f"qtchat-{time.monotonic_ns()}"
    wait(qtbot, admin.command("ACL", "SETUSER", user, "on", ">pw", "resetchannels", f"&{prefix}ok*", "+@all"))
    try:
        got: list[Any] = []
        sub = RedisSubscriber(f"redis://{user}:pw@127.0.0.1:{redis_server.port}", lambda c, p: got.append(p))
        wait(qtbot, sub.open())
        refused = sub.subscribe(prefix + "secret")
        accepted = sub.subscribe(prefix + "ok1")
        assert "NOPERM" in str(failure(qtbot, refused))
        wait(qtbot, accepted)
        wait(qtbot, admin.command("PUBLISH", prefix + "ok1", "hello"))
        qtbot.waitUntil(lambda: got == [b"hello"])
        sub.close()
        assert sub.channels == {prefix + "ok1"}  # what was refused is not asked for again
        wait(qtbot, sub.open())
        wait(qtbot, admin.command("PUBLISH", prefix + "ok1", "again"))
        qtbot.waitUntil(lambda: got == [b"hello", b"again"])
        sub.close()
    finally:
        wait(qtbot, admin.command("ACL", "DELUSER", user))


def test_a_receiver_that_raises_still_gets_the_next_message(
        qtbot: Any, make_link: Callable[..., RedisLink],
        make_subscriber: Callable[[], tuple[RedisSubscriber, list[Any]]], prefix: str,
        caplog: pytest.LogCaptureFixture) -> None:
    link = make_link()
    sub, got = make_subscriber()
    keep = sub.on_message

    def picky(channel: bytes, payload: bytes) -> None:
        if payload == b"bad":
            raise RuntimeError("a receiver's bug")
        keep(channel, payload)

    sub.on_message = picky
    wait(qtbot, sub.subscribe(prefix + "ch"))
    wait(qtbot, link.pipeline([["PUBLISH", prefix + "ch", p] for p in ("one", "bad", "two")]))
    qtbot.waitUntil(lambda: len(got) == 2)
    assert [p for _, p in got] == [b"one", b"two"]
    assert "a receiver's bug" in caplog.text


def test_a_wrong_database_number_fails_the_open(qtbot: Any, redis_server: Any) -> None:
    link = RedisLink(f"{redis_server.url}/999")
    exc = failure(qtbot, link.open())
    assert type(exc) is RedisError and "out of range" in str(exc)
    assert not link.is_open


PUBLISHER = """
import socket, sys
port, channel, count = int(sys.argv[1]), sys.argv[2].encode(), int(sys.argv[3])
payload = b"x" * 100
def command(*args):
    return b"*%d\\r\\n" % len(args) + b"".join(b"$%d\\r\\n%s\\r\\n" % (len(a), a) for a in args)
blob = b"".join(command(b"PUBLISH", channel, b"%d:" % i + payload) for i in range(count))
with socket.create_connection(("127.0.0.1", port)) as s:
    s.sendall(blob)
    s.shutdown(socket.SHUT_WR)
    while s.recv(1 << 20):
        pass
"""


@pytest.mark.slow
@pytest.mark.parametrize("backlog", [False, True], ids=["live", "backlog"])
def test_the_loop_keeps_ticking_while_a_flood_of_messages_arrives(
        qtbot: Any, redis_server: Any, make_subscriber: Callable[[], tuple[RedisSubscriber, list[Any]]],
        prefix: str, backlog: bool) -> None:
    """100,000 messages published as fast as Redis takes them, from another process: read as they come
    ("live"), or all waiting at once for a subscriber that lagged ("backlog": the loop was busy meanwhile)."""
    count = 100_000
    sub, _ = make_subscriber()
    received = [0]
    sub.on_message = lambda channel, payload: received.__setitem__(0, received[0] + 1)
    channel = prefix + "flood"
    wait(qtbot, sub.subscribe(channel))
    ticks: list[float] = []
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    publisher = subprocess.Popen([sys.executable, "-c", PUBLISHER, str(redis_server.port), channel, str(count)])
    if backlog:
        publisher.wait(timeout=60)  # the loop does not run: everything waits in the kernel and in Redis
    timer.start(5)
    started = time.monotonic()
    try:
        qtbot.waitUntil(lambda: received[0] == count, timeout=60_000)
    finally:
        elapsed = time.monotonic() - started
        timer.stop()
        publisher.wait(timeout=60)
    gaps = sorted(b - a for a, b in itertools.pairwise(ticks))
    worst = gaps[-1] * 1000
    print(f"\n{count} messages in {elapsed:.2f} s ({count / elapsed:,.0f}/s); 5 ms timer: {len(ticks)} ticks, "
          f"p50 {gaps[len(gaps) // 2] * 1000:.1f} ms, p99 {gaps[len(gaps) * 99 // 100] * 1000:.1f} ms, "
          f"worst {worst:.1f} ms")
    assert worst < 200
