"""OpenTelemetry tracing with the GenAI semantic conventions.

A SERVER span per request and a CLIENT span per upstream call (one per retry), named the way the GenAI
conventions say (``chat smollm2``), with ``gen_ai.*`` attributes. Spans are exported over OTLP/HTTP in a
background batch when an endpoint is configured; W3C ``traceparent`` flows in from clients and out to upstreams,
so a trace crosses every service.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

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

SERVER, CLIENT = SpanKind.SERVER, SpanKind.CLIENT


class Tracing:
    """Owns the tracer provider of one gateway process."""

    def __init__(
        self,
        service_name: str,
        *,
        enabled: bool = True,
        otlp_endpoint: str | None = None,
        exporter: SpanExporter | None = None,
    ) -> None:
        self.enabled = enabled
        self.provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        if exporter is None and otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(endpoint=otlp_endpoint)
        if exporter is not None:
            # Batch export in the SDK's worker thread: the request path only appends to a queue.
            self.provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=20_000))
        self.tracer = self.provider.get_tracer("interlock.gateway")

    def shutdown(self) -> None:
        self.provider.shutdown()


def parent_from_traceparent(value: str | None):
    """Parse a W3C ``traceparent`` header into a parent context (or ``None``). Cheap: no propagator objects."""
    if not value:
        return None
    parts = value.split("-")
    if len(parts) != 4 or len(parts[1]) != 32 or len(parts[2]) != 16:
        return None
    try:
        ctx = SpanContext(
            trace_id=int(parts[1], 16),
            span_id=int(parts[2], 16),
            is_remote=True,
            trace_flags=TraceFlags(int(parts[3], 16) & 0xFF),
        )
    except ValueError:
        return None
    if not ctx.is_valid:
        return None
    return trace.set_span_in_context(NonRecordingSpan(ctx))


def traceparent_of(span: trace.Span) -> str | None:
    """The ``traceparent`` header that makes ``span`` the parent of the upstream's spans."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def request_attributes(route: str, body: Mapping) -> dict:
    attrs = {"gen_ai.operation.name": OPERATION.get(route, route), "gen_ai.request.model": body.get("model")}
    for field, attr in REQUEST_ATTRS.items():
        v = body.get(field)
        if v is not None and isinstance(v, (int, float)) and not isinstance(v, bool):
            attrs[attr] = v
    return attrs
