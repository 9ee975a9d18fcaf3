"""Traces: a server span per request, a client span per upstream try, GenAI attributes, W3C context in and out."""

from __future__ import annotations

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from observability import Tracing
from tests.e2e.gateway.conftest import client
from tests.support.gateway import model

PARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_when_a_request_is_served_then_spans_carry_genai_attributes_and_join_the_callers_trace(fresh, gateway):
    exporter = InMemorySpanExporter()
    tracing = Tracing("test", exporter=exporter)
    url, _ = gateway(models=[model("m", fresh[0].url)], tracing=tracing)
    fresh[0].script_faults("status:503", 1)  # one failed try, one good one: two client spans
    client(url).chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=3,
        temperature=0.5,
        extra_headers={"traceparent": f"00-{PARENT_TRACE}-00f067aa0ba902b7-01"},
    )
    tracing.flush()
    spans = exporter.get_finished_spans()
    server = [s for s in spans if s.kind is SpanKind.SERVER]
    upstream = [s for s in spans if s.kind is SpanKind.CLIENT]
    assert len(server) == 1 and len(upstream) == 2
    s = server[0]
    assert s.name == "chat m"
    assert format(s.context.trace_id, "032x") == PARENT_TRACE
    assert s.attributes["gen_ai.operation.name"] == "chat"
    assert s.attributes["gen_ai.request.model"] == "m"
    assert s.attributes["gen_ai.request.max_tokens"] == 3
    assert s.attributes["gen_ai.request.temperature"] == 0.5
    assert s.attributes["gen_ai.usage.output_tokens"] == 3
    assert s.attributes["http.response.status_code"] == 200
    assert all(u.parent.span_id == s.context.span_id for u in upstream)
    assert upstream[0].attributes["error.type"] == "UpstreamHTTPError"
    assert upstream[1].attributes["gen_ai.usage.input_tokens"] > 0
    # The upstream got a traceparent naming our client span, so its own spans join the same trace.
    sent = fresh[0].recorded_requests()[-1]["headers"]["traceparent"]
    assert sent.split("-")[1] == PARENT_TRACE and sent.split("-")[2] == format(upstream[1].context.span_id, "016x")
