"""Regression guard: PySide6-Essentials 6.12.0 on CPython 3.11 aborts after a few hundred Signal.emit() calls.

pyproject.toml excludes that release on Python < 3.12. This emits 100,000 signals
from Python in a subprocess (an abort inside pytest's own process would be hidden).
"""

from __future__ import annotations

import os
import subprocess
import sys

CODE = """
from PySide6.QtCore import QCoreApplication, QObject, Signal

class Emitter(QObject):
    plain = Signal()
    flagged = Signal(bool)
    payload = Signal(object)

app = QCoreApplication([])
e = Emitter()
seen = [0]
e.payload.connect(lambda obj: seen.__setitem__(0, seen[0] + 1))
for i in range(100_000):
    e.plain.emit()
    e.flagged.emit(i % 2 == 0)
    e.payload.emit(i)
assert seen[0] == 100_000, seen
print("ok")
"""


def test_100k_signal_emits_from_python_do_not_abort():
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "ok"
