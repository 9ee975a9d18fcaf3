"""The cache step: answer from the exact or semantic cache before calling a model, store fresh answers after.

Order within the request path: after authentication, model resolution and admission (a hit still counts against
rate limits; it consumes no tokens, so settles none), and before the dispatch. Per request, for a model with a
``cache`` section:

1. Client opt-outs: ``x-interlock-cache: off`` bypasses; ``Cache-Control: no-store`` neither reads nor stores;
   ``no-cache`` answers fresh and stores the answer.
2. ``ResponseCache.plan``: sampling rules and the scope owner (a ``user`` scope without ``user`` bypasses).
3. Exact lookup. A miss then checks the question (user-specific, time-sensitive, personal data in a shared
   scope) and, when the model has a semantic cache, embeds the last user turn (the per-request memo shared with
   guards and the router) and searches its partition.
4. A miss calls the model; a 200 answer is stored in the background (streams: once the stream completed).

``text/event-stream``: a stream hit is replayed as SSE (role, content, finish, usage when asked, ``[DONE]``);
a stream miss passes through byte for byte while a copy of its deltas is assembled for storage.
A backend that fails is a miss, counted in ``interlock_cache_backend_errors`` and logged once per interval.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from cache import CacheUnavailable, Entry, Invalidation, Plan, ResponseCache, new_entry, replay_stream
from cache.config import CacheSettings
from cache.metrics import CacheMetrics
from gateway.pipeline import Handler
from gateway.streaming import CLIENT_CLOSED
from gateway.streaming import assembler as shared_assembler
from gateway.types import RequestContext, UpstreamResponse, Usage
from observability import CLIENT
from observability.tracing import step_span

log = logging.getLogger("interlock.cache")

HEADER = "x-interlock-cache"
#: ``ctx.notes`` key of the outcome, which the request record carries.
NOTE = "cache"


class CacheStep:
    span_name = "cache"

    def __init__(self, gateway: Any, cache: ResponseCache, settings: CacheSettings) -> None:
        self.gw = gateway
        self.cache = cache
        self.settings = settings
        self.metrics = CacheMetrics(gateway.metrics.registry)
        self._logged: dict[str, float] = {}
        self.clears = None  # gateway.cache_live.CacheClears: invalidations reach every replica

    async def clear(self, what: Invalidation) -> dict[str, int]:
        """``DELETE /admin/cache``: every backend here, the in-process ones of the other replicas too."""
        if self.clears is None:
            return await self.cache.clear(what)
        return await self.clears.clear(what)

    async def __call__(self, ctx: RequestContext, call_next: Handler) -> Any:
        pool = self.gw.table.get(ctx.model)
        config = pool.config.cache if pool is not None else None
        layers = ctx.principal.cache
        if layers is not None:  # the caller's key, else its team, may replace the model's section
            for overrides in layers:
                if ctx.model in overrides or "*" in overrides:
                    config = overrides.get(ctx.model, overrides.get("*"))
                    break
        if config is None:
            return await call_next(ctx)
        lookup = store = True
        control = ctx.notes.get("cache_request")
        if control is not None:
            cache_control, switch = control
            if switch.strip().lower() == "off" or "no-store" in cache_control:
                lookup = store = False
            elif "no-cache" in cache_control:
                lookup = False
        p = ctx.principal
        plan = self.cache.plan(ctx.route, ctx.body, ctx.model, config, key_id=p.key_id, team_id=p.team_id)
        if isinstance(plan, str) or not (lookup or store):
            return await self._bypass(ctx, call_next, config.scope, plan if isinstance(plan, str) else "client")
        plan.lookup = lookup
        started = time.perf_counter()
        if lookup:
            entry = await self._exact(plan)
            if entry is not None:
                self.metrics.child(self.metrics.lookup, "exact").observe(time.perf_counter() - started)
                return self._serve(ctx, plan, entry, "exact", None)
        self.cache.check_query(plan, pii_found(ctx))
        vector = None
        if self.cache.wants_semantic(plan):
            vector = await self._embed(ctx, plan)
            if vector is not None and lookup:
                hit = await self._semantic(ctx, plan, vector)
                self.metrics.child(self.metrics.lookup, "semantic").observe(time.perf_counter() - started)
                if hit is not None:
                    return self._serve(ctx, plan, hit[0], "semantic", hit[1])
        if not (plan.store and store):
            return await self._bypass(ctx, call_next, config.scope, plan.store_reason or "client")
        self._count(ctx, plan.key.scope, "miss" if lookup else "bypass")
        result = await call_next(ctx)
        if isinstance(result, UpstreamResponse):
            if result.status == 200:
                usage = result.usage or Usage()
                self._store(ctx, plan, new_entry(result.body, ctx.request_id, usage.prompt_tokens,
                                                 usage.completion_tokens), vector)  # fmt: skip
            return result
        return _CachingStream(result, ctx, lambda entry: self._store(ctx, plan, entry, vector))

    # -- outcomes --------------------------------------------------------------------------------------------

    async def aclose(self) -> None:
        await self.cache.aclose()

    def _count(self, ctx: RequestContext, scope: str, result: str) -> None:
        ctx.headers[HEADER] = ctx.notes[NOTE] = result
        self.metrics.child(self.metrics.requests, ctx.model, scope, result).inc()
        span = ctx.notes.get("otel_span")
        if span is not None:
            span.set_attribute("interlock.cache", result)

    async def _bypass(self, ctx: RequestContext, call_next: Handler, scope: str, reason: str) -> Any:
        self._count(ctx, scope, "bypass")
        ctx.notes["cache_bypass"] = reason
        return await call_next(ctx)

    def _serve(self, ctx: RequestContext, plan: Plan, entry: Entry, kind: str, similarity: float | None) -> Any:
        self._count(ctx, plan.key.scope, f"hit-{kind}")
        ctx.headers["x-interlock-cache-source"] = entry.source
        if similarity is not None:
            ctx.headers["x-interlock-cache-similarity"] = f"{similarity:.4f}"
            # The audit trail of a semantic hit: which answer was served to which request (never the text).
            log.info("semantic hit: request %s served the answer of %s (similarity %.4f)", ctx.request_id,
                     entry.source, similarity)  # fmt: skip
        ctx.served_model = ctx.model
        ctx.upstream = f"cache:{kind}"
        saved = entry.prompt_tokens + entry.completion_tokens
        if saved:
            self.metrics.child(self.metrics.tokens_saved, ctx.model, kind).inc(saved)
            pricing = self.gw.pricing
            if pricing is not None:
                cost = pricing.cost(ctx.model, Usage(entry.prompt_tokens, entry.completion_tokens))
                if cost:
                    self.metrics.child(self.metrics.cost_saved, ctx.model, kind).inc(cost)
        if not ctx.stream:
            return UpstreamResponse(200, entry.body, None)
        return _ReplayStream(ctx, replay_stream(entry.body, ctx.include_usage), self.gw._finish)

    # -- backends (a failure is a miss) ----------------------------------------------------------------------

    async def _exact(self, plan: Plan) -> Entry | None:
        try:
            return await self.cache.exact(plan)
        except CacheUnavailable as exc:
            self._down(exc.backend, exc)
            return None

    async def _embed(self, ctx: RequestContext, plan: Plan):
        try:
            return await self.gw.request_embeddings(ctx).get(plan.key.query)
        except Exception as exc:  # the embedder failing must not fail the request either
            self._down("embeddings", exc)
            return None

    async def _semantic(self, ctx: RequestContext, plan: Plan, vector) -> tuple[Entry, float] | None:
        # The cache service: a CLIENT span around the call, whose traceparent makes the service's span its child.
        remote = self.cache.semantic_is_remote
        span = step_span(ctx.notes.get("otel_span"), "interlock.cache.remote", None, CLIENT) if remote else None
        try:
            found = await self.cache.semantic(plan, vector, span.traceparent if span is not None else None)
        except CacheUnavailable as exc:
            if span is not None:
                span.set_error("cache_unavailable", exc.backend)
            self._down(exc.backend, exc)
            return None
        finally:
            if span is not None:
                span.end()
        for reason in found.vetoes:
            self.metrics.child(self.metrics.vetoed, ctx.model, reason).inc()
        if found.vetoes:
            ctx.notes["cache_vetoes"] = found.vetoes
        return None if found.entry is None else (found.entry, found.similarity)

    def _store(self, ctx: RequestContext, plan: Plan, entry: Entry, vector) -> None:
        self.gw.spawn(self._store_now(ctx.notes.get("otel_span"), plan, entry, vector))

    async def _store_now(self, parent, plan: Plan, entry: Entry, vector) -> None:
        """After the answer went out: a child span of the request's per kind (``interlock.cache.kind``, and
        ``interlock.cache.outcome``: ``stored`` or ``unavailable``), so a slow or failing store shows in the
        request's trace. Never the question: the partition is a hash and the span names neither."""
        stores = [("exact", lambda: self.cache.store_exact(plan, entry))] if plan.config.exact.enabled else []
        if vector is not None:
            stores.append(("semantic", lambda: self.cache.store_semantic(plan, entry, vector)))
        for kind, store in stores:
            span = step_span(parent, "interlock.cache.store", {"interlock.cache.kind": kind})
            try:
                await store()
                outcome = "stored"
            except CacheUnavailable as exc:
                self._down(exc.backend, exc)
                outcome = "unavailable"
                if span is not None:
                    span.set_error("cache_unavailable", exc.backend)
            if span is not None:
                span.set_attribute("interlock.cache.outcome", outcome)
                span.end()

    def _down(self, backend: str, exc: BaseException) -> None:
        self.metrics.child(self.metrics.errors, backend).inc()
        now = time.monotonic()
        if now - self._logged.get(backend, -1e9) >= self.settings.log_interval:
            self._logged[backend] = now
            log.warning("cache backend %s unavailable (%s); serving misses", backend, exc)


def pii_found(ctx: RequestContext) -> bool:
    """Whether the input PII guard found personal data in this request (its findings name no values). With
    masking on, the body the cache sees holds placeholders, so our own patterns cannot tell: the guard's word
    is what keeps such a request out of shared scopes."""
    if ctx.notes.get("pii_found"):
        return True
    note = ctx.notes.get("guardrails")
    findings = note.get("findings") if isinstance(note, dict) else None
    return bool(findings) and any(isinstance(f, dict) and f.get("guard") == "pii" for f in findings)


class _ReplayStream:
    """A cached answer as the stream the service sends (the same interface as ``GatewayStream``)."""

    def __init__(self, ctx: RequestContext, events: list[bytes], finish) -> None:
        self.ctx = ctx
        self._events_list = events
        self._finish = finish
        self._done = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._events()

    async def abandon(self) -> None:
        if not self._done:
            self._done = True
            self.ctx.status, self.ctx.error_type = CLIENT_CLOSED, "client_closed"
            self.ctx.finished_at = time.perf_counter()
            self._finish(self.ctx, None)

    async def _events(self) -> AsyncIterator[bytes]:
        error: BaseException | None = None
        try:
            self.ctx.first_token_at = time.perf_counter()
            for e in self._events_list:
                yield e
        except BaseException as exc:
            error = exc
            self.ctx.status, self.ctx.error_type = CLIENT_CLOSED, "client_closed"
            raise
        finally:
            if not self._done:
                self._done = True
                self.ctx.finished_at = time.perf_counter()
                self._finish(self.ctx, error)


class _CachingStream:
    """Relays a model's stream unchanged and hands the assembled answer to ``store`` once it completed."""

    def __init__(self, inner: Any, ctx: RequestContext, store) -> None:
        self._inner = inner
        self._ctx = ctx
        self._store = store

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._events()

    async def abandon(self) -> None:
        await self._inner.abandon()

    async def _events(self) -> AsyncIterator[bytes]:
        ctx = self._ctx
        assembler = shared_assembler(ctx)  # one parse per event, whichever taps the stream (feedback too)
        events = self._inner.__aiter__()
        try:
            async for e in events:
                assembler.feed(e)
                yield e
        finally:
            await events.aclose()
        usage = ctx.usage
        body = assembler.body(None if usage is None else {
            "prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        })  # fmt: skip
        if body is not None and ctx.status == 200:
            p, c = (usage.prompt_tokens, usage.completion_tokens) if usage else (0, 0)
            self._store(new_entry(body, ctx.request_id, p, c))
