"""A tiny OTLP/HTTP traces receiver for the benchmark: accepts ``POST /v1/traces`` and counts what came.

Run as ``python bench/_trace_sink.py --fd N`` on a listening socket the parent bound (so the port is known
before it starts). ``GET /stats`` answers ``{"exports", "spans", "bytes"}``; ``GET /health`` answers 200.
Spans are counted in the body (OTLP's protobuf encoding is decoded; in the JSON encoding each span is the one
object with a ``"spanId"`` key), so the figure proves the gateway really exported them. The sink shares its
core with the load client and the emulator: decoding a megabyte of JSON a second there showed up in the
gateway's p99 at concurrency 1, which is why JSON bodies are counted, not parsed.
"""

from __future__ import annotations

import argparse
import socket

import orjson
from aiohttp import web

try:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )
except ImportError:  # the OTLP exporter's dependency; without it exports are counted but spans are not
    ExportTraceServiceRequest = ExportTraceServiceResponse = None


def make_app() -> web.Application:
    stats = {"exports": 0, "spans": 0, "bytes": 0, "undecoded": 0}
    ok_body = ExportTraceServiceResponse().SerializeToString() if ExportTraceServiceResponse else b""

    async def traces(request: web.Request) -> web.Response:
        body = await request.read()
        stats["exports"] += 1
        stats["bytes"] += len(body)
        if request.content_type == "application/json":  # OTLP/HTTP's JSON encoding
            stats["spans"] += body.count(b'"spanId"')
            return web.Response(body=b"{}", content_type="application/json")
        if ExportTraceServiceRequest is not None and request.content_type == "application/x-protobuf":
            message = ExportTraceServiceRequest()
            message.ParseFromString(body)
            stats["spans"] += sum(
                len(scope.spans) for resource in message.resource_spans for scope in resource.scope_spans
            )
        else:
            stats["undecoded"] += 1
        return web.Response(body=ok_body, content_type="application/x-protobuf")

    async def get_stats(request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(stats), content_type="application/json")

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(client_max_size=256 * 1024 * 1024)
    app.router.add_post("/v1/traces", traces)
    app.router.add_get("/stats", get_stats)
    app.router.add_get("/health", health)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fd", type=int, required=True, help="inherited listening socket")
    args = parser.parse_args()
    web.run_app(make_app(), sock=socket.socket(fileno=args.fd), print=None, access_log=None)


if __name__ == "__main__":
    main()
