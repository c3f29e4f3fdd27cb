#!/usr/bin/env python3
"""A cluster of qtchat-server nodes (PostgreSQL + Redis) against one SQLite node, in the same run.

Starts its own PostgreSQL and Redis (tests/services.py: free ports, temporary folders, as the tests do;
PostgreSQL with fsync on, so a commit waits for the disk as it would in production) and, per setup, fresh
``qtchat-server`` processes: ``sqlite`` (one node, data folder on disk), ``pg1``, ``pg2``, ``pg3`` (one to
three nodes on one database). The same clients are spread round-robin over the nodes, all in one room.

- throughput: S senders (spread over the nodes too) x M messages as fast as they go; deliveries/s to the
  other members, lost deliveries (0 expected), and the servers' CPU (all nodes) per delivery;
- latency: the senders paced at RATE/s each; a probe client on another node than the first sender times
  each message from send to receipt (cross-node latency);
- failover: two nodes, a client on node A; A is killed with SIGKILL; the time until the client, which
  reconnects to B as soon as its connection drops, has B's welcome and its catch-up page.

    python benchmarks/cluster.py                       # every setup and scenario
    python benchmarks/cluster.py --setups sqlite,pg2 --clients 100 --messages 2000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO))

from fanout import Client, arm, chat_line, cpu_s, free_port, wait_listening  # noqa: E402

from tests import services  # noqa: E402  (the tests' own PostgreSQL and Redis)


def start_node(extra: list[str], clients: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="qtchat-cluster-", suffix=".log")[1])
    proc = subprocess.Popen(
        [sys.executable, "-m", "qtchat.server", "--port", str(port), "--log-level", "warning",
         "--max-clients", str(clients + 100), "--max-output", str(64 << 20), *extra,
         "--rate-messages", "0", "--rate-bytes", "0", "--max-per-address", "0", "--rate-work", "0",
         "--no-admin-channel"],
        stderr=log.open("wb"), cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    wait_listening(port, proc, log)
    return proc, port


def start_setup(setup: str, pg: services.Postgres, redis: services.Redis, clients: int
                ) -> list[tuple[subprocess.Popen[bytes], int]]:
    if setup == "sqlite":
        return [start_node(["--data-dir", tempfile.mkdtemp(prefix="qtchat-cluster-data-")], clients)]
    count = int(setup[2:])
    database = pg.new_database()
    return [start_node(["--database", pg.dsn(database), "--redis", redis.url], clients) for _ in range(count)]


async def connect(ports: list[int], n: int, probe_on: int) -> list[Client]:
    loop = asyncio.get_running_loop()
    sem = asyncio.Semaphore(32)

    async def one(i: int) -> Client:
        async with sem:
            _, client = await loop.create_connection(
                lambda: Client("qtchat", f"c{i:05d}", probe=(i == n - 1)), "127.0.0.1",
                ports[probe_on] if i == n - 1 else ports[i % len(ports)])
            await asyncio.wait_for(client.ready, 60)
            return client

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def run(ports: list[int], pids: list[int], clients: int, senders: int, messages: int, rate: float,
              timeout: float) -> dict[str, Any]:
    conns = await connect(ports, clients, probe_on=1 % len(ports))
    await asyncio.sleep(1.5)  # join notices of every node settle
    pad = b"x" * 30
    probe = conns[-1]
    arm(conns, lambda i: 1 << 62)
    for idx in range(senders):
        conns[idx].transport.write(chat_line("qtchat", idx, 9_999_999, pad))  # type: ignore[union-attr]
    deadline = time.monotonic() + timeout
    while len(probe.lengths) < senders and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    per_message = [probe.lengths[i] for i in range(senders)]
    warm = sum(per_message)
    while time.monotonic() < deadline and any(c.nbytes < warm for c in conns):
        await asyncio.sleep(0.01)
    total = messages * warm
    futs = arm(conns, lambda i: total)

    async def sender(idx: int, c: Client) -> None:
        interval = 1.0 / rate if rate else 0.0
        start = time.perf_counter()
        for seq in range(messages):
            c.transport.write(chat_line("qtchat", idx, seq, pad))  # type: ignore[union-attr]
            if interval:
                delay = start + (seq + 1) * interval - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            elif seq % 50 == 49:
                await c.drain()
                await asyncio.sleep(0)

    t1 = time.perf_counter()
    cpu0 = sum(cpu_s(p) for p in pids)
    await asyncio.gather(*(sender(i, conns[i]) for i in range(senders)))
    _, pending = await asyncio.wait(futs, timeout=timeout)
    elapsed = time.perf_counter() - t1
    server_cpu = sum(cpu_s(p) for p in pids) - cpu0
    lost = round(sum(max(0, c.expected - c.nbytes) for c in conns) / (warm / senders))
    to_others = (clients - 1) * senders * messages
    lat = sorted(probe.lat_ns)
    for c in conns:
        if c.transport:
            c.transport.close()

    def q(p: float) -> float | None:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))] / 1e6, 2) if lat else None

    return {"clients": clients, "senders": senders, "messages": messages, "rate": rate,
            "elapsed_s": round(elapsed, 2), "lost": lost, "complete": not pending,
            "deliveries_per_s": round(to_others / elapsed) if not pending and lost == 0 else None,
            "server_cpu_s": round(server_cpu, 2),
            "server_cpu_ns_per_delivery": round(server_cpu * 1e9 / to_others, 1),
            "lat_p50_ms": q(0.5), "lat_p99_ms": q(0.99)}


async def failover(pg: services.Postgres, redis: services.Redis) -> dict[str, Any]:
    nodes = start_setup("pg2", pg, redis, 10)
    (proc_a, port_a), (_, port_b) = nodes
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_a)
        writer.write(b'{"type":"hello","version":1,"user":"mover"}\n')
        await reader.readuntil(b'"more":false')
        os.kill(proc_a.pid, signal.SIGKILL)
        killed = time.perf_counter()
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while await reader.read(65536):
                pass
        dropped = time.perf_counter()
        reader, writer = await asyncio.open_connection("127.0.0.1", port_b)
        writer.write(b'{"type":"hello","version":1,"user":"mover"}\n{"type":"history","room":"lobby","after":0}\n')
        try:
            await reader.readuntil(b'"type":"history"')
        except asyncio.IncompleteReadError as exc:
            raise RuntimeError(f"node b answered {exc.partial!r}") from None
        resumed = time.perf_counter()
        writer.close()
        return {"scenario": "failover", "noticed_ms": round((dropped - killed) * 1000, 1),
                "resumed_ms": round((resumed - killed) * 1000, 1)}
    finally:
        for proc, _ in nodes:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--setups", default="sqlite,pg1,pg2,pg3")
    ap.add_argument("--scenarios", default="throughput,latency,failover")
    ap.add_argument("--clients", type=int, default=120)
    ap.add_argument("--senders", type=int, default=6)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--rate", type=float, default=50, help="messages/s per sender in the latency scenario")
    ap.add_argument("--latency-messages", type=int, default=200)
    ap.add_argument("--timeout", type=float, default=120)
    a = ap.parse_args()
    with services.postgres(fsync=True) as pg, services.redis(Path(tempfile.mkdtemp(prefix="qtchat-bench-redis-"))) as redis:
        scenarios = a.scenarios.split(",")
        for setup in a.setups.split(","):
            for scenario in ("throughput", "latency"):
                if scenario not in scenarios:
                    continue
                nodes = start_setup(setup, pg, redis, a.clients)
                try:
                    rate, count = (0.0, a.messages) if scenario == "throughput" else (a.rate, a.latency_messages)
                    out = asyncio.run(run([p for _, p in nodes], [pr.pid for pr, _ in nodes], a.clients, a.senders,
                                          count, rate, a.timeout))
                    print(json.dumps({"setup": setup, "scenario": scenario, **out}), flush=True)
                finally:
                    for proc, _ in nodes:
                        proc.send_signal(signal.SIGTERM)
                        proc.wait(20)
        if "failover" in scenarios:
            for _ in range(3):
                print(json.dumps(asyncio.run(failover(pg, redis))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
