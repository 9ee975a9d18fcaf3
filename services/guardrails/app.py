"""The guardrails service: a thin raw-ASGI layer over ``guardrails.Guardrails`` (the embedded engine).

    POST /scan     {"texts": [...], "rules": {guard: rule}, "roles": [...] | null, "timeout": s}
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

log = logging.getLogger("interlock.guardrails.service")
_JSON = [(b"content-type", b"application/json")]
MAX_BODY = 4 * 1024 * 1024


class GuardrailsServiceApp:
    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.engine: Guardrails | None = None
        self._embeddings = None
        self.tracing = None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/scan" and method == "POST":
            span = self._span(scope)
            try:
                await self._scan(receive, send)
            finally:
                if span is not None:
                    span.end()
        elif path == "/health":
            await _json(send, 200, {"status": "ok"})
        elif path == "/ready":
            ready = self.engine is not None
            await _json(send, 200 if ready else 503, {"status": "ready" if ready else "starting"})
        else:
            await _error(send, 404, f"no route {method} {path}", None)

    def _span(self, scope):
        """A SERVER span for this scan: a child of the gateway's span when it sent ``traceparent`` (no text in it)."""
        if self.tracing is None:
            return None
        from observability import SERVER, parent_from_traceparent

        tp = next((v for k, v in scope["headers"] if k == b"traceparent"), None)
        parent = parent_from_traceparent(tp.decode("latin-1")) if tp is not None else None
        return self.tracing.start_span("POST /scan", SERVER, {"http.route": "/scan"}, parent)

    async def _scan(self, receive, send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > MAX_BODY:
                await _error(send, 413, "body over 4 MiB", None)
                return
            if not message.get("more_body"):
                break
        try:
            data = orjson.loads(body)
            texts, roles = data["texts"], data.get("roles")
            if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                raise TypeError("texts")
            if roles is not None and (not isinstance(roles, list) or len(roles) != len(texts)):
                raise TypeError("roles")
            rules = {n: GuardRule.model_validate(r) for n, r in dict(data["rules"]).items()}
            timeout = float(data.get("timeout", 2.0))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, ValidationError) as exc:
            param = exc.args[0] if isinstance(exc, TypeError) and exc.args else None
            await _error(send, 400, "send {'texts': [str], 'rules': {guard: rule}, 'roles'?, 'timeout'?}", param)
            return
        engine = self.engine
        if engine is None:
            await _error(send, 503, "starting", None)
            return
        unknown = sorted(set(rules) - set(engine.guards))
        if unknown:
            await _error(send, 400, f"rules: unknown guards {unknown}", "rules")
            return
        ctx = GuardContext(embed=self._embeddings.embed_one if self._embeddings is not None else None)
        scan = await engine.scan(texts, rules, ctx, roles=roles, timeout=timeout, on_error="open")
        await _json(send, 200, to_json(scan))

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._start()
                except Exception as exc:
                    log.exception("guardrails service failed to start")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._embeddings is not None:
                    self._embeddings.close()
                if self.tracing is not None:
                    self.tracing.flush(2.0)
                    self.tracing.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

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


async def _json(send, status: int, obj: Any) -> None:
    body = orjson.dumps(obj)
    headers = [*_JSON, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _error(send, status: int, message: str, param: str | None) -> None:
    kind = "invalid_request_error" if status < 500 else "service_unavailable"
    await _json(send, status, {"error": {"message": message, "type": kind, "param": param, "code": None}})


def create_app_from_env() -> GuardrailsServiceApp:
    """Factory for ``interlock guardrails serve``: the config path comes from ``INTERLOCK_CONFIG``."""
    import os

    from interlock.settings import load_settings

    return GuardrailsServiceApp(load_settings(os.environ.get("INTERLOCK_CONFIG") or None))
