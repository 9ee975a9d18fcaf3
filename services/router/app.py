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

from observability.service_metrics import ServiceMetrics
from router.intent import IntentRouterError, RouterNotFound
from services._asgi import read_body, run_lifespan, send_error, send_json, serve_observed, server_span

log = logging.getLogger("interlock.router.service")


class RouterServiceApp:
    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.runtime = None
        self._engine = None
        self._bus = None
        self._embeddings = None
        self.tracing = None
        self.metrics = ServiceMetrics("interlock-router", ["/route", "/routers", "/health", "/ready"])

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await run_lifespan(receive, send, self._start, self._stop, log)
            return
        if scope["type"] == "http":
            await serve_observed(self.metrics, scope, receive, send, self._http)

    async def _http(self, scope, receive, send) -> None:
        path, method = scope["path"], scope["method"]
        if path == "/route" and method == "POST":
            span = server_span(self.tracing, scope, "/route")
            try:
                await self._route(receive, send, span)
            finally:
                if span is not None:
                    span.end()
        elif path == "/health":
            await send_json(send, 200, {"status": "ok"})
        elif path == "/ready":
            ready = self.runtime is not None
            await send_json(send, 200 if ready else 503, {"status": "ready" if ready else "starting"})
        elif path == "/routers" and method == "GET":
            versions = self.runtime.versions if self.runtime is not None else {}
            await send_json(send, 200, {"routers": [{"name": n, "version": v} for n, v in sorted(versions.items())]})
        else:
            await send_error(send, 404, f"no route {method} {path}", code="not_found")

    async def _route(self, receive, send, span=None) -> None:
        try:
            data = orjson.loads(await read_body(receive))
            name, messages = data["router"], data["messages"]
            if not isinstance(name, str) or not isinstance(messages, list):
                raise TypeError
        except (orjson.JSONDecodeError, KeyError, TypeError):
            await send_error(send, 400, "send {'router': name, 'messages': [...]}", code="invalid_request")
            return
        if self.runtime is None or self.runtime.local is None:
            await send_error(send, 503, "starting", code="unavailable")
            return
        try:
            decision = await self.runtime.local.decide(name, messages)
        except RouterNotFound as exc:
            if span is not None:
                span.set_error("router_not_found", exc.message)
            await send_error(send, 404, exc.message, code="router_not_found")
            return
        except IntentRouterError as exc:
            await send_error(send, 400, exc.message, code="invalid_request")
            return
        if span is not None:  # the decision, never the text
            span.set_attribute("interlock.router", decision.router)
            span.set_attribute("interlock.route.intent", decision.intent or "-")
            span.set_attribute("interlock.route.reason", decision.reason)
        await send_json(send, 200, decision.to_json())

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


def create_app_from_env() -> RouterServiceApp:
    """Factory for ``interlock router serve``: the config path comes from ``INTERLOCK_CONFIG``."""
    import os

    from interlock.settings import load_settings

    return RouterServiceApp(load_settings(os.environ.get("INTERLOCK_CONFIG") or None))
