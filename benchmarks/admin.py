#!/usr/bin/env python3
"""Admin window responsiveness while thousands of clients connect at once.

    xvfb-run -a python benchmarks/admin.py [--clients 5000]     # or offscreen without xvfb-run

The server core and the admin window run in this process, as under ``qtchat-server --admin``; a
separate process connects N clients as fast as it can (each logs in and stays idle). A 2 ms precise
timer measures event-loop stalls from the first connection until the users table shows all N rows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))


def connector(port: int, n: int) -> None:
    import fanout

    fanout.raise_fd_limit()

    async def run() -> None:
        conns = await fanout.connect_all("qtchat", port, n, concurrency=256)
        print("connected", len(conns), flush=True)
        await asyncio.sleep(3600)

    asyncio.run(run())


def main() -> int:
    if sys.argv[1:2] == ["--connector"]:
        connector(int(sys.argv[2]), int(sys.argv[3]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=5000)
    a = ap.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb" if os.environ.get("DISPLAY") else "offscreen")
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from qtchat.server import ChatServer, ServerConfig
    from qtchat.sysutil import raise_open_file_limit
    from qtchat.ui.admin_window import AdminWindow

    raise_open_file_limit(a.clients + 200)
    app = QApplication(sys.argv[:1])
    server = ChatServer(ServerConfig(host="127.0.0.1", port=0, max_clients=a.clients + 100,
                                     max_per_address=0))  # every client comes from 127.0.0.1
    server.listen()
    window = AdminWindow(server, confirm=False)
    window.show()
    inserts = [0]
    window.model.rowsInserted.connect(lambda *args: inserts.__setitem__(0, inserts[0] + 1))
    stalls: list[float] = []
    last = [time.perf_counter()]

    worst = [0.0, 0.0, 0]

    def tick() -> None:
        now = time.perf_counter()
        stall = max(0.0, (now - last[0]) * 1000 - 2)
        stalls.append(stall)
        if stall > worst[0]:
            worst[:] = [stall, now - t0, window.model.rowCount()]
        last[0] = now

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.timeout.connect(tick)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--connector", str(server.port), str(a.clients)])
    done = [0.0]

    rows = [0]

    def check() -> None:
        if window.model.rowCount() >= a.clients and not done[0]:
            done[0] = time.perf_counter() - t0
            QTimer.singleShot(300, finish)

    def finish() -> None:
        timer.stop()  # before quitting: quit() closes the window, which stops the server
        rows[0] = window.model.rowCount()
        app.quit()

    watch = QTimer()
    watch.timeout.connect(check)
    watch.start(50)
    QTimer.singleShot(300_000, app.quit)
    last[0] = time.perf_counter()
    timer.start(2)
    app.exec()
    timer.stop()
    proc.kill()
    proc.wait()
    stalls.sort()

    def q(p: float) -> float:
        return round(stalls[min(len(stalls) - 1, int(p * len(stalls)))], 1) if stalls else 0.0

    print(json.dumps({
        "platform": app.platformName(), "clients": a.clients, "table_rows": rows[0],
        "all_shown_s": round(done[0], 2), "row_insert_batches": inserts[0],
        "worst_stall_at_s": round(worst[1], 2), "rows_at_worst_stall": worst[2],
        "stall_p50_ms": q(0.5), "stall_p99_ms": q(0.99), "stall_max_ms": round(stalls[-1], 1) if stalls else 0.0,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
