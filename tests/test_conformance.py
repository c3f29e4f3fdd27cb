"""The conformance suite (qtchat.conformance) against our own server: every check passes. This is how CI runs it.

The server runs on this test's Qt event loop; the suite's blocking sockets run in a thread meanwhile."""

from __future__ import annotations

import subprocess
import sys
import threading

from qtchat.conformance import Result, Suite
from qtchat.conformance.__main__ import main


def run_suite(qtbot, port: int, handshake_timeout: float | None = None) -> list[Result]:
    results: list[Result] = []
    suite = Suite("127.0.0.1", port, timeout=5.0, handshake_timeout=handshake_timeout)
    worker = threading.Thread(target=lambda: results.extend(suite.run()))
    worker.start()
    qtbot.waitUntil(lambda: not worker.is_alive(), timeout=120_000)
    return results


def test_our_server_passes_every_check(make_server, qtbot):
    # the default limits, on (registrations: the suite registers one name, as any user may), and a short
    # handshake timeout, told to the suite, to keep the run short
    server = make_server(rate_messages=10, rate_burst=20, max_per_address=16, rate_bytes=64 * 1024,
                         rate_work=100, handshake_timeout=1.0)
    results = run_suite(qtbot, server.port, handshake_timeout=1.0)
    assert len(results) > 70
    assert [r.line() for r in results if not r.ok or r.skipped] == []
    names = " ".join(r.name for r in results)
    for section in ("rate:", "handshake: an unfinished hello", "accounts:", "search:", "history around:",
                    "typing: a start", "typing: 8 at once"):
        assert section in names


def test_a_failing_server_fails_the_suite_and_the_exit_code_says_so(make_server, qtbot, capsys):
    server = make_server(max_frame=4096)
    results = run_suite(qtbot, server.port)
    assert results and all(r.ok for r in results)  # with a smaller limit too
    # no message rate announced (the tests' servers have it off) and no handshake timeout given: those skipped
    skipped = [r.line() for r in results if r.skipped]
    assert [line.split(":")[0] for line in skipped] == ["SKIP typing", "SKIP rate", "SKIP handshake"]
    assert "welcome.limits" in skipped[0] and "welcome.limits" in skipped[1] and "--handshake-timeout" in skipped[2]
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


def test_the_command_line_prints_skips_and_counts_them(make_server, qtbot, capsys):
    server = make_server(handshake_timeout=0.5)  # no rate limit to check; a short handshake timeout
    code = []
    worker = threading.Thread(target=lambda: code.append(main([f"127.0.0.1:{server.port}", "--handshake-timeout", "0.5"])))
    worker.start()
    qtbot.waitUntil(lambda: not worker.is_alive(), timeout=60_000)
    out = capsys.readouterr().out.splitlines()
    assert code == [0] and out[-1].endswith(" 2 skipped, 0 failed")
    assert [line for line in out if line.startswith("SKIP")] == [
        "SKIP typing: typing_too_fast past the rate: the server announces no message rate (welcome.limits."
        "messages_per_s): its rate limits may be off",
        "SKIP rate: slow_down over the burst: the server announces no message rate (welcome.limits.messages_per_s, "
        "messages_burst)"]
    assert "PASS handshake: an unfinished hello gets handshake_timeout" in out


def test_the_command_line_checks_its_address():
    done = subprocess.run([sys.executable, "-m", "qtchat.conformance", "nonsense"], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 2 and "HOST:PORT" in done.stderr
