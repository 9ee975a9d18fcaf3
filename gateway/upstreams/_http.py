"""A lean pooled HTTP/1.1 client for the hot path: an asyncio ``Protocol`` fed to ``httptools``' parser.

aiohttp's client costs ~100 µs of CPU per small POST, a fifth of the gateway's whole budget; this one
costs ~30 µs (~26 µs of which are the event loop and the socket calls themselves), because it does only
what a proxy to model servers needs: no cookies, redirects, proxies, TLS or content decoding.

How a request goes: ``HTTPPool.request`` takes the newest idle connection of the origin (LIFO keeps few
sockets hot) or opens one, writes the request in one ``transport.write``, and returns an ``HTTPResponse``
once status and headers are parsed. Body bytes land in the response's queue as they arrive; when the
parser sees the message end, the connection goes straight back to the pool (the rest of the body is
then already in the response) or is closed when the server said ``Connection: close``. Anything else
that ends a response early (``close()``, a cancelled await, a timeout, a malformed byte) closes the
connection: it is never reused, so no half-read response can leak into the next request.

The connection and the pool are here, the response object in ``_http_response.py``.

Errors, for the caller to map at one seam::

    OSError (ConnectionRefusedError, socket.gaierror, ...)   connecting failed
    TimeoutError                                             connect_timeout or read_timeout passed
    HTTPProtocolError(partial=...)                           malformed response, or closed mid-way
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import deque

import httptools

from gateway.upstreams._http_response import HIGH_WATER, HTTPProtocolError, HTTPResponse

__all__ = ["HTTPPool", "HTTPProtocolError", "HTTPResponse"]

#: Methods that carry ``content-length`` even with an empty body (a POST without it may get 411).
_BODY_METHODS = frozenset((b"POST", b"PUT", b"PATCH"))
_NO_BODY_STATUS = (204, 304)


class _Stop(Exception):
    """Raised from a parser callback to stop parsing (HEAD, or bytes after the response)."""


class _Connection(asyncio.Protocol):
    """One TCP connection and its parser; serves one response at a time (no pipelining)."""

    __slots__ = (
        "got_bytes",
        "head",
        "idle_since",
        "interim",
        "key",
        "loop",
        "parser",
        "paused",
        "pool",
        "pooled",
        "resp",
        "reusable",
        "transport",
    )

    def __init__(self, pool: HTTPPool, key: tuple[str, int, bool], loop: asyncio.AbstractEventLoop) -> None:
        self.pool = pool
        self.key = key
        self.loop = loop
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set in connection_made
        self.parser = httptools.HttpResponseParser(self)
        self.resp: HTTPResponse | None = None
        self.got_bytes = False
        self.head = False
        self.interim = False
        self.paused = False
        self.pooled = False
        self.reusable = False
        self.idle_since = 0.0

    def start(self, payload: bytes, head: bool, read_timeout: float | None) -> HTTPResponse:
        resp = HTTPResponse(self, read_timeout)
        self.resp = resp
        self.head = head
        self.got_bytes = False
        self.transport.write(payload)
        return resp

    def abort(self) -> None:
        """Close now, never to be reused; the response in flight (if any) fails."""
        self.pool._forget(self)
        resp = self.resp
        if resp is not None:
            self.resp = None
            resp._end(HTTPProtocolError("connection aborted", partial=self.got_bytes))
        self.transport.abort()

    # -- asyncio.Protocol ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        resp = self.resp
        if resp is None:  # bytes nobody asked for: this connection is out of step
            self.abort()
            return
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            if not resp._complete:  # else a _Stop after the end (HEAD, or stray bytes)
                resp._end(HTTPProtocolError(f"malformed response: {exc}", partial=True))
                self.resp = None
                self.abort()
                return
        if resp._complete:
            self._release()
        else:
            resp._wake()

    def eof_received(self) -> bool:
        self.pool._forget(self)  # an idle connection the server closed is no longer offered
        return False  # the transport closes itself; connection_lost settles the response

    def connection_lost(self, exc: Exception | None) -> None:
        self.pool._forget(self)
        resp = self.resp
        if resp is None:
            return
        self.resp = None
        if exc is None and resp._until_eof:
            resp._end(None)  # a body delimited by the connection's close
            return
        partial = self.got_bytes
        what = "mid-response" if partial else "before responding"
        error = HTTPProtocolError(f"upstream closed the connection {what}", partial=partial)
        error.__cause__ = exc
        resp._end(error)

    # -- httptools callbacks --------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        resp = self.resp
        if resp is None or resp._complete:
            self.reusable = False
            raise _Stop
        if self.interim:
            self.interim = False
            resp.headers = {}

    def on_header(self, name: bytes, value: bytes) -> None:
        resp = self.resp
        if resp is None or resp.status:  # trailers: not exposed
            return
        name = name.lower()
        headers = resp.headers
        if name in headers:
            headers[name] += b", " + value
        else:
            headers[name] = value

    def on_headers_complete(self) -> None:
        resp = self.resp
        if resp is None:
            return
        status = self.parser.get_status_code()
        if status < 200:
            self.interim = True  # 100 Continue, 103 Early Hints: the final response follows
            return
        resp.status = status
        headers = resp.headers
        if self.head:
            # llhttp cannot be told a response to HEAD has no body; stop this parser and start a fresh one.
            self.reusable = self.parser.should_keep_alive()
            self.parser = httptools.HttpResponseParser(self)
            resp._complete = True
            raise _Stop
        if status not in _NO_BODY_STATUS and b"content-length" not in headers:
            te = headers.get(b"transfer-encoding", b"").rstrip().lower()
            resp._until_eof = not te.endswith(b"chunked")

    def on_body(self, data: bytes) -> None:
        resp = self.resp
        if resp is None:
            return
        resp._chunks.append(data)
        resp._buffered += len(data)
        if resp._buffered > HIGH_WATER and not self.paused:
            self.paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        resp = self.resp
        if resp is None or self.interim:
            return
        self.reusable = self.parser.should_keep_alive()
        resp._complete = True

    def _release(self) -> None:
        resp = self.resp
        self.resp = None
        if resp is not None:
            resp._end(None)
        if self.paused:
            self.paused = False
            self.transport.resume_reading()
        if self.reusable and not self.transport.is_closing():
            self.pool._checkin(self)
        else:
            self.abort()


class HTTPPool:
    """Keep-alive HTTP/1.1 connections to any number of origins (host, port), reused LIFO."""

    def __init__(
        self, *, connect_timeout: float = 2.0, max_idle_per_origin: int = 512, idle_timeout: float = 30.0
    ) -> None:
        """``idle_timeout``: an idle connection older than this is closed, not reused (keep it below the
        servers' own keep-alive, e.g. uvicorn's and vLLM's 5 s, to rarely meet a connection closing)."""
        self.connect_timeout = connect_timeout
        self.max_idle_per_origin = max_idle_per_origin
        self._ssl = None  # an ssl.SSLContext, made on the first HTTPS connection
        self.idle_timeout = idle_timeout
        self._idle: dict[tuple[str, int, bool], deque[_Connection]] = {}
        self._open: set[_Connection] = set()
        self._hosts: dict[tuple[str, int, bool], bytes] = {}
        self._closed = False

    @property
    def idle_count(self) -> int:
        """Connections waiting in the pool, all origins together."""
        return sum(len(idle) for idle in self._idle.values())

    @property
    def open_count(self) -> int:
        """Connections open, idle or serving a response."""
        return len(self._open)

    async def request(
        self,
        method: bytes,
        host: str,
        port: int,
        target: bytes,
        header_block: bytes,
        body: bytes = b"",
        *,
        read_timeout: float | None = None,
        tls: bool = False,
    ) -> HTTPResponse:
        """Send one request; returns once the status line and headers are parsed. ``tls``: HTTPS.

        ``header_block``: header lines without ``host`` and ``content-length`` (added here), each ending
        ``\\r\\n``. ``read_timeout``: the longest wait for any bytes (headers or body), None for no limit.

        A reused connection that fails before any response byte is retried once on a new connection.
        That is the keep-alive race: the server closed the idle connection (its keep-alive timeout) as
        we wrote, so it never read the request and nothing ran. A server that crashed mid-request looks
        the same; for a model server, running the request again only costs compute.
        """
        if self._closed:
            raise RuntimeError("HTTPPool is closed")
        key = (host, port, tls)
        payload = self._encode(method, key, target, header_block, body)
        head = method == b"HEAD"
        conn = self._checkout(key)
        if conn is not None:
            resp = await self._exchange(conn, payload, head, read_timeout, retry=True)
            if resp is not None:
                return resp
        conn = await self._connect(key)
        resp = await self._exchange(conn, payload, head, read_timeout, retry=False)
        assert resp is not None
        return resp

    async def aclose(self) -> None:
        """Close every connection, idle or busy (a response being read fails); the pool stays closed."""
        self._closed = True
        for conn in list(self._open):
            conn.abort()
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports finish closing

    # -- internals ------------------------------------------------------------------------------------

    def _encode(
        self, method: bytes, key: tuple[str, int, bool], target: bytes, header_block: bytes, body: bytes
    ) -> bytes:
        host = self._hosts.get(key)
        if host is None:
            name = b"[%s]" % key[0].encode() if ":" in key[0] else key[0].encode("idna")
            host = self._hosts[key] = b"host: %s:%d\r\n" % (name, key[1])
        if body or method in _BODY_METHODS:
            length = b"content-length: %d\r\n" % len(body)
            return b"".join((method, b" ", target, b" HTTP/1.1\r\n", host, length, header_block, b"\r\n", body))
        return b"".join((method, b" ", target, b" HTTP/1.1\r\n", host, header_block, b"\r\n"))

    async def _exchange(
        self, conn: _Connection, payload: bytes, head: bool, read_timeout: float | None, *, retry: bool
    ) -> HTTPResponse | None:
        """Write the request and wait for the headers; None when ``retry`` and it failed unanswered."""
        resp = conn.start(payload, head, read_timeout)
        while not resp.status:
            try:
                await resp._more()
            except HTTPProtocolError as exc:
                if resp.status:
                    break  # the headers came whole, then the body broke: reading it raises
                if retry and not exc.partial:
                    return None
                raise
        return resp

    def _checkout(self, key: tuple[str, int, bool]) -> _Connection | None:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            conn.pooled = False
            if conn.loop.time() - conn.idle_since > self.idle_timeout:
                # LIFO: every connection below is older still, so all of them have expired.
                idle.append(conn)
                for stale in idle:
                    stale.pooled = False
                    stale.abort()
                idle.clear()
                return None
            if not conn.transport.is_closing():
                return conn
            conn.abort()  # closing, and the loop has not told us yet
        return None

    def _checkin(self, conn: _Connection) -> None:
        if self._closed:
            conn.abort()
            return
        idle = self._idle.get(conn.key)
        if idle is None:
            idle = self._idle[conn.key] = deque()
        now = conn.idle_since = conn.loop.time()
        # Trim from the cold end as we go: expired ones, and the coldest when the stack is full.
        while idle and (len(idle) >= self.max_idle_per_origin or now - idle[0].idle_since > self.idle_timeout):
            idle[0].abort()
        if self.max_idle_per_origin > 0:
            conn.pooled = True
            idle.append(conn)
        else:
            conn.abort()

    def _forget(self, conn: _Connection) -> None:
        self._open.discard(conn)
        if conn.pooled:
            conn.pooled = False
            idle = self._idle.get(conn.key)
            if idle is not None:
                with contextlib.suppress(ValueError):
                    idle.remove(conn)

    async def _connect(self, key: tuple[str, int, bool]) -> _Connection:
        if self._closed:
            raise RuntimeError("HTTPPool is closed")
        loop = asyncio.get_running_loop()
        tls = {}
        if key[2]:
            if self._ssl is None:
                import ssl

                self._ssl = ssl.create_default_context()
            tls = {"ssl": self._ssl, "server_hostname": key[0]}
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(lambda: _Connection(self, key, loop), key[0], key[1], **tls)
        except TimeoutError as exc:
            raise TimeoutError(f"connecting to {key[0]}:{key[1]} timed out") from exc
        if self._closed:
            conn.transport.abort()
            raise RuntimeError("HTTPPool is closed")
        self._open.add(conn)
        return conn
