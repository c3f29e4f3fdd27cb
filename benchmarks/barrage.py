#!/usr/bin/env python3
"""Bystanders under attack: their chat echo latency alone, and during each kind of attack, in one run.

A real ``qtchat-server`` process with its default limits, a lobby of 100,000 stored (and indexed)
messages. Five bystanders on 127.0.0.1 each send a message every 100 ms and time its echo (the
acknowledgement, which comes only once the message is stored and synced to disk), and a ping sent with
it (its pong waits for no disk: how promptly the loop answers). Each attack runs for a phase of its
own, from 20 attacker connections on other loopback addresses (127.0.0.2-21, so the per-address cap
is not what is measured):

- ``pings``: ping frames as fast as the socket takes them;
- ``history``: ``history`` requests of 500 messages, nonstop;
- ``search``: searches of eight one-letter prefixes (the costliest valid query), nonstop;
- ``rooms``: room-list requests, nonstop (with 500 rooms of long topics made first);
- ``garbage``: random bytes and broken JSON;
- ``slowloris``: 300 connections that each trickle a byte a second and never finish their hello.

Target (issue 14): bystanders' p99 during an attack at most 2x the quiet p99 + 20 ms. Prints one JSON
line per phase and a summary; the machine's 2 cores are shared by the server and this generator.

    python benchmarks/barrage.py                 # every phase, 8 s each
    python benchmarks/barrage.py --phase-s 4 --attacks pings,history
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fanout import cpu_s, free_port, wait_listening  # noqa: E402  (the fan-out benchmark's helpers)

from qtchat.protocol import (  # noqa: E402
    Hello,
    HistoryRequest,
    JoinRoom,
    Ping,
    RoomsRequest,
    SearchRequest,
    SendMessage,
    SetTopic,
    encode_event,
)
from qtchat.server.store import MessageStore  # noqa: E402

ATTACKERS = 20
BYSTANDERS = 5


def seed(folder: Path, count: int) -> None:
    store = MessageStore(folder / "messages.db")
    mid = 1_000_000
    words = ["apple", "banana", "cherry", "delta", "echo", "fox", "golf", "hotel", "india", "juliet"]
    for start in range(0, count, 10_000):
        rows: list[Any] = []
        for i in range(start, min(count, start + 10_000)):
            mid += 1
            text = " ".join(random.choice(words) for _ in range(8)) + f" {i}"
            rows.append((mid, "lobby", mid // 1000, "seed", "seed", None, text))
        store.append(rows)
    store.index_pending()
    store.close()


def start_server(folder: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="qtchat-barrage-", suffix=".log")[1])
    proc = subprocess.Popen(
        [sys.executable, "-m", "qtchat.server", "--port", str(port), "--host", "0.0.0.0", "--log-level", "warning",
         "--data-dir", str(folder), "--max-rooms", "1000"],
        stderr=log.open("wb"), cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    wait_listening(port, proc, log)
    return proc, port, log


async def open_conn(port: int, source: str = "127.0.0.1") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0), limit=1 << 22)


async def login(port: int, name: str, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await open_conn(port, source)
    writer.write(encode_event(Hello(user=name)))
    while True:
        line = await reader.readline()
        if not line or b'"welcome"' in line:
            return reader, writer


async def drain(reader: asyncio.StreamReader) -> None:
    try:
        while await reader.read(1 << 16):
            pass
    except (ConnectionError, OSError):
        pass


class Bystander:
    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: dict[str, float] = {}
        self.latencies: list[float] = []
        self.pinged: dict[str, float] = {}
        self.ping_latencies: list[float] = []  # the loop's answer alone: a pong waits for no disk
        self.errors: dict[str, int] = {}
        self.worst: list[tuple[float, float]] = []  # (latency, when sent): where the slowest echoes were
        self.closed = False
        self.n = 0

    async def run(self, port: int, stop: asyncio.Event) -> None:
        reader, writer = await login(port, self.name, "127.0.0.1")
        reading = asyncio.create_task(self._read(reader))
        while not stop.is_set():
            self.n += 1
            cid = f"{self.name}-{self.n}"
            self.sent[cid] = time.perf_counter()
            self.pinged[cid] = self.sent[cid]
            writer.write(encode_event(SendMessage(f"bystander message {self.n}", cid=cid)) + encode_event(Ping(cid)))
            await asyncio.sleep(0.1)
        for _ in range(100):  # the echoes still on their way are measured too (for at most 2 s)
            if (not self.sent and not self.pinged) or reading.done():
                break
            await asyncio.sleep(0.02)
        reading.cancel()
        writer.close()

    async def _read(self, reader: asyncio.StreamReader) -> None:
        mine = f'"cid":"{self.name}-'.encode()
        while True:
            line = await reader.readline()
            if not line:
                self.closed = True
                return
            if line.startswith(b'{"type":"error"'):
                code = json.loads(line)["code"]
                self.errors[code] = self.errors.get(code, 0) + 1
            elif line.startswith(b'{"type":"pong"'):
                start = self.pinged.pop(json.loads(line)["token"], None)
                if start is not None:
                    self.ping_latencies.append((time.perf_counter() - start) * 1000)
            elif mine in line:
                cid = json.loads(line)["cid"]
                start = self.sent.pop(cid, None)
                if start is not None:
                    self.latencies.append((time.perf_counter() - start) * 1000)
                    self.worst.append(((time.perf_counter() - start) * 1000, start))


def frames_for(kind: str) -> bytes:
    if kind == "pings":
        return b"".join(encode_event(Ping(f"p{i}")) for i in range(200))
    if kind == "history":
        return b"".join(encode_event(HistoryRequest(limit=500)) for _ in range(20))
    if kind == "search":
        return b"".join(encode_event(SearchRequest("a b c d e f g h")) for _ in range(20))
    if kind == "rooms":
        return b"".join(encode_event(RoomsRequest()) for _ in range(20))
    raise ValueError(kind)


async def attacker(port: int, kind: str, index: int, stop: asyncio.Event) -> None:
    """One attacker connection: it sends its frames as fast as the server reads them and, when the server
    drops it, connects again after 0.2 s (a real attacker would)."""
    source = f"127.0.0.{2 + index % ATTACKERS}"
    rounds = 0
    while not stop.is_set():
        rounds += 1
        try:
            if kind == "garbage":
                reader, writer = await open_conn(port, source)
            else:
                reader, writer = await login(port, f"attacker{index}-{rounds}", source)
        except (ConnectionError, OSError):
            await asyncio.sleep(0.2)
            continue
        reading = asyncio.create_task(drain(reader))
        try:
            while not stop.is_set() and not reading.done() and not writer.is_closing():
                if kind == "garbage":
                    writer.write(random.choice([os.urandom(512) + b"\n", b'{"type":' * 60 + b"\n",
                                                b"\xff\xfe" * 200 + b"\n"]))
                else:
                    writer.write(frames_for(kind))
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        reading.cancel()
        writer.close()
        await asyncio.sleep(0.2)


async def slowloris(port: int, index: int, stop: asyncio.Event) -> None:
    try:
        _, writer = await open_conn(port, f"127.0.0.{2 + index % ATTACKERS}")
    except (ConnectionError, OSError):
        return
    hello = b'{"type":"hello","version":1,"user":"slow' + str(index).encode() + b'"'
    try:
        for byte in hello:
            if stop.is_set():
                break
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(1.0)
    except (ConnectionError, OSError):
        pass
    writer.close()


async def make_rooms(port: int) -> None:
    reader, writer = await login(port, "roommaker", "127.0.0.22")
    reading = asyncio.create_task(drain(reader))
    for i in range(500):
        name = f"room {i:03d} padding"
        writer.write(encode_event(JoinRoom(name)) + encode_event(SetTopic(name, "t" * 300)))
        if i % 20 == 19:
            await writer.drain()
            await asyncio.sleep(2.5)  # within the default message rate (the topics count)
    await asyncio.sleep(1)
    reading.cancel()
    # stays connected (the rooms stay while someone is in them): the writer is left open


async def phase(port: int, kind: str, seconds: float, pid: int) -> dict[str, Any]:
    stop = asyncio.Event()
    bystanders = [Bystander(f"by{i}-{kind}") for i in range(BYSTANDERS)]
    tasks = [asyncio.create_task(b.run(port, stop)) for b in bystanders]
    await asyncio.sleep(1.0)  # logged in and chatting
    for b in bystanders:
        b.latencies.clear()
        b.ping_latencies.clear()
        b.worst.clear()
    start_at = time.perf_counter()
    cpu0 = cpu_s(pid)
    # the attackers run in a process of their own, so that their writing never delays the bystanders' reading
    attack = None if kind == "quiet" else subprocess.Popen(
        [sys.executable, __file__, "--attack", kind, "--port", str(port), "--phase-s", str(seconds)])
    await asyncio.sleep(seconds)
    stop.set()
    cpu = cpu_s(pid) - cpu0
    await asyncio.wait(tasks, timeout=5)  # the bystanders' last echoes read before anything else is waited for
    while attack is not None and attack.poll() is None:  # never a blocking wait: it would hold the readers up
        await asyncio.sleep(0.05)
    lat = sorted(x for b in bystanders for x in b.latencies)
    lost = sum(len(b.sent) for b in bystanders)

    pings = sorted(x for b in bystanders for x in b.ping_latencies)

    def q(p: float, lat: list[float] = lat) -> float | None:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))], 1) if lat else None

    errors: dict[str, int] = {}
    for b in bystanders:
        for code, n in b.errors.items():
            errors[code] = errors.get(code, 0) + n
    worst = sorted((w for b in bystanders for w in b.worst), reverse=True)[:4]
    return {"phase": kind, "slowest_at_s": [[round(ms), round(at - start_at, 2)] for ms, at in worst], "echoes": len(lat), "unanswered": lost, "bystander_errors": errors,
            "bystanders_dropped": sum(b.closed for b in bystanders), "p50_ms": q(0.5), "p99_ms": q(0.99),
            "max_ms": round(lat[-1], 1) if lat else None, "ping_p50_ms": q(0.5, pings), "ping_p99_ms": q(0.99, pings),
            "ping_max_ms": round(pings[-1], 1) if pings else None, "server_cpu_s": round(cpu, 2), "seconds": seconds}


async def attack_async(kind: str, port: int, seconds: float) -> int:
    """The attackers of one phase (run as a process of its own by ``phase``)."""
    stop = asyncio.Event()
    if kind == "slowloris":
        tasks = [asyncio.create_task(slowloris(port, i, stop)) for i in range(300)]
    else:
        tasks = [asyncio.create_task(attacker(port, kind, i, stop)) for i in range(ATTACKERS)]
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.wait(tasks, timeout=5)
    return 0


async def main_async(a: argparse.Namespace) -> int:
    folder = Path(tempfile.mkdtemp(prefix="qtchat-barrage-data-", dir=a.data_base))
    seed(folder, a.messages)
    proc, port, _ = start_server(folder)
    results = []
    try:
        attacks = [k for k in a.attacks.split(",") if k]
        if "rooms" in attacks:
            await make_rooms(port)
        for kind in ["quiet", *attacks]:
            out = await phase(port, kind, a.phase_s, proc.pid)
            print(json.dumps(out), flush=True)
            results.append(out)
            await asyncio.sleep(2)  # the attackers' connections gone before the next phase
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    quiet = results[0]["p99_ms"] or 0.0
    bound = 2 * quiet + 20
    verdict = {r["phase"]: (r["p99_ms"] is not None and r["p99_ms"] <= bound and not r["unanswered"])
               for r in results[1:]}
    print(json.dumps({"summary": "barrage", "quiet_p99_ms": quiet, "bound_ms": round(bound, 1),
                      "within_bound": verdict}), flush=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--phase-s", type=float, default=8.0, help="seconds each phase is measured")
    ap.add_argument("--attacks", default="pings,history,search,rooms,garbage,slowloris")
    ap.add_argument("--messages", type=int, default=100_000, help="messages stored in the lobby first")
    ap.add_argument("--data-base", help="where the server's data folder is made (default: the temp folder)")
    ap.add_argument("--attack", help=argparse.SUPPRESS)  # (internal: run one phase's attackers)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.attack:
        return asyncio.run(attack_async(a.attack, a.port, a.phase_s))
    return asyncio.run(main_async(a))


if __name__ == "__main__":
    sys.exit(main())
