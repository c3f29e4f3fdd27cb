#!/usr/bin/env python3
"""Fan-out with the traffic of a real conversation mixed in (issue 16): typing news and reactions beside chat.

Two kinds of run, alternating, each on a fresh ``qtchat-server`` (history on disk, as fanout.py starts it):
- ``plain``: C clients in the lobby, S of them sending M chat messages each as fast as the server takes them;
- ``mixed``: the same, and each sender also sends a typing start every 3 s while it sends (an active sender's
  rate) and a reaction with 5 % of its messages (toggling a 🎉 on one earlier message, so each one changes
  the totals).

Every message must reach every member (its sender's copy is the acknowledgement); a run counts the ``msg``
frames each client receives, so the typing and reactions frames are extra traffic, not counted deliveries.
Printed per run: deliveries/s, the server's CPU per delivery, and how many typing and reactions frames the
members received. The mixed runs' cost is the ratio of the two, in the same invocation.

    python benchmarks/mix.py                      # 40 clients, 8 senders x 2,000, two runs of each
    python benchmarks/mix.py --clients 50 --messages 5000 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fanout

MSG = b'"type":"msg"'
TYPING = b'"type":"typing"'
REACTIONS = b'"type":"reactions"'
PARTY = "\N{PARTY POPPER}"


class Member(asyncio.Protocol):
    def __init__(self, name: str) -> None:
        self.name = name
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.tail = b""
        self.counts = {MSG: 0, TYPING: 0, REACTIONS: 0}
        self.first_id: int | None = None  # the id of the first message it saw (the one reactions go to)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b'{"type":"hello","version":1,"user":"%s"}\n' % self.name.encode())

    def data_received(self, data: bytes) -> None:
        buf = self.tail + data
        if not self.ready.done() and b'"type":"users"' in buf:
            self.ready.set_result(None)
        for pattern in self.counts:  # occurrences that end in this read (those in the tail were counted)
            self.counts[pattern] += buf.count(pattern) - self.tail.count(pattern)
        if self.first_id is None and MSG in buf:
            line = buf[buf.index(MSG) - 1:].split(b"\n", 1)[0]
            with contextlib.suppress(ValueError, KeyError):
                self.first_id = int(json.loads(line)["id"])
        for line in buf.split(b"\n"):
            if line.startswith(b'{"type":"ping"'):
                assert self.transport is not None
                self.transport.write(line.replace(b'"ping"', b'"pong"', 1) + b"\n")
        self.tail = buf[-32:]


def start_server(clients: int) -> fanout.Server:
    """qtchat-server with history on disk, its per-connection limits off (the generator floods on purpose)."""
    port = fanout.free_port()
    log = Path(tempfile.mkstemp(prefix="qtchat-mix-", suffix=".log")[1])
    proc = subprocess.Popen(
        [sys.executable, "-m", "qtchat.server", "--port", str(port), "--log-level", "warning",
         "--max-clients", str(clients + 100), "--max-output", str(64 << 20),
         "--data-dir", tempfile.mkdtemp(prefix="qtchat-mix-data-"), "--rate-messages", "0", "--rate-bytes", "0",
         "--rate-work", "0", "--max-per-address", "0"],
        stderr=log.open("wb"), cwd=fanout.REPO, env={**os.environ, "PYTHONPATH": str(fanout.REPO)})
    fanout.wait_listening(port, proc, log)
    return fanout.Server("qtchat", proc, port, log)


async def run(kind: str, clients: int, senders: int, messages: int, timeout: float) -> dict[str, Any]:
    server = start_server(clients)
    try:
        loop = asyncio.get_running_loop()
        members = []
        for i in range(clients):
            _, member = await loop.create_connection(partial(Member, f"m{i:04d}"), "127.0.0.1", server.port)
            await asyncio.wait_for(member.ready, 30)
            members.append(member)
        await asyncio.sleep(0.5)
        members[0].transport.write(b'{"type":"msg","room":"lobby","text":"warm-up","cid":"w"}\n')  # type: ignore[union-attr]
        while any(m.counts[MSG] < 1 for m in members):
            await asyncio.sleep(0.01)
        target = members[0].first_id
        for m in members:
            m.counts = dict.fromkeys(m.counts, 0)

        async def send(idx: int, m: Member) -> None:
            assert m.transport is not None
            typed = 0.0
            for seq in range(messages):
                now = time.monotonic()
                if kind == "mixed" and now - typed >= 3.0:
                    typed = now
                    m.transport.write(b'{"type":"typing","room":"lobby","on":true}\n')
                m.transport.write(b'{"type":"msg","room":"lobby","text":"s%03d %07d ........................",'
                                  b'"cid":"%d"}\n' % (idx, seq, seq))
                if kind == "mixed" and seq % 20 == 19:  # 5 % of its messages
                    on = "true" if (seq // 20) % 2 == 0 else "false"
                    m.transport.write(f'{{"type":"react","room":"lobby","id":{target},"emoji":"{PARTY}",'
                                      f'"on":{on}}}\n'.encode())
                if seq % 50 == 49:
                    await asyncio.sleep(0)  # let the others write, and the reader read

        want = senders * messages
        t0 = time.perf_counter()
        cpu0 = fanout.cpu_s(server.proc.pid)
        await asyncio.gather(*(send(i, members[i]) for i in range(senders)))
        deadline = time.monotonic() + timeout
        while any(m.counts[MSG] < want for m in members) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - t0
        cpu = fanout.cpu_s(server.proc.pid) - cpu0
        complete = all(m.counts[MSG] >= want for m in members)
        if not complete:
            print("short:", sorted(m.counts[MSG] for m in members)[:3], "of", want, file=sys.stderr)
        deliveries = clients * want
        for m in members:
            if m.transport is not None:
                m.transport.close()
        return {
            "kind": kind, "clients": clients, "senders": senders, "messages": messages, "complete": complete,
            "elapsed_s": round(elapsed, 3), "deliveries": deliveries,
            "deliveries_per_s": round(deliveries / elapsed) if complete else None,
            "server_cpu_s": round(cpu, 2), "server_cpu_ns_per_delivery": round(cpu * 1e9 / deliveries, 1),
            "typing_frames_received": sum(m.counts[TYPING] for m in members),
            "reactions_frames_received": sum(m.counts[REACTIONS] for m in members),
        }
    finally:
        server.proc.terminate()
        server.proc.wait(timeout=10)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=40, help="members of the lobby (typing is relayed up to 50)")
    ap.add_argument("--senders", type=int, default=8)
    ap.add_argument("--messages", type=int, default=2000, help="per sender")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each kind, alternating")
    ap.add_argument("--timeout", type=float, default=120)
    a = ap.parse_args()
    results: dict[str, list[dict[str, Any]]] = {"plain": [], "mixed": []}
    for _ in range(a.repeat):
        for kind in ("plain", "mixed"):
            out = asyncio.run(run(kind, a.clients, a.senders, a.messages, a.timeout))
            print(json.dumps(out), flush=True)
            results[kind].append(out)

    def best(kind: str, key: str) -> float:
        values = [r[key] for r in results[kind] if r[key] is not None]
        return max(values) if key == "deliveries_per_s" else min(values) if values else 0.0

    summary = {
        "summary": "mix",
        "throughput_ratio_mixed_to_plain": round(best("mixed", "deliveries_per_s") / best("plain", "deliveries_per_s"),
                                                 3) if best("plain", "deliveries_per_s") else None,
        "cpu_per_delivery_ratio_mixed_to_plain": round(best("mixed", "server_cpu_ns_per_delivery") /
                                                       best("plain", "server_cpu_ns_per_delivery"), 3),
    }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
