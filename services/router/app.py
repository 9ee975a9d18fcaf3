"""The router service: a thin raw-ASGI layer over ``gateway.intent.RouterRuntime`` holding trained routers.

    POST /route    {"router": "<name>", "messages": [...]}  ->  the decision (``Decision.to_json``)
    GET  /routers  names and versions served
    GET  /health   alive; GET /ready: the database and the routers are loaded

Each ``/route`` call is a SERVER span continuing the caller's W3C ``traceparent`` (the gateway's client span), sent
to ``observability.otlp_endpoint`` like the gateway's spans: one request is one trace across both services.

It follows the same database and config bus as the gateways, so a router trained through any gateway's admin
API is served here within a second, from the stored weights. It does not train (gateways do) and does not seed
the YAML routers (gateways do).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from router.intent import IntentRouterError, RouterNotFound

log = logging.getLogger("interlock.router.service")
_JSON = [(b"content-type", b"application/json")]


class RouterServiceApp:
    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.runtime = None
        self._engine = None
        self._bus = None
        self._embeddings = None
        self.tracing = None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/route" and method == "POST":
            span = self._span(scope)
            try:
                await self._route(receive, send, span)
            finally:
                if span is not None:
                    span.end()
        elif path == "/health":
            await _json(send, 200, {"status": "ok"})
        elif path == "/ready":
            ready = self.runtime is not None
            await _json(send, 200 if ready else 503, {"status": "ready" if ready else "starting"})
        elif path == "/routers" and method == "GET":
            versions = self.runtime.versions if self.runtime is not None else {}
            await _json(send, 200, {"routers": [{"name": n, "version": v} for n, v in sorted(versions.items())]})
        else:
            await _error(send, 404, f"no route {method} {path}", "not_found")

    def _span(self, scope):
        """A SERVER span for this call: a child of the caller's span when it sent ``traceparent``."""
        if self.tracing is None:
            return None
        from observability import SERVER, parent_from_traceparent

        tp = next((v for k, v in scope["headers"] if k == b"traceparent"), None)
        parent = parent_from_traceparent(tp.decode("latin-1")) if tp is not None else None
        return self.tracing.start_span("POST /route", SERVER, {"http.route": "/route"}, parent)

    async def _route(self, receive, send, span=None) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            data = orjson.loads(body)
            name, messages = data["router"], data["messages"]
            if not isinstance(name, str) or not isinstance(messages, list):
                raise TypeError
        except (orjson.JSONDecodeError, KeyError, TypeError):
            await _error(send, 400, "send {'router': name, 'messages': [...]}", "invalid_request")
            return
        if self.runtime is None or self.runtime.local is None:
            await _error(send, 503, "starting", "unavailable")
            return
        try:
            decision = await self.runtime.local.decide(name, messages)
        except RouterNotFound as exc:
            if span is not None:
                span.set_error("router_not_found", exc.message)
            await _error(send, 404, exc.message, "router_not_found")
            return
        except IntentRouterError as exc:
            await _error(send, 400, exc.message, "invalid_request")
            return
        if span is not None:  # the decision, never the text
            span.set_attribute("interlock.router", decision.router)
            span.set_attribute("interlock.route.intent", decision.intent or "-")
            span.set_attribute("interlock.route.reason", decision.reason)
        await _json(send, 200, decision.to_json())

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._start()
                except Exception as exc:
                    log.exception("router service failed to start")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _start(self) -> None:
        import asyncio

        from embeddings import EmbeddingService, load_embedder
        from gateway.access.bus import ConfigBus
        from gateway.db import make_engine, migrate
        from gateway.intent.runtime import RouterRuntime

        s = self.settings
        obs = s.observability
        if obs.tracing:
            from observability import Tracing

            self.tracing = Tracing("interlock-router", otlp_endpoint=obs.otlp_endpoint)
        await asyncio.to_thread(migrate, s.database.url)
        self._engine = make_engine(s.database.url)
        self._embeddings = EmbeddingService(load_embedder(s.embeddings), max_batch=s.embeddings.max_batch)
        access = s.access
        self._bus = ConfigBus(self._engine, s.redis.url, poll_interval=access.poll_interval, channel=access.bus_channel)
        runtime = RouterRuntime(
            s.router,
            self._engine,
            self._bus,
            embeddings=lambda: self._embeddings,
            known_models=set,
            hold_weights=True,
        )
        await self._bus.start()
        await runtime.apply(None)
        self.runtime = runtime

    async def _stop(self) -> None:
        if self.tracing is not None:
            self.tracing.flush(2.0)
            self.tracing.shutdown()
        if self._bus is not None:
            await self._bus.aclose()
        if self._embeddings is not None:
            self._embeddings.close()
        if self._engine is not None:
            self._engine.dispose()


async def _json(send, status: int, obj: Any) -> None:
    body = orjson.dumps(obj)
    headers = [*_JSON, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _error(send, status: int, message: str, code: str) -> None:
    await _json(
        send, status, {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
    )


def create_app_from_env() -> RouterServiceApp:
    """Factory for ``interlock router serve``: the config path comes from ``INTERLOCK_CONFIG``."""
    import os

    from interlock.settings import load_settings

    return RouterServiceApp(load_settings(os.environ.get("INTERLOCK_CONFIG") or None))
