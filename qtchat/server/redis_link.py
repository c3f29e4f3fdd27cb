"""A Redis client on the Qt event loop: no threads, no asyncio, no blocking call.

One ``QTcpSocket`` per connection, to a numeric address only (a host name would need a DNS lookup, which
blocks or starts threads: refused with ``ValueError``); replies parsed by ``hiredis.Reader`` (C); commands
encoded here (RESP arrays of bulk strings). Every answer is a ``concurrent.futures.Future`` resolved on the
loop's thread, from the socket's own signals, so its done-callbacks run there too (backend.py, point 1).

- ``RedisLink``: commands, answered in the order sent. ``command()`` answers one reply (``bytes``, ``int``,
  ``list``, ``None``; an error reply fails that command's future with ``RedisError`` and nothing else);
  ``pipeline()`` sends many in one write and answers the list of their replies (an error reply inside is a
  ``RedisError`` object in the list). Commands may be sent while ``open()`` is under way: they go after it.
- ``RedisSubscriber``: a second connection in subscribe mode; every message is handed to ``on_message(channel,
  payload)`` (a callback, not a Qt signal: this is a hot path). It remembers what it subscribed to and
  subscribes again when it is opened again.

When a connection breaks (the server closed it, a reset, a protocol error) every future waiting on it fails
with ``RedisConnectionLost``, then ``on_lost(reason)`` is called once; reconnecting is the caller's choice
(``open()`` again). A failed ``open()`` fails its own future only, and ``close()`` fails what waits without
calling ``on_lost``. Close a connection before letting it go: one deleted with its parent closes its socket
but leaves what waited on it unanswered.

Reads are bounded: at most ``READ_CHUNK`` bytes are parsed per pass of the loop, the rest on the next pass (a
zero-time timer: readyRead does not fire again for what Qt holds already), and Qt holds at most
``READ_BUFFER`` (the rest waits in the kernel, then in Redis), so a flood of published messages cannot stall
the loop (scale-out.md: a reader without a cap stalled it for 688 ms).
"""

from __future__ import annotations

import ipaddress
import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import hiredis
from PySide6.QtCore import QObject, QTimer
from PySide6.QtNetwork import QAbstractSocket, QHostAddress, QTcpSocket

log = logging.getLogger("qtchat.server")

READ_CHUNK = 256 * 1024  # bytes parsed per pass of the loop
READ_BUFFER = 1024 * 1024  # what Qt reads ahead from the kernel at most
CONNECT_TIMEOUT_MS = 5000  # connecting and the handshake (AUTH, SELECT, CLIENT ID)

Arg = bytes | str | int


class RedisError(Exception):
    """An error reply (``-ERR ...``, ``-WRONGTYPE ...``): it fails only the command it answers."""


class RedisConnectionLost(RedisError):
    """The connection broke, was closed, or was never open: what waited on it will not be answered."""


@dataclass(frozen=True, slots=True)
class RedisAddress:
    """Where a ``redis://[[user]:password@]1.2.3.4[:port][/db]`` URL points."""

    host: str  # a numeric IPv4 or IPv6 address
    port: int = 6379
    db: int = 0
    username: str | None = None
    password: str | None = None


def parse_url(url: str) -> RedisAddress:
    """The address of a ``redis://`` URL; ``ValueError`` for anything else, a host name included."""
    parts = urlsplit(url)
    if parts.scheme != "redis":
        raise ValueError(f"not a redis:// URL: {url!r}")
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"a Redis address must be numeric (redis://127.0.0.1:6379), not {host!r}: a host name "
                         "would need a DNS lookup, which blocks the event loop") from None
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise ValueError(f"a Redis database is a number (redis://1.2.3.4:6379/0), not {path!r}")
    try:
        port = parts.port or 6379
    except ValueError as exc:
        raise ValueError(f"bad port in {url!r}: {exc}") from None
    return RedisAddress(host, port, int(path or 0), unquote(parts.username) if parts.username else None,
                        unquote(parts.password) if parts.password is not None else None)


def encode(args: Sequence[Arg]) -> bytes:
    """One command as Redis reads it: an array of bulk strings."""
    if not args:
        raise ValueError("an empty Redis command")
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, int) and not isinstance(arg, bool):
            data = b"%d" % arg
        else:
            raise TypeError(f"a Redis argument is bytes, str or int, not {type(arg).__name__}")
        out += (b"$%d\r\n" % len(data), data, b"\r\n")
    return b"".join(out)


class _Gather:
    """Waits for ``left`` replies in a row and answers them as one list (a pipeline, the handshake)."""

    __slots__ = ("future", "left", "replies")

    def __init__(self, future: Future[list[Any]], count: int) -> None:
        self.future = future
        self.left = count
        self.replies: list[Any] = []


Waiter = Future[Any] | _Gather
_NEED = object()  # what hiredis.Reader.gets answers while no whole reply is buffered


def _fail(waiter: Waiter, exc: BaseException) -> None:
    future = waiter.future if isinstance(waiter, _Gather) else waiter
    if not future.done():
        future.set_exception(exc)


class _Connection(QObject):
    """One connection to Redis: connecting, the handshake, writes once per pass, bounded reads, losing it.

    A subclass says what a reply means (``_on_reply``) and what to send first (``_handshake``)."""

    def __init__(self, url: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.address = parse_url(url)
        self.on_lost: Callable[[str], None] | None = None
        self.client_id: int | None = None  # Redis's CLIENT ID of the connection, known once open
        self._socket: QTcpSocket | None = None
        self._reader: hiredis.Reader | None = None
        self._pending: deque[Waiter] = deque()  # in the order their replies come
        self._outbox = bytearray()  # written once per pass
        self._opened: Future[None] | None = None
        self._is_open = False
        self._writable = False  # connected: what is queued is written at the end of the pass
        self._flush_due = False
        self._flush_timer = self._timer(0, self._flush)
        self._read_timer = self._timer(0, self._read)  # what Qt buffered beyond one pass's chunk
        self._connect_timer = self._timer(CONNECT_TIMEOUT_MS, self._connect_timeout)

    def _timer(self, interval: int, slot: Callable[[], None]) -> QTimer:
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.setInterval(interval)
        timer.timeout.connect(slot)
        return timer

    # ------------------------------------------------------------ opening and closing

    def open(self) -> Future[None]:
        """Connect and shake hands; done once the connection takes commands (at once if it does already)."""
        if self._opened is not None:
            return self._opened
        opened: Future[None] = Future()
        if self._is_open:
            opened.set_result(None)
            return opened
        self._opened = opened
        sock = QTcpSocket(self)
        sock.setReadBufferSize(READ_BUFFER)
        # bound methods, not closures: Qt drops them as this object is destroyed, before its children (the
        # socket, whose destructor still emits disconnected), and they do not keep this object alive
        sock.connected.connect(self._on_connected)
        sock.readyRead.connect(self._read)
        sock.errorOccurred.connect(self._on_error)
        sock.disconnected.connect(self._on_disconnected)
        self._socket = sock
        self._reader = hiredis.Reader(replyError=RedisError, notEnoughData=_NEED)
        handshake = self._handshake()
        replies = sum(len(c) - 1 if c[0] in ("SUBSCRIBE", "PSUBSCRIBE") else 1 for c in handshake)
        gather: Future[list[Any]] = Future()
        self._queue(b"".join(encode(c) for c in handshake), _Gather(gather, replies))
        gather.add_done_callback(partial(self._shaken, sock))
        self._connect_timer.start()
        sock.connectToHost(QHostAddress(self.address.host), self.address.port)
        return opened

    def _handshake(self) -> list[list[Arg]]:
        """What is sent first, answered before ``open()`` is done (SUBSCRIBE counts a reply per channel)."""
        a = self.address
        commands: list[list[Arg]] = []
        if a.password is not None:
            commands.append(["AUTH", a.username, a.password] if a.username else ["AUTH", a.password])
        if a.db:
            commands.append(["SELECT", a.db])
        commands.append(["CLIENT", "ID"])
        return commands

    def _shaken(self, sock: QTcpSocket, gather: Future[list[Any]]) -> None:
        if sock is not self._socket or gather.exception() is not None:
            return  # lost meanwhile: the open future has failed already
        replies = gather.result()
        refused = next((r for r in replies if isinstance(r, RedisError)), None)
        if refused is not None:
            self._drop(refused, lost=False)
            return
        self.client_id = next(r for r in replies if type(r) is int)  # the answer to CLIENT ID
        self._connect_timer.stop()
        self._is_open = True
        opened, self._opened = self._opened, None
        if opened is not None:
            opened.set_result(None)

    @property
    def is_open(self) -> bool:
        return self._is_open

    def close(self) -> None:
        """Close now; what waits fails with ``RedisConnectionLost`` (``on_lost`` is not called)."""
        if self._socket is not None:
            self._drop(RedisConnectionLost("closed"), lost=False)

    def _drop(self, exc: RedisError, *, lost: bool) -> None:
        """The end of the current connection: fail what waits; ``on_lost`` if it was open and ``lost``."""
        sock, was_open = self._socket, self._is_open
        self._socket, self._reader, self._is_open, self.client_id = None, None, False, None
        self._writable = self._flush_due = False
        self._outbox.clear()
        for timer in (self._flush_timer, self._read_timer, self._connect_timer):
            timer.stop()
        if sock is not None:
            # an old socket's signals come here no more: whatever arrives is from the current one
            for signal in (sock.connected, sock.readyRead, sock.errorOccurred, sock.disconnected):
                signal.disconnect()
            sock.abort()
            sock.deleteLater()
        pending, self._pending = self._pending, deque()
        opened, self._opened = self._opened, None
        if opened is not None:
            opened.set_exception(exc)
        for waiter in pending:
            _fail(waiter, exc)
        self._lost_waiters(exc)
        if lost and was_open:
            log.warning("Redis connection to %s:%d lost: %s", self.address.host, self.address.port, exc)
            if self.on_lost is not None:
                try:
                    self.on_lost(str(exc))
                except Exception:
                    log.exception("error handling the loss of a Redis connection")

    def _lost_waiters(self, exc: RedisError) -> None:
        """A subclass fails what else waits on the connection."""

    def _connect_timeout(self) -> None:
        self._drop(RedisConnectionLost(f"no answer from {self.address.host}:{self.address.port} within "
                                       f"{CONNECT_TIMEOUT_MS} ms"), lost=True)

    # ------------------------------------------------------------ the socket

    def _on_connected(self) -> None:
        if self._socket is not None:
            self._socket.setSocketOption(QAbstractSocket.SocketOption.LowDelayOption, 1)
            self._writable = True
            self._flush()

    def _on_error(self, _error: QAbstractSocket.SocketError) -> None:
        sock = self._socket
        if sock is not None:
            reason = sock.errorString()
            self._read_all(sock)  # replies that came before the end are answered
            if sock is self._socket:
                self._drop(RedisConnectionLost(reason), lost=True)

    def _on_disconnected(self) -> None:
        sock = self._socket
        if sock is not None:
            self._read_all(sock)
            if sock is self._socket:
                self._drop(RedisConnectionLost("the server closed the connection"), lost=True)

    def _read(self) -> None:
        sock, reader = self._socket, self._reader
        if sock is None or reader is None:
            return
        data = cast(bytes, sock.read(READ_CHUNK).data())
        if data:
            self._parse(reader, data)
        if sock is self._socket and sock.bytesAvailable() > 0 and not self._read_timer.isActive():
            self._read_timer.start()  # the rest on the next pass

    def _read_all(self, sock: QTcpSocket) -> None:
        """What Qt still holds of a connection that ended (at most READ_BUFFER)."""
        while sock is self._socket and self._reader is not None and sock.bytesAvailable() > 0:
            self._parse(self._reader, cast(bytes, sock.read(READ_CHUNK).data()))

    def _parse(self, reader: hiredis.Reader, data: bytes) -> None:
        reader.feed(data)
        on_reply = self._on_reply
        try:
            while (reply := reader.gets()) is not _NEED:
                on_reply(reply)
                if reader is not self._reader:
                    return  # closed by a callback
        except hiredis.ProtocolError as exc:
            if reader is self._reader:
                self._drop(RedisConnectionLost(f"protocol error: {exc}"), lost=True)

    def _on_reply(self, reply: Any) -> None:
        """One reply, in order (a subclass: a message, or the answer to its oldest waiter)."""
        self._answer(reply)

    def _answer(self, reply: Any) -> None:
        if not self._pending:
            log.warning("a Redis reply nobody asked for: %.200r", reply)
            return
        waiter = self._pending[0]
        if isinstance(waiter, _Gather):
            waiter.replies.append(reply)
            waiter.left -= 1
            if not waiter.left:
                self._pending.popleft()  # before its callbacks run: they may send more, or close
                waiter.future.set_result(waiter.replies)
            return
        self._pending.popleft()
        if isinstance(reply, RedisError):
            waiter.set_exception(reply)
        else:
            waiter.set_result(reply)

    # ------------------------------------------------------------ writing

    def _queue(self, data: bytes, waiter: Waiter) -> None:
        self._outbox += data
        self._pending.append(waiter)
        if self._writable and not self._flush_due:  # plain attributes: this runs once per command
            self._flush_due = True
            self._flush_timer.start()

    def _flush(self) -> None:
        self._flush_due = False
        sock = self._socket
        if sock is not None and self._outbox:
            sock.write(bytes(self._outbox))
            self._outbox.clear()

    def flush(self) -> None:
        """Hand what is queued to the kernel now, without blocking (before a ``close()`` that must not lose it)."""
        self._flush()
        if self._socket is not None:
            self._socket.flush()

    def _not_open(self) -> RedisConnectionLost | None:
        if self._socket is None:
            return RedisConnectionLost(f"not connected to Redis at {self.address.host}:{self.address.port}")
        return None


class RedisLink(_Connection):
    """Commands to Redis and their replies, in order, over one connection (see the module's text)."""

    def command(self, *args: Arg) -> Future[Any]:
        """One command; its reply: ``bytes``, ``int``, ``list`` or ``None`` (an error reply: ``RedisError``)."""
        future: Future[Any] = Future()
        refusal = self._not_open()
        if refusal is not None:
            future.set_exception(refusal)
            return future
        self._queue(encode(args), future)
        return future

    def pipeline(self, commands: Sequence[Sequence[Arg]]) -> Future[list[Any]]:
        """Many commands in one write; the list of their replies in order, an error reply in it as a
        ``RedisError`` object (the pipeline's future fails only when the connection does)."""
        future: Future[list[Any]] = Future()
        refusal = self._not_open()
        if refusal is not None:
            future.set_exception(refusal)
        elif not commands:
            future.set_result([])
        else:
            self._queue(b"".join(encode(c) for c in commands), _Gather(future, len(commands)))
        return future


class _Subscribing:
    """A SUBSCRIBE or PSUBSCRIBE waiting for its confirmations (one per channel; an error reply ends it)."""

    __slots__ = ("future", "left", "names", "remembered")

    def __init__(self, future: Future[None], names: Sequence[str], remembered: set[str]) -> None:
        self.future = future
        self.left = len(names)
        self.names = names
        self.remembered = remembered  # the subscriber's channels or patterns: a refused name is forgotten


class RedisSubscriber(_Connection):
    """A connection in subscribe mode: every message goes to ``on_message(channel, payload)``, in order (a
    message that matches a channel and a pattern both comes twice, as Redis sends it).

    What it subscribed to is remembered (what Redis refused is not): opened again (after a loss, or
    ``close()``), it subscribes again before its ``open()`` future is done."""

    def __init__(self, url: str, on_message: Callable[[bytes, bytes], None], parent: QObject | None = None) -> None:
        super().__init__(url, parent)
        self.on_message = on_message
        self.channels: set[str] = set()
        self.patterns: set[str] = set()
        self._confirming: deque[_Subscribing] = deque()

    def subscribe(self, *channels: str) -> Future[None]:
        """Subscribe to channels: done when Redis confirmed every one."""
        self.channels.update(channels)
        return self._send("SUBSCRIBE", channels)

    def psubscribe(self, *patterns: str) -> Future[None]:
        """Subscribe to patterns (``room:*``): a message's channel is the one it was published to."""
        self.patterns.update(patterns)
        return self._send("PSUBSCRIBE", patterns)

    def _send(self, verb: str, names: Sequence[str]) -> Future[None]:
        future: Future[None] = Future()
        refusal = self._not_open()
        if not names:
            future.set_exception(ValueError(f"{verb} needs at least one name"))
        elif refusal is not None:
            future.set_exception(RedisConnectionLost(f"{refusal}: subscribed when opened"))
        else:
            self._subscribe(verb, names, future)
        return future

    def _subscribe(self, verb: str, names: Sequence[str], future: Future[None]) -> None:
        remembered = self.channels if verb == "SUBSCRIBE" else self.patterns
        self._confirming.append(_Subscribing(future, names, remembered))
        self._queue(encode([verb, *names]), future)

    def _handshake(self) -> list[list[Arg]]:
        commands = [c for c in super()._handshake() if c[0] != "SELECT"]  # channels are not per database
        commands += [[verb, *sorted(names)] for verb, names in (("SUBSCRIBE", self.channels),
                                                                 ("PSUBSCRIBE", self.patterns)) if names]
        return commands

    def _on_reply(self, reply: Any) -> None:
        if type(reply) is list and reply:
            kind = reply[0]
            try:
                if kind == b"message":
                    self.on_message(reply[1], reply[2])
                    return
                if kind == b"pmessage":
                    self.on_message(reply[2], reply[3])
                    return
            except Exception:  # a bug of the receiver's: the next message still comes
                log.exception("error handling a message from Redis on %r", reply[-2])
                return
            if kind in (b"subscribe", b"psubscribe") and self._awaits_confirmation():
                self._confirmed(None)
                return
        elif isinstance(reply, RedisError) and self._awaits_confirmation():
            self._confirmed(reply)
            return
        self._answer(reply)  # the handshake (its own SUBSCRIBEs included)

    def _awaits_confirmation(self) -> bool:
        return bool(self._confirming) and self._pending[0] is self._confirming[0].future

    def _confirmed(self, error: RedisError | None) -> None:
        head = self._confirming[0]
        head.left -= 1
        if error is None and head.left:
            return
        self._confirming.popleft()
        self._pending.popleft()
        if error is not None:
            head.remembered.difference_update(head.names)  # not subscribed again at the next open()
            head.future.set_exception(error)
        else:
            head.future.set_result(None)

    def _lost_waiters(self, exc: RedisError) -> None:
        self._confirming.clear()  # their futures were in the pending queue, failed with the rest
