"""Real PostgreSQL and Redis servers for the tests, started here on free ports in temporary folders.

Never the default ports (5432, 6379) and never a service that was already running: each server is
started by the test session in a folder of its own, listens on 127.0.0.1 only, and is stopped at the
end. ``scripts/bootstrap --test`` installs both (Debian's ``postgresql`` and ``redis-server``); apt
does not start them. PostgreSQL refuses to run as root: as root its folders belong to the
``postgres`` user the package made, and its programs run as that user.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin() -> Path:
    """PostgreSQL's programs: Debian keeps them in /usr/lib/postgresql/VERSION/bin (the newest taken)."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    if versions:
        return versions[-1].parent
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    raise RuntimeError("PostgreSQL is not installed: run scripts/bootstrap --test (Debian's postgresql)")


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr or done.stdout}")


def _as_postgres(argv: list[str]) -> list[str]:
    """As root, run PostgreSQL's programs as the ``postgres`` user (it refuses root)."""
    if os.name == "posix" and os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


@dataclass
class Postgres:
    port: int
    folder: Path
    user: str = "qtchat"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL with psql (for test set-up, never on the server's loop)."""
        out = subprocess.run([str(_pg_bin() / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                              "-p", str(self.port), "-U", self.user, "-d", database, "-c", sql],
                             check=True, capture_output=True, text=True, timeout=60)
        return out.stdout

    def new_database(self) -> str:
        """A new empty database; its name."""
        name = f"t{time.monotonic_ns()}"
        self.psql(f"CREATE DATABASE {name}")
        return name


@dataclass
class Redis:
    port: int
    folder: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"


@contextlib.contextmanager
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL server of its own in a new temporary folder, on a free port, trusting local connections.
    (Not under pytest's temporary folder: as root that one is root's alone, and the server runs as postgres.)"""
    bindir = _pg_bin()
    folder = Path(tempfile.mkdtemp(prefix="qtchat-postgresql-"))
    data, sockets = folder / "data", folder / "run"
    sockets.mkdir()
    if os.name == "posix" and os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(sockets, "postgres")
    _run(_as_postgres([str(bindir / "initdb"), "-D", str(data), "-U", "qtchat", "--auth=trust", "-E", "UTF8",
                       "--locale=C.UTF-8"]))
    port = free_port()
    options = (f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 "
               "-c shared_buffers=32MB")
    _run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(folder / "log"), "-o", options,
                       "start"]))
    try:
        yield Postgres(port, folder)
    finally:
        subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def redis(folder: Path) -> Iterator[Redis]:
    """A Redis server of its own in ``folder``, on a free port, keeping nothing on disk."""
    program = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(program).exists():
        raise RuntimeError("Redis is not installed: run scripts/bootstrap --test (Debian's redis-server)")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    pidfile = folder / "redis.pid"
    subprocess.run([program, "--port", str(port), "--bind", "127.0.0.1", "--daemonize", "yes", "--pidfile",
                    str(pidfile), "--save", "", "--appendonly", "no", "--dir", str(folder),
                    "--logfile", str(folder / "log")], check=True, timeout=60)
    deadline = time.monotonic() + 10
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            if s.recv(16).startswith(b"+PONG"):
                break
        if time.monotonic() > deadline:
            raise RuntimeError(f"redis-server did not start: {(folder / 'log').read_text(errors='replace')}")
        time.sleep(0.05)
    try:
        yield Redis(port, folder)
    finally:
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pidfile.read_text()), 15)
