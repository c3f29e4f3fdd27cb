"""Durable commits without waiting on the loop: the server's side of the sync agent (``sync_agent.py``).

``Syncer.sync()`` answers a future once everything committed before the call is on disk. One request
is with the agent at a time; calls made meanwhile share the next one (group commit), so however slow
the disk, the loop only ever waits for the agent's answer through a pipe it watches like a socket.

If the agent cannot be started, or dies, the syncs are done here instead (blocking the loop for as long
as the disk takes, as SQLite's own ``synchronous=FULL`` would), with a warning; a dead agent is started
again, at most RESTARTS times in a run.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from types import ModuleType

from PySide6.QtCore import QObject, QProcess
from shiboken6 import isValid

from . import sync_agent
from .sync_agent import Agent

log = logging.getLogger("qtchat.server")

RESTARTS = 3
START_TIMEOUT_MS = 10_000


def agent_command(agent: ModuleType = sync_agent) -> list[str]:
    """How to start an agent (``sync_agent``, ``search_agent``): the bundle's own executable with the agent's
    flag, or this Python on the module's file (isolated: an agent needs only the standard library)."""
    if getattr(sys, "frozen", False):
        return [sys.executable, str(agent.FLAG)]
    return [sys.executable, "-I", str(Path(str(agent.__file__)).resolve())]


def start_agent(owner: QObject, argv: list[str], on_output: Callable[[], None],
                on_failed: Callable[[QProcess.ProcessError | None], None]) -> QProcess | None:
    """Start an agent process (its errors go to ours), its answers to ``on_output``, its death or an error to
    ``on_failed`` (None when it finished); None (with the reason logged) when it cannot be started."""
    process = QProcess(owner)
    process.setProcessChannelMode(QProcess.ProcessChannelMode.ForwardedErrorChannel)
    process.readyReadStandardOutput.connect(on_output)
    process.errorOccurred.connect(on_failed)
    process.finished.connect(lambda *_: on_failed(None))
    program, *args = argv
    process.start(program, args)
    if not process.waitForStarted(START_TIMEOUT_MS):  # a fork and exec, not the agent's own start-up
        log.warning("cannot start %s: %s", program, process.errorString())
        process.deleteLater()
        return None
    return process


def stop_agent(process: QProcess) -> None:
    """Let an agent go: its input closed, it exits (killed if it does not within 2 s)."""
    process.blockSignals(True)
    process.closeWriteChannel()
    if not process.waitForFinished(2000):
        process.kill()
        process.waitForFinished(1000)


def drop_agent(process: QProcess) -> None:
    """An agent that failed: killed and reaped before it goes (a QProcess destroyed while its process still runs
    leaves it behind; after SIGKILL, which it cannot refuse, the wait is a reap, not a sync or a search)."""
    process.blockSignals(True)
    process.kill()
    process.waitForFinished(200)
    process.deleteLater()


class Syncer(QObject):
    """Syncs the ``-wal`` logs of ``databases`` (SQLite files in WAL mode with synchronous=OFF and no
    automatic checkpoints), by the agent process, or here if it cannot run."""

    def __init__(self, databases: list[Path], parent: QObject | None = None, *,
                 command: list[str] | None = None) -> None:
        super().__init__(parent)
        self.databases = databases
        self._command = command or agent_command()
        self._here = Agent(databases)  # used while there is no agent
        self._process: QProcess | None = None
        self._flight: list[Future[None]] = []  # answered by the request with the agent
        self._waiting: list[Future[None]] = []  # asked meanwhile: the next request
        self._restarts = 0
        self._closing = False
        self.rounds = 0  # syncs done, by the agent or here
        self._start()

    @property
    def agent_pid(self) -> int | None:
        """The agent's process id, while there is one."""
        return None if self._process is None else int(self._process.processId())

    @property
    def by_agent(self) -> bool:
        """True while syncs are done by the agent process, off the loop."""
        return self._process is not None

    def _start(self) -> None:
        self._process = start_agent(self, [*self._command, *(str(db) for db in self.databases)], self._answered,
                                    self._failed)
        if self._process is None:  # (once, at start-up)
            log.warning("cannot start the sync agent: commits are synced on the event loop, which then waits for "
                        "the disk at every commit")

    def sync(self) -> Future[None]:
        """A future answered once everything committed so far is on disk (or with the OSError that stopped it)."""
        future: Future[None] = Future()
        if self._process is None:
            self._sync_here([future])
            return future
        self._waiting.append(future)
        if not self._flight:
            self._ask()
        return future

    def _ask(self) -> None:
        assert self._process is not None
        self._flight, self._waiting = self._waiting, []
        self._process.write(b"sync\n")

    def _answered(self) -> None:
        process = self._process
        if process is None:
            return
        while process.canReadLine():
            line = bytes(process.readLine().data()).decode("utf-8", "replace").strip()
            flight, self._flight = self._flight, []
            self.rounds += 1
            _settle(flight, None if line == "ok" else OSError(line.removeprefix("error ").strip() or "the sync failed"))
        if self._waiting and not self._flight:
            self._ask()

    def _failed(self, error: QProcess.ProcessError | None) -> None:
        process = self._process
        if process is None or self._closing or not isValid(process):  # (destroyed with its owner: nothing to do)
            return
        if error is not None and error not in (QProcess.ProcessError.Crashed, QProcess.ProcessError.ReadError,
                                               QProcess.ProcessError.WriteError):
            return  # a timeout of a wait nobody made, or the like
        self._process = None
        drop_agent(process)
        pending, self._flight, self._waiting = self._flight + self._waiting, [], []
        log.warning("the sync agent stopped (%s): syncing on the event loop%s", process.errorString(),
                    "" if self._restarts >= RESTARTS else "; starting it again")
        self._sync_here(pending)
        if self._restarts < RESTARTS:
            self._restarts += 1
            self._start()

    def _sync_here(self, futures: list[Future[None]]) -> None:
        try:
            self._here.sync()
        except OSError as exc:
            _settle(futures, exc)
        else:
            _settle(futures, None)
        self.rounds += 1

    def close(self) -> None:
        """Sync what is still waiting, then let the agent go (it exits at the end of its input)."""
        self._closing = True
        process, self._process = self._process, None
        pending, self._flight, self._waiting = self._flight + self._waiting, [], []
        if pending:
            self._sync_here(pending)
        if process is not None:
            stop_agent(process)
        self._here.close()


def _settle(futures: list[Future[None]], error: OSError | None) -> None:
    """Answer the syncs waiting on one round: done, or failed with ``error``."""
    for future in futures:
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
