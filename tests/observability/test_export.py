"""Spans leave the process as OTLP/HTTP JSON, the way a collector's /v1/traces endpoint expects them."""

from __future__ import annotations

import http.server
import json
import threading

from observability import CLIENT, SERVER, Tracing, parent_from_traceparent


class _Sink(http.server.BaseHTTPRequestHandler):
    bodies: list = []

    def do_POST(self):
        length = int(self.headers["content-length"])
        _Sink.bodies.append((self.path, self.headers["content-type"], json.loads(self.rfile.read(length))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_when_spans_end_then_they_are_posted_as_otlp_json_with_parents_and_errors():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Sink.bodies.clear()
    tracing = Tracing("svc", otlp_endpoint=f"http://127.0.0.1:{server.server_port}/v1/traces")
    try:
        parent = parent_from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        root = tracing.start_span(
            "chat m", SERVER, {"gen_ai.request.model": "m", "gen_ai.request.max_tokens": 8}, parent
        )
        child = tracing.start_span("chat m", CLIENT, {"interlock.deployment": "d0"}, root)
        child.set_error("UpstreamTimeout", 'upstream "d0" timed out')
        child.end()
        root.set_attribute("gen_ai.request.temperature", 0.5)
        root.set_attribute("interlock.cached", False)
        root.end()
        assert tracing.flush()
    finally:
        tracing.shutdown()
        server.shutdown()
    path, ctype, body = _Sink.bodies[0]
    assert path == "/v1/traces" and ctype == "application/json"
    rs = body["resourceSpans"][0]
    assert rs["resource"]["attributes"] == [{"key": "service.name", "value": {"stringValue": "svc"}}]
    spans = {s["kind"]: s for s in rs["scopeSpans"][0]["spans"]}
    server_span, client_span = spans[2], spans[3]
    assert server_span["traceId"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert server_span["parentSpanId"] == "00f067aa0ba902b7"
    assert client_span["parentSpanId"] == server_span["spanId"] and len(client_span["spanId"]) == 16
    attrs = {a["key"]: a["value"] for a in server_span["attributes"]}
    assert attrs == {
        "gen_ai.request.model": {"stringValue": "m"},
        "gen_ai.request.max_tokens": {"intValue": "8"},
        "gen_ai.request.temperature": {"doubleValue": 0.5},
        "interlock.cached": {"boolValue": False},
    }
    assert client_span["status"] == {"code": 2, "message": 'upstream "d0" timed out'}
    assert int(server_span["endTimeUnixNano"]) >= int(server_span["startTimeUnixNano"]) > 0


def test_when_the_caller_did_not_sample_then_no_span_is_made():
    tracing = Tracing("svc")
    assert (
        tracing.start_span(
            "x", SERVER, {}, parent_from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
        )
        is None
    )
    assert tracing.start_span("x", SERVER, {}, None) is not None


def test_when_the_collector_is_down_then_spans_are_dropped_and_counted_not_raised():
    tracing = Tracing("svc", otlp_endpoint="http://127.0.0.1:9/v1/traces")
    try:
        tracing.start_span("x", SERVER, {}).end()
        assert tracing.flush()
        assert tracing.dropped == 1
    finally:
        tracing.shutdown()
