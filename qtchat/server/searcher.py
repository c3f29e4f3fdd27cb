"""Searches without holding the loop: the server's side of the search agent (``search_agent.py``).

``Searcher.search()`` sends a query to the agent process and answers a future with its page once the
agent has run it; the loop only reads the answer from a pipe it watches like a socket. The agent is
started at the first search. Searches are answered in the order asked; at most MAX_WAITING wait at a
time (the next one is refused as too costly: the server is busy searching), and each is stopped by the
agent past AGENT_BUDGET_S.

If the agent cannot be started, or dies, the searches waiting for it and those that follow are run by
``fallback`` (on the loop, with the loop's short budget), with a warning; a dead agent is started again
at the next search, at most RESTARTS times in a run.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QProcess
from shiboken6 import isValid

from . import search_agent
from .backend import Page, StoredMessage, then
from .store import SearchTooCostly
from .syncer import agent_command, drop_agent, start_agent, stop_agent

log = logging.getLogger("qtchat.server")

RESTARTS = 3
AGENT_BUDGET_S = 0.5  # a search running longer in the agent is stopped: only its searcher waited for it
MAX_WAITING = 64  # searches waiting for the agent at most; more are refused until it catches up
MAX_BYTES = 1 << 20  # at most about this much text in one answer (the results frame is smaller still)

Fallback = Callable[[str, list[str], "int | None", int], Future[Page]]


class Searcher(QObject):
    """Runs searches of ``database`` (messages.db) in the agent process; ``fallback`` runs one on the loop."""

    def __init__(self, database: Path, fallback: Fallback, parent: QObject | None = None, *,
                 command: list[str] | None = None) -> None:
        super().__init__(parent)
        self.database = database
        self._fallback = fallback
        self._command = command or agent_command(search_agent)
        self._process: QProcess | None = None
        self._asked: deque[tuple[Future[Page], tuple[str, list[str], int | None, int]]] = deque()
        self._restarts = 0
        self._given_up = False
        self.answered = 0  # searches the agent answered

    @property
    def agent_pid(self) -> int | None:
        return None if self._process is None else int(self._process.processId())

    def search(self, query: str, rooms: list[str], *, before: int | None, limit: int,
               upto: int | None) -> Future[Page]:
        """The page of a search (store.search's), run by the agent; ``upto``: the index's last id (None: none)."""
        if self._process is None and not self._given_up:
            self._start()
        if self._process is None:
            return self._fallback(query, rooms, before, limit)
        future: Future[Page] = Future()
        if len(self._asked) >= MAX_WAITING:
            future.set_exception(SearchTooCostly(AGENT_BUDGET_S, "the server is busy with other searches"))
            return future
        request = {"query": query, "rooms": rooms, "before": before, "limit": limit, "upto": upto,
                   "budget": AGENT_BUDGET_S, "max_bytes": MAX_BYTES}
        self._asked.append((future, (query, rooms, before, limit)))
        self._process.write(json.dumps(request, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n")
        return future

    def _start(self) -> None:
        self._process = start_agent(self, [*self._command, str(self.database)], self._answered, self._failed)
        if self._process is None:  # (once)
            log.warning("cannot start the search agent: searches run on the event loop, with a short time budget")
            self._given_up = True

    def _answered(self) -> None:
        process = self._process
        while process is not None and process.canReadLine() and self._asked:
            line = bytes(process.readLine().data())
            future, _ = self._asked.popleft()
            self.answered += 1
            try:
                future.set_result(_page(json.loads(line)))
            except (SearchTooCostly, OSError, ValueError, TypeError, KeyError, IndexError) as exc:
                future.set_exception(exc)

    def _failed(self, error: QProcess.ProcessError | None) -> None:
        process = self._process
        if process is None or not isValid(process):  # (destroyed with its owner: nothing to do)
            return
        if error is not None and error not in (QProcess.ProcessError.Crashed, QProcess.ProcessError.ReadError,
                                               QProcess.ProcessError.WriteError):
            return
        self._process = None
        drop_agent(process)
        self._given_up = self._restarts >= RESTARTS
        self._restarts += 1
        log.warning("the search agent stopped (%s): %s", process.errorString(),
                    "searching on the event loop from now on" if self._given_up else "starting it again")
        pending, self._asked = list(self._asked), deque()
        for future, (query, rooms, before, limit) in pending:  # answered here, so that nobody waits forever
            then(self._fallback(query, rooms, before, limit), future.set_result, future.set_exception)

    def close(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            stop_agent(process)
        for future, _ in self._asked:
            future.set_exception(OSError("the server is shutting down"))
        self._asked.clear()


def _page(reply: Any) -> Page:
    """An agent's answer as a Page; SearchTooCostly or OSError for its errors."""
    if not isinstance(reply, dict):
        raise ValueError("the search agent's answer is not an object")
    error = reply.get("error")
    if error == "too_costly":
        raise SearchTooCostly(AGENT_BUDGET_S)
    if error is not None:
        raise OSError(f"search: {error}")
    rows = [StoredMessage(int(r[0]), str(r[1]), int(r[2]), str(r[3]), str(r[4]), None if r[5] is None else str(r[5]),
                          int(r[6] or 0)) for r in reply["rows"]]
    return Page(rows, bool(reply["more"]))
