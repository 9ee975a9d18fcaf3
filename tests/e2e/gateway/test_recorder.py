"""The recorder process beside each gateway process: it writes the records and posts the spans, at idle CPU
priority, and the gateway restarts it when it dies. ``observability.recorder: thread`` keeps both in-process."""

from __future__ import annotations

import http.server
import os
import signal
import threading
from collections.abc import Iterator

import httpx
import orjson
import pytest

from tests.e2e.gateway.conftest import client, stored_records
from tests.support.gateway import model, running_gateway
from tests.support.polling import eventually


class _Collector(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP traces endpoint that keeps what it is sent."""

    protocol_version = "HTTP/1.1"
    received: list[dict] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        _Collector.received.append(orjson.loads(body))
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    _Collector.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v1/traces"
    server.shutdown()


def spans() -> list[dict]:
    return [
        span
        for request in _Collector.received
        for resource in request["resourceSpans"]
        for scope in resource["scopeSpans"]
        for span in scope["spans"]
    ]


def chat(url: str) -> str:
    r = client(url).chat.completions.with_raw_response.create(
        model="m", messages=[{"role": "user", "content": "hi"}], max_tokens=2
    )
    return r.headers["x-request-id"]


@pytest.mark.parametrize("mode", ["process", "thread"])
def test_when_requests_are_served_then_records_and_spans_leave_through_the_configured_recorder(
    fresh, gateway, collector, sqlite_url, mode
):
    url, app = gateway(
        models=[model("m", fresh[0].url)],
        database={"url": sqlite_url, "flush_interval": 0.1},
        observability={"otlp_endpoint": collector, "recorder": mode},
    )
    recorder = app.gateway.recorder
    assert (recorder is not None) is (mode == "process")
    ids = {chat(url) for _ in range(3)}
    assert {r["id"] for r in stored_records(sqlite_url, 3)} == ids
    assert eventually(lambda: len(spans()) >= 6, timeout=10)
    server = [s for s in spans() if s["kind"] == 2]
    assert len(server) == 3 and {s["name"] for s in server} == {"chat m"}
    attrs = {a["key"]: a["value"] for a in server[0]["attributes"]}
    assert attrs["gen_ai.request.model"] == {"stringValue": "m"}
    assert attrs["gen_ai.usage.output_tokens"] == {"intValue": "2"}
    if mode == "process":
        # Its reports reach the gateway's metrics at its next tick.
        assert eventually(lambda: recorder.totals["spans"] >= 6 and recorder.totals["written"] == 3, timeout=10)
        assert app.gateway.writer.pending == 0


def test_the_recorder_runs_at_idle_priority_so_the_gateway_always_goes_first(fresh, gateway):
    _, app = gateway(models=[model("m", fresh[0].url)])
    pid = app.gateway.recorder.pid
    assert eventually(lambda: os.sched_getscheduler(pid) == os.SCHED_IDLE, timeout=10)  # once it has started


def test_when_the_recorder_dies_then_the_gateway_restarts_it_and_no_record_is_lost(fresh, gateway, sqlite_url):
    url, app = gateway(models=[model("m", fresh[0].url)], database={"url": sqlite_url, "flush_interval": 0.1})
    recorder = app.gateway.recorder
    first = recorder.pid
    before = {chat(url) for _ in range(3)}
    os.kill(first, signal.SIGKILL)
    during = {chat(url) for _ in range(3)}  # journaled while no recorder runs
    assert eventually(lambda: recorder.running and recorder.pid != first, timeout=10)
    assert {r["id"] for r in stored_records(sqlite_url, 6)} == before | during
    ready = httpx.get(url + "/ready").json()
    assert ready["recorder"] == {"running": True, "restarts": 1}
    assert "interlock_recorder_up 1.0" in httpx.get(url + "/metrics").text


def test_when_the_gateway_stops_then_its_recorder_ships_the_rest_and_exits(fresh, sqlite_url, tmp_path, collector):
    journal = tmp_path / "journal"
    settings = {"url": sqlite_url, "flush_interval": 30, "journal_dir": str(journal)}
    observability = {"otlp_endpoint": collector}
    with running_gateway(models=[model("m", fresh[0].url)], database=settings, observability=observability) as (
        url,
        app,
    ):
        recorder = app.gateway.recorder
        ids = {chat(url) for _ in range(4)}
        assert stored_records(sqlite_url, 0) == []  # a long interval: nothing shipped yet
    assert {r["id"] for r in stored_records(sqlite_url, 4)} == ids
    # The last spans reach the recorder after the journal is released: it waits for them before leaving.
    assert len(spans()) == 8
    assert not recorder.running and recorder.restarts == 0
    assert list(journal.iterdir()) == []


async def test_when_the_recorder_is_closed_then_spans_not_yet_pumped_still_reach_the_collector(collector):
    from gateway.recorder import RecorderProcess
    from observability import SERVER, Tracing

    # A pump interval longer than the test: only the hand-off at close can deliver them.
    recorder = RecorderProcess({"otlp_endpoint": collector, "service_name": "svc"}, span_interval=3600)
    await recorder.start()
    assert await recorder.wait_ready(30)
    tracing = Tracing("svc", otlp_endpoint=collector)
    tracing.send_to(recorder.add_span)
    for name in ("a", "b", "c"):
        tracing.start_span(name, SERVER, {"gen_ai.request.model": "m"}).end()
    await recorder.aclose()
    assert sorted(s["name"] for s in spans()) == ["a", "b", "c"]
    assert not recorder.running and recorder.totals["spans"] == 3
