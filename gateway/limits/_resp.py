"""A lean pipelining RESP2 client for the limiter's hot path: one asyncio ``Protocol`` fed to ``hiredis``.

redis-py's asyncio client costs ~200 µs of CPU per EVALSHA (pool checkout and release, retry wrapper,
encoder, observability hooks); the limiter makes two calls per request. This one costs a few µs on top of
the socket calls, because it does only what the limiter needs: one persistent connection, commands
packed by hand, no pool, no retries, no pub/sub.

Pipelining: ``execute`` writes its command at once and appends a future to a deque; replies arrive in
order, so ``data_received`` resolves the futures front to back. A caller that gives up (a timeout, a
cancelled request) leaves its future in the deque; its reply is read and dropped when it comes, so the
order never slips. If nothing at all arrives for ``read_timeout`` while replies are due, the connection is
presumed dead (a black-holed peer sends no RST) and dropped.

Deferred commands: ``execute_later`` holds a command back for at most ``coalesce`` seconds (0: until the end
of the event loop's iteration) and sends it in the same write as the next ``execute``, ahead of it, or with the
other deferred ones. The limiter's settle is such a command: on a busy gateway the settles and admissions of
one loop iteration share a write and a reply wake-up instead of taking one each (a send is ~13 µs of kernel
time on the bench VM, the wake-up and the task switch more). Redis runs a deferred command before the command
it rides with, so a freed concurrency slot is free for the admission that carried it.

Per-call timeouts: ``execute(..., timeout=T)`` fails the call with ``TimeoutError`` once T seconds have passed
without its reply, at no cost per call beyond a deque entry: one timer per connection walks the calls in send
order (so calls on one connection should share a timeout). ``asyncio.timeout`` around each call cost ~13 µs
of CPU on the request path, twice per request.

Errors, for the caller to map at one seam::

    RespError(message)        Redis answered with an error reply ("NOSCRIPT ...", "OOM ...")
    ConnectionError           connecting failed, or the connection was lost with the call in flight
    TimeoutError              connecting took longer than ``connect_timeout``

A lost connection fails every pending call with ``ConnectionError``; the next call reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from typing import Any
from urllib.parse import unquote, urlsplit

import hiredis

__all__ = ["RespClient", "RespError", "pack"]

Arg = str | bytes | int | float

_pack_command = getattr(hiredis, "pack_command", None)


class RespError(Exception):
    """An error reply from Redis; ``str(exc)`` is its message (``"NOSCRIPT No matching script..."``)."""


def pack(args: tuple[Arg, ...]) -> bytes:
    """One command in RESP: an array of bulk strings (ints as decimal, floats by ``repr``).

    hiredis' C packer when it has one (hiredis >= 2.1): 12.9 -> 5.3 µs for an admit call of 16 arguments on
    the bench machine, and two calls per request. It raises ``TypeError`` itself for an unsendable argument."""
    if _pack_command is not None:
        return _pack_command(args)
    return pack_py(args)


def pack_py(args: tuple[Arg, ...]) -> bytes:
    """``pack`` in Python: the reference ``hiredis.pack_command`` is checked against (tests), and the fallback."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, int):
            data = b"%d" % arg
        elif isinstance(arg, float):
            data = repr(arg).encode()
        else:
            raise TypeError(f"cannot send a {type(arg).__name__} to Redis")
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


class _Connection(asyncio.Protocol):
    """One TCP connection: pending futures in command order, resolved as replies are parsed."""

    __slots__ = (
        "_deadline_timer",
        "_flush",
        "_reader",
        "_timer",
        "closed",
        "coalesce",
        "deadlines",
        "got_bytes",
        "later",
        "loop",
        "peer_closed",
        "pending",
        "read_timeout",
        "transport",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, read_timeout: float | None, coalesce: float = 0.0) -> None:
        self.loop = loop
        self.read_timeout = read_timeout
        self.coalesce = coalesce
        #: Deferred commands not written yet, in order: (payload, future).
        self.later: list[tuple[bytes, asyncio.Future[Any]]] = []
        self._flush: asyncio.TimerHandle | None = None
        #: (deadline, future) of calls sent with a timeout, in send order.
        self.deadlines: deque[tuple[float, asyncio.Future[Any]]] = deque()
        self._deadline_timer: asyncio.TimerHandle | None = None
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set in connection_made
        self.pending: deque[asyncio.Future[Any]] = deque()
        self.closed = False
        #: The server closed or reset the connection (as opposed to us dropping it).
        self.peer_closed = False
        self.got_bytes = False
        self._reader = hiredis.Reader(replyError=RespError)
        self._timer: asyncio.TimerHandle | None = None

    def send(self, payload: bytes, timeout: float | None = None) -> asyncio.Future[Any]:
        fut = self.loop.create_future()
        if self.later:  # deferred commands go first, in the same write: their futures are due first too
            payload = self._take_later() + payload
        self.pending.append(fut)
        self._write(payload)
        if timeout is not None:
            deadline = self.loop.time() + timeout
            self.deadlines.append((deadline, fut))
            if self._deadline_timer is None:
                self._deadline_timer = self.loop.call_at(deadline, self._expire)
        return fut

    def _expire(self) -> None:
        """Fail the calls past their deadline; forget the answered ones; wait for the next deadline."""
        self._deadline_timer = None
        deadlines, now = self.deadlines, self.loop.time()
        while deadlines:
            deadline, fut = deadlines[0]
            if fut.done():
                deadlines.popleft()
            elif deadline <= now:
                deadlines.popleft()
                fut.set_exception(TimeoutError("no reply from redis in time"))  # its reply is dropped when it comes
            else:
                self._deadline_timer = self.loop.call_at(deadline, self._expire)
                return

    def defer(self, payload: bytes) -> asyncio.Future[Any]:
        """Queue ``payload`` for the next ``send``, or for the flush ``coalesce`` seconds from the first one."""
        fut = self.loop.create_future()
        self.later.append((payload, fut))
        if self._flush is None:
            self._flush = self.loop.call_later(self.coalesce, self.flush)
        return fut

    def flush(self) -> None:
        """Write the deferred commands now (the timer's callback; also before closing)."""
        self._flush = None
        if self.later and not self.closed:
            self._write(self._take_later())

    def _take_later(self) -> bytes:
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        later, self.later = self.later, []
        self.pending.extend(fut for _, fut in later)
        return b"".join(payload for payload, _ in later)

    def _write(self, payload: bytes) -> None:
        self.transport.write(payload)
        if self._timer is None and self.read_timeout is not None:
            self.got_bytes = False
            self._timer = self.loop.call_later(self.read_timeout, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self.closed or not self.pending:
            return
        if self.got_bytes:  # alive: look again a period later (one timer per period, not per command)
            self.got_bytes = False
            self._timer = self.loop.call_later(self.read_timeout, self._on_timer)  # type: ignore[arg-type]
            return
        self.abort(ConnectionError(f"no reply from redis for {self.read_timeout:g}s"))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        reader = self._reader
        reader.feed(data)
        pending = self.pending
        while True:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError as exc:
                self.abort(ConnectionError(f"malformed reply from redis: {exc}"))
                return
            if reply is False:
                return
            if not pending:
                self.abort(ConnectionError("reply from redis without a command"))
                return
            fut = pending.popleft()
            if fut.done():  # its caller gave up
                continue
            if type(reply) is RespError:
                fut.set_exception(reply)
            else:
                fut.set_result(reply)

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost fails what is pending

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.peer_closed = True
        self._fail(ConnectionError(f"redis connection lost: {exc}" if exc else "redis closed the connection"))

    def abort(self, error: ConnectionError) -> None:
        self._fail(error)
        self.transport.abort()

    def _fail(self, error: ConnectionError) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None
        self.deadlines.clear()
        later, self.later = self.later, []
        pending, self.pending = self.pending, deque()
        pending.extend(fut for _, fut in later)
        for fut in pending:
            if not fut.done():
                fut.set_exception(ConnectionError(str(error)))


class RespClient:
    """A pipelining client over one connection to ``url`` (``redis://[[user]:password@]host[:port][/db]``,
    or ``rediss://`` for TLS). Connects lazily on the first call and again after a lost connection."""

    def __init__(
        self, url: str, *, connect_timeout: float = 2.0, read_timeout: float | None = 5.0, coalesce: float = 0.0
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(f"unsupported redis URL scheme {parts.scheme!r} (redis:// or rediss://)")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.db = int(parts.path.lstrip("/") or 0)
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self._tls = parts.scheme == "rediss"
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        #: Seconds a deferred command (``execute_later``) may wait for a command to ride with.
        self.coalesce = coalesce
        self._conn: _Connection | None = None
        self._connecting: asyncio.Task[_Connection] | None = None
        self._closed = False

    async def execute(self, *args: Arg, timeout: float | None = None) -> Any:
        """Send one command and return its reply (bytes, int, list, None); see the module docstring.
        ``timeout``: seconds to wait for the reply once sent (connecting has ``connect_timeout``).

        One retry on a new connection when a reused one turns out closed by the server: after a Redis
        restart the old connection is dead and nobody notices before writing to it. (A command the
        server ran but could not answer before dying runs twice; redis-py's retry did the same.) A call
        that opened the connection itself, or whose connection timed out, is not retried."""
        payload = pack(args)
        conn = self._conn
        if conn is None or conn.closed:
            conn = await self._connected()
            return await conn.send(payload, timeout)
        try:
            return await conn.send(payload, timeout)
        except ConnectionError:
            if not conn.peer_closed or self._closed:
                raise
        conn = await self._connected()
        return await conn.send(payload, timeout)

    async def execute_later(self, *args: Arg) -> Any:
        """``execute``, but the command may wait up to ``coalesce`` seconds to share the next command's write
        (see the module docstring). For calls nobody waits on, such as the limiter's settle. Not retried: a
        command deferred on a connection that turns out dead fails with ``ConnectionError``."""
        conn = self._conn
        if conn is None or conn.closed:
            return await self.execute(*args)
        return await conn.defer(pack(args))

    async def _connected(self) -> _Connection:
        if self._closed:
            raise ConnectionError("redis client is closed")
        task = self._connecting
        if task is None:
            # Callers arriving while the connection opens share it; one of them being cancelled does not
            # cancel it for the others.
            task = self._connecting = asyncio.ensure_future(self._connect())
            task.add_done_callback(self._connect_done)
        return await asyncio.shield(task)

    def _connect_done(self, task: asyncio.Task[_Connection]) -> None:
        self._connecting = None
        if task.cancelled() or task.exception() is not None:  # retrieved, so no "never retrieved" noise
            return
        if self._closed:
            task.result().abort(ConnectionError("redis client is closed"))
        else:
            self._conn = task.result()

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        conn = _Connection(loop, self.read_timeout, self.coalesce)
        context = ssl.create_default_context() if self._tls else None
        try:
            async with asyncio.timeout(self.connect_timeout):
                await loop.create_connection(lambda: conn, self.host, self.port, ssl=context)
                setup = []
                if self._password is not None:
                    auth = (self._user, self._password) if self._user else (self._password,)
                    setup.append(conn.send(pack(("AUTH", *auth))))
                if self.db:
                    setup.append(conn.send(pack(("SELECT", self.db))))
                if setup:
                    await asyncio.gather(*setup)
        except BaseException as exc:
            if conn.transport is not None:
                conn.abort(ConnectionError("redis connection setup failed"))
            if isinstance(exc, RespError):
                raise ConnectionError(f"redis refused the connection setup: {exc}") from exc
            if isinstance(exc, OSError) and not isinstance(exc, ConnectionError):  # e.g. socket.gaierror
                raise ConnectionError(f"cannot connect to redis at {self.host}:{self.port}: {exc}") from exc
            raise
        return conn

    async def aclose(self) -> None:
        """Close the connection; pending and later calls fail with ``ConnectionError``."""
        self._closed = True
        task = self._connecting
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            if conn.later:  # deferred commands (a settle at shutdown) are sent and answered before closing
                deferred = [fut for _, fut in conn.later]
                conn.flush()
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(asyncio.gather(*deferred, return_exceptions=True), 0.5)
            conn.abort(ConnectionError("redis client is closed"))
