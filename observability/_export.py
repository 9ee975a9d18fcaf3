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


def _value(v: Any) -> dict:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    return {"stringValue": str(v)}


def otlp_json(service_name: str, spans: list) -> bytes:
    """One ``ExportTraceServiceRequest`` in OTLP's JSON encoding."""
    out = []
    for s in spans:
        item = {
            "traceId": f"{s.trace_id:032x}",
            "spanId": f"{s.span_id:016x}",
            "name": s.name,
            "kind": s.kind,
            "startTimeUnixNano": str(s.start_ns),
            "endTimeUnixNano": str(s.end_ns),
            "attributes": [{"key": k, "value": _value(v)} for k, v in s.attributes.items() if v is not None],
            "status": {"code": 2, "message": s.error} if s.error is not None else {},
        }
        if s.parent_id is not None:
            item["parentSpanId"] = f"{s.parent_id:016x}"
        out.append(item)
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": service_name}}]}
    scope = {"name": "interlock.gateway"}
    return orjson.dumps({"resourceSpans": [{"resource": resource, "scopeSpans": [{"scope": scope, "spans": out}]}]})


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
