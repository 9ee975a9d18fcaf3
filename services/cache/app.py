"""The cache service: one in-process semantic index that several gateway replicas share over HTTP.

Thin: parse, call ``cache.MemorySemanticIndex``, serialise. Gateways use it with ``cache.semantic_backend:
service`` and ``cache.service_url``. Run it with ``interlock cache serve``. The index lives in this process's
memory: a restart empties it (entries are answers that can be recomputed), and it is bounded by
``--max-entries``. No partition is ever searched but the one asked for.

With ``tracing`` (``interlock cache serve --otlp-endpoint``), each ``/search`` is a SERVER span continuing the
caller's W3C ``traceparent`` (the gateway's ``interlock.cache.remote`` client span): one request, one trace.
"""

from __future__ import annotations

import base64
import contextlib
import time
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from cache import Entry, Invalidation, InvalidInvalidation, MemorySemanticIndex
from cache.keys import CacheKey
from cache.remote import vector_from_wire, vector_to_wire
from cache.verify import Signature
from gateway.errors import InvalidRequest
from observability.service_metrics import ServiceMetrics
from services._asgi import server_span
from services.admin import errors


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SearchRequest(_Strict):
    partition: str = Field(min_length=1)
    vector: str
    """float32 bytes, base64."""
    k: int = Field(3, ge=1, le=32)


class AddRequest(_Strict):
    scope: str
    owner: str
    model: str
    partition: str = Field(min_length=1)
    vector: str
    signature: list
    entry: str
    """``Entry.dumps()``, base64."""
    ttl: int = Field(ge=1)


def create_cache_app(dim: int = 384, max_entries: int = 50_000, tracing: Any = None) -> FastAPI:
    """``tracing``: an ``observability.Tracing`` whose spans go to the same collector as the gateways'."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        if tracing is not None:  # the last spans, before the process goes
            tracing.flush(2.0)
            tracing.shutdown()

    app = FastAPI(title="Interlock cache service", version="1", lifespan=lifespan)
    index = MemorySemanticIndex(dim, max_entries)
    errors.install(app)
    metrics = app.state.metrics = ServiceMetrics("interlock-cache", ["/search", "/entries", "/health"])

    @app.middleware("http")
    async def observe(request, call_next):
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            metrics.observe(request.url.path, status, time.perf_counter() - started)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(await metrics.exposition.body(), media_type=metrics.content_type)

    def vector(wire: str):
        try:
            v = vector_from_wire(wire)
        except ValueError:  # not base64, or not whole float32 values
            v = None
        if v is None or v.shape != (dim,):
            raise InvalidRequest(f"vector must be {dim} float32 values, base64-encoded", param="vector")
        return v

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "entries": index.size}

    @app.post("/search")
    async def search(req: SearchRequest, request: Request) -> dict:
        span = server_span(tracing, request.scope, "/search")
        try:
            found = await index.search(req.partition, vector(req.vector), req.k)
        finally:
            if span is not None:
                span.end()  # no text in it: the partition is a hash, the question is not sent at all
        return {
            "candidates": [
                {"similarity": c.similarity, "signature": c.signature.to_json(),
                 "entry": base64.b64encode(c.entry.dumps()).decode(), "vector": vector_to_wire(c.vector)}
                for c in found
            ]
        }  # fmt: skip

    @app.post("/entries", status_code=201)
    async def add(req: AddRequest) -> dict:
        key = CacheKey(req.scope, req.owner, req.model, req.partition, "", "")
        entry = Entry.loads(base64.b64decode(req.entry))
        await index.add(key, vector(req.vector), Signature.from_json(req.signature), entry, req.ttl)
        return {"entries": index.size}

    @app.delete("/entries")
    async def clear(
        scope: Annotated[str | None, Query()] = None,
        owner: Annotated[str | None, Query()] = None,
        model: Annotated[str | None, Query()] = None,
        older_than: Annotated[float | None, Query()] = None,
    ) -> dict:
        try:
            what = Invalidation(scope=scope, owner=owner, model=model, older_than=older_than, kind="semantic")
        except InvalidInvalidation as exc:
            raise InvalidRequest(str(exc), param=exc.field) from exc
        return {"semantic": await index.clear(what)}

    return app
