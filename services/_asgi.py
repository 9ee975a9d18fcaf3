"""The few raw-ASGI pieces the microservices (guardrails, router) share: they skip FastAPI on purpose, one
middleware stack fewer on a call that sits in front of every guarded or routed request."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

JSON_HEADERS = [(b"content-type", b"application/json")]


async def send_json(send, status: int, obj: Any) -> None:
    body = orjson.dumps(obj)
    headers = [*JSON_HEADERS, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_error(send, status: int, message: str, *, param: str | None = None, code: str | None = None) -> None:
    """An OpenAI-format error body, as the gateway's own errors are."""
    kind = "invalid_request_error" if status < 500 else "service_unavailable"
    await send_json(send, status, {"error": {"message": message, "type": kind, "param": param, "code": code}})


async def read_body(receive, limit: int | None = None) -> bytes | None:
    """The request body, or ``None`` once it grows past ``limit`` bytes."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if limit is not None and len(body) > limit:
            return None
        if not message.get("more_body"):
            return body


def server_span(tracing: Any, scope: dict, route: str):
    """A SERVER span for this call, a child of the caller's span when it sent ``traceparent``; ``None`` when
    tracing is off. The caller ends it and puts no text in it."""
    if tracing is None:
        return None
    from observability import SERVER, parent_from_traceparent

    tp = next((v for k, v in scope["headers"] if k == b"traceparent"), None)
    parent = parent_from_traceparent(tp.decode("latin-1")) if tp is not None else None
    return tracing.start_span(f"POST {route}", SERVER, {"http.route": route}, parent)


async def run_lifespan(
    receive, send, start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]], log: logging.Logger
) -> None:
    """ASGI lifespan: a failed ``start`` is reported to the server (which exits) with its traceback logged."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await start()
            except Exception as exc:
                log.exception("the service failed to start")
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await stop()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def serve_observed(metrics: Any, scope: dict, receive, send, handle) -> None:
    """Serve one HTTP call through ``handle``, counted and timed in ``metrics`` (an
    ``observability.service_metrics.ServiceMetrics``); ``GET /metrics`` is answered here."""
    if scope["path"] == "/metrics":
        body = await metrics.exposition.body()  # off the event loop (observability.scrape)
        headers = [(b"content-type", metrics.content_type.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    status = 500  # what the call counts as if the handler fails before it answers

    async def capture(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        await send(message)

    started = time.perf_counter()
    try:
        await handle(scope, receive, capture)
    finally:
        metrics.observe(scope["path"], status, time.perf_counter() - started)
