"""The guardrails service: a thin raw-ASGI layer over ``guardrails.Guardrails`` (the embedded engine).

    POST /scan     {"texts": [...], "rules": {guard: rule}, "roles": [...] | null, "timeout": s, "scope": str | null}
                   -> {"findings": [[{guard, type, start, end, score, action}]], "scores", "failed", "action",
                       "blocked_by"}   (``guardrails.remote.to_json``)
    GET  /health   alive;  GET /ready: every guard model is loaded

Gateways with ``guardrails.mode: service`` call it through ``guardrails.remote.RemoteGuardrails``. Guards that fail
here are reported in ``failed`` (the gateway applies the policy's ``on_error``); the texts are never logged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from pydantic import ValidationError

from guardrails import GuardContext, Guardrails, GuardRule
from guardrails.remote import to_json
from observability.service_metrics import ServiceMetrics
from services._asgi import read_body, run_lifespan, send_error, send_json, serve_observed, server_span

log = logging.getLogger("interlock.guardrails.service")
MAX_BODY = 4 * 1024 * 1024


class GuardrailsServiceApp:
    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.engine: Guardrails | None = None
        self._embeddings = None
        self.tracing = None
        self.metrics = ServiceMetrics("interlock-guardrails", ["/scan", "/health", "/ready"])

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await run_lifespan(receive, send, self._start, self._stop, log)
            return
        if scope["type"] == "http":
            await serve_observed(self.metrics, scope, receive, send, self._http)

    async def _http(self, scope, receive, send) -> None:
        path, method = scope["path"], scope["method"]
        if path == "/scan" and method == "POST":
            span = server_span(self.tracing, scope, "/scan")
            try:
                await self._scan(receive, send)
            finally:
                if span is not None:
                    span.end()
        elif path == "/health":
            await send_json(send, 200, {"status": "ok"})
        elif path == "/ready":
            ready = self.engine is not None
            await send_json(send, 200 if ready else 503, {"status": "ready" if ready else "starting"})
        else:
            await send_error(send, 404, f"no route {method} {path}")

    async def _scan(self, receive, send) -> None:
        body = await read_body(receive, MAX_BODY)
        if body is None:
            await send_error(send, 413, "body over 4 MiB")
            return
        try:
            data = orjson.loads(body)
            texts, roles = data["texts"], data.get("roles")
            if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                raise TypeError("texts")
            if roles is not None and (not isinstance(roles, list) or len(roles) != len(texts)):
                raise TypeError("roles")
            rules = {n: GuardRule.model_validate(r) for n, r in dict(data["rules"]).items()}
            timeout = float(data.get("timeout", 2.0))
            caller = data.get("scope")
            if caller is not None and not isinstance(caller, str):
                raise TypeError("scope")
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, ValidationError) as exc:
            param = exc.args[0] if isinstance(exc, TypeError) and exc.args else None
            await send_error(
                send, 400, "send {'texts': [str], 'rules': {guard: rule}, 'roles'?, 'timeout'?, 'scope'?}", param=param
            )
            return
        engine = self.engine
        if engine is None:
            await send_error(send, 503, "starting")
            return
        unknown = sorted(set(rules) - set(engine.guards))
        if unknown:
            await send_error(send, 400, f"rules: unknown guards {unknown}", param="rules")
            return
        embed = self._embeddings.embed_one if self._embeddings is not None else None
        ctx = GuardContext(embed=embed, scope=caller)  # guards memoise per caller scope, never across
        scan = await engine.scan(texts, rules, ctx, roles=roles, timeout=timeout, on_error="open")
        await send_json(send, 200, to_json(scan))

    async def _stop(self) -> None:
        if self.engine is not None:
            await self.engine.aclose()  # the PII worker processes
        if self._embeddings is not None:
            self._embeddings.close()
        if self.tracing is not None:
            self.tracing.flush(2.0)
            self.tracing.shutdown()

    async def _start(self) -> None:
        from embeddings import EmbeddingService, load_embedder

        s = self.settings
        if s.observability.tracing:  # spans to the same OTLP endpoint as the gateways'
            from observability import Tracing

            self.tracing = Tracing("interlock-guardrails", otlp_endpoint=s.observability.otlp_endpoint)
        self._embeddings = EmbeddingService(load_embedder(s.embeddings), max_batch=s.embeddings.max_batch)
        engine = Guardrails(s.guardrails)  # the embedded engine, whatever mode the gateways' settings name
        await asyncio.to_thread(engine.load)
        self.engine = engine


def create_app_from_env() -> GuardrailsServiceApp:
    """Factory for ``interlock guardrails serve``: the config path comes from ``INTERLOCK_CONFIG``."""
    import os

    from interlock.settings import load_settings

    return GuardrailsServiceApp(load_settings(os.environ.get("INTERLOCK_CONFIG") or None))
