"""A tiny OTLP/HTTP collector for tests: ``/v1/traces`` in JSON (what our services send) or protobuf (what vLLM's
OpenTelemetry SDK exporter sends with ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/protobuf``), gzip or not.

Spans are kept flat, ids as hex (the OTLP JSON form): ``{"service", "name", "kind", "trace_id", "span_id",
"parent_id", "attributes"}`` (attribute values as sent: OTLP JSON sends integers as strings).
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_KINDS = {"SPAN_KIND_INTERNAL": 1, "SPAN_KIND_SERVER": 2, "SPAN_KIND_CLIENT": 3}


class OTLPSink:
    def __init__(self, port: int) -> None:
        self.spans: list[dict] = []
        self.url = f"http://127.0.0.1:{port}/v1/traces"
        self._port = port

    def by_service(self, service: str) -> list[dict]:
        return [s for s in self.spans if s["service"] == service]

    def _add_json(self, body: dict) -> None:
        for rs in body.get("resourceSpans", ()):
            service = _service(rs.get("resource", {}).get("attributes", ()), lambda v: v.get("stringValue"))
            for ss in rs.get("scopeSpans", ()):
                for s in ss.get("spans", ()):
                    kind = s.get("kind", 0)
                    self.spans.append(
                        {
                            "service": service,
                            "name": s["name"],
                            "kind": _KINDS.get(kind, kind) if isinstance(kind, str) else kind,
                            "trace_id": s["traceId"].lower(),
                            "span_id": s["spanId"].lower(),
                            "parent_id": (s.get("parentSpanId") or "").lower(),
                            "attributes": {
                                a["key"]: next(iter(a.get("value", {}).values()), None) for a in s.get("attributes", ())
                            },
                        }
                    )

    def _add_protobuf(self, data: bytes) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        req = ExportTraceServiceRequest.FromString(data)
        for rs in req.resource_spans:
            service = _service(rs.resource.attributes, lambda v: v.string_value, proto=True)
            for ss in rs.scope_spans:
                for s in ss.spans:
                    self.spans.append(
                        {
                            "service": service,
                            "name": s.name,
                            "kind": int(s.kind),
                            "trace_id": s.trace_id.hex(),
                            "span_id": s.span_id.hex(),
                            "parent_id": s.parent_span_id.hex(),
                            "attributes": {
                                a.key: getattr(a.value, a.value.WhichOneof("value") or "string_value")
                                for a in s.attributes
                            },
                        }
                    )


def _service(attributes, value, proto: bool = False) -> str | None:
    for a in attributes:
        key = a.key if proto else a.get("key")
        if key == "service.name":
            return value(a.value if proto else a.get("value", {}))
    return None


@contextmanager
def otlp_sink() -> Iterator[OTLPSink]:
    holder: list[OTLPSink] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.headers.get("content-encoding") == "gzip":
                data = gzip.decompress(data)
            if "protobuf" in (self.headers.get("content-type") or ""):
                holder[0]._add_protobuf(data)
            else:
                holder[0]._add_json(json.loads(data))
            self.send_response(200)
            self.send_header("content-type", self.headers.get("content-type") or "application/json")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(OTLPSink(server.server_address[1]))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield holder[0]
    finally:
        server.shutdown()
        server.server_close()
