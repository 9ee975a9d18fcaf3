"""``gateway.upstreams._http``: the pooled HTTP/1.1 client, against the vLLM emulator and raw asyncio servers.

Every test runs on both loops the client meets: asyncio's (tests, tools) and uvloop (the gateway).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import re
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
import uvloop

from gateway.upstreams._http import HTTPPool, HTTPProtocolError, HTTPResponse
from interlock.emulator import EmulatorServer

HOST = "127.0.0.1"
CHAT = b"/v1/chat/completions"
JSON = b"content-type: application/json\r\n"
#: A broken client tends to hang rather than fail: make that a quick failure.
pytestmark = pytest.mark.timeout(30)
_RUNNERS: dict[str, Callable[[Coroutine[Any, Any, Any]], Any]] = {"asyncio": asyncio.run, "uvloop": uvloop.run}


def on_both_loops(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Turn an async test into a sync one run once on asyncio's loop and once on uvloop."""

    @functools.wraps(test)
    def run(loop: str, *args: Any, **kwargs: Any) -> None:
        _RUNNERS[loop](test(*args, **kwargs))

    signature = inspect.signature(test)
    loop_param = inspect.Parameter("loop", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    run.__signature__ = signature.replace(parameters=[loop_param, *signature.parameters.values()])  # type: ignore[attr-defined]
    del run.__wrapped__  # pytest and pytest-asyncio must see the sync wrapper, not the coroutine
    return pytest.mark.parametrize("loop", list(_RUNNERS))(run)


async def eventually(condition: Callable[[], bool], what: str, limit: float = 10.0) -> None:
    """Wait (bounded) for something another process or the loop does; not a timing assertion."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.01)


# -- the vLLM emulator ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(port=0, served_model_names=["m"]) as server:
        yield server


@pytest.fixture
def emu(emulator: EmulatorServer) -> EmulatorServer:
    emulator.reset()
    return emulator


def chat(*, stream: bool = False, max_tokens: int = 4, request_id: str | None = None) -> bytes:
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": max_tokens}
    if stream:
        body["stream"] = True
    if request_id is not None:
        body["request_id"] = request_id
    return orjson.dumps(body)


def knobs(**values: str) -> bytes:
    """The header block with per-request emulator overrides, e.g. ``knobs(tpot_ms="30000")``."""
    return JSON + b"".join(f"x-emulator-{k.replace('_', '-')}: {v}\r\n".encode() for k, v in values.items())


async def post(pool: HTTPPool, emu: EmulatorServer, body: bytes, header_block: bytes = JSON, **kw: Any) -> HTTPResponse:
    return await pool.request(b"POST", HOST, emu.port, CHAT, header_block, body, **kw)


async def lines_of(resp: HTTPResponse, into: list[bytes] | None = None) -> list[bytes]:
    lines = [] if into is None else into
    async for line in resp.iter_lines():
        lines.append(line)
    return lines


# -- raw servers for the edge cases ------------------------------------------------------------------------


@dataclass
class RawRequest:
    head: bytes
    body: bytes


#: ``answer(request, index on its connection, writer)`` -> keep the connection open?
Answer = Callable[[RawRequest, int, asyncio.StreamWriter], Awaitable[bool]]


class RawServer:
    """A loopback HTTP/1.1 server that answers with scripted bytes; counts connections and requests."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.accepted = 0
        self.requests: list[RawRequest] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.port = 0
        self._tasks: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        for writer in self.writers:
            writer.transport.abort()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.accepted += 1
        self.writers.append(writer)
        try:
            for nth in range(10**6):
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                match = re.search(rb"(?im)^content-length: *(\d+)", head)
                body = await reader.readexactly(int(match.group(1))) if match else b""
                self.requests.append(RawRequest(head, body))
                if not await self.answer(self.requests[-1], nth, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return  # the client left, or the test is over (a cancelled handler would be logged as an error)
        finally:
            writer.transport.close()


def respond(data: bytes, *, close: bool = False) -> Answer:
    async def answer(request: RawRequest, nth: int, writer: asyncio.StreamWriter) -> bool:
        writer.write(data)
        await writer.drain()
        return not close

    return answer


def ok(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def chunked(*chunks: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    return head + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks if c) + b"0\r\n\r\n"


async def get(pool: HTTPPool, server: RawServer, method: bytes = b"GET", **kw: Any) -> HTTPResponse:
    return await pool.request(method, HOST, server.port, b"/", b"", **kw)


@contextlib.asynccontextmanager
async def pooled(**options: Any) -> Any:
    pool = HTTPPool(**options)
    try:
        yield pool
    finally:
        await pool.aclose()


# -- framing, reuse, request encoding ---------------------------------------------------------------------

CHUNKED_EXT_TRAILERS = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\n\r\n"
    b"5;name=value\r\nhello\r\n6;a=b;flag\r\n world\r\n0\r\nx-sum: 42\r\n\r\n"
)
FRAMINGS = [
    # method, response, server closes after it, expected status, body, connections for two requests
    pytest.param(b"GET", ok(b"hello"), False, 200, b"hello", 1, id="content-length"),
    pytest.param(b"GET", CHUNKED_EXT_TRAILERS, False, 200, b"hello world", 1, id="chunked-extensions-trailers"),
    pytest.param(b"GET", b"HTTP/1.1 200 OK\r\n\r\nuntil the end", True, 200, b"until the end", 2, id="close-delimited"),
    pytest.param(
        b"GET",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        False,
        200,
        b"ok",
        2,
        id="connection-close",
    ),
    pytest.param(b"GET", b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", False, 200, b"ok", 2, id="http-1.0"),
    pytest.param(b"DELETE", b"HTTP/1.1 204 No Content\r\n\r\n", False, 204, b"", 1, id="204"),
    pytest.param(b"GET", b"HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n", False, 304, b"", 1, id="304"),
    pytest.param(b"HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", False, 200, b"", 1, id="head"),
    pytest.param(
        b"POST",
        b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"after continue"),
        False,
        200,
        b"after continue",
        1,
        id="100-continue",
    ),
]


@pytest.mark.parametrize(("method", "response", "server_closes", "status", "body", "connections"), FRAMINGS)
@on_both_loops
async def test_when_the_response_is_framed_so_then_body_and_reuse_follow(
    method: bytes, response: bytes, server_closes: bool, status: int, body: bytes, connections: int
) -> None:
    async with RawServer(respond(response, close=server_closes)) as server, pooled() as pool:
        for _ in range(2):
            async with await get(pool, server, method) as resp:
                assert (resp.status, await resp.read()) == (status, body)
        assert server.accepted == connections
        assert pool.open_count == (1 if connections == 1 else 0)


@on_both_loops
async def test_when_headers_repeat_or_come_interim_or_as_trailers_then_only_final_ones_show_joined() -> None:
    response = (
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX-Thing: y\r\nset-cookie: b=2\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nok\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    async with RawServer(respond(response)) as server, pooled() as pool:
        resp = await get(pool, server)
        assert await resp.read() == b"ok"
        assert resp.headers == {b"set-cookie": b"a=1, b=2", b"x-thing": b"y", b"transfer-encoding": b"chunked"}


REQUESTS = [
    # method, header block, body, expected bytes on the wire
    pytest.param(
        b"POST",
        b"x-a: 1\r\n",
        b"abc",
        b"POST /p?q=1 HTTP/1.1\r\nhost: H\r\ncontent-length: 3\r\nx-a: 1\r\n\r\n",
        id="post",
    ),
    pytest.param(b"POST", b"", b"", b"POST /p?q=1 HTTP/1.1\r\nhost: H\r\ncontent-length: 0\r\n\r\n", id="empty-post"),
    pytest.param(b"GET", b"accept: */*\r\n", b"", b"GET /p?q=1 HTTP/1.1\r\nhost: H\r\naccept: */*\r\n\r\n", id="get"),
]


@pytest.mark.parametrize(("method", "header_block", "body", "wire"), REQUESTS)
@on_both_loops
async def test_when_a_request_is_sent_then_host_and_length_are_added_to_the_callers_headers(
    method: bytes, header_block: bytes, body: bytes, wire: bytes
) -> None:
    async with RawServer(respond(ok(b""))) as server, pooled() as pool:
        resp = await pool.request(method, HOST, server.port, b"/p?q=1", header_block, body)
        await resp.read()
        host = b"%s:%d" % (HOST.encode(), server.port)
        assert server.requests == [RawRequest(wire.replace(b"host: H", b"host: " + host), body)]


@on_both_loops
async def test_when_100_requests_run_one_after_another_then_one_connection_serves_them_all() -> None:
    async with RawServer(respond(ok(b"x" * 100))) as server, pooled() as pool:
        for _ in range(100):
            resp = await get(pool, server)
            assert await resp.read() == b"x" * 100
        assert (server.accepted, len(server.requests)) == (1, 100)
        assert (pool.open_count, pool.idle_count) == (1, 1)


@on_both_loops
async def test_when_more_finish_than_max_idle_then_only_max_idle_stay_open() -> None:
    async def slow(request: RawRequest, nth: int, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.05)  # so the five requests overlap and need five connections
        writer.write(ok(b"k"))
        return True

    async with RawServer(slow) as server, pooled(max_idle_per_origin=2) as pool:
        results = await asyncio.gather(*(get(pool, server) for _ in range(5)))
        assert [await r.read() for r in results] == [b"k"] * 5
        assert server.accepted == 5
        assert (pool.open_count, pool.idle_count) == (2, 2)


# -- bodies: big, fragmented, slow consumers -----------------------------------------------------------------

LINE_SPLITS = [
    # fragments sent one by one as chunks, expected lines
    pytest.param([b"a\n", b"b\n"], [b"a\n", b"b\n"], id="line-per-chunk"),
    pytest.param([b"a", b"b", b"c\n"], [b"abc\n"], id="line-over-three-chunks"),
    pytest.param([b"a\nb", b"c\nd"], [b"a\n", b"bc\n", b"d"], id="last-line-without-newline"),
    pytest.param([b"\n\nx", b"\n\ny\n"], [b"\n", b"\n", b"x\n", b"\n", b"y\n"], id="empty-lines"),
    pytest.param(
        [bytes([c]) for c in b"data: 1\n\ndata: 2\n\n"], [b"data: 1\n", b"\n", b"data: 2\n", b"\n"], id="bytewise"
    ),
    pytest.param([], [], id="empty-body"),
]


@pytest.mark.parametrize(("fragments", "lines"), LINE_SPLITS)
@on_both_loops
async def test_when_lines_are_split_across_chunks_then_iter_lines_rejoins_them(
    fragments: list[bytes], lines: list[bytes]
) -> None:
    async def trickle(request: RawRequest, nth: int, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for fragment in fragments:
            writer.write(b"%x\r\n%s\r\n" % (len(fragment), fragment))
            await writer.drain()
            await asyncio.sleep(0.001)  # let the client see each fragment on its own
        writer.write(b"0\r\n\r\n")
        return True

    async with RawServer(trickle) as server, pooled() as pool:
        resp = await get(pool, server)
        assert await lines_of(resp) == lines
        assert pool.idle_count == 1


BIG = bytes(range(256)) * (8 * 4096)  # 8 MiB
BODIES = [
    pytest.param(ok(BIG), BIG, id="8MiB-content-length"),
    pytest.param(chunked(*(BIG[i : i + 65536] for i in range(0, len(BIG), 65536))), BIG, id="8MiB-chunked"),
    pytest.param(chunked(*[b"tiny\n"] * 20000), b"tiny\n" * 20000, id="20000-small-chunks"),
]


@pytest.mark.parametrize(("response", "body"), BODIES)
@on_both_loops
async def test_when_the_body_is_large_or_finely_chunked_then_read_returns_it_whole(
    response: bytes, body: bytes
) -> None:
    async with RawServer(respond(response)) as server, pooled() as pool:
        for _ in range(2):
            resp = await get(pool, server)
            assert await resp.read() == body
        assert server.accepted == 1


@on_both_loops
async def test_when_the_consumer_stalls_then_reading_pauses_and_resumes_with_the_body_intact() -> None:
    line = b"x" * 1023 + b"\n"
    body = line * 32 * 1024  # 32 MiB: far more than the socket buffers and the 1 MiB high-water mark
    async with RawServer(respond(ok(body))) as server, pooled() as pool:
        resp = await get(pool, server)
        lines = resp.iter_lines()
        assert await anext(lines) == line
        transport = server.writers[0].transport
        sizes: list[int] = []

        def settled() -> bool:
            sizes.append(transport.get_write_buffer_size())
            return len(sizes) > 10 and len(set(sizes[-10:])) == 1

        await eventually(settled, "the server's send buffer stops moving")
        # A client reading on regardless would have drained the server; ours left most of the body there.
        assert sizes[-1] > 8 << 20
        rest = [chunk async for chunk in lines]
        assert len(rest) == 32 * 1024 - 1 and set(rest) == {line}
        assert pool.idle_count == 1


# -- closed, stale and broken connections ----------------------------------------------------------------------


@on_both_loops
async def test_when_the_server_closes_an_idle_connection_then_it_leaves_the_pool() -> None:
    async def then_close(request: RawRequest, nth: int, writer: asyncio.StreamWriter) -> bool:
        writer.write(ok(b"bye"))
        await writer.drain()
        await asyncio.sleep(0.01)  # the server's keep-alive timeout, shortened
        return False

    async with RawServer(then_close) as server, pooled() as pool:
        assert await (await get(pool, server)).read() == b"bye"
        await eventually(lambda: pool.open_count == 0, "the pool notices the close")
        assert pool.idle_count == 0
        assert await (await get(pool, server)).read() == b"bye"
        assert (server.accepted, len(server.requests)) == (2, 2)


def drop_unanswered(after: int) -> Answer:
    """Answer the first ``after`` requests overall, then close on every request without a byte of answer."""
    served = 0

    async def answer(request: RawRequest, nth: int, writer: asyncio.StreamWriter) -> bool:
        nonlocal served
        if nth > 0 or served >= after:  # a reused connection (the keep-alive race) or a dead server
            return False
        served += 1
        writer.write(ok(b"fine"))
        return True

    return answer


STALE = [
    # answered before the server turns bad, outcome of the request on the reused connection, connections
    pytest.param(2, b"fine", 2, id="retried-once-on-a-fresh-connection"),
    pytest.param(1, HTTPProtocolError, 2, id="fresh-connection-fails-too-no-second-retry"),
]


@pytest.mark.parametrize(("after", "outcome", "connections"), STALE)
@on_both_loops
async def test_when_a_reused_connection_closes_before_answering_then_the_request_is_retried_once(
    after: int, outcome: bytes | type[Exception], connections: int
) -> None:
    async with RawServer(drop_unanswered(after)) as server, pooled() as pool:
        assert await (await get(pool, server)).read() == b"fine"
        if outcome is HTTPProtocolError:
            with pytest.raises(HTTPProtocolError) as caught:
                await get(pool, server)
            assert caught.value.partial is False
        else:
            assert await (await get(pool, server)).read() == outcome
        assert server.accepted == connections
        assert len(server.requests) == 3  # the first, the one the server dropped, and the single retry


BROKEN = [
    # what a reused connection sends for the second request before closing, where the error surfaces
    pytest.param(b"HTTP/1.1 200 OK\r\nContent-Le", "request", id="cut-in-headers"),
    pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "read", id="cut-in-body"),
    pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "read", id="cut-in-chunk"),
]


@pytest.mark.parametrize(("partial_answer", "where"), BROKEN)
@on_both_loops
async def test_when_a_response_is_cut_after_its_first_byte_then_partial_error_and_no_retry(
    partial_answer: bytes, where: str
) -> None:
    async def answer(request: RawRequest, nth: int, writer: asyncio.StreamWriter) -> bool:
        writer.write(ok(b"first") if nth == 0 else partial_answer)
        await writer.drain()
        return nth == 0

    async with RawServer(answer) as server, pooled() as pool:
        assert await (await get(pool, server)).read() == b"first"
        with pytest.raises(HTTPProtocolError) as caught:
            resp = await get(pool, server)
            assert where == "read"
            await resp.read()
        assert caught.value.partial is True
        assert (server.accepted, len(server.requests), pool.open_count) == (1, 2, 0)


MALFORMED = [
    pytest.param(b"NOT HTTP AT ALL\r\n\r\n", "request", id="not-http"),
    pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n", "request", id="bad-content-length"),
    pytest.param(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        "request",
        id="length-and-chunked",
    ),
    pytest.param(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n", "request", id="upgrade"
    ),
    pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "either", id="bad-chunk-size"),
]


@pytest.mark.parametrize(("garbage", "where"), MALFORMED)
@on_both_loops
async def test_when_the_response_is_not_http_then_protocol_error_and_the_connection_is_closed(
    garbage: bytes, where: str
) -> None:
    async with RawServer(respond(garbage)) as server, pooled() as pool:
        with pytest.raises(HTTPProtocolError) as caught:
            resp = await get(pool, server)
            assert where != "request"
            await resp.read()
        assert caught.value.partial is True
        assert pool.open_count == 0


@on_both_loops
async def test_when_a_response_is_left_unread_then_its_connection_is_closed_not_reused() -> None:
    async with RawServer(respond(ok(BIG))) as server, pooled() as pool:
        async with await get(pool, server) as resp:
            assert resp.status == 200
        assert pool.open_count == 0
        resp.close()  # idempotent
        with pytest.raises(HTTPProtocolError):
            await resp.read()
        assert await (await get(pool, server)).read() == BIG
        assert server.accepted == 2


@on_both_loops
async def test_when_idle_longer_than_idle_timeout_then_a_new_connection_is_opened() -> None:
    async with RawServer(respond(ok(b"x"))) as server, pooled(idle_timeout=0.02) as pool:
        await (await get(pool, server)).read()
        await asyncio.sleep(0.1)
        await (await get(pool, server)).read()
        assert server.accepted == 2
        assert pool.open_count == 1


@on_both_loops
async def test_when_the_pool_closes_then_every_connection_closes_and_requests_are_refused() -> None:
    async def first_only(request: RawRequest, nth: int, writer: asyncio.StreamWriter) -> bool:
        if request.head.startswith(b"GET /slow"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart")
        else:
            writer.write(ok(b"x"))
        return True

    async with RawServer(first_only) as server:
        pool = HTTPPool()
        busy = await pool.request(b"GET", HOST, server.port, b"/slow", b"")
        await (await get(pool, server)).read()
        assert (pool.open_count, pool.idle_count) == (2, 1)
        await pool.aclose()
        assert (pool.open_count, pool.idle_count) == (0, 0)
        with pytest.raises(HTTPProtocolError):
            await busy.read()
        with pytest.raises(RuntimeError):
            await get(pool, server)


# -- timeouts and connect failures --------------------------------------------------------------------------------


@on_both_loops
async def test_when_nothing_accepts_the_connection_then_connect_timeout_raises_timeout_error() -> None:
    listener = socket.socket()
    listener.bind((HOST, 0))
    listener.listen(0)  # a backlog we never accept from: once full, new SYNs go unanswered
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(8):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect((HOST, port))
        fillers.append(filler)
    try:
        async with pooled(connect_timeout=0.2) as pool:
            with pytest.raises(TimeoutError):
                await pool.request(b"GET", HOST, port, b"/", b"")
            assert pool.open_count == 0
    finally:
        for s in [*fillers, listener]:
            s.close()


@on_both_loops
async def test_when_nothing_listens_then_connection_refused() -> None:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    async with pooled() as pool:
        with pytest.raises(ConnectionRefusedError):
            await pool.request(b"GET", HOST, port, b"/", b"")


@on_both_loops
async def test_when_the_server_never_answers_then_read_timeout_raises_and_closes(emu: EmulatorServer) -> None:
    async with pooled() as pool:
        with pytest.raises(TimeoutError):
            await post(pool, emu, chat(), knobs(fault="hang"), read_timeout=0.1)
        assert pool.open_count == 0
        await eventually(lambda: emu.stats()["cancelled"] == 1, "the emulator sees the client leave")


@on_both_loops
async def test_when_a_stream_falls_silent_then_read_timeout_raises_mid_body(emu: EmulatorServer) -> None:
    async with pooled() as pool:
        resp = await post(pool, emu, chat(stream=True), knobs(tpot_ms="30000"), read_timeout=0.2)
        lines: list[bytes] = []
        with pytest.raises(TimeoutError):
            await lines_of(resp, lines)
        assert any(b'"role":"assistant"' in line for line in lines)  # what came before the silence
        assert pool.open_count == 0
        await eventually(lambda: emu.stats()["cancelled"] == 1, "the emulator aborts the generation")


@on_both_loops
async def test_when_tokens_keep_coming_then_the_read_timeout_bounds_each_wait_not_the_whole(
    emu: EmulatorServer,
) -> None:
    async with pooled() as pool:
        resp = await post(pool, emu, chat(stream=True, max_tokens=8), knobs(tpot_ms="60"), read_timeout=0.3)
        lines = await lines_of(resp)  # ~0.5 s in all, never 0.3 s without a byte
        assert lines[-2:] == [b"data: [DONE]\n", b"\n"]


# -- the emulator: SSE, concurrency, faults, cancellation ----------------------------------------------------------


@on_both_loops
async def test_when_streaming_from_the_emulator_then_lines_match_its_raw_stream(emu: EmulatorServer) -> None:
    body = chat(stream=True, max_tokens=16, request_id="fixed")
    async with (
        httpx.AsyncClient() as client,
        client.stream(
            "POST", emu.url + CHAT.decode(), content=body, headers={"content-type": "application/json"}
        ) as raw_resp,
    ):
        raw = b"".join([chunk async for chunk in raw_resp.aiter_raw()])
    async with pooled() as pool:
        resp = await post(pool, emu, body)
        assert resp.headers[b"transfer-encoding"] == b"chunked"
        lines = await lines_of(resp)
        assert pool.idle_count == 1
    created = re.compile(rb'"created":\d+')
    assert created.sub(b"", b"".join(lines)) == created.sub(b"", raw)
    assert len(lines) == 2 * 18  # role, 16 tokens, [DONE]: each event a data line and a blank line
    assert all(line.endswith(b"\n") for line in lines)


@on_both_loops
async def test_when_200_requests_run_at_once_then_all_succeed_on_at_most_200_connections(emu: EmulatorServer) -> None:
    async with pooled() as pool:
        for _ in range(2):
            responses = await asyncio.gather(*(post(pool, emu, chat()) for _ in range(200)))
            bodies = await asyncio.gather(*(r.read() for r in responses))
            assert [r.status for r in responses] == [200] * 200
            assert all(orjson.loads(b)["usage"]["completion_tokens"] == 4 for b in bodies)
            assert pool.open_count <= 200
            assert pool.idle_count == pool.open_count
        assert emu.stats()["requests_received"] == 400


@on_both_loops
async def test_when_the_emulator_answers_an_error_status_then_it_is_a_response_and_the_connection_stays(
    emu: EmulatorServer,
) -> None:
    emu.script_faults("status:503")
    async with pooled() as pool:
        resp = await post(pool, emu, chat())
        assert resp.status == 503
        assert orjson.loads(await resp.read())["error"]["code"] == 503
        assert (await post(pool, emu, chat())).status == 200
        assert pool.open_count == 1


@on_both_loops
async def test_when_the_emulator_sends_garbage_json_then_the_bytes_come_through_as_they_are(
    emu: EmulatorServer,
) -> None:
    # The emulator's "garbage" is valid HTTP around a non-JSON body: judging the body is the caller's job.
    async with pooled() as pool:
        resp = await post(pool, emu, chat(), knobs(fault="garbage"))
        assert resp.status == 200
        assert (await resp.read()).startswith(b"<html>")


@on_both_loops
async def test_when_the_emulator_cuts_a_stream_then_partial_protocol_error_after_the_lines_sent(
    emu: EmulatorServer,
) -> None:
    async with pooled() as pool:
        resp = await post(pool, emu, chat(stream=True), knobs(fault="cut:3"))
        lines: list[bytes] = []
        with pytest.raises(HTTPProtocolError) as caught:
            await lines_of(resp, lines)
        assert caught.value.partial is True
        assert len([line for line in lines if line.startswith(b"data: {")]) == 4  # role + 3 tokens
        assert b"data: [DONE]\n" not in lines
        assert pool.open_count == 0


RESETS = [
    # resets scripted, connection warmed first, outcome, requests the emulator receives
    pytest.param(1, False, HTTPProtocolError, 1, id="fresh-connection-no-retry"),
    pytest.param(1, True, 200, 3, id="reused-connection-retried"),
    pytest.param(2, True, HTTPProtocolError, 3, id="reused-then-fresh-both-reset"),
]


@pytest.mark.parametrize(("resets", "warm", "outcome", "received"), RESETS)
@on_both_loops
async def test_when_the_emulator_resets_before_answering_then_only_a_reused_connection_is_retried(
    emu: EmulatorServer, resets: int, warm: bool, outcome: int | type[Exception], received: int
) -> None:
    async with pooled() as pool:
        if warm:
            await (await post(pool, emu, chat())).read()
        emu.script_faults("reset", count=resets)
        if outcome is HTTPProtocolError:
            with pytest.raises(HTTPProtocolError) as caught:
                await post(pool, emu, chat())
            assert caught.value.partial is False
        else:
            assert (await post(pool, emu, chat())).status == outcome
        assert emu.stats()["requests_received"] == received


async def _abandon(how: str, resp: HTTPResponse, lines: Any) -> None:
    if how == "close":
        resp.close()
    elif how == "aexit":
        async with resp:
            pass
    else:
        while True:  # read what has come, until a read has to wait for the next token
            reading = asyncio.ensure_future(anext(lines))
            done, _ = await asyncio.wait({reading}, timeout=0.2)
            if not done:
                break
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading


@pytest.mark.parametrize("how", ["close", "aexit", "cancel-read"])
@on_both_loops
async def test_when_a_stream_is_abandoned_then_the_connection_closes_and_vllm_aborts(
    emu: EmulatorServer, how: str
) -> None:
    async with pooled() as pool:
        resp = await post(pool, emu, chat(stream=True), knobs(tpot_ms="30000"))
        lines = resp.iter_lines()
        assert (await anext(lines)).startswith(b"data: {")
        await _abandon(how, resp, lines)
        assert pool.open_count == 0
        await eventually(lambda: emu.stats()["cancelled"] == 1, "the emulator aborts the generation")
        with pytest.raises(HTTPProtocolError):
            await anext(lines)


@on_both_loops
async def test_when_a_request_is_cancelled_before_its_headers_then_the_connection_closes(emu: EmulatorServer) -> None:
    async with pooled() as pool:
        await (await post(pool, emu, chat())).read()  # a pooled connection, to check it is not returned
        task = asyncio.ensure_future(post(pool, emu, chat(), knobs(ttft_ms="30000")))
        await eventually(lambda: emu.stats()["in_flight"] == 1, "the request reaches the emulator")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (pool.open_count, pool.idle_count) == (0, 0)
        await eventually(lambda: emu.stats()["cancelled"] == 1, "the emulator sees the client leave")
        assert (await post(pool, emu, chat())).status == 200
