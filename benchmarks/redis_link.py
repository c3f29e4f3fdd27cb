#!/usr/bin/env python3
"""qtchat/server/redis_link.py on the Qt loop: PING round trips, and PUBLISH rates.

    python benchmarks/redis_link.py [--messages 100000] [--payload 100]

Starts a Redis server of its own (tests/services.py: a free port, a temporary folder). Everything runs on
one Qt event loop in this process, as in a server node: the PING round trip (one at a time, the next sent
from the previous one's done-callback), then PUBLISH pipelined in batches of --batch, with nobody subscribed
and with a RedisSubscriber on the same loop receiving every message, then PUBLISH as single command() calls
queued at once.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from PySide6.QtCore import QCoreApplication  # noqa: E402

from qtchat.server.redis_link import RedisLink, RedisSubscriber  # noqa: E402
from tests.services import redis  # noqa: E402


def run(app: QCoreApplication, future: Future[Any]) -> Any:
    while not future.done():
        app.processEvents()
    return future.result()


def pings(app: QCoreApplication, link: RedisLink, count: int) -> list[float]:
    times: list[float] = []
    finished: Future[None] = Future()

    def send() -> None:
        started = time.perf_counter()

        def answered(f: Future[Any]) -> None:
            times.append(time.perf_counter() - started)
            if len(times) < count:
                send()
            else:
                finished.set_result(None)

        link.command("PING").add_done_callback(answered)

    send()
    run(app, finished)
    return times


def publish_pipelined(app: QCoreApplication, link: RedisLink, channel: str, n: int, batch: int,
                      payload: bytes) -> float:
    started = time.perf_counter()
    last: Future[list[Any]] | None = None
    for start in range(0, n, batch):
        last = link.pipeline([["PUBLISH", channel, payload] for _ in range(min(batch, n - start))])
        if start // batch % 4 == 3:
            run(app, last)  # at most a few batches in flight
    assert last is not None
    run(app, last)
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--payload", type=int, default=100, help="bytes per message")
    parser.add_argument("--batch", type=int, default=1000, help="PUBLISH commands per pipeline")
    parser.add_argument("--pings", type=int, default=5000)
    args = parser.parse_args()
    app = QCoreApplication([])
    payload = b"x" * args.payload
    n = args.messages
    with tempfile.TemporaryDirectory(prefix="qtchat-bench-redis-") as folder, redis(Path(folder)) as server:
        link = RedisLink(server.url)
        run(app, link.open())
        pings(app, link, 200)  # warm up
        rtt = sorted(pings(app, link, args.pings))
        print(f"PING round trip ({args.pings}): p50 {statistics.median(rtt) * 1e3:.3f} ms, "
              f"p99 {rtt[len(rtt) * 99 // 100] * 1e3:.3f} ms")

        rate = publish_pipelined(app, link, "bench:nobody", n, args.batch, payload)
        print(f"PUBLISH pipelined x{args.batch}, nobody subscribed: {rate:,.0f}/s")

        got = [0]
        sub = RedisSubscriber(server.url, lambda channel, data: got.__setitem__(0, got[0] + 1))
        run(app, sub.open())
        run(app, sub.subscribe("bench:ch"))
        started = time.perf_counter()
        publish_pipelined(app, link, "bench:ch", n, args.batch, payload)
        while got[0] < n:
            app.processEvents()
        print(f"PUBLISH pipelined x{args.batch}, a subscriber on the same loop receiving: "
              f"{n / (time.perf_counter() - started):,.0f}/s delivered")

        started = time.perf_counter()
        futures = [link.command("PUBLISH", "bench:nobody", payload) for _ in range(n)]
        run(app, futures[-1])
        print(f"PUBLISH as {n:,} command() calls queued at once: {n / (time.perf_counter() - started):,.0f}/s")
        sub.close()
        link.close()


if __name__ == "__main__":
    main()
