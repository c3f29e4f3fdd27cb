#!/usr/bin/env python3
"""The bad-input campaign, long form: fuzz offline, then attack a real qtchat-server on 127.0.0.1.

    python tools/badinput.py                  # about 2-3 minutes on 2 cores
    python tools/badinput.py --cases 20000 --garbage-seconds 5 --cycles 1000   # a quick look

1. Offline: seeded random fuzz cases (the generators of tests/helpers.py and tests/protocol/test_fuzz.py's
   kinds: garbage frames, mutated valid frames, random bytes, in random chunks) fed to FrameDecoder and
   to a server-side Connection before and after the handshake. Counts anything but ProtocolError that
   escapes (must be 0) and the most bytes a decoder held (must be at most max_frame + 1).
2. Garbage while chatting (limits at their defaults): many clients send malformed frames, reconnecting
   when dropped, while two chatters exchange messages at 8/s each. Reports messages lost (must be 0).
3. Slowloris and half-open peers (small timeouts and output cap): hellos sent a byte at a time,
   clients that log in and stop reading, clients that go silent. Reports how each was dropped.
4. Churn: connect/disconnect cycles (a third log in, half reset the connection); the server's RSS and
   open files (from /proc) and its connection count (from its admin channel) before and after.

Only ever talks to 127.0.0.1; every server it starts gets a temporary --data-dir and is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from qtchat.protocol import (  # noqa: E402
    NEED_DATA,
    PEER_CLOSED,
    Connection,
    FrameDecoder,
    ProtocolError,
    Role,
    State,
    Welcome,
)
from tests.helpers import garbage_frame  # noqa: E402

VALID: list[dict[str, Any]] = [
    {"type": "hello", "version": 1, "user": "alice"}, {"type": "msg", "room": "lobby", "text": "hi", "cid": "c"},
    {"type": "msg", "to": "bob", "text": "psst"}, {"type": "users", "room": "lobby"}, {"type": "rooms"},
    {"type": "history", "room": "lobby", "after": 5, "limit": 50}, {"type": "join", "room": "Dev"},
    {"type": "part", "room": "Dev"}, {"type": "topic", "room": "Dev", "topic": "t"}, {"type": "ping", "token": "k"},
    {"type": "pong"}, {"type": "bye", "reason": "r"},
]
ODD_VALUES: list[Any] = [None, True, 0, -1, 2**63, 10**30, 1.5, "", "\ud800", "\x00", "a" * 300, [], {}, [1, [2]],
                         {"a": {"b": None}}, "ADMIN", "\u202e", "#x", "\uff21"]


def mutated(rng: random.Random) -> bytes:
    frame = dict(rng.choice(VALID))
    for _ in range(rng.randrange(4)):
        key = rng.choice([*frame, "type", "text", "user", "room", "cid", "limit", "before", "version"])
        if key in frame and rng.random() < 0.3:
            del frame[key]
        else:
            frame[key] = rng.choice(ODD_VALUES)
    data = json.dumps(frame, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
    if rng.random() < 0.2 and data:
        pos = rng.randrange(len(data))
        data = data[:pos] + bytes([rng.randrange(256)]) + data[pos + 1 :]
    return data + b"\n"


def fuzz_case(rng: random.Random, max_frame: int) -> bytes:
    parts = []
    for _ in range(rng.randrange(1, 8)):
        r = rng.random()
        if r < 0.45:
            parts.append(mutated(rng))
        elif r < 0.85:
            parts.append(garbage_frame(rng, max_frame)[1])
        else:
            parts.append(bytes(rng.randrange(256) for _ in range(rng.randrange(64))))
    return b"".join(parts)


def chunks(rng: random.Random, data: bytes) -> list[bytes]:
    cuts = sorted(rng.randrange(len(data) + 1) for _ in range(rng.randrange(6)))
    out, start = [], 0
    for cut in [*cuts, len(data)]:
        out.append(data[start:cut])
        start = cut
    return out


def offline(cases: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    max_frame = 1024
    outcomes: Counter[str] = Counter()
    escaped: list[str] = []
    held = 0
    t0 = time.perf_counter()
    for case in range(cases):
        data = fuzz_case(rng, max_frame)
        target = case % 3  # decoder, server before the handshake, server after it
        try:
            if target == 0:
                dec = FrameDecoder(max_frame)
                for part in chunks(rng, data):
                    dec.feed(part)
                    held = max(held, dec.buffered)
                    with contextlib.suppress(ProtocolError):
                        while dec.next_frame() is not None:
                            outcomes["frame"] += 1
                continue
            conn = Connection(Role.SERVER, max_frame=max_frame)
            if target == 2:
                conn.receive_data(b'{"type":"hello","version":1,"user":"fuzz"}\n')
                conn.next_event()
                conn.send(Welcome(user="fuzz"))
            for part in chunks(rng, data):
                conn.receive_data(part)
                held = max(held, conn.buffered)
                while True:
                    before = conn.state
                    try:
                        event = conn.next_event()
                    except ProtocolError as exc:
                        outcomes[exc.code.value] += 1
                        if before is State.HANDSHAKE and not exc.fatal:
                            escaped.append("non-fatal error before the handshake")
                        if exc.fatal:
                            break
                        continue
                    if event is NEED_DATA or event is PEER_CLOSED:
                        break
                    outcomes[type(event).__name__] += 1
                if conn.state is State.CLOSED:
                    break
        except Exception as exc:  # anything but ProtocolError is a bug
            escaped.append(f"{type(exc).__name__}: {exc}"[:200])
    elapsed = time.perf_counter() - t0
    return {"phase": "offline fuzz", "cases": cases, "escaped": len(escaped), "escaped_examples": escaped[:5],
            "max_held_bytes": held, "max_frame": max_frame, "seconds": round(elapsed, 1),
            "outcomes": dict(outcomes.most_common())}


# ----------------------------------------------------------------------------- live server


class Server:
    def __init__(self, *flags: str) -> None:
        self.data_dir = tempfile.mkdtemp(prefix="qtchat-badinput-")
        self.log = Path(self.data_dir) / "server.log"  # a file, not a pipe nobody reads
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "qtchat.server", "--port", "0", "--data-dir", self.data_dir,
             "--log-level", "warning", *flags],
            stderr=self.log.open("w"), cwd=REPO, env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        # the listening line is logged at info; find the port from /proc instead of the log
        self.port = 0
        deadline = time.monotonic() + 15
        while not self.port and time.monotonic() < deadline:
            self.port = self._listening_port()
            time.sleep(0.05)
        if not self.port:
            raise SystemExit("the server did not start")

    def _listening_port(self) -> int:
        inodes = set()
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{self.proc.pid}/fd"):
                link = os.readlink(f"/proc/{self.proc.pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes and f[1].startswith("0100007F"):
                return int(f[1].split(":")[1], 16)
        return 0

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def connections(self) -> int:
        out = subprocess.run([sys.executable, "-m", "qtchat.server", "admin", "--port", str(self.port), "status"],
                             capture_output=True, text=True, timeout=30, cwd=REPO).stdout
        match = re.search(r"(\d+) connections", out)
        return int(match.group(1)) if match else -1

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def read_lines(reader: asyncio.StreamReader, sink: list[dict[str, Any]]) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError, ValueError, asyncio.LimitOverrunError):
        while line := await reader.readline():
            with contextlib.suppress(ValueError):
                sink.append(json.loads(line))


async def login(port: int, name: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, list[dict[str, Any]]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
    writer.write(json.dumps({"type": "hello", "version": 1, "user": name}).encode() + b"\n")
    frames: list[dict[str, Any]] = []
    while not any(f.get("type") == "welcome" for f in frames):
        line = await reader.readline()
        if not line:
            raise ConnectionError(f"{name}: refused: {frames[-1:]}")
        frames.append(json.loads(line))
    return reader, writer, frames


async def garbage_phase(seconds: float, bad_clients: int, seed: int) -> dict[str, Any]:
    server = Server("--max-per-address", "0")
    try:
        return await _garbage(server, seconds, bad_clients, seed)
    finally:
        server.stop()


async def _garbage(server: Server, seconds: float, bad_clients: int, seed: int) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    stats: Counter[str] = Counter()
    codes: Counter[str] = Counter()

    async def bad(slot: int) -> None:
        rng = random.Random(seed * 1000 + slot)
        while time.monotonic() < deadline:
            stats["connections"] += 1
            frames: list[dict[str, Any]] = []
            try:
                if slot % 4:
                    reader, writer, frames = await login(server.port, f"bad{slot}-{stats['connections']}")
                else:  # a stranger: garbage before any hello
                    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                task = asyncio.ensure_future(read_lines(reader, frames))
                while time.monotonic() < deadline and not task.done():
                    kind, frame = garbage_frame(rng, 65536)
                    writer.write(frame)
                    stats["frames"] += 1
                    stats[f"kind:{kind}"] += 1
                    await writer.drain()
                    await asyncio.sleep(rng.random() * 0.004)
                if task.done():
                    stats["dropped by the server"] += 1
                writer.close()
                await asyncio.wait_for(task, 5)
            except (TimeoutError, OSError) as exc:
                stats[f"client error {type(exc).__name__}"] += 1
            for f in frames:
                if f.get("type") == "error":
                    codes[f"{f.get('code')}{' (fatal)' if f.get('fatal') else ''}"] += 1

    async def chatter(me: str, other: str, out: dict[str, Any]) -> None:
        reader, writer, frames = await login(server.port, me)
        task = asyncio.ensure_future(read_lines(reader, frames))
        sent = 0
        while time.monotonic() < deadline:
            writer.write(json.dumps({"type": "msg", "room": "lobby", "text": f"{me} {sent}", "cid": str(sent)})
                         .encode() + b"\n")
            sent += 1
            await asyncio.sleep(0.125)  # 8 per second: under the default limit of 10
        out["sent"] = sent
        out["frames"] = frames
        out["writer"], out["task"] = writer, task

    a: dict[str, Any] = {}
    b: dict[str, Any] = {}
    await asyncio.gather(chatter("alice", "bob", a), chatter("bob", "alice", b),
                         *(bad(i) for i in range(bad_clients)))
    def missing(me: dict[str, Any], other: dict[str, Any]) -> list[str]:
        got = {f["text"] for f in me["frames"] if f.get("type") == "msg"}
        sender = other["frames"][0]["user"]
        return [f"{sender} {i}" for i in range(other["sent"]) if f"{sender} {i}" not in got]

    settle = time.monotonic() + 15  # the last messages arrive (a loaded server may lag behind)
    while (missing(a, b) or missing(b, a)) and time.monotonic() < settle:
        await asyncio.sleep(0.2)
    lost = 0
    errors_to_chatters = 0
    missing_texts = missing(a, b) + missing(b, a)
    for me, other in ((a, b), (b, a)):
        lost += len(missing(me, other))
        errors_to_chatters += sum(1 for f in me["frames"] if f.get("type") == "error")
        me["writer"].close()
        me["task"].cancel()
    await asyncio.sleep(1)
    return {"phase": "garbage while two chat", "seconds": seconds, "bad_clients": bad_clients,
            "garbage_frames": stats["frames"], "bad_connections": stats["connections"],
            "dropped_by_server": stats["dropped by the server"],
            "chat_messages_sent": a["sent"] + b["sent"], "messages_lost": lost, "missing": missing_texts[:10],
            "errors_to_chatters": errors_to_chatters, "connections_left": server.connections(),
            "error_codes": dict(codes.most_common()),
            "kinds": {k[5:]: v for k, v in stats.items() if k.startswith("kind:")}}


async def timeouts_phase(lorises: int, stalled: int, silent: int) -> dict[str, Any]:
    server = Server("--max-per-address", "0", "--handshake-timeout", "3", "--ping-interval", "2",
                    "--ping-timeout", "2", "--max-output", "262144", "--rate-messages", "0", "--rate-bytes", "0")
    try:
        return await _timeouts(server, lorises, stalled, silent)
    finally:
        server.stop()


async def _timeouts(server: Server, lorises: int, stalled: int, silent: int) -> dict[str, Any]:
    t0 = time.monotonic()
    hello = b'{"type":"hello","version":1,"user":"slowpoke"}\n'
    loris_result: Counter[str] = Counter()

    async def loris(i: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        frames: list[dict[str, Any]] = []
        task = asyncio.ensure_future(read_lines(reader, frames))
        try:
            for byte in hello:
                if task.done():
                    break
                writer.write(bytes([byte]))
                await asyncio.sleep(0.25)  # the hello would take 12 s; the timeout is 3 s
        except OSError:
            pass
        await asyncio.wait_for(task, 10)
        codes = [f.get("code") for f in frames if f.get("type") == "error"]
        loris_result[str(codes[-1]) if codes else "closed without an error frame"] += 1
        loris_result["dropped after s (max)"] = max(loris_result["dropped after s (max)"],
                                                    round(time.monotonic() - t0))

    socks = []
    for i in range(stalled):  # log in, then never read again
        s = socket.create_connection(("127.0.0.1", server.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b'{"type":"hello","version":1,"user":"stalled%d"}\n' % i)
        socks.append(s)
    for i in range(silent):  # log in and read, but never answer (a peer that vanished)
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(b'{"type":"hello","version":1,"user":"silent%d"}\n' % i)
        socks.append(s)
    reader, writer, frames = await login(server.port, "sender")
    watch = asyncio.ensure_future(read_lines(reader, frames))
    loris_tasks = [asyncio.ensure_future(loris(i)) for i in range(lorises)]
    sent = 0
    text = "w" * 30000
    while time.monotonic() - t0 < 12:
        left = [f for f in frames if f.get("type") == "left"]
        if len(left) >= stalled + silent:
            break
        writer.write(json.dumps({"type": "msg", "text": text, "cid": str(sent)}).encode() + b"\n")
        sent += 1
        for f in frames:
            if f.get("type") == "ping" and not f.get("_answered"):
                f["_answered"] = True
                writer.write(json.dumps({"type": "pong", "token": f.get("token", "")}).encode() + b"\n")
        await writer.drain()
        await asyncio.sleep(0.02)
        for s in socks[stalled:]:  # the silent ones read what comes, so only the ping timeout can drop them
            with contextlib.suppress(BlockingIOError, OSError):
                s.setblocking(False)
                while s.recv(1 << 20):
                    pass
    await asyncio.gather(*loris_tasks)
    reasons: Counter[str] = Counter()
    for f in frames:
        if f.get("type") == "left":
            reasons[f"{'stalled' if f['user'].startswith('stalled') else 'silent'}: {f.get('reason')}"] += 1
    writer.close()
    watch.cancel()
    for s in socks:
        s.close()
    await asyncio.sleep(1)
    return {"phase": "slowloris and half-open", "slowloris": lorises, "slowloris_outcome": dict(loris_result),
            "stalled_readers": stalled, "silent_peers": silent, "dropped": dict(reasons),
            "seconds": round(time.monotonic() - t0, 1), "connections_left": server.connections()}


async def churn_phase(cycles: int, concurrency: int) -> dict[str, Any]:
    server = Server("--max-per-address", "0")
    try:
        return await _churn(server, cycles, concurrency)
    finally:
        server.stop()


async def _churn(server: Server, cycles: int, concurrency: int) -> dict[str, Any]:
    sem = asyncio.Semaphore(concurrency)
    failures: Counter[str] = Counter()

    async def cycle(i: int) -> None:
        async with sem:
            try:
                if i % 3 == 0:
                    _, writer, _ = await login(server.port, f"churn{i}")
                else:
                    _, writer = await asyncio.open_connection("127.0.0.1", server.port)
                    if i % 3 == 1:
                        writer.write(b'{"type":"hel')
                sock = writer.get_extra_info("socket")
                if i % 2 and sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.close()
            except (OSError, ValueError) as exc:
                failures[f"{type(exc).__name__}: {exc}"[:120]] += 1

    await asyncio.gather(*(cycle(i) for i in range(200)))  # warm up
    await asyncio.sleep(2)
    before = {"rss_kb": server.rss_kb(), "fds": server.fds(), "connections": server.connections()}
    t0 = time.perf_counter()
    await asyncio.gather(*(cycle(i) for i in range(cycles)))
    elapsed = time.perf_counter() - t0
    await asyncio.sleep(3)
    after = {"rss_kb": server.rss_kb(), "fds": server.fds(), "connections": server.connections()}
    return {"phase": "connect/disconnect churn", "cycles": cycles, "seconds": round(elapsed, 1),
            "before": before, "after": after, "client_failures": dict(failures)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=100_000, help="offline fuzz cases (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--garbage-seconds", type=float, default=20)
    ap.add_argument("--bad-clients", type=int, default=40)
    ap.add_argument("--slowloris", type=int, default=50)
    ap.add_argument("--stalled", type=int, default=10)
    ap.add_argument("--silent", type=int, default=10)
    ap.add_argument("--cycles", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=50)
    a = ap.parse_args()
    if not Path("/proc/net/tcp").exists():
        raise SystemExit("needs Linux (/proc)")
    t0 = time.perf_counter()
    results = [offline(a.cases, a.seed)]
    print(json.dumps(results[-1]), flush=True)
    for coro in (garbage_phase(a.garbage_seconds, a.bad_clients, a.seed),
                 timeouts_phase(a.slowloris, a.stalled, a.silent), churn_phase(a.cycles, a.concurrency)):
        results.append(asyncio.run(coro))
        print(json.dumps(results[-1]), flush=True)
    ok = (results[0]["escaped"] == 0 and results[0]["max_held_bytes"] <= results[0]["max_frame"] + 1
          and results[1]["messages_lost"] == 0 and results[1]["connections_left"] == 0
          and results[2]["connections_left"] == 0 and results[3]["after"]["connections"] == 0)
    print(json.dumps({"summary": "ok" if ok else "FAILED", "total_seconds": round(time.perf_counter() - t0, 1)}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
