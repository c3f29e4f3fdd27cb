#!/usr/bin/env python3
"""Login storm: does chat stall while hundreds of clients log in with passwords at once?

A qtchat-server process is started on a fresh data folder holding N registered accounts (one scrypt
hash computed before the server starts and stored for every account, so no hashing happens outside the
timed part; checking it costs the same as checking N different hashes). K chat clients (unregistered
names, in their own room so that the storm's lobby does not enlarge their fan-out) each send a message
every PERIOD ms. For every message this records the time from sending it to its echo (the server's
acknowledgement back to its sender), to its delivery to each other chat client, and to the server: the
message id is the server's clock in microseconds when it accepted the message, so ``id - send time``
is the inbound leg (the wait for the server's event loop to read it), on the one machine's clock.

1. baseline: chat only, for BASELINE seconds;
2. each storm size in --storms: the chat goes on while S clients connect and send ``hello`` with a
   password at the same moment (a fraction --wrong of them a wrong one). A client refused with
   ``server_busy`` reconnects after the desktop client's backoff (0.5 s * 2**attempt, jittered 50-100%).
   The storm is over when every client has its answer (``welcome`` or ``auth_failed``); the chat is
   measured from its start until then, and for at least 3 s. Storm clients stay logged in until then,
   and are closed before the next storm;
3. with --control, after each storm the same number of unregistered names log in without a password:
   what logging in (joins, user lists, notices to a crowded lobby) costs the chat with nothing to hash.

The chat clients run on a ``selectors`` loop in this process with the sans-I/O protocol module, parsing
every frame; each storm runs in a process of its own (this script again, ``--storm-worker``) so that
opening hundreds of connections cannot delay the chat clients' clocks. Storm clients parse only their
first answer, then just drain.

The server runs with its defaults except: ``--max-per-address 0`` (every client is on loopback) and
``--max-clients`` above the storm size. The ten-wrong-passwords-per-address limit has no flag; the storm
clients bind to distinct loopback source addresses (127.0.1.1, 127.0.1.2, ...), at most
``ceil(S / --addresses)`` clients per address, so with the defaults no address reaches ten wrong
passwords and the limit is never what is measured (``too_many_attempts`` would show in ``answers``).

    python benchmarks/login_storm.py                        # --storms 200,500 --chatters 5 --period 100
    python benchmarks/login_storm.py --storms 500 --control --json
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import random
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from qtchat.protocol import (  # noqa: E402
    NEED_DATA,
    PEER_CLOSED,
    Connection,
    Error,
    Hello,
    JoinRoom,
    Message,
    ProtocolError,
    Role,
    RoomJoined,
    SendMessage,
    Welcome,
    name_key,
)
from qtchat.server.accounts import AccountStore, hash_password  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fanout import cpu_s, free_port  # noqa: E402  (the fan-out benchmark's helpers)

PASSWORD = "storm benchmark password"
ROOM = "benchroom"


# ----------------------------------------------------------------------------- the server


def make_accounts(data: Path, count: int) -> float:
    """Register storm0..storm{count-1}; returns the seconds one hash took."""
    start = time.perf_counter()
    hashed = hash_password(PASSWORD)
    took = time.perf_counter() - start
    store = AccountStore(data / "accounts.db")
    store.db.execute("BEGIN")
    for i in range(count):
        store.create(name_key(f"storm{i}"), f"storm{i}", hashed)
    store.db.execute("COMMIT")
    store.close()
    return took


def start_server(data: Path, clients: int, extra: list[str]) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    log = data / "server.log"
    args = [sys.executable, "-m", "qtchat.server", "--port", str(port), "--data-dir", str(data),
            "--log-level", "warning", "--no-admin-channel", "--max-per-address", "0",
            "--max-clients", str(clients + 100), *extra]
    proc = subprocess.Popen(args, stderr=log.open("wb"), cwd=REPO)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port, log
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start listening")


# ----------------------------------------------------------------------------- the load generator


class Loop:
    """A selectors loop with timers: everything of the load generator runs on it."""

    def __init__(self) -> None:
        self.sel = selectors.DefaultSelector()
        self.timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0

    def call_at(self, when: float, fn: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self.timers, (when, self._seq, fn))

    def run_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        self.run_until(lambda: time.monotonic() >= end, seconds + 5)

    def run_until(self, done: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError("the benchmark took too long")
            while self.timers and self.timers[0][0] <= now:
                heapq.heappop(self.timers)[2]()
            wait = min(0.05, max(0.0, self.timers[0][0] - now)) if self.timers else 0.05
            for key, _ in self.sel.select(wait):
                key.data()


class Peer:
    """One connection. ``on_event`` gets each parsed frame until ``raw`` is set; then bytes are only drained."""

    def __init__(self, loop: Loop, port: int, source: str = "127.0.0.1") -> None:
        self.loop = loop
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.bind((source, 0))
        self.sock.setblocking(False)
        self.conn = Connection(Role.CLIENT, max_frame=1 << 20)
        self.raw = False
        self.closed = False
        self.out = b""
        self.on_event: Callable[[Any], None] = lambda ev: None
        self.on_close: Callable[[], None] = lambda: None
        self.sock.connect_ex(("127.0.0.1", port))
        loop.sel.register(self.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, self._ready)

    def send(self, event: Any) -> None:
        self.out += self.conn.send(event)
        self._flush()

    def _flush(self) -> None:
        if self.closed or not self.out:
            return
        try:
            sent = self.sock.send(self.out)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.close()
            return
        self.out = self.out[sent:]

    def _ready(self) -> None:
        if self.closed:
            return
        self._flush()
        if not self.out and not self.closed:
            self.loop.sel.modify(self.sock, selectors.EVENT_READ, self._ready)
        try:
            data = self.sock.recv(1 << 18)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        if self.raw:
            return
        self.conn.receive_data(data)
        while not self.raw and not self.closed:
            try:
                ev = self.conn.next_event()
            except ProtocolError:
                continue
            if ev is NEED_DATA or ev is PEER_CLOSED:
                break
            self.on_event(ev)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.loop.sel.unregister(self.sock)
        self.sock.close()
        self.on_close()


class Chatter:
    """A chat client: logs in, joins ROOM, then sends a stamped message every ``period`` seconds."""

    def __init__(self, loop: Loop, port: int, index: int, stats: Stats) -> None:
        self.index = index
        self.name = f"chat{index}"
        self.stats = stats
        self.ready = False
        self.seq = 0
        self.peer = Peer(loop, port)
        self.peer.on_event = self._event
        self.peer.on_close = lambda: stats.errors.append(f"{self.name}: connection closed")
        self.peer.send(Hello(self.name))

    def _event(self, ev: Any) -> None:
        if isinstance(ev, Welcome):
            self.peer.send(JoinRoom(ROOM))
        elif isinstance(ev, RoomJoined):
            self.ready = True
        elif isinstance(ev, Message) and ev.room == ROOM and ev.text.startswith("t"):
            now = time.perf_counter_ns()
            _, sender, _, sent, wall = ev.text.split(":")
            if int(sender) == self.index:
                self.stats.echo.append((now - int(sent)) / 1e6)
                # the message id is the server's clock in microseconds when it accepted the message
                # (bumped by 1 us when two come in the same microsecond): the inbound leg of the trip
                self.stats.inbound.append((ev.id - int(wall) / 1000) / 1000)
            else:
                self.stats.delivery.append((now - int(sent)) / 1e6)
        elif isinstance(ev, Error):
            self.stats.errors.append(f"{self.name}: {ev.code}: {ev.message}")

    def send(self) -> None:
        self.seq += 1
        stamp = f"t:{self.index}:{self.seq}:{time.perf_counter_ns()}:{time.time_ns()}"
        self.peer.send(SendMessage(stamp, room=ROOM))


class Stats:
    def __init__(self) -> None:
        self.echo: list[float] = []
        self.delivery: list[float] = []
        self.inbound: list[float] = []
        self.errors: list[str] = []

    def reset(self) -> None:
        self.echo.clear()
        self.delivery.clear()
        self.inbound.clear()


def summary(ms: list[float]) -> dict[str, Any]:
    if not ms:
        return {"n": 0}
    s = sorted(ms)
    return {"n": len(s), "p50_ms": round(statistics.median(s), 2),
            "p99_ms": round(s[min(len(s) - 1, math.ceil(len(s) * 0.99) - 1)], 2), "max_ms": round(s[-1], 2)}


class Storm:
    """S clients logging in with a password at once, reconnecting after ``server_busy`` with backoff."""

    def __init__(self, loop: Loop, port: int, size: int, wrong: float, addresses: int, rng: random.Random,
                 guests: bool = False) -> None:
        self.loop, self.port, self.size, self.addresses, self.rng = loop, port, size, addresses, rng
        self.guests = guests  # the control: unregistered names, no password, nothing to hash
        self.outcome: dict[int, str] = {}
        self.busy = 0  # server_busy answers
        self.retried: set[int] = set()  # clients that got server_busy at least once
        self.other: dict[str, int] = {}
        self.peers: list[Peer] = []
        self.wrong = set(rng.sample(range(size), round(size * wrong))) if not guests else set()
        self.login_ms: list[float] = []  # from the first attempt to the answer
        self.started = time.monotonic()
        self.first: dict[int, int] = {}
        self.finished_at = 0.0
        for i in range(size):
            self._attempt(i, 0)

    def source(self, i: int) -> str:
        a = i % self.addresses
        return f"127.0.{1 + a // 250}.{1 + a % 250}"

    def _attempt(self, i: int, attempt: int) -> None:
        self.first.setdefault(i, time.perf_counter_ns())
        peer = Peer(self.loop, self.port, self.source(i))
        self.peers.append(peer)
        answered = [False]

        def on_event(ev: Any) -> None:
            if answered[0]:
                return
            answered[0] = True
            if isinstance(ev, Welcome):
                self._done(i, "welcome")
                peer.raw = True  # the lobby's user list and notices are only drained
            elif isinstance(ev, Error) and ev.code == "server_busy":
                self.busy += 1
                self.retried.add(i)
                peer.close()
                delay = min(30.0, 0.5 * 2**attempt) * self.rng.uniform(0.5, 1.0)  # as qtchat/client/session.py
                self.loop.call_at(time.monotonic() + delay, lambda: self._attempt(i, attempt + 1))
            elif isinstance(ev, Error):
                self._done(i, ev.code)
                peer.close()
            else:
                answered[0] = False

        def on_close() -> None:
            if not answered[0]:
                answered[0] = True
                self._done(i, "closed without an answer")

        peer.on_event = on_event
        peer.on_close = on_close
        if self.guests:
            peer.send(Hello(f"guest{i}"))
        else:
            peer.send(Hello(f"storm{i}", password=PASSWORD if i not in self.wrong else "not the password"))

    def _done(self, i: int, what: str) -> None:
        self.outcome[i] = what
        self.login_ms.append((time.perf_counter_ns() - self.first[i]) / 1e6)
        if len(self.outcome) == self.size:
            self.finished_at = time.monotonic()

    def finished(self) -> bool:
        return len(self.outcome) == self.size

    def close(self) -> None:
        for peer in self.peers:
            peer.close()


def raise_fd_limit() -> None:
    try:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError):
        pass


def storm_worker(port: int, size: int, wrong: float, addresses: int, seed: int, guests: bool) -> int:
    """The storm, in a process of its own (so that starting 500 connections cannot delay the chat
    clients' clocks): prints "start", then one JSON line with the results when every client has its answer."""
    raise_fd_limit()
    loop = Loop()
    print("start", flush=True)
    storm = Storm(loop, port, size, wrong, addresses, random.Random(seed), guests)
    loop.run_until(storm.finished, 120)
    took = storm.finished_at - storm.started
    outcomes: dict[str, int] = {}
    for what in storm.outcome.values():
        outcomes[what] = outcomes.get(what, 0) + 1
    print(json.dumps({
        "seconds": round(took, 2), "logins_per_s": round(size / took, 1), "answers": outcomes,
        "server_busy": storm.busy, "clients_that_retried": len(storm.retried), "login_time": summary(storm.login_ms),
    }), flush=True)
    sys.stdin.read()  # stay logged in until told to go (stdin closed)
    storm.close()
    return 0


class Worker:
    """The storm process, its output lines read on the loop."""

    def __init__(self, loop: Loop, args: list[str]) -> None:
        self.loop = loop
        self.proc = subprocess.Popen([sys.executable, __file__, "--storm-worker", *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, cwd=REPO)
        assert self.proc.stdout is not None
        self.fd = self.proc.stdout.fileno()
        self.buf = b""
        self.lines: list[str] = []
        self.started = 0.0
        loop.sel.register(self.fd, selectors.EVENT_READ, self._read)

    def _read(self) -> None:
        data = os.read(self.fd, 65536)
        if not data:
            self.loop.sel.unregister(self.fd)
            self.lines.append("")
            return
        self.buf += data
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            self.lines.append(line.decode())

    def wait_lines(self, count: int, timeout: float) -> None:
        self.loop.run_until(lambda: len(self.lines) >= count, timeout)
        if not self.lines[-1]:
            raise RuntimeError(f"the storm process ended early: {self.lines}")

    def stop(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(30)
        if self.fd in self.loop.sel.get_map():
            self.loop.sel.unregister(self.fd)
        self.proc.stdout.close()


def main() -> int:
    if sys.argv[1:2] == ["--storm-worker"]:
        w = sys.argv[2:8]
        return storm_worker(int(w[0]), int(w[1]), float(w[2]), int(w[3]), int(w[4]), w[5] == "guests")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--storms", default="200,500", help="storm sizes, comma-separated (default: %(default)s)")
    ap.add_argument("--wrong", type=float, default=0.2, help="fraction of wrong passwords (default: %(default)s)")
    ap.add_argument("--chatters", type=int, default=5, help="chat clients (default: %(default)s)")
    ap.add_argument("--period", type=float, default=100, help="ms between two messages of one chat client "
                    "(default: %(default)s)")
    ap.add_argument("--baseline", type=float, default=5.0, help="seconds of chat without a storm (default: %(default)s)")
    ap.add_argument("--addresses", type=int, default=250, help="loopback source addresses for the storm clients "
                    "(default: %(default)s)")
    ap.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                    help="an extra qtchat-server argument (repeat), e.g. --server-arg=--rate-messages=0")
    ap.add_argument("--control", action="store_true",
                    help="after each storm, the same number of unregistered names logging in without a password "
                         "(nothing to hash): what logging in costs the chat by itself")
    ap.add_argument("--json", action="store_true", help="print one JSON object per phase instead of text")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    storms = [int(s) for s in a.storms.split(",") if s]
    raise_fd_limit()

    def report(phase: str, fields: dict[str, Any]) -> None:
        fields = {"phase": phase, **fields, "load": [round(x, 2) for x in os.getloadavg()]}
        if a.json:
            print(json.dumps(fields), flush=True)
        else:
            print(f"{phase}: " + ", ".join(f"{k}={v}" for k, v in fields.items() if k != "phase"), flush=True)

    def chat_figures() -> dict[str, Any]:
        return {"echo": summary(stats.echo), "delivery": summary(stats.delivery),
                "to_server": summary(stats.inbound)}

    with tempfile.TemporaryDirectory(prefix="qtchat-storm-") as tmp:
        data = Path(tmp)
        most = max(storms, default=0)
        hash_s = make_accounts(data, most)
        proc, port, log = start_server(data, most + a.chatters, a.server_arg)
        report("setup", {"accounts": most, "one_hash_ms": round(hash_s * 1000, 1),
                         "server": " ".join(str(x) for x in proc.args[1:])})  # type: ignore[index]
        loop = Loop()
        stats = Stats()
        try:
            chatters = [Chatter(loop, port, i, stats) for i in range(a.chatters)]
            loop.run_until(lambda: all(c.ready for c in chatters), 10)
            period = a.period / 1000

            def tick(c: Chatter) -> None:
                c.send()
                loop.call_at(time.monotonic() + period, lambda: tick(c))

            start = time.monotonic()
            for i, c in enumerate(chatters):  # staggered over one period
                loop.call_at(start + period * i / len(chatters), lambda c=c: tick(c))  # type: ignore[misc]
            loop.run_for(1.0)  # warm-up
            stats.reset()
            cpu0 = cpu_s(proc.pid)
            loop.run_for(a.baseline)
            report("baseline", {"seconds": a.baseline, **chat_figures(),
                                "server_cpu_s": round(cpu_s(proc.pid) - cpu0, 2)})
            runs = [(size, kind) for size in storms for kind in (("accounts", "guests") if a.control else ("accounts",))]
            for n, (size, kind) in enumerate(runs):
                worker = Worker(loop, [str(port), str(size), str(a.wrong), str(a.addresses), str(a.seed + n), kind])
                worker.wait_lines(1, 30)  # "start"
                stats.reset()
                cpu0 = cpu_s(proc.pid)
                began = time.monotonic()
                worker.wait_lines(2, 180)
                # the chat is measured until the storm is over, and for at least 3 s (the joins' notices
                # go out in batches held up to 1 s, and the control storm lasts a fraction of a second)
                loop.run_for(3.0 - (time.monotonic() - began))
                report(f"storm {size}" if kind == "accounts" else f"control {size} (no passwords)", {**json.loads(worker.lines[1]), **chat_figures(),
                                         "server_cpu_s": round(cpu_s(proc.pid) - cpu0, 2)})
                worker.stop()
                loop.run_for(2.0)  # the server sees them leave
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
            if stats.errors:
                print("chat client errors:", stats.errors[:10], file=sys.stderr)
            tail = log.read_text()[-1500:]
            if tail.strip():
                print("server log (tail):\n" + tail, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
