"""Export of recorded spans, off the request path: a daemon thread drains a queue in batches.

Two ways out: OTLP/HTTP with the protocol's JSON encoding (ids as hex, times as decimal strings, attributes as
typed ``AnyValue``s, per the OTLP specification), or any OpenTelemetry SDK ``SpanExporter`` fed ``ReadableSpan``s.
The queue is bounded, by items and by bytes: when the collector is down for long, the oldest spans are dropped and
counted, never the requests. The recorder process asks for back-pressure instead (``block_when_full``): its reader
then waits for room, the pipe from the gateway fills, and the gateway samples new traces (``gateway/recorder``)
rather than anything being dropped, so memory stays bounded whatever the backlog.
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
#: Bytes of encoded spans queued at most (blocks from the recorder's pipe; single spans count as ~1 KiB).
MAX_BYTES = 16 << 20
BATCH = 512
INTERVAL = 1.0


_KEYS: dict[str, bytes] = {}
#: Encoded string attributes, which repeat from span to span (operation, model, deployment names).
_STRINGS: dict[tuple[str, str], bytes] = {}
_STRINGS_MAX = 4096


def _attribute(key: str, v: Any) -> bytes:
    if v.__class__ is str:
        cached = _STRINGS.get((key, v))
        if cached is not None:
            return cached
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
    encoded = prefix + b'"stringValue":' + orjson.dumps(str(v)) + b"}}"
    if v.__class__ is str:
        if len(_STRINGS) >= _STRINGS_MAX:  # bounded: values a client made up must not grow it forever
            _STRINGS.clear()
        _STRINGS[(key, v)] = encoded
    return encoded


def encode_span(s) -> bytes:
    """One span as an OTLP/JSON ``Span`` object. Called when the span ends, on the event loop: a few µs,
    and the export thread is left with joining bytes and socket I/O, which barely hold the GIL (a thread
    that builds JSON competes with the event loop for the GIL and shows up as p99 latency)."""
    attrs = b",".join([_attribute(k, v) for k, v in s.attributes.items() if v is not None])
    parent = b',"parentSpanId":"%016x"' % s.parent_id if s.parent_id is not None else b""
    status = b'{"code":2,"message":' + orjson.dumps(s.error) + b"}" if s.error is not None else b"{}"
    return (
        b'{"traceId":"%032x","spanId":"%016x"%s,"name":%s,"kind":%d,"startTimeUnixNano":"%d",'
        b'"endTimeUnixNano":"%d","attributes":[%s],"status":%s}'
        % (
            s.trace_id,
            s.span_id,
            parent,
            orjson.dumps(s.name),
            s.kind,
            s.start_ns,
            s.end_ns,
            attrs,
            status,
        )
    )


def otlp_request(service_name: str, encoded: list[bytes]) -> bytes:
    """One ``ExportTraceServiceRequest`` in OTLP's JSON encoding around spans made by ``encode_span``."""
    head = (
        b'{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":%s}}]},'
        b'"scopeSpans":[{"scope":{"name":"interlock.gateway"},"spans":[' % orjson.dumps(service_name)
    )
    return head + b",".join(encoded) + b"]}]}]}"


def otlp_json(service_name: str, spans: list) -> bytes:
    """The same request from span objects (tests, tools)."""
    return otlp_request(service_name, [encode_span(s) for s in spans])


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
    """A queue of spans and the daemon thread that exports it every ``INTERVAL`` seconds.

    Items are ``(item, spans in it, bytes)``: a ``Span`` for an SDK exporter, else OTLP/JSON bytes of one or more
    encoded spans separated by commas (``add_block``: the recorder process passes whole blocks through
    without touching each span). The queue holds at most ``max_queue`` items and ``max_bytes`` bytes; beyond
    that older ones are dropped first, or, with ``block_when_full``, ``add_block`` waits until the export thread
    made room (the caller is a reader that can be slowed down: the recorder's, whose gateway then sheds).
    """

    def __init__(
        self,
        service_name: str,
        *,
        otlp_endpoint: str | None = None,
        exporter: Any = None,
        max_queue: int = MAX_QUEUE,
        max_bytes: int = MAX_BYTES,
        block_when_full: bool = False,
    ) -> None:
        self.service_name = service_name
        self.exporter = exporter
        self.endpoint = urllib.parse.urlsplit(otlp_endpoint) if otlp_endpoint else None
        self._queue: deque = deque()
        self._max_queue = max_queue
        self._max_bytes = max_bytes
        self._block = block_when_full
        # Each counter has one writer thread: the caller's for overflow and bytes added, the export thread's for
        # the rest (so no read-modify-write races between them: queued bytes = added - taken).
        self._overflowed = self._failed = self._exported = 0
        self._added_bytes = self._taken_bytes = 0
        self._room = threading.Event()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._stop = False
        self._conn: http.client.HTTPConnection | None = None
        self._last_error_log = 0.0
        self._thread: threading.Thread | None = None
        self._configured = bool(otlp_endpoint or exporter is not None)

    @property
    def dropped(self) -> int:
        """Spans given up: the queue overflowed, or the collector failed."""
        return self._overflowed + self._failed

    @property
    def exported(self) -> int:
        """Spans handed to the collector or exporter without an error."""
        return self._exported

    @property
    def queued_bytes(self) -> int:
        return self._added_bytes - self._taken_bytes

    def add(self, span) -> None:
        """Hot path: the span's OTLP encoding (or, for an SDK exporter, the span) onto the queue."""
        if self.exporter is not None:
            self._push((span, 1, 1024))
        else:
            encoded = encode_span(span)
            self._push((encoded, 1, len(encoded)))

    def add_block(self, block: bytes, count: int) -> None:
        """``count`` OTLP/JSON-encoded spans, separated by commas. With ``block_when_full`` this waits while the
        queue is full (the export thread is behind), so what waits stays in the gateway's pipe, not here."""
        if self._block:
            self._start()
            while self._full() and not self._stop:
                self._room.clear()
                if not self._full():  # the exporter took a batch between the test and the clear
                    break
                self._wake.set()  # export now, not at the next interval
                self._room.wait(0.5)
        self._push((block, count, len(block)))

    def _full(self) -> bool:
        return self.queued_bytes >= self._max_bytes or len(self._queue) >= self._max_queue

    def _push(self, item: tuple[Any, int, int]) -> None:
        q = self._queue
        q.append(item)  # atomic under the GIL, as is popleft
        self._added_bytes += item[2]
        # Blocking callers waited for room already: what they add is never dropped.
        while len(q) > self._max_queue or (not self._block and self.queued_bytes > self._max_bytes and len(q) > 1):
            try:
                _, spans, size = q.popleft()
            except IndexError:
                break
            self._overflowed += spans
            self._added_bytes -= size  # ours to change: the export thread only counts what it took
        self._start()

    def _start(self) -> None:
        if self._thread is None and self._configured:  # started on first use: unused, it costs nothing
            self._thread = threading.Thread(target=self._run, name="interlock-span-export", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(INTERVAL)
            self._wake.clear()
            self._drain()

    def _drain(self) -> None:
        q = self._queue
        while q:
            batch, spans = [], 0
            while q and spans < BATCH:
                item, n, size = q.popleft()
                batch.append(item)
                spans += n
                self._taken_bytes += size
            self._room.set()
            try:
                self._export(batch)
                self._exported += spans
            except Exception as exc:  # the collector is down or refuses: never the requests' problem
                now = time.monotonic()
                if now - self._last_error_log > 30:
                    self._last_error_log = now
                    log.warning("trace export failed (%s); spans are being dropped", type(exc).__name__)
                self._failed += spans
        self._idle.set()

    def _export(self, batch: list) -> None:
        if self.exporter is not None:
            self.exporter.export(readable_spans(self.service_name, batch))
            return
        assert self.endpoint is not None
        body = otlp_request(self.service_name, batch)
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
            self._room.set()
            self._thread.join(5)
            if self.exporter is not None:
                self.exporter.shutdown()
