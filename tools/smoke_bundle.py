#!/usr/bin/env python3
"""Smoke-test a built bundle: both programs answer --version, the bundled server starts, the bundled
client connects to it offscreen, exchanges a message and exits 0, and the server stops on SIGTERM;
then the same over TLS, with a certificate made by the bundled server's --generate-cert (so Qt's TLS
backend plugin and the cryptography package are in the bundle).

    python tools/smoke_bundle.py dist/qtchat

Prints the bundle's size and the client's cold start-to-acknowledged time (for BENCHMARKS.md).
Exits non-zero on any failure, so a broken bundle cannot land.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def fail(text: str) -> int:
    print(f"smoke: FAILED: {text}", file=sys.stderr)
    return 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(server: Path, port: int, env: dict[str, str], *args: str) -> subprocess.Popen[str] | str:
    """The bundled server on ``port``, once it accepts connections; or a failure text."""
    proc = subprocess.Popen([str(server), "--port", str(port), "--data-dir", tempfile.mkdtemp(prefix="qtchat-smoke-"),
                             *args], stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                return f"the bundled server did not start: {proc.stderr.read()[-1000:] if proc.stderr else ''}"
            time.sleep(0.1)


def tls_smoke(client: Path, server: Path, env: dict[str, str]) -> str | None:
    """--generate-cert, a TLS server, the client's self-test over TLS trusting that fingerprint; None if ok."""
    folder = Path(tempfile.mkdtemp(prefix="qtchat-smoke-tls-"))
    out = subprocess.run([str(server), "--generate-cert", "--cert-out", str(folder / "cert.pem"),
                          "--key-out", str(folder / "key.pem")], capture_output=True, text=True, env=env, timeout=60)
    found = re.search(r"(?:[0-9A-F]{2}:){31}[0-9A-F]{2}", out.stdout)
    if out.returncode != 0 or not found:
        return f"bundled --generate-cert exited {out.returncode}: {out.stdout} {out.stderr[-1000:]}"
    port = free_port()
    proc = start_server(server, port, env, "--tls-cert", str(folder / "cert.pem"), "--tls-key", str(folder / "key.pem"))
    if isinstance(proc, str):
        return proc
    try:
        out = subprocess.run([str(client), "--self-test", "--tls", "--host", "127.0.0.1", "--port", str(port),
                              "--user", "smoke-tls", "--trust-fingerprint", found.group(0)],
                             capture_output=True, text=True, env=env, timeout=60)
        if out.returncode != 0 or "Encrypted (TLS" not in out.stdout:
            return f"bundled client TLS self-test exited {out.returncode}: {out.stdout} {out.stderr[-1500:]}"
        print(f"smoke: {out.stdout.strip()}")
        proc.send_signal(signal.SIGTERM)
        if proc.wait(20) != 0:
            return "the bundled TLS server did not stop cleanly on SIGTERM"
    finally:
        if proc.poll() is None:
            proc.kill()
    return None


def main() -> int:
    bundle = Path(sys.argv[1] if len(sys.argv) > 1 else "dist/qtchat").resolve()
    exe = ".exe" if os.name == "nt" else ""
    client, server = bundle / f"qtchat{exe}", bundle / f"qtchat-server{exe}"
    for program in (client, server):
        if not program.exists():
            return fail(f"{program} is missing")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    for program in (client, server):
        out = subprocess.run([str(program), "--version"], capture_output=True, text=True, env=env, timeout=60)
        if out.returncode != 0 or "0." not in out.stdout:
            return fail(f"{program.name} --version: {out.returncode} {out.stdout!r} {out.stderr[-500:]!r}")
        print(f"smoke: {out.stdout.strip()}")
    port = free_port()
    started = start_server(server, port, env)
    if isinstance(started, str):
        return fail(started)
    proc = started
    try:
        times: list[float] = []
        for _ in range(3):
            start = time.perf_counter()
            out = subprocess.run([str(client), "--self-test", "--host", "127.0.0.1", "--port", str(port),
                                  "--user", f"smoke{len(times)}"], capture_output=True, text=True, env=env, timeout=60)
            times.append(time.perf_counter() - start)
            if out.returncode != 0:
                return fail(f"bundled client self-test exited {out.returncode}: {out.stdout} {out.stderr[-1500:]}")
        print(f"smoke: {out.stdout.strip()}")
        if str(bundle) not in out.stdout:
            return fail("the bundled client did not find its resources inside the bundle")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
        if code != 0:
            return fail(f"the bundled server exited {code} on SIGTERM")
        logged = proc.stderr.read() if proc.stderr else ""
        if "sync agent" in logged:  # the bundle's executable must also run as the server's sync agent
            return fail(f"the bundled server synced on its event loop: {logged[-1000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
    problem = tls_smoke(client, server, env)
    if problem is not None:
        return fail(problem)
    size = sum(f.stat().st_size for f in bundle.rglob("*") if f.is_file() and not f.is_symlink())
    times.sort()
    print(f"smoke: ok; bundle {size / 1e6:.0f} MB in {sum(1 for _ in bundle.rglob('*'))} files; client start to "
          f"acknowledged message (median of 3, first cold): {times[1]:.2f} s, first {times[0]:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
