"""A PostgreSQL connection driven by the Qt event loop: no threads, no blocking call.

``PgLink`` speaks to PostgreSQL through libpq's non-blocking API (psycopg 3's ``psycopg.pq``),
watching the connection's socket with two ``QSocketNotifier``s, so the event loop never waits
for the database. Every call answers with a ``concurrent.futures.Future`` resolved on the loop's
thread (backend.py's contract, point 1).

How it works:

- **Connecting** (``open()``, or any call on a link that is not connected) starts libpq's
  ``PQconnectStart`` and continues ``connect_poll()`` whenever the socket is ready, within
  ``connect_timeout`` seconds. Only numeric addresses are accepted (``hostaddr=``; a host name
  would make libpq resolve it, blocking): a name is refused with ``ValueError`` when the link is
  made. A socket folder (``host=/run/postgresql``) is accepted too: it resolves nothing.
- **Pipeline mode, always.** Each request (a ``query``, a ``transaction``, a ``listen``) is its
  statements followed by one Sync, sent at once without waiting for earlier answers (at most
  ``MAX_IN_FLIGHT`` requests on the wire; the rest wait in order). Answers come back in the order
  asked. The statements between two Syncs are one transaction: the server commits them at the
  Sync, or, after an error, skips the rest and rolls all of them back (PostgreSQL's protocol,
  "Pipelining"). So ``transaction()`` sends no BEGIN/COMMIT of its own and a failed one leaves no
  aborted transaction behind: the next request runs normally. Do not put BEGIN, COMMIT or a
  statement that cannot run in a transaction block (VACUUM, CREATE DATABASE) in a transaction.
- **Bounded work per turn.** A readable socket is read once (``consume_input``: what is there),
  then results are taken while libpq has complete ones, rows converted in chunks, for at most
  ``TURN_SECONDS``; what is left continues on a zero-time timer, after the other sockets had
  their turn. A 20,000-row result does not stall the loop.
- **Losing the connection.** When the socket breaks, the server ends the session, or a
  connection attempt fails: every pending future fails with ``PgConnectionLost`` (its ``sent``
  says whether the request had gone out: for a transaction that was sent, whether it was
  committed is unknown), then ``lost`` is emitted with the reason. **The next call reconnects**
  (no ``open()`` needed); channels given to ``listen`` are listened to again on every new
  connection, first (notifications sent meanwhile are missed): ``open()`` answers, and ``connected``
  fires, once that is done, so a notification sent after it reaches the link. ``close()`` is final: later calls fail
  with ``PgConnectionLost`` until ``open()`` is called again.
- **Values.** Parameters are sent as text (bytes as binary) with a type: ``int`` int8 (numeric
  past its range), ``bool``, ``float`` float8, ``bytes`` bytea, ``Decimal`` numeric, ``dict``/
  ``list`` jsonb, ``None`` NULL; ``str`` goes with type 0, so the server infers it from the
  statement (text when nothing says otherwise). An int8 parameter does not fit a function
  that takes int4: cast it (``$1::int``). Results are converted by column type with psycopg's
  loaders: int2/4/8, text, varchar, bool, float, numeric, bytea, json/jsonb (parsed), dates,
  times...; NULL is None.
- A statement's error fails that request's future with ``PgError`` (its SQLSTATE in ``code``);
  the connection stays usable.

``connected`` and ``lost`` are Qt signals: they fire once per connection, never per query.
Per-query work goes through the futures' callbacks.
"""

from __future__ import annotations

import enum
import ipaddress
import json
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

import psycopg
from psycopg import pq
from psycopg.adapt import Transformer
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from PySide6.QtCore import QObject, QSocketNotifier, QTimer, Signal

log = logging.getLogger("qtchat.server.pgloop")

MAX_IN_FLIGHT = 512  # requests sent and not answered yet; later ones wait in order
TURN_SECONDS = 0.004  # the most one readable notification (or its continuation) works for
CHUNK_ROWS = 256  # rows converted between two looks at the clock

Rows = list[tuple[Any, ...]]
Params = Sequence[object]

# type OIDs of what we send (pg_type)
BOOL, BYTEA, INT8, FLOAT8, NUMERIC, JSONB = 16, 17, 20, 701, 1700, 3802
_INT8_RANGE = range(-(2**63), 2**63)

_OK = pq.ExecStatus
_POLL = pq.PollingStatus


class PgError(Exception):
    """A statement failed (``code`` is its SQLSTATE), or the connection did (``PgConnectionLost``)."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class PgConnectionLost(PgError):
    """No connection: it broke, could not be made, or was closed. ``sent`` is True when the request had
    gone to the server: then whether it ran (for a transaction: whether it was committed) is unknown."""

    def __init__(self, message: str, sent: bool = False) -> None:
        super().__init__(message)
        self.sent = sent


def numeric_conninfo(dsn: str) -> bytes:
    """The libpq connection string for ``dsn`` (a ``postgresql://`` URI or ``key=value`` pairs), with its
    numeric addresses as ``hostaddr`` so libpq resolves nothing; ``ValueError`` for a host name."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error as exc:
        raise ValueError(f"not a PostgreSQL address: {exc}") from None
    if "service" in params:
        raise ValueError("a service name hides where it connects: give a numeric address (hostaddr=)")
    if params.get("hostaddr"):
        _check_numeric(str(params["hostaddr"]).split(","))
    elif params.get("host"):
        hosts = str(params["host"]).split(",")
        if not all(h.startswith(("/", "@")) for h in hosts):  # socket folders resolve nothing
            _check_numeric(hosts)
            params["hostaddr"] = params.pop("host")
    else:
        raise ValueError("no address: give a numeric one (postgresql://user@127.0.0.1:5432/db or hostaddr=)")
    params["client_encoding"] = "UTF8"  # the loaders decode UTF-8
    params.setdefault("gssencmode", "disable")  # no Kerberos negotiation on the loop
    return make_conninfo("", **params).encode()


def _check_numeric(hosts: list[str]) -> None:
    for host in hosts:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{host!r} is a host name: give a numeric address (looking a name up would block "
                             "the event loop)") from None


def encode_param(value: object) -> tuple[bytes | None, int, int]:
    """One parameter as libpq takes it: (value, type OID, format: 0 text, 1 binary)."""
    if value is None:
        return None, 0, 0
    if isinstance(value, bool):
        return (b"t" if value else b"f"), BOOL, 0
    if isinstance(value, int):
        return str(value).encode(), (INT8 if value in _INT8_RANGE else NUMERIC), 0
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return (b"NaN" if math.isnan(value) else b"Infinity" if value > 0 else b"-Infinity"), FLOAT8, 0
        return repr(value).encode(), FLOAT8, 0
    if isinstance(value, str):
        return value.encode(), 0, 0
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value), BYTEA, 1
    if isinstance(value, Decimal):
        return str(value).encode(), NUMERIC, 0
    if isinstance(value, dict | list):
        return json.dumps(value).encode(), JSONB, 0
    raise TypeError(f"cannot send a {type(value).__name__} to PostgreSQL")


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


Command = tuple[bytes, list[bytes | None], list[int], list[int]]


def encode_command(sql: str, params: Params) -> Command:
    if "\0" in sql:
        raise ValueError("a NUL character in SQL")
    encoded = [encode_param(p) for p in params]
    return sql.encode(), [e[0] for e in encoded], [e[1] for e in encoded], [e[2] for e in encoded]


class _Kind(enum.Enum):
    ROWS = 1  # query(): the rows of its one statement
    EACH = 2  # transaction(): the rows of each statement
    NONE = 3  # listen(): nothing


@dataclass(eq=False, slots=True)
class _Request:
    commands: list[Command]
    future: Future[Any]
    kind: _Kind
    results: list[Rows] = field(default_factory=list)
    error: PgError | None = None


class _State(enum.Enum):
    DOWN = 1  # never connected, or lost: the next call connects
    CONNECTING = 2
    OPEN = 3
    CLOSED = 4  # close() was called: calls fail until open()


def _settle(future: Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _refuse(future: Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


def _result_error(result: pq.abc.PGresult) -> PgError:
    def field_text(code: pq.DiagnosticField) -> str | None:
        raw = result.error_field(code)
        return raw.decode("utf-8", "replace") if raw else None

    message = field_text(pq.DiagnosticField.MESSAGE_PRIMARY) or result.error_message.decode("utf-8", "replace")
    if not message:
        message = f"unexpected result: {pq.ExecStatus(result.status).name}"
    return PgError(message.strip(), field_text(pq.DiagnosticField.SQLSTATE))


def _log_notice(result: pq.abc.PGresult) -> None:
    log.debug("postgresql: %s", result.error_message.decode("utf-8", "replace").strip())


class PgLink(QObject):
    """One PostgreSQL connection on the event loop; see the module's docstring for its rules."""

    connected = Signal()
    lost = Signal(str)

    def __init__(self, dsn: str, parent: QObject | None = None, *, connect_timeout: float = 10.0) -> None:
        super().__init__(parent)
        self._conninfo = numeric_conninfo(dsn)
        self._timeout_ms = max(1, int(connect_timeout * 1000))
        self._state = _State.DOWN
        self._pg: pq.abc.PGconn | None = None
        self._generation = 0  # one more for every connection made or dropped
        self._fd = -1
        self._read: QSocketNotifier | None = None
        self._write: QSocketNotifier | None = None
        self._opening: list[Future[None]] = []
        self._relistening = False  # connected, the LISTEN statements of the channels not answered yet
        self._waiting: deque[_Request] = deque()
        self._in_flight: deque[_Request] = deque()
        self._channels: dict[str, list[Callable[[str], None]]] = {}
        self._loader = Transformer()
        self._partial: tuple[_Request, pq.abc.PGresult, Rows] | None = None  # a result being converted
        self._next_row = 0
        self._more = QTimer(self)  # continues a turn's work after the other sockets had theirs
        self._more.setSingleShot(True)
        self._more.setInterval(0)
        self._more.timeout.connect(self._drain)
        self._deadline = QTimer(self)
        self._deadline.setSingleShot(True)
        self._deadline.timeout.connect(self._timed_out)

    # --- the API

    @property
    def is_open(self) -> bool:
        return self._state is _State.OPEN

    @property
    def backend_pid(self) -> int | None:
        """The server process of this connection (for pg_terminate_backend in tests), None when not open."""
        return self._pg.backend_pid if self._pg is not None and self._state is _State.OPEN else None

    def open(self) -> Future[None]:
        """Connect (again, after close()); done when connected and listening again to every channel given to
        ``listen`` (a notification sent after that reaches this link), at once when it is."""
        future: Future[None] = Future()
        if self._state is _State.OPEN and not self._relistening:
            future.set_result(None)
            return future
        self._opening.append(future)
        if self._state in (_State.DOWN, _State.CLOSED):
            self._start()
        return future

    def query(self, sql: str, params: Params = ()) -> Future[Rows]:
        """One statement; its rows (none for a statement that returns none)."""
        return self._submit([encode_command(sql, params)], _Kind.ROWS)

    def transaction(self, statements: Sequence[tuple[str, Params]]) -> Future[list[Rows]]:
        """The statements in one transaction, in one round trip: each one's rows, or the first error and
        nothing stored."""
        if not statements:
            future: Future[list[Rows]] = Future()
            future.set_result([])
            return future
        return self._submit([encode_command(sql, params) for sql, params in statements], _Kind.EACH)

    def listen(self, channel: str, callback: Callable[[str], None]) -> Future[None]:
        """Call ``callback(payload)`` for every NOTIFY on ``channel``, on this and every later connection."""
        self._channels.setdefault(channel, []).append(callback)
        return self._submit([encode_command(f"LISTEN {quote_ident(channel)}", ())], _Kind.NONE)

    def close(self) -> None:
        """Drop the connection; pending futures fail with PgConnectionLost. Final until open()."""
        self._lose("the link was closed", closing=True)

    # --- requests

    def _submit(self, commands: list[Command], kind: _Kind) -> Future[Any]:
        future: Future[Any] = Future()
        if self._state is _State.CLOSED:
            future.set_exception(PgConnectionLost("the link is closed"))
            return future
        self._waiting.append(_Request(commands, future, kind))
        if self._state is _State.DOWN:
            self._start()
        else:
            self._pump()
        return future

    def _pump(self) -> None:
        """Send waiting requests, up to MAX_IN_FLIGHT on the wire."""
        if self._state is not _State.OPEN or not self._waiting:
            return
        pg = self._pg
        assert pg is not None
        try:
            while self._waiting and len(self._in_flight) < MAX_IN_FLIGHT:
                request = self._waiting.popleft()
                self._in_flight.append(request)
                for sql, values, types, formats in request.commands:
                    pg.send_query_params(sql, values, types, formats)
                pg.pipeline_sync()
        except psycopg.Error as exc:
            self._lose(f"could not send: {exc}")
            return
        self._flush()

    def _flush(self) -> None:
        pg = self._pg
        assert pg is not None
        try:
            pending = pg.flush()
        except psycopg.Error as exc:
            self._lose(f"could not send: {exc}")
            return
        if self._write is not None:
            self._write.setEnabled(pending == 1)
        if pending == 1:  # libpq reads while it cannot write: results may be waiting in its buffer
            self._more.start()

    # --- connecting

    def _start(self) -> None:
        self._state = _State.CONNECTING
        self._generation += 1
        pg = pq.PGconn.connect_start(self._conninfo)
        pg.notice_handler = _log_notice
        self._pg = pg
        if pg.status == pq.ConnStatus.BAD:
            self._lose(f"could not connect: {pg.get_error_message()}")
            return
        self._deadline.start(self._timeout_ms)
        self._watch(read=False, write=True)  # libpq: before the first poll, wait until writable

    def _poll_connect(self) -> None:
        pg = self._pg
        assert pg is not None
        status = pg.connect_poll()
        if status == _POLL.OK:
            self._opened()
        elif status in (_POLL.READING, _POLL.WRITING):
            self._watch(read=status == _POLL.READING, write=status == _POLL.WRITING)
        else:
            self._lose(f"could not connect: {pg.get_error_message()}")

    def _opened(self) -> None:
        pg = self._pg
        assert pg is not None
        self._deadline.stop()
        try:
            pg.nonblocking = 1
            pg.enter_pipeline_mode()
        except psycopg.Error as exc:
            self._lose(f"could not set the connection up: {exc}")
            return
        self._state = _State.OPEN
        self._watch(read=True, write=False)
        if self._channels:  # listening again comes before anything queued meanwhile, and before open() answers
            commands = [encode_command(f"LISTEN {quote_ident(channel)}", ()) for channel in self._channels]
            relisten = _Request(commands, Future(), _Kind.NONE)
            self._relistening = True
            generation = self._generation
            relisten.future.add_done_callback(partial(self._listening, generation=generation))
            self._waiting.appendleft(relisten)
        else:
            self._listening(None, generation=self._generation)
        self._pump()

    def _listening(self, relisten: Future[Any] | None, *, generation: int) -> None:
        """Connected, and listening again (``relisten``: the LISTEN statements' request): open() answers."""
        if generation != self._generation:
            return  # that connection was lost: open() has failed already
        self._relistening = False
        error = relisten.exception() if relisten is not None else None
        opening, self._opening = self._opening, []
        for future in opening:
            if error is None:
                _settle(future, None)
            else:
                _refuse(future, error)
        self.connected.emit()

    def _timed_out(self) -> None:
        if self._state is _State.CONNECTING:
            self._lose(f"could not connect within {self._timeout_ms / 1000:g} s")

    def _watch(self, *, read: bool, write: bool) -> None:
        """Watch the connection's socket (libpq may change it while connecting)."""
        pg = self._pg
        assert pg is not None
        try:
            fd = pg.socket
        except psycopg.Error as exc:
            self._lose(f"no socket: {exc}")
            return
        if fd != self._fd or self._read is None or self._write is None:
            self._unwatch()
            self._fd = fd
            self._read = QSocketNotifier(fd, QSocketNotifier.Type.Read, self)
            self._write = QSocketNotifier(fd, QSocketNotifier.Type.Write, self)
            self._read.activated.connect(self._on_readable)
            self._write.activated.connect(self._on_writable)
        self._read.setEnabled(read)
        self._write.setEnabled(write)

    def _unwatch(self) -> None:
        for notifier in (self._read, self._write):
            if notifier is not None:
                notifier.setEnabled(False)
                notifier.deleteLater()
        self._read = self._write = None
        self._fd = -1

    # --- the socket

    def _on_readable(self) -> None:
        if self._state is _State.CONNECTING:
            self._poll_connect()
            return
        pg = self._pg
        if self._state is not _State.OPEN or pg is None:
            return
        try:
            pg.consume_input()
        except psycopg.Error as exc:
            self._lose(f"the connection broke: {exc}")
            return
        self._drain()

    def _on_writable(self) -> None:
        if self._state is _State.CONNECTING:
            self._poll_connect()
        elif self._state is _State.OPEN:
            self._flush()

    def _notifications(self, pg: pq.abc.PGconn) -> None:
        while (note := pg.notifies()) is not None:
            payload = note.extra.decode("utf-8", "replace")
            for callback in list(self._channels.get(note.relname.decode("utf-8", "replace"), ())):
                try:
                    callback(payload)
                except Exception:
                    log.exception("error in a notification's callback")

    def _drain(self) -> None:
        """Take complete results for at most TURN_SECONDS; continue on the timer if there is more."""
        generation = self._generation
        deadline = time.perf_counter() + TURN_SECONDS
        if self._pg is not None and self._state is _State.OPEN:
            self._notifications(self._pg)
        while self._state is _State.OPEN and self._generation == generation:
            if time.perf_counter() > deadline:
                self._more.start()
                break
            if self._partial is not None:
                self._convert(deadline)
                continue
            pg = self._pg
            assert pg is not None
            if not self._in_flight or pg.is_busy():
                break
            self._take(pg.get_result())
        if self._state is _State.OPEN and self._generation == generation:
            if self._pg is not None and self._pg.status == pq.ConnStatus.BAD:
                self._lose(f"the connection broke: {self._pg.get_error_message()}")
            else:
                self._pump()

    def _take(self, result: pq.abc.PGresult | None) -> None:
        """One result of the oldest request in flight (None ends one statement's results)."""
        if result is None:
            return
        request = self._in_flight[0]
        status = result.status
        if status == _OK.PIPELINE_SYNC:
            self._in_flight.popleft()
            self._finish(request)
        elif status in (_OK.TUPLES_OK, _OK.SINGLE_TUPLE):
            self._loader.set_pgresult(result)
            self._partial, self._next_row = (request, result, []), 0
        elif status in (_OK.COMMAND_OK, _OK.EMPTY_QUERY):
            request.results.append([])
        elif status != _OK.PIPELINE_ABORTED and request.error is None:  # an error (aborted ones follow it)
            request.error = _result_error(result)

    def _convert(self, deadline: float) -> None:
        """Convert rows of the result in hand, a chunk at a time, until it is done or the turn is over."""
        assert self._partial is not None
        request, result, rows = self._partial
        total = result.ntuples
        try:
            while self._next_row < total:
                end = min(total, self._next_row + CHUNK_ROWS)
                rows.extend(self._loader.load_rows(self._next_row, end, tuple))
                self._next_row = end
                if time.perf_counter() > deadline:
                    return
        except Exception as exc:  # a value no loader understands
            if request.error is None:
                request.error = PgError(f"could not read a value: {exc}")
        self._partial = None
        self._loader.set_pgresult(None)
        request.results.append(rows)

    def _finish(self, request: _Request) -> None:
        if request.error is not None:
            _refuse(request.future, request.error)
        elif request.kind is _Kind.ROWS:
            _settle(request.future, request.results[0] if request.results else [])
        elif request.kind is _Kind.EACH:
            _settle(request.future, request.results)
        else:
            _settle(request.future, None)

    # --- losing it

    def _lose(self, reason: str, *, closing: bool = False) -> None:
        """Drop the connection; fail what was pending; ``lost`` unless the link was closed."""
        was_down = self._state in (_State.DOWN, _State.CLOSED) and self._pg is None
        self._generation += 1
        self._relistening = False
        self._state = _State.CLOSED if closing else _State.DOWN
        self._deadline.stop()
        self._more.stop()
        self._unwatch()
        self._partial = None
        self._loader.set_pgresult(None)
        if self._pg is not None:
            self._pg.finish()
            self._pg = None
        opening, self._opening = self._opening, []
        sent, self._in_flight = self._in_flight, deque()
        unsent, self._waiting = self._waiting, deque()
        if was_down and not (opening or sent or unsent):
            return
        if not closing:
            log.warning("postgresql: %s", reason)
            self.lost.emit(reason)
        for future in opening:
            _refuse(future, PgConnectionLost(reason))
        for request in sent:
            _refuse(request.future, PgConnectionLost(f"{reason} (the request had been sent: whether it ran is "
                                                     "unknown)", sent=True))
        for request in unsent:
            _refuse(request.future, PgConnectionLost(reason))


__all__ = ["PgConnectionLost", "PgError", "PgLink", "encode_param", "numeric_conninfo"]
