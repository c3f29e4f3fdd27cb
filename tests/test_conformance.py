"""The conformance suite (qtchat.conformance) against our own server: every check passes. This is how CI runs it.

The server runs on this test's Qt event loop; the suite's blocking sockets run in a thread meanwhile."""

from __future__ import annotations

import subprocess
import sys
import threading

from qtchat.conformance import Result, Suite
from qtchat.conformance.__main__ import main


def run_suite(qtbot, port: int) -> list[Result]:
    results: list[Result] = []
    worker = threading.Thread(target=lambda: results.extend(Suite("127.0.0.1", port, timeout=5.0).run()))
    worker.start()
    qtbot.waitUntil(lambda: not worker.is_alive(), timeout=120_000)
    return results


def test_our_server_passes_every_check(make_server, qtbot):
    server = make_server(rate_messages=10, rate_burst=20, max_per_address=16)  # the default limits, on
    results = run_suite(qtbot, server.port)
    assert len(results) > 40
    assert [r.line() for r in results if not r.ok] == []


def test_a_failing_server_fails_the_suite_and_the_exit_code_says_so(make_server, qtbot, capsys):
    server = make_server(max_frame=4096)
    results = run_suite(qtbot, server.port)
    assert results and all(r.ok for r in results)  # with a smaller limit too
    # nothing listening: a failure, exit code 1, and the summary line
    port = server.port
    server.shutdown("gone")
    qtbot.waitUntil(lambda: not server.peers, timeout=5000)
    code = []
    worker = threading.Thread(target=lambda: code.append(main([f"127.0.0.1:{port}", "--timeout", "1"])))
    worker.start()
    qtbot.waitUntil(lambda: not worker.is_alive(), timeout=60_000)
    out = capsys.readouterr().out.splitlines()
    assert code == [1] and out[-1].endswith("failed") and not out[-1].endswith(" 0 failed")
    assert any(line.startswith("FAIL") for line in out)


def test_the_command_line_checks_its_address():
    done = subprocess.run([sys.executable, "-m", "qtchat.conformance", "nonsense"], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 2 and "HOST:PORT" in done.stderr
