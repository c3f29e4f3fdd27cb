"""PgLink (qtchat/server/pgloop.py) against a real PostgreSQL server (tests/services.py), on the Qt loop."""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

import pytest
from PySide6.QtCore import QTimer

from qtchat.server.pgloop import PgConnectionLost, PgError, PgLink, numeric_conninfo
from tests.helpers import failure as failed_with
from tests.helpers import outcome

T = TypeVar("T")


# the helpers' waits, with more time: a reconnect or a flood can take a while on a loaded machine
wait = partial(outcome, timeout=15_000)
failure = partial(failed_with, timeout=15_000)


@pytest.fixture
def dsn(postgres_server: Any) -> str:
    return str(postgres_server.dsn(postgres_server.new_database()))


@pytest.fixture
def links(qtbot: Any, dsn: str) -> Iterator[list[PgLink]]:
    made: list[PgLink] = []
    yield made
    for link in made:
        link.close()


@pytest.fixture
def link(dsn: str, links: list[PgLink]) -> PgLink:
    made = PgLink(dsn)
    links.append(made)
    return made


def test_connects_without_blocking_and_answers(qtbot: Any, link: PgLink) -> None:
    assert not link.is_open
    with qtbot.waitSignal(link.connected, timeout=10_000):
        future = link.open()
        assert not future.done()  # connecting goes on in the loop
    wait(qtbot, future)
    assert link.is_open
    assert wait(qtbot, link.query("SELECT 1")) == [(1,)]
    assert wait(qtbot, link.query("SELECT 1 WHERE false")) == []


def test_a_query_before_the_connection_waits_for_it(qtbot: Any, link: PgLink) -> None:
    future = link.query("SELECT $1::text || '!'", ("hello",))
    assert not link.is_open
    assert wait(qtbot, future) == [("hello!",)]
    assert link.is_open


def test_values_round_trip(qtbot: Any, link: PgLink) -> None:
    every_byte = bytes(range(256))
    sent: tuple[object, ...] = (7, -(2**63), 2**70, "héllo \U0001f600 '\"\\", "", every_byte, b"", None, True, False,
                                1.5, float("inf"), {"a": [1, None, "x"]}, [1, 2], Decimal("1.10"))
    placeholders = ", ".join(f"${i + 1}" for i in range(len(sent)))
    (row,) = wait(qtbot, link.query(f"SELECT {placeholders}", sent))
    assert row == sent
    assert [type(v) for v in row] == [Decimal if v == 2**70 else type(v) for v in sent]  # numeric: a Decimal
    (nan,) = wait(qtbot, link.query("SELECT $1", (float("nan"),)))[0]
    assert nan != nan


def test_results_are_converted_by_column_type(qtbot: Any, link: PgLink) -> None:
    rows = wait(qtbot, link.query(
        "SELECT 1::int2, 2::int4, 3::int8, 'x'::varchar(5), 'y'::text, true, 2.5::float8, '\\x00ff'::bytea,"
        " '{\"a\": [1, 2]}'::json, '{\"b\": null}'::jsonb, NULL::text, NULL::int8, 'z'::name"))
    assert rows == [(1, 2, 3, "x", "y", True, 2.5, b"\x00\xff", {"a": [1, 2]}, {"b": None}, None, None, "z")]


def test_parameters_fill_columns_of_their_types(qtbot: Any, link: PgLink) -> None:
    wait(qtbot, link.query("CREATE TABLE t (a int4, b int2, c bigint, d text, e bytea, f boolean, g float8,"
                           " h jsonb, i timestamptz, j varchar(10))"))
    wait(qtbot, link.query("INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                           (1, 2, 3, "d", b"\x00e", True, 0.25, {"k": "v"}, "2026-01-02T03:04:05Z", "j")))
    rows = wait(qtbot, link.query("SELECT a, b, c, d, e, f, g, h, extract(year from i)::int, j FROM t WHERE a = $1",
                                  (1,)))
    assert rows == [(1, 2, 3, "d", b"\x00e", True, 0.25, {"k": "v"}, 2026, "j")]
    with pytest.raises(TypeError):
        link.query("SELECT $1", (object(),))


def test_many_queued_queries_are_answered_in_order(qtbot: Any, link: PgLink) -> None:
    answered: list[int] = []

    def noting(i: int) -> Callable[[Future[Any]], None]:
        return lambda _future: answered.append(i)

    futures = []
    for i in range(2000):  # all queued while connecting, more than MAX_IN_FLIGHT
        future = link.query("SELECT $1::int8 * 2", (i,))
        future.add_done_callback(noting(i))
        futures.append(future)
    qtbot.waitUntil(lambda: len(answered) == 2000, timeout=30_000)
    assert answered == list(range(2000))
    assert [f.result() for f in futures] == [[(2 * i,)] for i in range(2000)]


def test_a_transaction_is_all_or_nothing(qtbot: Any, link: PgLink) -> None:
    wait(qtbot, link.query("CREATE TABLE t (id int PRIMARY KEY, v text)"))
    failed = link.transaction([("INSERT INTO t VALUES (1, 'a')", ()), ("INSERT INTO t VALUES ($1, $2)", (2, "b")),
                               ("INSERT INTO t VALUES (1, 'again')", ()), ("INSERT INTO t VALUES (3, 'c')", ())])
    after = link.query("SELECT count(*) FROM t")  # pipelined behind the failing one, before its answer
    exc = failure(qtbot, failed)
    assert isinstance(exc, PgError) and not isinstance(exc, PgConnectionLost)
    assert exc.code == "23505"
    assert wait(qtbot, after) == [(0,)]
    results = wait(qtbot, link.transaction([("INSERT INTO t VALUES (1, 'a') RETURNING id", ()),
                                            ("UPDATE t SET v = $1 WHERE id = 1", ("b",)),
                                            ("SELECT v FROM t", ())]))
    assert results == [[(1,)], [], [("b",)]]
    assert wait(qtbot, link.transaction([])) == []


def test_an_error_at_commit_fails_the_transaction(qtbot: Any, link: PgLink) -> None:
    wait(qtbot, link.transaction([
        ("CREATE TABLE parent (id int PRIMARY KEY)", ()),
        ("CREATE TABLE child (id int REFERENCES parent DEFERRABLE INITIALLY DEFERRED)", ())]))
    failed = link.transaction([("INSERT INTO child VALUES (1)", ()), ("INSERT INTO child VALUES (2)", ())])
    after = link.query("SELECT count(*) FROM child")
    exc = failure(qtbot, failed)
    assert isinstance(exc, PgError) and exc.code == "23503"
    assert wait(qtbot, after) == [(0,)]


def test_an_sql_error_fails_its_query_and_the_connection_stays_usable(qtbot: Any, link: PgLink) -> None:
    zero = link.query("SELECT 1 / $1::int", (0,))
    syntax = link.query("SELEC 1")
    fine = link.query("SELECT 2")
    exc = failure(qtbot, zero)
    assert isinstance(exc, PgError) and exc.code == "22012" and "division by zero" in str(exc)
    assert getattr(failure(qtbot, syntax), "code", None) == "42601"
    assert wait(qtbot, fine) == [(2,)]
    assert link.is_open


def test_a_dropped_connection_fails_what_is_pending_and_the_next_call_reconnects(
        qtbot: Any, link: PgLink, postgres_server: Any) -> None:
    wait(qtbot, link.open())
    pid = link.backend_pid
    assert pid
    pending: list[Future[Any]] = [link.query("SELECT pg_sleep(10)"), link.query("SELECT 1"),
               link.transaction([("SELECT 1", ()), ("SELECT 2", ())])]
    reasons: list[str] = []
    link.lost.connect(reasons.append)
    postgres_server.psql(f"SELECT pg_terminate_backend({pid})")
    for future in pending:
        exc = failure(qtbot, future)
        assert isinstance(exc, PgConnectionLost) and exc.sent
    assert len(reasons) == 1
    assert not link.is_open
    assert wait(qtbot, link.query("SELECT 3")) == [(3,)]
    assert link.backend_pid not in (None, pid)


def test_a_connection_dropped_while_idle_is_noticed(qtbot: Any, link: PgLink, postgres_server: Any) -> None:
    wait(qtbot, link.open())
    with qtbot.waitSignal(link.lost, timeout=10_000):
        postgres_server.psql(f"SELECT pg_terminate_backend({link.backend_pid})")
    assert not link.is_open
    assert wait(qtbot, link.query("SELECT 4")) == [(4,)]


def test_close_fails_pending_calls_and_is_final_until_open(qtbot: Any, link: PgLink) -> None:
    pending = link.query("SELECT 1")
    link.close()
    assert isinstance(failure(qtbot, pending), PgConnectionLost)
    assert isinstance(failure(qtbot, link.query("SELECT 1")), PgConnectionLost)
    wait(qtbot, link.open())
    assert wait(qtbot, link.query("SELECT 5")) == [(5,)]


def test_listen_receives_notifications_also_after_a_reconnect(qtbot: Any, link: PgLink, postgres_server: Any,
                                                              dsn: str) -> None:
    payloads: list[str] = []
    wait(qtbot, link.listen("room events", payloads.append))
    other = PgLink(dsn)
    wait(qtbot, other.query("SELECT pg_notify('room events', $1)", ("héllo",)))
    qtbot.waitUntil(lambda: payloads == ["héllo"], timeout=10_000)
    postgres_server.psql(f"SELECT pg_terminate_backend({link.backend_pid})")
    qtbot.waitUntil(lambda: not link.is_open, timeout=10_000)
    reopened = link.open()
    assert not reopened.done()
    wait(qtbot, reopened)  # answered once listening again: a notification sent now arrives
    wait(qtbot, other.query("SELECT pg_notify('room events', 'again')"))
    qtbot.waitUntil(lambda: payloads == ["héllo", "again"], timeout=10_000)
    other.close()


def test_a_host_name_is_refused() -> None:
    for dsn in ("postgresql://qtchat@localhost:5432/db", "host=db.example.org port=5432",
                "postgresql://qtchat@127.0.0.1,db.example.org/db", "hostaddr=localhost", "service=chat",
                "dbname=db", "postgresql:///db"):
        with pytest.raises(ValueError):
            PgLink(dsn)
    assert b"hostaddr=::1" in numeric_conninfo("postgresql://u@[::1]:5/x")
    assert b"hostaddr=127.0.0.1" in numeric_conninfo("host=127.0.0.1 port=5")
    assert b"host=" not in numeric_conninfo("host=127.0.0.1 port=5")
    assert b"host=db.example.org" in numeric_conninfo("host=db.example.org hostaddr=10.0.0.1")  # not looked up


def test_a_connection_refused_fails_open_and_a_silent_server_times_out(qtbot: Any) -> None:
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        port = spare.getsockname()[1]
    refused = PgLink(f"postgresql://qtchat@127.0.0.1:{port}/db")
    with qtbot.waitSignal(refused.lost, timeout=10_000):
        future = refused.open()
    assert isinstance(failure(qtbot, future), PgConnectionLost)
    with socket.socket() as silent:  # accepts the connection, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        slow = PgLink(f"postgresql://qtchat@127.0.0.1:{silent.getsockname()[1]}/db", connect_timeout=0.3)
        started = time.monotonic()
        exc = failure(qtbot, slow.query("SELECT 1"))
        assert isinstance(exc, PgConnectionLost) and "within" in str(exc)
        assert time.monotonic() - started < 5


def test_the_loop_keeps_turning_while_a_large_result_arrives(qtbot: Any, link: PgLink) -> None:
    wait(qtbot, link.open())
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    qtbot.wait(50)
    started = time.perf_counter()
    future = link.query("SELECT g, md5(g::text), g * 1.5::float8, g % 2 = 0 FROM generate_series(1, 20000) g")
    rows = wait(qtbot, future)
    ended = time.perf_counter()
    qtbot.wait(20)
    timer.stop()
    assert len(rows) == 20000 and rows[-1][0] == 20000 and rows[-1][3] is True
    during = [t for t in ticks if t >= started] + [ended]
    gaps = [b - a for a, b in zip([started, *during], during, strict=False)]
    print(f"\n20,000 rows in {1000 * (ended - started):.1f} ms; the 5 ms timer's largest gap "
          f"{1000 * max(gaps):.1f} ms, {len(during) - 1} ticks")
    assert max(gaps) < 0.2


def test_a_cancelled_future_does_not_disturb_the_others(qtbot: Any, link: PgLink) -> None:
    first = link.query("SELECT 1")
    assert first.cancel()
    assert wait(qtbot, link.query("SELECT 2")) == [(2,)]


def test_a_request_larger_than_the_socket_takes_is_written_in_turns(qtbot: Any, link: PgLink) -> None:
    wait(qtbot, link.open())
    big = bytes(range(256)) * 80_000  # 20 MB: many writes, the write notifier between them
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    sizes = [link.query("SELECT length($1::bytea), md5($1::bytea)", (big,)) for _ in range(3)]
    small = link.query("SELECT 6")
    assert all(wait(qtbot, f, timeout=60_000) == [(len(big), hashlib.md5(big).hexdigest())] for f in sizes)
    assert wait(qtbot, small) == [(6,)]
    timer.stop()
    assert len(ticks) > 3  # the loop turned while the requests went out


def test_callbacks_may_query_again_or_close_the_link(qtbot: Any, link: PgLink) -> None:
    chained: list[int] = []

    def step(future: Future[Any]) -> None:
        chained.append(future.result()[0][0])
        if len(chained) < 100:
            link.query("SELECT $1::int8 + 1", (chained[-1],)).add_done_callback(step)

    link.query("SELECT 0::int8").add_done_callback(step)
    qtbot.waitUntil(lambda: len(chained) == 100, timeout=15_000)
    assert chained == list(range(100))
    first, second = link.query("SELECT 1"), link.query("SELECT 2")
    first.add_done_callback(lambda _f: link.close())
    assert wait(qtbot, first) == [(1,)]
    exc = failure(qtbot, second)
    assert isinstance(exc, PgConnectionLost) and exc.sent
    assert not link.is_open
