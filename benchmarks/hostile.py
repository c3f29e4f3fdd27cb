"""The client under a hostile or busy server (issue 14): the scenarios of ``benchmarks/client.py --scenario``.

    python benchmarks/client.py --scenario all             # offscreen, or under xvfb-run for xcb
    python benchmarks/client.py --scenario big --repo ../other-checkout   # the qtchat of another tree

- ``big``: another user posts two 1 MB messages (words) into the room the window shows.
- ``wide``: twelve users each post one 64 KB message without spaces per second.
- ``held``: 120 private messages of 64 KB were kept for the (registered) user while offline; they
  arrive at login.
- ``backlog``: 100,000 messages were posted while the client was away; it reconnects and catches up.

Each measures, in the client's process, how late a 2 ms precise timer's ticks run (the UI stall: p50,
p99, max, and the ticks that ran of those due) and the RSS before and after. The server runs without
rate limits (``--max-frame`` 2 MB), so that the client gets what a hostile server would send.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fanout import free_port, rss_kb, wait_listening

SCENARIOS = ("big", "wide", "held", "backlog")
INTERVAL_MS = 2.0


def start_server(repo: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="qtchat-hostile-bench-", suffix=".log")[1])
    proc = subprocess.Popen(
        [sys.executable, "-m", "qtchat.server", "--port", str(port), "--log-level", "warning",
         "--max-output", str(1 << 30), "--max-frame", str(2 << 20), "--mailbox-size", "1000",
         "--data-dir", tempfile.mkdtemp(prefix="qtchat-hostile-bench-"),
         "--rate-messages", "0", "--rate-bytes", "0", "--rate-work", "0", "--max-per-address", "0"],
        stderr=log.open("wb"), cwd=repo, env=dict(os.environ, PYTHONPATH=str(repo)),
    )
    wait_listening(port, proc, log)
    return proc, port


# ----------------------------------------------------------------------------- the sender process


async def _login(port: int, name: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, asyncio.Task[None]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 24)
    writer.write(json.dumps({"type": "hello", "version": 1, "user": name}).encode() + b"\n")
    await writer.drain()

    async def drain_input() -> None:
        while await reader.read(1 << 20):
            pass

    sink = asyncio.create_task(drain_input())
    await asyncio.sleep(0.3)
    return reader, writer, sink


def _frame(text: str, **fields: Any) -> bytes:
    return json.dumps({"type": "msg", "text": text, **fields}, separators=(",", ":")).encode() + b"\n"


async def _big(port: int, seconds: float) -> int:
    _, writer, _ = await _login(port, "paster")
    text = ("lorem ipsum dolor sit amet " * 40_000)[: 1 << 20]
    for _ in range(2):
        writer.write(_frame(text))
        await writer.drain()
    await asyncio.sleep(1.0)
    return 2


async def _wide(port: int, seconds: float) -> int:
    writers = [(await _login(port, f"wide{i}"))[1] for i in range(12)]
    sent = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for i, writer in enumerate(writers):
            writer.write(_frame(chr(ord("a") + i) * 64_000))
            sent += 1
        await asyncio.gather(*(w.drain() for w in writers))
        await asyncio.sleep(max(0.0, start + sent / 12 - time.perf_counter()))
    await asyncio.sleep(1.0)
    return sent


async def _held(port: int, seconds: float) -> int:
    _, writer, _ = await _login(port, "keeper")
    for i in range(120):
        writer.write(_frame(f"{i:03d}" + "q" * 64_000, to="reader", cid=f"h{i}"))
    await writer.drain()
    await asyncio.sleep(2.0)
    return 120


async def _backlog(port: int, seconds: float) -> int:
    _, writer, _ = await _login(port, "chatty")
    for start in range(0, 100_000, 1000):
        writer.write(b"".join(_frame(f"missed message {i} with some ordinary chat-sized text in it")
                              for i in range(start, start + 1000)))
        await writer.drain()
        await asyncio.sleep(0.01)
    await asyncio.sleep(3.0)
    return 100_000


def sender_main(scenario: str, port: int, seconds: float) -> None:
    run = {"big": _big, "wide": _wide, "held": _held, "backlog": _backlog}[scenario]
    print(json.dumps({"sent": asyncio.run(run(port, seconds))}), flush=True)


def spawn_sender(script: str, scenario: str, port: int, seconds: float, repo: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, script, "--hostile-sender", scenario, str(port), str(seconds)],
                            stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(repo)))


# ----------------------------------------------------------------------------- the client under test


def run_scenario(scenario: str, script: str, repo: Path, seconds: float) -> dict[str, object]:
    from PySide6.QtCore import QSettings, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tempfile.mkdtemp())
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    from qtchat.client import ChatClient
    from qtchat.client.settings import ClientSettings
    from qtchat.ui.main_window import MainWindow

    server, port = start_server(repo)
    client = ChatClient()
    window = MainWindow(client, ClientSettings())
    window.resize(1100, 700)
    window.show()

    def pump(until: Any, limit: float) -> None:
        deadline = time.monotonic() + limit
        while not until() and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.001)

    if scenario == "held":  # a registered name, so that the server keeps its private messages
        client.password, client.register_on_login = "a good long password", True
    client.connect_to("127.0.0.1", port, "reader")
    pump(lambda: client.welcome is not None, 15)
    pump(lambda: False, 0.5)  # the window settles its size
    received = [0]
    client.message_received.connect(lambda msg: received.__setitem__(0, received[0] + 1))
    sender = None
    if scenario in ("held", "backlog"):  # away while the server gets them
        if scenario == "backlog":  # a message seen: the reconnect asks for everything after it
            client.send_text("here")
            pump(lambda: not client.pending, 10)
        client.BACKOFF_BASE = 600.0
        socket = client._socket
        assert socket is not None
        socket.abort()
        pump(lambda: False, 0.5)
        sender = spawn_sender(script, scenario, port, seconds, repo)
        pump(lambda: sender is not None and sender.poll() is not None, 600)
    rss0 = rss_kb(os.getpid())
    stalls: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        stalls.append(max(0.0, (now - last[0]) * 1000 - INTERVAL_MS))
        last[0] = now

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.timeout.connect(tick)
    if sender is None:
        sender = spawn_sender(script, scenario, port, seconds, repo)
        time.sleep(0.3)
    else:
        client.reconnect_now()
    t0 = last[0] = time.perf_counter()
    timer.start(int(INTERVAL_MS))
    QTimer.singleShot(int((seconds + 2.0) * 1000), app.quit)
    app.exec()
    wall = time.perf_counter() - t0
    timer.stop()
    out, _ = sender.communicate(timeout=120)
    rss1 = rss_kb(os.getpid())
    stalls.sort()

    def q(p: float) -> float:
        return round(stalls[min(len(stalls) - 1, int(p * len(stalls)))], 2) if stalls else 0.0

    window.conversation.log.flush()
    result: dict[str, object] = {
        "scenario": scenario, "platform": app.platformName(), "qtchat": str(Path(sys.modules["qtchat"].__file__ or "").parent),
        "sent": json.loads(out.strip().splitlines()[-1])["sent"], "received": received[0],
        "view_rows": len(window.conversation.log.lines) + sum(len(c.log.lines) for c in window.workspace.model.items
                                                               if c is not window.conversation),
        "stall_p50_ms": q(0.5), "stall_p99_ms": q(0.99), "stall_max_ms": round(stalls[-1], 2) if stalls else 0.0,
        "ticks": len(stalls), "ticks_due": int(wall * 1000 / INTERVAL_MS),
        "rss_before_mb": round(rss0 / 1024, 1), "rss_after_mb": round(rss1 / 1024, 1),
    }
    client.quit()
    window.close()
    window.deleteLater()
    server.terminate()
    server.wait(10)
    return result
