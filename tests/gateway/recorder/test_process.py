"""The gateway's side of its recorder (gateway/recorder/process.py): when the recorder falls behind, new traces
are sampled in proportion and counted, rather than made and then mostly dropped."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import os
import signal
import threading
from collections.abc import Iterator

import pytest

from gateway.recorder import RecorderProcess
from observability import SERVER, Tracing

#: A long attribute makes each span ~4 KiB, so a few thousand fill what counts as "behind" (4 MiB) quickly.
PADDING = "x" * 4000


class _Collector(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    posts = 0

    def do_POST(self):
        self.rfile.read(int(self.headers["content-length"]))
        _Collector.posts += 1
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    _Collector.posts = 0
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v1/traces"
    server.shutdown()


async def requests(tracing: Tracing, n: int) -> None:
    """``n`` traced requests, a SERVER span each, yielding to the loop now and then as a gateway would."""
    for i in range(n):
        span = tracing.start_span("chat m", SERVER, {"gen_ai.request.model": "m", "padding": PADDING})
        if span is not None:
            span.end()
        if i % 50 == 0:
            await asyncio.sleep(0)


async def until(check, timeout: float = 30.0) -> bool:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.05)
    return True


async def test_when_the_recorder_falls_behind_then_traces_are_sampled_and_counted_not_dropped(collector):
    tracing = Tracing("test", otlp_endpoint=collector)
    recorder = RecorderProcess({"otlp_endpoint": collector}, on_keep_ratio=tracing.set_keep_ratio, span_interval=0.05)
    await recorder.start()
    tracing.send_to(recorder.add_span)
    assert await recorder.wait_ready(30)
    os.kill(recorder.pid, signal.SIGSTOP)  # a recorder that gets no CPU, as at idle priority on a saturated core
    try:
        await requests(tracing, 2000)  # ~8 MiB: twice what counts as behind
        await until(lambda: recorder.keep_ratio < 1.0)
        await requests(tracing, 4000)
        assert tracing.shed > 1000  # most new traces were not made at all while it was behind...
        await asyncio.sleep(0.2)
        assert recorder.totals["spans_dropped"] == 0  # ...so nothing made had to be thrown away
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(recorder.pid, signal.SIGCONT)
    # Once it caught up, every trace is recorded again.
    await until(lambda: recorder.keep_ratio == 1.0)
    assert tracing.keep_ratio == 1.0
    kept = tracing.shed
    await requests(tracing, 100)
    assert tracing.shed == kept
    await recorder.aclose()
    assert recorder.totals["spans_dropped"] == 0
    assert recorder.totals["spans"] >= 6000 - tracing.shed
