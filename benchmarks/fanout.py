#!/usr/bin/env python3
"""Room fan-out benchmark: qtchat-server, and optionally ngircd (a C IRC server), side by side.

Scenarios (each against a freshly started server process):
- throughput: N clients in one room, S senders x M messages of SIZE bytes as fast as possible;
  every message must reach every other member (and, for qtchat, come back to its sender as the
  acknowledgement). Prints deliveries/s to other members and how many deliveries were lost.
- latency: the same room, each sender paced at RATE messages/s; a probe client measures the
  time from send to receipt (p50/p99).
- idle: K clients connected and logged in, doing nothing: server RSS per connection.

The load generator is one asyncio process using the same counting code for both protocols, so the
two servers are measured with the same instrument in the same run; compare them as a ratio.

    python benchmarks/fanout.py                         # qtchat only
    python benchmarks/fanout.py --ngircd                # and ngircd (apt-get install ngircd)
    python benchmarks/fanout.py --scenarios idle --idle 1000,10000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
NGIRCD_CONF = REPO.parent / "shared" / "bench" / "ngircd.conf"
CHATLOAD = REPO.parent / "shared" / "bench" / "chatload.py"
STAMP = re.compile(rb"s(\d{3}):\d{7}:(\d{20}):")


# ----------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass
class Server:
    proto: str
    proc: subprocess.Popen[bytes]
    port: int
    logfile: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_listening(port: int, proc: subprocess.Popen[bytes], logfile: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {logfile.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start listening")


OPTIONS: dict[str, Any] = {"history": True, "tree": REPO}  # --no-history: no durable history; --ab: other code


def start_qtchat(clients: int) -> Server:
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="qtchat-bench-", suffix=".log")[1])
    # history on disk in a fresh folder each run (SQLite, synchronous=FULL), unless --no-history
    history = (["--data-dir", tempfile.mkdtemp(prefix="qtchat-bench-data-")] if OPTIONS["history"]
               else ["--no-history"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "qtchat.server", "--port", str(port), "--log-level", "warning",
         "--max-clients", str(clients + 100), "--max-output", str(64 << 20), *history,
         # the load generator floods from one address on purpose
         "--rate-messages", "0", "--rate-bytes", "0", "--max-per-address", "0"],
        stderr=log.open("wb"), cwd=OPTIONS["tree"], env={**os.environ, "PYTHONPATH": str(OPTIONS["tree"])},
    )
    wait_listening(port, proc, log)
    return Server("qtchat", proc, port, log)


def start_ngircd() -> Server:
    exe = shutil.which("ngircd") or "/usr/sbin/ngircd"
    if not Path(exe).exists():
        raise SystemExit("ngircd is not installed: apt-get install -y ngircd")
    log = Path(tempfile.mkstemp(prefix="ngircd-bench-", suffix=".log")[1])
    proc = subprocess.Popen([exe, "-f", str(NGIRCD_CONF), "-n"], stdout=log.open("wb"), stderr=subprocess.STDOUT)
    wait_listening(16667, proc, log)
    return Server("irc", proc, 16667, log)


# ----------------------------------------------------------------------------- clients


class Client(asyncio.BufferedProtocol):
    """One load-generator connection.

    During the timed run a receiver only adds up the bytes it reads: every bench message is built
    with fixed-width fields, so each sender's messages arrive with one fixed length, which a
    warm-up round measures. A receiver is done when it has read exactly its expected bytes, and
    any shortfall is reported as lost deliveries. This keeps the instrument from scanning every
    byte in Python (about 1 GB/s here, slower than either server). The probe client parses every
    line it gets, counting frames as a cross-check and measuring latency from the send stamps.
    """

    BUF = 1 << 20

    def __init__(self, proto: str, nick: str, probe: bool = False) -> None:
        self.proto = proto
        self.nick = nick
        self.mark = b'{"type":"msg"' if proto == "qtchat" else b" PRIVMSG #bench :"
        self.ready_mark = b'"more":false' if proto == "qtchat" else b" 366 "
        self.probe = probe
        self.nbytes = 0
        self.count = 0  # probe only
        self.lengths: dict[int, int] = {}  # probe only: sender index -> delivered line length
        self.lat_ns: list[int] = []
        self.tail = b""
        self.head = b""  # registration bytes, until ready
        self.ready = asyncio.get_running_loop().create_future()
        self.done: asyncio.Future[None] | None = None
        self.expected = 0
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray(self.BUF)
        self.view = memoryview(self.buf)
        self.writable: asyncio.Future[None] | None = None  # set while the transport asks us to pause

    def pause_writing(self) -> None:
        self.writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)
        self.writable = None

    async def drain(self) -> None:
        """Like StreamWriter.drain(): wait while more than the high-water mark is unsent."""
        if self.writable is not None:
            await self.writable

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.proto == "qtchat":
            transport.write(b'{"type":"hello","version":1,"user":"%s"}\n' % self.nick.encode())
        else:
            transport.write(b"NICK %s\r\nUSER %s 0 * :bench\r\nJOIN #bench\r\n" % ((self.nick.encode(),) * 2))

    def connection_lost(self, exc: Exception | None) -> None:
        self.resume_writing()
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"{self.nick}: closed: {self.head[-300:]!r}"))
        if self.done is not None and not self.done.done():
            self.done.set_result(None)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view

    def buffer_updated(self, nbytes: int) -> None:
        if not self.ready.done():
            # the registration reply can be a long user list: keep only its tail
            self.head = self.head[-64:] + bytes(self.buf[:nbytes])
            if self.ready_mark in self.head:
                self.ready.set_result(None)
            elif self.proto == "irc" and (b" 433 " in self.head or b" 432 " in self.head or b"ERROR" in self.head):
                self.ready.set_exception(ConnectionError(self.head[-300:].decode(errors="replace")))
            return
        self.nbytes += nbytes
        if self.probe:
            self._probe(bytes(self.buf[:nbytes]))
        elif nbytes < 512:
            # keepalive pings only come to idle connections, alone in a small read
            for line in bytes(self.buf[:nbytes]).split(b"\n"):
                self._pong(line)
        if self.done is not None and self.nbytes >= self.expected and not self.done.done():
            self.done.set_result(None)

    def _probe(self, data: bytes) -> None:
        now = time.perf_counter_ns()
        lines = (self.tail + data).split(b"\n")
        self.tail = lines.pop()
        for line in lines:
            m = STAMP.search(line)
            if m and self.mark in line:
                self.count += 1
                self.lengths[int(m.group(1))] = len(line) + 1
                self.lat_ns.append(now - int(m.group(2)))
            else:
                self._pong(line)

    def _pong(self, line: bytes) -> None:
        assert self.transport is not None
        if self.proto == "irc" and line.startswith(b"PING"):
            self.transport.write(b"PONG" + line[4:].rstrip(b"\r") + b"\r\n")
        elif line.startswith(b'{"type":"ping"'):
            self.transport.write(line.replace(b'"ping"', b'"pong"', 1) + b"\n")


async def connect_all(proto: str, port: int, n: int, concurrency: int = 64) -> list[Client]:
    loop = asyncio.get_running_loop()
    sem = asyncio.Semaphore(concurrency)
    tag = os.getpid() % 1000

    async def one(i: int) -> Client:
        async with sem:
            _, client = await loop.create_connection(
                lambda: Client(proto, f"b{tag % 100:02d}x{i:05d}", probe=(i == n - 1)), "127.0.0.1", port
            )
            await asyncio.wait_for(client.ready, 120)
            return client

    return list(await asyncio.gather(*(one(i) for i in range(n))))


def chat_line(proto: str, idx: int, seq: int, pad: bytes) -> bytes:
    """A bench message; every field has a fixed width, so a sender's lines all have one length."""
    body = b"s%03d:%07d:%020d:" % (idx, seq, time.perf_counter_ns()) + pad
    if proto == "qtchat":
        return b'{"type":"msg","room":"lobby","text":"%s","cid":"%07d"}\n' % (body, seq)
    return b"PRIVMSG #bench :" + body + b"\r\n"


def arm(conns: list[Client], expected: Callable[[int], int]) -> list[asyncio.Future[None]]:
    loop = asyncio.get_running_loop()
    futs = []
    for i, c in enumerate(conns):
        c.nbytes = c.count = 0
        c.lat_ns.clear()
        c.expected = expected(i)
        c.done = loop.create_future()
        futs.append(c.done)
    return futs


async def fanout(server: Server, clients: int, senders: int, messages: int, size: int,
                 rate: float, timeout: float) -> dict[str, Any]:
    proto, port = server.proto, server.port
    t0 = time.perf_counter()
    conns = await connect_all(proto, port, clients)
    connect_s = time.perf_counter() - t0
    await asyncio.sleep(0.5)  # let join notices settle
    pad = b"x" * max(0, size - 34)
    echo = proto == "qtchat"  # IRC does not echo a message to its sender; qtchat acknowledges that way

    # warm-up: one message per sender; the probe learns each sender's delivered line length
    probe = conns[-1]
    futs = arm(conns, lambda i: 1 << 62)
    for idx in range(senders):
        transport = conns[idx].transport
        assert transport is not None
        transport.write(chat_line(proto, idx, 9_999_999, pad))
    deadline = time.monotonic() + timeout
    while len(probe.lengths) < senders and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    lengths = dict(probe.lengths)
    warm = sum(lengths.values())
    while time.monotonic() < deadline and any(
        c.nbytes < warm - (0 if echo or i >= senders else lengths[i]) for i, c in enumerate(conns)
    ):
        await asyncio.sleep(0.01)

    per_message = [lengths[i] for i in range(senders)]
    total = messages * sum(per_message)
    futs = arm(conns, lambda i: total - (0 if echo or i >= senders else messages * per_message[i]))

    async def sender(idx: int, c: Client) -> None:
        assert c.transport is not None
        interval = 1.0 / rate if rate else 0.0
        start = time.perf_counter()
        for seq in range(messages):
            c.transport.write(chat_line(proto, idx, seq, pad))
            if interval:
                delay = start + (seq + 1) * interval - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            elif seq % 50 == 49:
                await c.drain()  # as the reference generator does: no unbounded queue in the sender
                await asyncio.sleep(0)

    t1 = time.perf_counter()
    cpu0, gen0 = cpu_s(server.proc.pid), time.process_time()
    await asyncio.gather(*(sender(i, conns[i]) for i in range(senders)))
    send_s = time.perf_counter() - t1
    _, pending = await asyncio.wait(futs, timeout=timeout)
    elapsed = time.perf_counter() - t1
    server_cpu, gen_cpu = cpu_s(server.proc.pid) - cpu0, time.process_time() - gen0
    await asyncio.sleep(0.2)  # anything extra would show as a surplus
    got_bytes = sum(c.nbytes for c in conns)
    expected_bytes = sum(c.expected for c in conns)
    # deliveries missing, from the byte shortfall of each receiver (lines of a receiver are of known length)
    mean_len = sum(per_message) / senders
    lost = round(sum(max(0, c.expected - c.nbytes) for c in conns) / mean_len)
    to_others = (clients - 1) * senders * messages
    lat = sorted(probe.lat_ns)

    def q(p: float) -> float | None:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))] / 1e6, 3) if lat else None

    for c in conns:
        if c.transport:
            c.transport.close()
    return {
        "server": proto, "clients": clients, "senders": senders, "messages": messages, "size": size,
        "rate": rate, "bytes_per_delivery": round(mean_len, 1), "connect_s": round(connect_s, 3),
        "send_s": round(send_s, 3), "elapsed_s": round(elapsed, 3),
        "deliveries_to_others": to_others, "acks": senders * messages if echo else 0,
        "lost": lost, "extra_bytes": max(0, got_bytes - expected_bytes),
        "probe_frames": probe.count, "probe_expected": senders * messages,
        "deliveries_per_s": round(to_others / elapsed) if not pending and lost == 0 else None,
        "lat_p50_ms": q(0.5), "lat_p99_ms": q(0.99), "complete": not pending,
        "server_cpu_s": round(server_cpu, 2), "loadgen_cpu_s": round(gen_cpu, 2),
        "server_cpu_ns_per_delivery": round(server_cpu * 1e9 / to_others, 1) if to_others else None,
        "acked_per_s": round(senders * messages / elapsed) if echo and not pending else None,
        "history": OPTIONS["history"] if proto == "qtchat" else None,
    }


async def idle(server: Server, n: int) -> dict[str, Any]:
    await asyncio.sleep(0.3)
    base = rss_kb(server.proc.pid)
    t0 = time.perf_counter()
    cpu0, gen0 = cpu_s(server.proc.pid), time.process_time()
    conns = await connect_all(server.proto, server.port, n, concurrency=256)
    connect_s = time.perf_counter() - t0
    server_cpu, gen_cpu = cpu_s(server.proc.pid) - cpu0, time.process_time() - gen0
    await asyncio.sleep(2.0)  # let the joins' fan-out drain
    rss = rss_kb(server.proc.pid)
    for c in conns:
        if c.transport:
            c.transport.close()
    return {
        "server": server.proto, "idle_clients": n, "connect_s": round(connect_s, 2),
        "rss_base_mb": round(base / 1024, 1), "rss_mb": round(rss / 1024, 1),
        "kb_per_client": round((rss - base) / n, 2),
        "connect_server_cpu_s": round(server_cpu, 2), "connect_loadgen_cpu_s": round(gen_cpu, 2),
    }


# ----------------------------------------------------------------------------- main


def raise_fd_limit() -> None:
    try:
        import resource
    except ImportError:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", default="throughput,latency,idle",
                    help="comma-separated: throughput, latency, idle (default: all)")
    ap.add_argument("--ngircd", action="store_true",
                    help="also run the throughput and latency scenarios against ngircd")
    ap.add_argument("--ngircd-idle", action="store_true", help="and the idle scenario (ngircd's own limits apply)")
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--senders", type=int, default=10)
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--size", type=int, default=64, help="payload bytes per message")
    ap.add_argument("--rate", type=float, default=20, help="messages/s per sender in the latency scenario")
    ap.add_argument("--latency-messages", type=int, default=100)
    ap.add_argument("--idle", default="1000,10000", help="idle client counts")
    ap.add_argument("--repeat", type=int, default=1, help="throughput runs per server (alternating)")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--no-history", action="store_true", help="run qtchat-server without its durable history")
    ap.add_argument("--history-cost", action="store_true",
                    help="throughput with history on and off, alternating --repeat times, and the ratio")
    ap.add_argument("--ab", type=Path, metavar="DIR",
                    help="throughput of this tree's server and of the one in DIR (another checkout, e.g. the "
                         "commit before a change), alternating --repeat times, and the ratio")
    a = ap.parse_args()
    OPTIONS["history"] = not a.no_history
    raise_fd_limit()
    scenarios = set(a.scenarios.split(","))
    kinds = ["qtchat", "irc"] if a.ngircd else ["qtchat"]
    starters: dict[str, Callable[[int], Server]] = {"qtchat": start_qtchat, "irc": lambda n: start_ngircd()}
    results: list[dict[str, Any]] = []

    def run(kind: str, clients: int, coro_fn: Callable[[Server], Coroutine[Any, Any, dict[str, Any]]]) -> None:
        server = starters[kind](clients)
        try:
            out = asyncio.run(coro_fn(server))
        except (ConnectionError, OSError, TimeoutError) as exc:
            out = {"server": kind, "clients": clients, "error": f"{type(exc).__name__}: {exc}"[:300]}
        finally:
            server.stop()
        print(json.dumps(out), flush=True)
        results.append(out)

    def run_reference() -> None:
        """ngircd through the reference load generator (shared/bench/chatload.py).

        ngircd writes line by line, so it gains from that generator's slower readers (more
        lines per write): it is faster there than under ours, and the ratio uses its best figure.
        """
        server = start_ngircd()
        try:
            proc = subprocess.run(
                [sys.executable, str(CHATLOAD), "--port", str(server.port), "--clients", str(a.clients),
                 "--senders", str(a.senders), "--messages", str(a.messages), "--size", str(a.size),
                 "--label", "ngircd via shared/bench/chatload.py"],
                capture_output=True, text=True, timeout=a.timeout + 60, check=False,
            )
        finally:
            server.stop()
        if proc.returncode == 0 and proc.stdout.strip():
            ref = json.loads(proc.stdout.strip().splitlines()[-1])
            ref["server"] = "irc"
            print(json.dumps(ref), flush=True)
            results.append(ref)

    if a.history_cost:
        rates: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(a.repeat):
            for on in (True, False):
                OPTIONS["history"] = on
                run("qtchat", a.clients, lambda s: fanout(s, a.clients, a.senders, a.messages, a.size, 0, a.timeout))
                results[-1]["history"] = on
                rates[on].append(float(results[-1].get("deliveries_per_s") or 0))
        OPTIONS["history"] = not a.no_history
        on_best, off_best = max(rates[True]), max(rates[False])
        print(json.dumps({"summary": "history cost", "with_history_per_s": rates[True],
                          "without_history_per_s": rates[False],
                          "cost_of_best": round(1 - on_best / off_best, 3) if off_best else None}))
        scenarios.discard("throughput")
    if a.ab is not None:
        ab: dict[str, list[dict[str, Any]]] = {"this": [], "other": []}
        for _ in range(a.repeat):
            for label, tree in (("this", REPO), ("other", a.ab.resolve())):
                OPTIONS["tree"] = tree
                run("qtchat", a.clients, lambda s: fanout(s, a.clients, a.senders, a.messages, a.size, 0, a.timeout))
                results[-1]["tree"] = str(tree)
                ab[label].append(results[-1])
        OPTIONS["tree"] = REPO

        def figures(runs: list[dict[str, Any]], key: str) -> list[float]:
            return [float(r.get(key) or 0) for r in runs]

        this, other = figures(ab["this"], "deliveries_per_s"), figures(ab["other"], "deliveries_per_s")
        print(json.dumps({"summary": "A/B", "this_per_s": this, "other_per_s": other,
                          "this_cpu_ns_per_delivery": figures(ab["this"], "server_cpu_ns_per_delivery"),
                          "other_cpu_ns_per_delivery": figures(ab["other"], "server_cpu_ns_per_delivery"),
                          "best_ratio": round(max(this) / max(other), 3) if max(other) else None,
                          "median_ratio": round(sorted(this)[len(this) // 2] / sorted(other)[len(other) // 2], 3)
                          if min(other) else None}))
        scenarios.discard("throughput")
    if "throughput" in scenarios:
        for _ in range(a.repeat):
            for kind in kinds:
                run(kind, a.clients, lambda s: fanout(s, a.clients, a.senders, a.messages,
                                                      a.size, 0, a.timeout))
            if a.ngircd and CHATLOAD.exists():
                run_reference()
    if "latency" in scenarios:
        for kind in kinds:
            run(kind, a.clients, lambda s: fanout(s, a.clients, a.senders, a.latency_messages,
                                                  a.size, a.rate, a.timeout))
    if "idle" in scenarios:
        for n in (int(x) for x in a.idle.split(",")):
            for kind in kinds if a.ngircd_idle else ["qtchat"]:
                run(kind, n, partial(idle, n=n))

    # summary: the ratio of the best figures where both servers ran
    if a.ngircd and "throughput" in scenarios:
        def best(kind: str) -> float:
            rates = [float(r.get("deliveries_per_s") or 0) for r in results
                     if r.get("server") == kind and not r.get("rate") and r.get("lost") == 0]
            return max(rates) if rates else 0.0

        ours, ref = best("qtchat"), best("irc")
        if ref:
            print(json.dumps({"summary": "throughput", "qtchat_per_s": ours, "ngircd_best_per_s": ref,
                              "ratio": round(ours / ref, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
