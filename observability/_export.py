"""Export of recorded spans, off the request path: a daemon thread drains a queue in batches.

Two ways out: OTLP/HTTP with the protocol's JSON encoding (ids as hex, times as decimal strings, attributes as
typed ``AnyValue``s, per the OTLP specification), or any OpenTelemetry SDK ``SpanExporter`` fed ``ReadableSpan``s.
The queue is bounded: when the collector is down for long, the oldest spans are dropped and counted, never the
requests.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
import urllib.parse
from collections import deque
from typing import Any

import orjson

log = logging.getLogger("interlock.tracing")

MAX_QUEUE = 50_000
BATCH = 512
INTERVAL = 1.0


_KEYS: dict[str, bytes] = {}


def _attribute(key: str, v: Any) -> bytes:
    prefix = _KEYS.get(key)
    if prefix is None:
        prefix = _KEYS[key] = b'{"key":' + orjson.dumps(key) + b',"value":{'
    if v is True:
        return prefix + b'"boolValue":true}}'
    if v is False:
        return prefix + b'"boolValue":false}}'
    if isinstance(v, int):
        return prefix + b'"intValue":"%d"}}' % v  # OTLP/JSON carries 64-bit integers as strings
    if isinstance(v, float):
        return prefix + b'"doubleValue":' + orjson.dumps(v) + b"}}"
    return prefix + b'"stringValue":' + orjson.dumps(str(v)) + b"}}"


def otlp_json(service_name: str, spans: list) -> bytes:
    """One ``ExportTraceServiceRequest`` in OTLP's JSON encoding, assembled as bytes: building a dict per
    attribute and serialising it was most of the export thread's time, on the gateway's own core."""
    parts = []
    for s in spans:
        attrs = b",".join([_attribute(k, v) for k, v in s.attributes.items() if v is not None])
        parent = b',"parentSpanId":"%016x"' % s.parent_id if s.parent_id is not None else b""
        status = b'{"code":2,"message":' + orjson.dumps(s.error) + b"}" if s.error is not None else b"{}"
        parts.append(
            b'{"traceId":"%032x","spanId":"%016x"%s,"name":%s,"kind":%d,"startTimeUnixNano":"%d",'
            b'"endTimeUnixNano":"%d","attributes":[%s],"status":%s}'
            % (s.trace_id, s.span_id, parent, orjson.dumps(s.name), s.kind, s.start_ns, s.end_ns, attrs, status)
        )
    head = (
        b'{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":%s}}]},'
        b'"scopeSpans":[{"scope":{"name":"interlock.gateway"},"spans":[' % orjson.dumps(service_name)
    )
    return head + b",".join(parts) + b"]}]}]}"


def readable_spans(service_name: str, spans: list) -> list:
    """The same spans as OpenTelemetry SDK ``ReadableSpan``s, for SDK exporters."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

    resource = Resource.create({"service.name": service_name})
    scope = InstrumentationScope("interlock.gateway")
    sampled = TraceFlags(TraceFlags.SAMPLED)
    result = []
    for s in spans:
        parent = None
        if s.parent_id is not None:
            parent = SpanContext(s.trace_id, s.parent_id, is_remote=False, trace_flags=sampled)
        result.append(
            ReadableSpan(
                name=s.name,
                context=SpanContext(s.trace_id, s.span_id, is_remote=False, trace_flags=sampled),
                parent=parent,
                resource=resource,
                attributes={k: v for k, v in s.attributes.items() if v is not None},
                kind=SpanKind(s.kind - 1),  # SDK enum: INTERNAL=0 SERVER=1 CLIENT=2; OTLP: SERVER=2 CLIENT=3
                status=Status(StatusCode.ERROR, s.error) if s.error is not None else Status(StatusCode.UNSET),
                start_time=s.start_ns,
                end_time=s.end_ns,
                instrumentation_scope=scope,
            )
        )
    return result


class SpanBatcher:
    def __init__(self, service_name: str, *, otlp_endpoint: str | None = None, exporter: Any = None) -> None:
        self.service_name = service_name
        self.exporter = exporter
        self.endpoint = urllib.parse.urlsplit(otlp_endpoint) if otlp_endpoint else None
        self._queue: deque = deque()
        self.dropped = 0
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._stop = False
        self._conn: http.client.HTTPConnection | None = None
        self._last_error_log = 0.0
        self._thread: threading.Thread | None = None
        if otlp_endpoint or exporter is not None:
            self._thread = threading.Thread(target=self._run, name="interlock-span-export", daemon=True)
            self._thread.start()

    def add(self, span) -> None:
        """Hot path: one append (atomic under the GIL)."""
        q = self._queue
        q.append(span)
        if len(q) > MAX_QUEUE:
            q.popleft()
            self.dropped += 1

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(INTERVAL)
            self._wake.clear()
            self._drain()

    def _drain(self) -> None:
        q = self._queue
        while q:
            batch = []
            while q and len(batch) < BATCH:
                batch.append(q.popleft())
            try:
                self._export(batch)
            except Exception as exc:  # the collector is down or refuses: never the requests' problem
                now = time.monotonic()
                if now - self._last_error_log > 30:
                    self._last_error_log = now
                    log.warning("trace export failed (%s); spans are being dropped", type(exc).__name__)
                self.dropped += len(batch)
        self._idle.set()

    def _export(self, batch: list) -> None:
        if self.exporter is not None:
            self.exporter.export(readable_spans(self.service_name, batch))
            return
        assert self.endpoint is not None
        body = otlp_json(self.service_name, batch)
        if self._conn is None:
            cls = http.client.HTTPSConnection if self.endpoint.scheme == "https" else http.client.HTTPConnection
            self._conn = cls(self.endpoint.hostname, self.endpoint.port, timeout=5)
        try:
            self._conn.request(
                "POST", self.endpoint.path or "/v1/traces", body=body, headers={"content-type": "application/json"}
            )
            resp = self._conn.getresponse()
            resp.read()
        except Exception:
            self._conn.close()
            self._conn = None
            raise
        if resp.status >= 300:
            raise RuntimeError(f"collector answered HTTP {resp.status}")

    def flush(self, timeout: float = 5.0) -> bool:
        if self._thread is None:
            return True
        self._idle.clear()
        self._wake.set()
        return self._idle.wait(timeout)

    def shutdown(self) -> None:
        if self._thread is not None:
            self.flush()
            self._stop = True
            self._wake.set()
            self._thread.join(5)
            if self.exporter is not None:
                self.exporter.shutdown()
