"""The request-path side of intent routing: a client names a router as ``model``; the decision picks the path.

Runs only for names that are routers (``Gateway._resolve_model`` hands them here after the model table missed),
so requests naming a plain model pay nothing. The decision goes into the headers, the trace, the record and
the metrics; a model target continues down the pipeline (limits, dispatch) under the chosen model's name.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gateway.errors import InvalidRequest, ModelNotFound, ServiceUnavailable
from gateway.intent import replies
from gateway.intent.models import HandoffRow
from gateway.intent.runtime import RouterRuntime
from gateway.pipeline import Handler
from gateway.types import RequestContext
from observability.tracing import CLIENT, step_span
from router.intent import (
    ContextTooLong,
    Decision,
    IntentRouterError,
    RouterNotFound,
    RouterUnavailable,
    plan_context,
)

log = logging.getLogger("interlock.router")

#: ``ctx.notes`` key read by the request record's ``details`` (a short string, never prompt text).
NOTE_ROUTE = "route_decision"


def target_label(decision: Decision) -> str:
    t = decision.target
    if t.model is not None:
        return f"model:{decision.model or t.model}"
    if t.human is not None:
        return f"human:{t.human.queue}"
    return t.kind


class RouteStep:
    def __init__(self, runtime: RouterRuntime, gateway: Any) -> None:
        self.runtime = runtime
        self.gateway = gateway
        self.decisions = _counter(gateway.metrics.registry)

    async def decide(self, ctx: RequestContext, name: str, messages: list) -> Decision:
        """The decision for ``messages`` (shared by the chat path and ``POST /v1/route``); gateway errors only."""
        self.gateway.access.authenticator.authorize(ctx.principal, name, ctx.route)  # 403: a router is a model name
        embed = self.gateway.request_embeddings(ctx).get if self.runtime.local is not None else None
        # Service mode: a CLIENT span around the call, whose traceparent makes the router service's span its child.
        span = (
            None
            if embed is not None
            else step_span(ctx.notes.get("otel_span"), "interlock.router.remote", None, CLIENT)
        )
        try:
            return await self.runtime.routing.decide(
                name, messages, embed, span.traceparent if span is not None else None
            )
        except RouterNotFound as exc:
            raise ModelNotFound(f"The router '{name}' does not exist.", param="model") from exc
        except RouterUnavailable as exc:
            if span is not None:
                span.set_error("router_unavailable", exc.message)
            raise
        except IntentRouterError as exc:
            raise InvalidRequest(exc.message, param=exc.param) from exc
        finally:
            if span is not None:
                span.end()

    async def route_only(self, body: dict, authorization: str | None, request_id: str) -> dict:
        """``POST /v1/route``: the decision as JSON, without calling a model (for admins trying their intents)."""
        from gateway.requests import _check_messages

        name, messages = body.get("router"), body.get("messages")
        if not isinstance(name, str) or not name:
            raise InvalidRequest("'router' must be the name of an intent router.", param="router")
        _check_messages(messages)
        ctx = RequestContext(request_id=request_id, route="chat", body=body, model=name)
        ctx.principal = self.gateway.access.authenticator.authenticate(authorization)
        if name not in self.runtime.names:
            raise ModelNotFound(f"The router '{name}' does not exist.", param="router")
        try:
            decision = await self.decide(ctx, name, messages)
        except RouterUnavailable as exc:
            raise ServiceUnavailable(f"router '{name}' cannot decide right now ({exc.message})") from exc
        self.decisions.labels(decision.router, decision.intent or "-", target_label(decision)).inc()
        return decision.to_json()

    async def __call__(self, ctx: RequestContext, call_next: Handler) -> Any:
        name = ctx.model
        if ctx.route != "chat":
            raise InvalidRequest(f"'{name}' is an intent router: use /v1/chat/completions", param="model")
        messages = ctx.body.get("messages")
        if not isinstance(messages, list):
            raise InvalidRequest("messages: a router needs the chat messages", param="messages")
        ctx.headers["x-interlock-router"] = name
        try:
            decision = await self.decide(ctx, name, messages)
        except RouterUnavailable as exc:
            return await self._fallback(ctx, call_next, str(exc))
        self._observe(ctx, decision)
        if decision.target.model is not None:
            return await self._to_model(ctx, call_next, decision, messages)
        return self._answer(ctx, name, decision, messages)

    # -- outcomes -------------------------------------------------------------------------------------------

    async def _to_model(self, ctx: RequestContext, call_next: Handler, decision: Decision, messages: list) -> Any:
        cfg = self.runtime.config
        model = decision.model or decision.target.model
        body = ctx.body
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            max_tokens = cfg.assumed_max_tokens  # request validation owns the 400 for a bad value
        try:
            plan = plan_context(model, messages, max_tokens, cfg.models, cfg.on_overflow)  # type: ignore[arg-type]
        except ContextTooLong as exc:
            raise InvalidRequest(exc.message, param="messages", code="context_length_exceeded") from exc
        if plan.action != "unknown":
            ctx.headers["x-interlock-context"] = plan.header()
            ctx.notes["route_context"] = plan.header()
            span = ctx.notes.get("otel_span")
            if span is not None:
                span.set_attribute("interlock.route.context", plan.header())
        if plan.action == "truncated":
            ctx.body = {**body, "messages": plan.messages}
        if self.gateway.table.get(plan.model) is None:
            raise ServiceUnavailable(f"router '{ctx.model}' sends this query to model '{plan.model}', which is gone")
        ctx.headers["x-interlock-route-target"] = f"model:{plan.model}"
        ctx.model = plan.model
        return await call_next(ctx)

    def _answer(self, ctx: RequestContext, name: str, decision: Decision, messages: list) -> Any:
        target = decision.target
        text = replies.stock_text(target)
        ctx.served_model = name
        ctx.upstream = f"router:{target.kind}"
        if target.human is not None:
            self._handoff(ctx, name, decision, messages)
        if ctx.stream:
            return replies.stream(ctx, name, text, self.gateway._finish)
        return replies.completion(ctx, name, text)

    async def _fallback(self, ctx: RequestContext, call_next: Handler, why: str) -> Any:
        """No decision could be had (service mode, service down): the configured model, else 503."""
        model = self.runtime.config.fallback_model
        log.warning("router %s: no decision (%s); %s", ctx.model, why, f"fallback to {model}" if model else "503")
        self.decisions.labels(ctx.model, "-", "fallback").inc()
        if model is None or self.gateway.table.get(model) is None:
            raise ServiceUnavailable(f"router '{ctx.model}' cannot decide right now; retry shortly")
        ctx.headers["x-interlock-intent"] = "-"
        ctx.headers["x-interlock-route-target"] = f"fallback:{model}"
        ctx.notes[NOTE_ROUTE] = f"router={ctx.model} fallback={model}"
        ctx.model = model
        return await call_next(ctx)

    # -- bookkeeping ----------------------------------------------------------------------------------------

    def _observe(self, ctx: RequestContext, d: Decision) -> None:
        label = target_label(d)
        ctx.headers["x-interlock-intent"] = d.intent or "-"
        ctx.headers["x-interlock-route-target"] = label
        ctx.headers["x-interlock-route-reason"] = d.reason
        ctx.notes[NOTE_ROUTE] = (
            f"router={d.router} v{d.version} intent={d.intent or '-'} reason={d.reason} "
            f"confidence={d.confidence:.3f} target={label}"
        )
        self.decisions.labels(d.router, d.intent or "-", label).inc()
        span = ctx.notes.get("otel_span")
        if span is not None:
            span.set_attribute("interlock.router", d.router)
            span.set_attribute("interlock.router.version", d.version)
            span.set_attribute("interlock.route.intent", d.intent or "-")
            span.set_attribute("interlock.route.reason", d.reason)
            span.set_attribute("interlock.route.confidence", round(d.confidence, 4))
            span.set_attribute("interlock.route.target", label)

    def _handoff(self, ctx: RequestContext, name: str, d: Decision, messages: list) -> None:
        human = d.target.human
        assert human is not None
        row = HandoffRow(
            id=ctx.request_id,
            router=name,
            router_version=d.version,
            intent=d.intent,
            queue=human.queue,
            key_id=ctx.principal.key_id,
            team_id=ctx.principal.team_id,
        )
        cfg = self.runtime.config.handoff
        event = {
            "id": row.id,
            "request_id": ctx.request_id,
            "router": name,
            "router_version": d.version,
            "intent": d.intent,
            "queue": human.queue,
            "key_id": row.key_id,
            "team_id": row.team_id,
            "created_at": row.created_at.isoformat(),
        }
        if cfg.include_messages:
            event["messages"] = messages
        self.gateway.spawn(self._record_handoff(row, event))

    async def _record_handoff(self, row: HandoffRow, event: dict) -> None:
        store, cfg = self.runtime.store, self.runtime.config.handoff
        try:
            await asyncio.to_thread(store.add_handoff, row)
        except Exception:
            log.exception("recording handoff %s failed", row.id)
            return
        if cfg.webhook_url is None:
            return
        import httpx

        try:
            async with httpx.AsyncClient(timeout=cfg.webhook_timeout) as client:
                r = await client.post(cfg.webhook_url, json=event)
            outcome = "sent" if r.status_code < 300 else f"failed: HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            outcome = f"failed: {type(exc).__name__}"
        try:
            await asyncio.to_thread(store.set_webhook, row.id, outcome)
        except Exception:
            log.exception("recording the webhook outcome of handoff %s failed", row.id)


def _counter(registry):
    from prometheus_client import Counter

    return Counter(
        "interlock_router_decisions",
        "Intent routing decisions by router, intent (- when none) and target.",
        ["router", "intent", "target"],
        registry=registry,
    )
