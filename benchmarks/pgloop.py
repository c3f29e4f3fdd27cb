#!/usr/bin/env python3
"""PgLink (qtchat/server/pgloop.py) on the Qt loop: round trips, transactions, and how late a 5 ms timer gets.

Against a PostgreSQL of its own (tests/services.py: a temporary folder, a free port, fsync off), or
--dsn. Each measurement issues the next request from the previous one's done-callback, as the
server's journal does (one pass at a time):

- `SELECT 1` round trip, one at a time: p50, p99;
- T transactions (default 100) of 100 rows each, one at a time: as 100 one-row INSERT statements
  in one pipelined transaction, and as one 100-row INSERT ... VALUES; rows/s;
- meanwhile a 5 ms QTimer: its largest gap.

    python benchmarks/pgloop.py [--transactions 100] [--rows 100] [--pings 2000] [--dsn postgresql://...]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from PySide6.QtCore import QCoreApplication, QEventLoop, QTimer  # noqa: E402

from qtchat.server.pgloop import PgLink  # noqa: E402


def run_until(future: Future[Any], timeout: float = 120.0) -> Any:
    loop = QEventLoop()
    future.add_done_callback(lambda _f: QTimer.singleShot(0, loop.quit))
    QTimer.singleShot(int(timeout * 1000), loop.quit)
    if not future.done():
        loop.exec()
    return future.result()


class Gaps:
    """A 5 ms timer's ticks: the largest gap between two while measuring."""

    def __init__(self) -> None:
        self.ticks: list[float] = []
        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        self.ticks = [time.perf_counter()]
        self.timer.start()
        yield
        self.timer.stop()
        self.ticks.append(time.perf_counter())

    @property
    def largest_ms(self) -> float:
        return 1000 * max(b - a for a, b in zip(self.ticks, self.ticks[1:], strict=False))


def one_at_a_time(count: int, issue: Callable[[int], Future[Any]]) -> list[float]:
    """Issue request i+1 when request i is answered; each one's seconds."""
    done: Future[None] = Future()
    times: list[float] = []

    def step(i: int) -> None:
        if i == count:
            done.set_result(None)
            return
        started = time.perf_counter()

        def answered(f: Future[Any]) -> None:
            f.result()
            times.append(time.perf_counter() - started)
            step(i + 1)

        issue(i).add_done_callback(answered)

    step(0)
    run_until(done)
    return times


def measure(link: PgLink, transactions: int, rows: int, pings: int) -> None:
    gaps = Gaps()
    run_until(link.query("CREATE TABLE IF NOT EXISTS bench (id bigint, room text, body text)"))
    one_at_a_time(50, lambda i: link.query("SELECT 1"))  # warm up
    with gaps.watching():
        times = one_at_a_time(pings, lambda i: link.query("SELECT 1"))
    ms = sorted(1000 * t for t in times)
    print(f"SELECT 1, one at a time: p50 {statistics.median(ms):.3f} ms, p99 {ms[int(len(ms) * 0.99)]:.3f} ms; "
          f"largest 5 ms timer gap {gaps.largest_ms:.1f} ms")

    def statements(i: int) -> Future[Any]:
        return link.transaction([("INSERT INTO bench VALUES ($1, $2, $3)", (i * rows + r, "room", f"message {r}"))
                                 for r in range(rows)])

    values = ", ".join(f"(${3 * r + 1}, ${3 * r + 2}, ${3 * r + 3})" for r in range(rows))

    def one_insert(i: int) -> Future[Any]:
        params: list[object] = []
        for r in range(rows):
            params += [i * rows + r, "room", f"message {r}"]
        return link.transaction([(f"INSERT INTO bench VALUES {values}", params)])

    for label, issue in ((f"{rows} one-row INSERTs per transaction", statements),
                         (f"one {rows}-row INSERT per transaction", one_insert)):
        with gaps.watching():
            started = time.perf_counter()
            one_at_a_time(transactions, issue)
            seconds = time.perf_counter() - started
        print(f"{transactions} transactions, {label}: {transactions * rows / seconds:,.0f} rows/s "
              f"({1000 * seconds / transactions:.2f} ms per commit); largest 5 ms timer gap {gaps.largest_ms:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transactions", type=int, default=100)
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--pings", type=int, default=2000)
    parser.add_argument("--dsn", help="a PostgreSQL to use (numeric address); default: start one")
    args = parser.parse_args()
    QCoreApplication([])
    with contextlib.ExitStack() as stack:
        dsn = args.dsn
        if dsn is None:
            from tests.services import postgres

            server = stack.enter_context(postgres())
            dsn = server.dsn(server.new_database())
            print("PostgreSQL of its own (fsync off), loopback")
        link = PgLink(dsn)
        run_until(link.open())
        measure(link, args.transactions, args.rows, args.pings)
        link.close()


if __name__ == "__main__":
    main()
