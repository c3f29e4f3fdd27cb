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
import signal
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
    fsync: bool = False

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL with psql (for test set-up, never on the server's loop)."""
        out = subprocess.run([str(_pg_bin() / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                              "-p", str(self.port), "-U", self.user, "-d", database, "-c", sql],
                             check=True, capture_output=True, text=True, timeout=60)
        return out.stdout

    def stop(self) -> None:
        """Stop it at once (``-m immediate``: as a crash), for tests of a cluster without it; ``start()`` again."""
        _run(_as_postgres([str(_pg_bin() / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "stop"]))

    def start(self) -> None:
        _run(_as_postgres([str(_pg_bin() / "pg_ctl"), "-D", str(self.folder / "data"), "-w", "-l",
                           str(self.folder / "log"), "-o", _options(self.port, self.folder / "run", self.fsync),
                           "start"]))

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

    def stop(self) -> None:
        """Kill it (SIGKILL: what it held is gone), for tests of a cluster without Redis; ``start()`` again."""
        pid = int((self.folder / "redis.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _answers(self.port) and time.monotonic() < deadline:
            time.sleep(0.02)
        (self.folder / "redis.pid").unlink(missing_ok=True)

    def start(self) -> None:
        _start_redis(self.folder, self.port)


def _options(port: int, sockets: Path, fsync: bool = False) -> str:
    return (f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync={'on' if fsync else 'off'} "
            "-c max_connections=200 -c shared_buffers=32MB")


@contextlib.contextmanager
def postgres(*, fsync: bool = False) -> Iterator[Postgres]:
    """A PostgreSQL server of its own in a new temporary folder, on a free port, trusting local connections;
    without ``fsync`` (the tests) commits do not wait for the disk. (Not under pytest's temporary folder: as root
    that one is root's alone, and the server runs as postgres.)"""
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
    _run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(folder / "log"), "-o",
                       _options(port, sockets, fsync), "start"]))
    try:
        yield Postgres(port, folder, fsync=fsync)
    finally:
        subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as s:
        s.sendall(b"PING\r\n")
        return s.recv(16).startswith(b"+PONG")
    return False


def _start_redis(folder: Path, port: int) -> None:
    program = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(program).exists():
        raise RuntimeError("Redis is not installed: run scripts/bootstrap --test (Debian's redis-server)")
    subprocess.run([program, "--port", str(port), "--bind", "127.0.0.1", "--daemonize", "yes", "--pidfile",
                    str(folder / "redis.pid"), "--save", "", "--appendonly", "no", "--dir", str(folder),
                    "--logfile", str(folder / "log")], check=True, timeout=60)
    deadline = time.monotonic() + 10
    while not _answers(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"redis-server did not start: {(folder / 'log').read_text(errors='replace')}")
        time.sleep(0.05)


@contextlib.contextmanager
def redis(folder: Path) -> Iterator[Redis]:
    """A Redis server of its own in ``folder``, on a free port, keeping nothing on disk."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    _start_redis(folder, port)
    try:
        yield Redis(port, folder)
    finally:
        with contextlib.suppress(OSError, ValueError):
            os.kill(int((folder / "redis.pid").read_text()), 15)
