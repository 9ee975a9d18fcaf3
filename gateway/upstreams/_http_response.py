"""The response side of ``_http.py``'s client: status and headers, and the body as the connection delivers it.

The connection (``_http._Connection``) feeds a response through its underscored methods (``_chunks``, ``_wake``,
``_end``) and gets flow control back from ``_take``: past ``HIGH_WATER`` buffered bytes it stops reading the socket,
and the response resumes it once the consumer has taken the buffer under ``LOW_WATER``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.upstreams._http import _Connection

#: Buffered body bytes above which the socket stops being read (the consumer is slower than the server),
#: and below which reading resumes.
HIGH_WATER = 1 << 20
LOW_WATER = 1 << 18


class HTTPProtocolError(Exception):
    """The upstream broke HTTP: a malformed response, or the connection closed before the response ended.

    ``partial`` tells whether any byte of the response had arrived (False: the server dropped the request
    without answering; True: the response was cut, so part of it may already have been used).
    """

    def __init__(self, message: str, *, partial: bool) -> None:
        super().__init__(message)
        self.partial = partial


class HTTPResponse:
    """One response: status and headers at once, the body through ``read`` or ``iter_lines``.

    Use it as ``async with`` (or call ``close``) so that a response not read to its end closes its
    connection; a response read to the end has already given its connection back.
    """

    __slots__ = (
        "_buffered",
        "_chunks",
        "_complete",
        "_conn",
        "_dropped",
        "_error",
        "_loop",
        "_timeout",
        "_timer",
        "_until_eof",
        "_wait_since",
        "_waiter",
        "headers",
        "status",
    )

    def __init__(self, conn: _Connection, read_timeout: float | None) -> None:
        self.status: int = 0
        """The final status code (1xx interim responses are skipped); 0 until the headers are parsed."""
        self.headers: dict[bytes, bytes] = {}
        """Lower-cased names; a repeated header's values joined with ``b", "``. Trailers are dropped."""
        self._conn: _Connection | None = conn
        self._loop = conn.loop
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._complete = False
        self._dropped = False
        self._until_eof = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._timeout = read_timeout
        self._timer: asyncio.TimerHandle | None = None
        self._wait_since = 0.0

    async def read(self) -> bytes:
        """The whole (rest of the) body; the connection is back in the pool once it returns."""
        parts: list[bytes] = []
        while True:
            while self._chunks:
                parts.append(self._take())
            if self._complete:
                break
            await self._more()
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def iter_lines(self) -> AsyncIterator[bytes]:
        """The body split after each ``b"\\n"`` (kept), and a last line without one; for SSE.

        An iterator object rather than an async generator: a consumer that stops at ``data: [DONE]``
        would leave a generator for the loop to finalise, and that costs a task per stream.
        """
        return _Lines(self)

    def close(self) -> None:
        """Abort: close the connection, so the server sees the client go away (vLLM then aborts the
        generation). Idempotent; does nothing once the body is complete."""
        if self._complete or self._error is not None:
            return
        self._error = HTTPProtocolError("response closed before its end", partial=True)
        self._dropped = True  # what had arrived is dropped too: reading now raises
        self._chunks.clear()
        conn = self._conn
        if conn is not None:
            conn.abort()

    async def __aenter__(self) -> HTTPResponse:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    # -- fed by the connection -----------------------------------------------------------------------

    def _take(self) -> bytes:
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        conn = self._conn
        if conn is not None and conn.paused and self._buffered <= LOW_WATER:
            conn.paused = False
            conn.transport.resume_reading()
        return chunk

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _end(self, error: BaseException | None) -> None:
        """The connection is done with this response: complete (``error`` None) or failed."""
        self._conn = None
        if error is None:
            self._complete = True
        elif self._error is None:
            self._error = error
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._wake()

    async def _more(self) -> None:
        """Wait until the connection delivers something (bytes, the end or an error), or time out."""
        if self._error is not None:
            raise self._error
        waiter = self._loop.create_future()
        self._waiter = waiter
        if self._timeout is not None:
            # One timer per response, re-armed only when it fires: no timer per chunk.
            self._wait_since = self._loop.time()
            if self._timer is None:
                self._timer = self._loop.call_at(self._wait_since + self._timeout, self._on_timer)
        try:
            await waiter
        except BaseException:  # cancelled: the response is abandoned mid-way
            self._waiter = None
            self.close()
            raise
        if self._error is not None:
            raise self._error

    def _on_timer(self) -> None:
        self._timer = None
        if self._waiter is None or self._conn is None or self._timeout is None:
            return  # not waiting now: the next wait re-arms
        deadline = self._wait_since + self._timeout
        if self._loop.time() + 0.001 < deadline:  # data came since the timer was armed: wait the rest
            self._timer = self._loop.call_at(deadline, self._on_timer)
            return
        conn = self._conn
        self._end(TimeoutError(f"no response bytes for {self._timeout:g}s"))
        conn.abort()


class _Lines:
    """``HTTPResponse.iter_lines``: joins lines split across chunks without quadratic copies."""

    __slots__ = ("_chunk", "_parts", "_pos", "_resp")

    def __init__(self, resp: HTTPResponse) -> None:
        self._resp = resp
        self._chunk = b""
        self._pos = 0
        self._parts: list[bytes] = []

    def __aiter__(self) -> _Lines:
        return self

    async def __anext__(self) -> bytes:
        chunk, pos, resp = self._chunk, self._pos, self._resp
        if resp._dropped:
            raise resp._error  # type: ignore[misc]  # set with _dropped
        while True:
            end = chunk.find(b"\n", pos) + 1
            if end:
                self._pos = end
                line = chunk if pos == 0 and end == len(chunk) else chunk[pos:end]
                if self._parts:
                    self._parts.append(line)
                    line = b"".join(self._parts)
                    self._parts = []
                return line
            if pos < len(chunk):
                self._parts.append(chunk[pos:] if pos else chunk)
            self._chunk, self._pos = b"", 0
            while not resp._chunks:
                if resp._complete:
                    if self._parts:
                        line = b"".join(self._parts)
                        self._parts = []
                        return line
                    raise StopAsyncIteration
                await resp._more()
            chunk, pos = resp._take(), 0
            self._chunk = chunk
