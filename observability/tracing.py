"""OpenTelemetry tracing with the GenAI semantic conventions, cheap enough for the hot path.

A SERVER span per request and a CLIENT span per upstream try, named as the GenAI conventions say (``chat m``),
with ``gen_ai.*`` attributes. W3C ``traceparent`` flows in from clients and out to upstreams, so a trace crosses
every service.

Why not the SDK's ``Tracer`` on the request path: two SDK spans cost 80-95 µs of CPU per request here (attribute
validation under locks, sampler and processor calls), a sixth of the gateway's whole budget. Spans are recorded
here as slotted objects (a few µs each) and turned into OTLP in a background thread: sent as OTLP/HTTP JSON
(the protocol's standard JSON encoding, which every collector accepts on ``/v1/traces``), or handed to any
OpenTelemetry SDK ``SpanExporter`` as ``ReadableSpan``s (tests use the SDK's in-memory exporter).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from observability._export import SpanBatcher, encode_span

#: OpenAI route -> ``gen_ai.operation.name``
OPERATION = {"chat": "chat", "completions": "text_completion", "embeddings": "embeddings"}

#: Request fields recorded as ``gen_ai.request.*`` attributes (never the prompt itself).
REQUEST_ATTRS = {
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "seed": "gen_ai.request.seed",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
}

#: OTLP span kinds
INTERNAL, SERVER, CLIENT = 1, 2, 3

_bits = random.getrandbits


class Span:
    """One span. Attributes must be str, bool, int or float (all we ever set)."""

    __slots__ = (
        "_sink",
        "attributes",
        "end_ns",
        "error",
        "kind",
        "name",
        "parent_id",
        "span_id",
        "start_ns",
        "trace_id",
    )

    def __init__(self, name: str, kind: int, trace_id: int, parent_id: int | None, attributes: dict, sink) -> None:
        self.name = name
        self.kind = kind
        self.trace_id = trace_id
        self.parent_id = parent_id
        self.span_id = _bits(64) or 1
        self.attributes = attributes
        self.start_ns = time.time_ns()
        self.end_ns = 0
        self.error: str | None = None
        self._sink = sink

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value

    def set_error(self, error_type: str, message: str) -> None:
        self.attributes["error.type"] = error_type
        self.error = message[:200]

    def end(self) -> None:
        if self.end_ns == 0:
            self.end_ns = time.time_ns()
            self._sink(self)

    @property
    def traceparent(self) -> str:
        """The W3C header that makes this span the parent of the receiver's spans."""
        return f"00-{self.trace_id:032x}-{self.span_id:016x}-01"


class RemoteParent:
    """A parent span context received in a ``traceparent`` header."""

    __slots__ = ("sampled", "span_id", "trace_id")

    def __init__(self, trace_id: int, span_id: int, sampled: bool) -> None:
        self.trace_id, self.span_id, self.sampled = trace_id, span_id, sampled


class Tracing:
    """Owns span recording and export for one gateway process."""

    def __init__(
        self,
        service_name: str,
        *,
        enabled: bool = True,
        otlp_endpoint: str | None = None,
        exporter: Any = None,
        sample_ratio: float = 1.0,
    ) -> None:
        self.enabled = enabled
        self.sample_ratio = sample_ratio
        #: Share of new traces recorded while span export is behind (1.0: all), set by whoever ships the spans
        #: (``set_keep_ratio``: the gateway's recorder). Traces left out for it are counted in ``shed``: under
        #: sustained load spans are sampled in proportion before they are made, rather than dropped after.
        self.keep_ratio = 1.0
        self.shed = 0
        self._batcher = SpanBatcher(service_name, otlp_endpoint=otlp_endpoint, exporter=exporter)
        # Spans are made even with nowhere to send them: the trace id still reaches upstreams and logs.
        self._sink = self._batcher.add if (otlp_endpoint or exporter is not None) else _discard

    def start_span(
        self, name: str, kind: int, attributes: dict, parent: Span | RemoteParent | None = None
    ) -> Span | None:
        """A new span, or ``None`` when this trace is not sampled."""
        if parent is None:
            if self.sample_ratio < 1.0 and random.random() >= self.sample_ratio:
                return None
            if self.keep_ratio < 1.0 and self._shed():
                return None
            return Span(name, kind, _bits(128) or 1, None, attributes, self._sink)
        if isinstance(parent, RemoteParent):
            if not parent.sampled:
                return None  # the caller decided not to sample this trace: respect it
            if self.keep_ratio < 1.0 and self._shed():
                return None
        return Span(name, kind, parent.trace_id, parent.span_id, attributes, self._sink)

    def set_keep_ratio(self, ratio: float) -> None:
        """Record only this share of new traces from now on (1.0: all again)."""
        self.keep_ratio = ratio

    def _shed(self) -> bool:
        if random.random() < self.keep_ratio:
            return False
        self.shed += 1
        return True

    @property
    def exports_otlp(self) -> bool:
        """Spans go to an OTLP/HTTP endpoint (rather than nowhere, or to an SDK exporter object)."""
        return self._batcher.endpoint is not None and self._batcher.exporter is None

    def send_to(self, ship: Callable[[bytes], None]) -> None:
        """From now on hand every ended span, OTLP/JSON-encoded, to ``ship`` instead of this process's export
        thread: the gateway passes them to its recorder process, which posts them to the collector."""

        def sink(span: Span) -> None:
            ship(encode_span(span))

        self._sink = sink

    def flush(self, timeout: float = 5.0) -> bool:
        """Export everything recorded so far (tests, shutdown)."""
        return self._batcher.flush(timeout)

    @property
    def dropped(self) -> int:
        return self._batcher.dropped

    def shutdown(self) -> None:
        self._batcher.shutdown()


def _discard(span: Span) -> None:
    pass


def step_span(parent: Span | None, name: str, attributes: dict | None = None, kind: int = INTERNAL) -> Span | None:
    """A child span of ``parent`` for one step of the request path (``None`` when the request is untraced). It goes
    wherever its parent goes; a few µs, like any span. Steps put their decision in its attributes. A call to one
    of our services is a ``CLIENT`` span: its ``traceparent`` makes the service's span its child."""
    if parent is None:
        return None
    return Span(name, kind, parent.trace_id, parent.span_id, {} if attributes is None else attributes, parent._sink)


def parent_from_traceparent(value: str | None) -> RemoteParent | None:
    """Parse a W3C ``traceparent`` header (``00-<32 hex>-<16 hex>-<2 hex>``); ``None`` when absent or invalid."""
    if not value or len(value) < 55:
        return None
    parts = value.split("-")
    if len(parts) < 4 or len(parts[1]) != 32 or len(parts[2]) != 16 or parts[0] == "ff":
        return None
    try:
        trace_id, span_id, flags = int(parts[1], 16), int(parts[2], 16), int(parts[3][:2], 16)
    except ValueError:
        return None
    if trace_id == 0 or span_id == 0:
        return None
    return RemoteParent(trace_id, span_id, bool(flags & 1))


def request_attributes(route: str, body: dict) -> dict:
    attrs = {"gen_ai.operation.name": OPERATION.get(route, route), "gen_ai.request.model": body.get("model")}
    for field in REQUEST_ATTRS.keys() & body.keys():  # usually two or three fields: only look at those
        v = body[field]
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            attrs[REQUEST_ATTRS[field]] = v
    return attrs
