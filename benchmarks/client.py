#!/usr/bin/env python3
"""Client responsiveness: event-loop stalls while a full view takes a flood, memory, and start-up time.

    python benchmarks/client.py                     # offscreen
    xvfb-run -a python benchmarks/client.py          # a real X window (QT_QPA_PLATFORM=xcb)

1. A qtchat-server process starts; the real MainWindow (ChatClient, Conversation, ChatView) logs in.
2. Its view is filled with 100,000 messages (appended to the model directly).
3. A sender process sends RATE messages/s (default 10,000) for SECONDS (default 10) into the room.
4. A 2 ms precise timer in the client measures event-loop stalls: how much later than due each tick
   ran. Prints p50/p99/max stall, messages received, and the client's RSS before and after.
5. Start-up: the time from launching ``python -m qtchat --host ... --user ...`` to its window shown,
   median of 5 runs.

With ``--scenario big|wide|held|backlog|all`` it runs instead the scenarios of a hostile or busy server
(``benchmarks/hostile.py``), each in a process of its own; ``--repo DIR`` benchmarks the qtchat of
another checkout (its server too).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from fanout import free_port, rss_kb, wait_listening  # noqa: E402


def start_server() -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="qtchat-client-bench-", suffix=".log")[1])
    proc = subprocess.Popen(
        [sys.executable, "-m", "qtchat.server", "--port", str(port), "--log-level", "warning",
         "--max-output", str(256 << 20), "--data-dir", tempfile.mkdtemp(prefix="qtchat-client-bench-"),
         "--rate-messages", "0", "--rate-bytes", "0", "--max-per-address", "0"],  # the sender floods on purpose
        stderr=log.open("wb"), cwd=REPO,
    )
    wait_listening(port, proc, log)
    return proc, port


# ----------------------------------------------------------------------------- sender process


async def send_flood(port: int, rate: int, seconds: float) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
    writer.write(b'{"type":"hello","version":1,"user":"flood"}\n')
    await writer.drain()

    async def drain_input() -> None:
        while await reader.read(1 << 20):
            pass

    sink = asyncio.create_task(drain_input())
    await asyncio.sleep(0.5)
    tick = 0.01
    per_tick = max(1, int(rate * tick))
    start = time.perf_counter()
    seq = 0
    while time.perf_counter() - start < seconds:
        batch = b"".join(
            b'{"type":"msg","text":"flood message %d with some ordinary chat-sized text in it, about 90 bytes"}\n' % (
                seq + i) for i in range(per_tick))
        seq += per_tick
        writer.write(batch)
        await writer.drain()
        delay = start + (seq / per_tick) * tick - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
    await asyncio.sleep(1.0)
    sink.cancel()
    writer.close()
    print(json.dumps({"sent": seq}), flush=True)


# ----------------------------------------------------------------------------- the client under test


def run_client(port: int, prefill: int, rate: int, seconds: float) -> dict[str, object]:
    from PySide6.QtCore import QSettings, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tempfile.mkdtemp())
    app = QApplication(sys.argv[:1])
    app.setOrganizationName("qtchat-bench")
    from qtchat.client import ChatClient, ChatLine
    from qtchat.client.settings import ClientSettings
    from qtchat.ui.main_window import MainWindow

    client = ChatClient()
    window = MainWindow(client, ClientSettings())
    window.resize(1100, 700)
    window.show()
    client.connect_to("127.0.0.1", port, "reader")
    deadline = time.monotonic() + 10
    while (client.welcome is None or time.monotonic() < deadline - 9.5) and time.monotonic() < deadline:
        app.processEvents()  # logged in, and the window had half a second to settle its size
    rss0 = rss_kb(os.getpid())
    t0 = time.perf_counter()
    log = window.conversation.log
    now = int(time.time() * 1000)
    for i in range(prefill):
        text = f"history message {i}: " + ("a longer line that wraps in the view " * (3 if i % 10 == 0 else 0))
        log.append(ChatLine("msg", text, now, sender=f"user{i % 50}", id=i))
    log.flush()
    app.processEvents()
    prefill_s = time.perf_counter() - t0
    rss1 = rss_kb(os.getpid())

    received = [0]
    client.message_received.connect(lambda msg: received.__setitem__(0, received[0] + 1))
    stalls: list[float] = []
    interval = 2.0
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        stalls.append(max(0.0, (now - last[0]) * 1000 - interval))
        last[0] = now

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.timeout.connect(tick)
    sender = subprocess.Popen([sys.executable, __file__, "--sender", str(port), str(rate), str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)
    last[0] = time.perf_counter()
    timer.start(int(interval))
    QTimer.singleShot(int((seconds + 2.0) * 1000), app.quit)
    app.exec()
    timer.stop()
    out, _ = sender.communicate(timeout=30)
    rss2 = rss_kb(os.getpid())
    stalls.sort()

    def q(p: float) -> float:
        return round(stalls[min(len(stalls) - 1, int(p * len(stalls)))], 2) if stalls else 0.0

    result = {
        "platform": app.platformName(), "prefill": prefill, "prefill_s": round(prefill_s, 2),
        "rate": rate, "seconds": seconds, "sent": json.loads(out.strip().splitlines()[-1])["sent"],
        "received": received[0], "view_rows": len(log.lines),
        "stall_p50_ms": q(0.5), "stall_p99_ms": q(0.99), "stall_max_ms": round(stalls[-1], 2) if stalls else 0.0,
        "ticks": len(stalls), "rss_connected_mb": round(rss0 / 1024, 1),
        "rss_after_prefill_mb": round(rss1 / 1024, 1), "rss_after_flood_mb": round(rss2 / 1024, 1),
    }
    client.quit()
    window.close()
    return result


def startup(port: int, runs: int) -> dict[str, object]:
    """Launch the real ``qtchat`` program and time it until its main window is shown."""
    child = (
        "import sys, time, runpy\n"
        "from PySide6.QtCore import QTimer\n"
        "from PySide6.QtWidgets import QApplication\n"
        "import qtchat.ui.main_window as mw\n"
        "orig = mw.MainWindow.showEvent\n"
        "def shown(self, e):\n"
        "    orig(self, e)\n"
        "    print('shown', flush=True)\n"
        "    QTimer.singleShot(0, QApplication.quit)\n"
        "mw.MainWindow.showEvent = shown\n"
        "from qtchat.ui.app import main\n"
        f"sys.exit(main(['--host', '127.0.0.1', '--port', '{port}', '--user', 'startup']))\n"
    )
    times = []
    env = dict(os.environ, XDG_CONFIG_HOME=tempfile.mkdtemp())
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True, env=env)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        elapsed = time.perf_counter() - t0
        proc.wait(20)
        if line.strip() == "shown":
            times.append(elapsed)
    times.sort()
    return {"startup_runs": len(times), "startup_median_s": round(times[len(times) // 2], 3) if times else None,
            "startup_min_s": round(times[0], 3) if times else None}


def scenarios(names: list[str], repo: Path, seconds: float) -> None:
    """Each scenario in a process of its own (its RSS its own), with ``repo``'s qtchat first on the path."""
    for name in names:
        out = subprocess.run([sys.executable, __file__, "--hostile-client", name, str(repo), str(seconds)],
                             stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(repo)),
                             check=True, timeout=1200).stdout
        print(out.strip().splitlines()[-1], flush=True)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--sender":
        asyncio.run(send_flood(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] in ("--hostile-sender", "--hostile-client"):
        import hostile

        if sys.argv[1] == "--hostile-sender":
            hostile.sender_main(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
        else:
            sys.path.insert(0, sys.argv[3])
            os.environ.setdefault("QT_QPA_PLATFORM", "xcb" if os.environ.get("DISPLAY") else "offscreen")
            print(json.dumps(hostile.run_scenario(sys.argv[2], __file__, Path(sys.argv[3]), float(sys.argv[4]))))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prefill", type=int, default=100_000)
    ap.add_argument("--rate", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--startup-runs", type=int, default=5)
    ap.add_argument("--scenario", choices=("big", "wide", "held", "backlog", "all"),
                    help="a hostile or busy server instead (benchmarks/hostile.py); --seconds 10 each")
    ap.add_argument("--repo", type=Path, default=REPO, help="the checkout whose qtchat is measured")
    a = ap.parse_args()
    if a.scenario:
        scenarios(["big", "wide", "held", "backlog"] if a.scenario == "all" else [a.scenario], a.repo.resolve(),
                  a.seconds)
        return 0
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb" if os.environ.get("DISPLAY") else "offscreen")
    server, port = start_server()
    try:
        print(json.dumps(run_client(port, a.prefill, a.rate, a.seconds)), flush=True)
        print(json.dumps(startup(port, a.startup_runs)), flush=True)
    finally:
        server.terminate()
        server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
