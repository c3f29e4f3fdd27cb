"""The quit signals: handled from the event loop, between events, never in the middle of Python code."""

from __future__ import annotations

import os
import signal

import pytest

from qtchat.sysutil import QuitSignals

pytestmark = pytest.mark.skipif(os.name != "posix", reason="sends itself SIGTERM")


@pytest.fixture
def restore_signals():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    signal.set_wakeup_fd(-1)
    for signum, handler in before.items():
        signal.signal(signum, handler)


def test_sigterm_is_handled_at_a_safe_point_of_the_loop(qtbot, restore_signals):
    """Before: ``on_quit`` ran inside whatever Python code the signal interrupted (the flush, iterating over a
    set that shutting down changes: "Set changed size during iteration")."""
    state = {"inside": False}
    calls: list[tuple[int, bool]] = []
    signals = QuitSignals(lambda signum: calls.append((signum, state["inside"])))
    members = {1, 2, 3}
    state["inside"] = True
    for member in members:  # the Python code the signal arrives in
        if member == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        sum(range(10_000))  # bytecodes after the signal: its Python handler has run by now
    assert calls == []
    state["inside"] = False
    qtbot.waitUntil(lambda: calls == [(signal.SIGTERM, False)], timeout=2000)
    os.kill(os.getpid(), signal.SIGINT)  # Ctrl+C: the same way, not KeyboardInterrupt
    qtbot.waitUntil(lambda: len(calls) == 2, timeout=2000)
    assert calls[1] == (signal.SIGINT, False)
    del signals
