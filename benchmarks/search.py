#!/usr/bin/env python3
"""Search latency on a stored history: qtchat-server's `search` over the wire, and the store alone.

A data folder is filled with N messages (default 100,000) of chat-like text in 10 rooms through
MessageStore.append (batches of 10,000), then a qtchat-server process is started on it. One client
logs in, joins 3 of the rooms, and sends searches one at a time, timing each from send to the
`results` frame:

- first search, right after the start, nothing indexed yet: the search indexes for at most 0.1 s
  and scans the rest; then how long until the background indexer has caught up;
- then each kind of query R times (p50, p99, max): a rare word, a common word, two words, a
  one-letter prefix, a common word in one room, and the second page of a common word.

With --store, the same queries straight on MessageStore (no network), with the FTS5 index and
with the LIKE scan that servers whose SQLite lacks FTS5 fall back to.

    python benchmarks/search.py [--messages 100000] [--repeat 50] [--store]
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from qtchat.protocol import (  # noqa: E402
    NEED_DATA,
    PEER_CLOSED,
    Connection,
    Hello,
    JoinRoom,
    Role,
    RoomJoined,
    SearchRequest,
    SearchResults,
    Welcome,
)
from qtchat.server.store import MessageStore  # noqa: E402

ROOMS = [f"room{i}" for i in range(10)]
COMMON = ["the", "and", "release", "deploy", "meeting", "today", "friday", "build", "test", "lunch"]


def fill(path: Path, count: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    vocab = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))
             for _ in range(20_000)]
    store = MessageStore(path)
    mid = 1_700_000_000_000_000
    for start in range(0, count, 10_000):
        rows: list[Any] = []
        for i in range(start, min(count, start + 10_000)):
            mid += 1
            words = [rng.choice(COMMON) if rng.random() < 0.3 else rng.choice(vocab) for _ in range(rng.randint(3, 15))]
            if i == count // 2:
                words.append("zanzibarquux")  # one rare word, in a room the client is in
            room = ROOMS[i % len(ROOMS)] if i != count // 2 else ROOMS[0]
            rows.append((mid, room, mid // 1000, f"user{i % 50}", f"user{i % 50}", None, " ".join(words)))
        store.append(rows)
    store.close()


QUERIES: list[tuple[str, dict[str, Any]]] = [
    ("rare word", {"query": "zanzibarquux"}),
    ("common word", {"query": "release"}),
    ("two words", {"query": "deploy friday"}),
    ("one-letter prefix", {"query": "q"}),
    ("common word, one room", {"query": "meeting", "room": ROOMS[1]}),
]


class Client:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.conn = Connection(Role.CLIENT, max_frame=1 << 20)
        self.sock.sendall(self.conn.send(Hello("bench")))
        self.wait(Welcome)

    def wait(self, kind: type) -> Any:
        while True:
            while (ev := self.conn.next_event()) not in (NEED_DATA, PEER_CLOSED):
                if isinstance(ev, kind):
                    return ev
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("server closed")
            self.conn.receive_data(data)

    def request(self, event: Any, kind: type) -> tuple[Any, float]:
        start = time.perf_counter()
        self.sock.sendall(self.conn.send(event))
        got = self.wait(kind)
        return got, time.perf_counter() - start


def summary(times: list[float]) -> dict[str, float]:
    ms = sorted(t * 1000 for t in times)
    return {"p50_ms": round(statistics.median(ms), 2), "p99_ms": round(ms[int(len(ms) * 0.99) - 1], 2),
            "max_ms": round(ms[-1], 2)}


def over_the_wire(data: Path, repeat: int) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "qtchat.server", "--port", str(port), "--data-dir", str(data),
                             "--log-level", "warning"], cwd=REPO)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        client = Client(port)
        for room in ROOMS[:3]:
            client.sock.sendall(client.conn.send(JoinRoom(room)))
            client.wait(RoomJoined)
        first, took = client.request(SearchRequest("zanzibarquux"), SearchResults)
        print(json.dumps({"where": "server", "query": "first search, nothing indexed yet",
                          "results": len(first.results), "ms": round(took * 1000, 1)}), flush=True)
        start = time.perf_counter()
        while took > 0.005:  # the background indexer catching up (a search also indexes for 0.1 s)
            time.sleep(0.5)
            _, took = client.request(SearchRequest("zanzibarquux"), SearchResults)
        print(json.dumps({"where": "server", "index caught up after first search, s":
                          round(time.perf_counter() - start, 1)}), flush=True)
        for label, fields in [*QUERIES, ("common word, second page", {"query": "release"})]:
            times = []
            count = 0
            for _ in range(repeat):
                req = SearchRequest(**fields)
                if label.endswith("second page"):
                    page, _ = client.request(req, SearchResults)
                    req = SearchRequest(**fields, before=page.results[-1].id)
                got, took = client.request(req, SearchResults)
                times.append(took)
                count = len(got.results)
            print(json.dumps({"where": "server", "query": label, "results": count, **summary(times)}), flush=True)
    finally:
        proc.terminate()
        proc.wait(10)


def in_the_store(data: Path, repeat: int) -> None:
    rooms = ROOMS[:3]
    for fts in (True, False):
        store = MessageStore(data / "messages.db", full_text=fts)
        store.index_pending()
        for label, fields in QUERIES:
            scope = [fields["room"]] if "room" in fields else rooms
            times = []
            count = 0
            for _ in range(repeat if fts else max(3, repeat // 10)):
                start = time.perf_counter()
                rows, _ = store.search(fields["query"], scope, limit=50)
                times.append(time.perf_counter() - start)
                count = len(rows)
            print(json.dumps({"where": "store", "mode": "fts5" if fts else "like-scan", "query": label,
                              "results": count, **summary(times)}), flush=True)
        store.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--store", action="store_true", help="also time the store alone, FTS5 and LIKE scan")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="qtchat-search-bench-") as tmp:
        data = Path(tmp)
        start = time.perf_counter()
        fill(data / "messages.db", a.messages)
        print(json.dumps({"filled": a.messages, "s": round(time.perf_counter() - start, 2)}), flush=True)
        over_the_wire(data, a.repeat)
        if a.store:
            in_the_store(data, a.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
