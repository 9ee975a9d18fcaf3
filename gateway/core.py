"""The ``Gateway``: builds the request path from settings, serves requests through it, and records them.

Long-lived objects (HTTP pool, model table, writer, telemetry, access, limits) are built in ``start()`` and passed
down; nothing is a module-level singleton. Per-request state lives in ``RequestContext``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from gateway.admission import AdmitStep, AuthenticateStep
from gateway.dispatch import Dispatcher
from gateway.errors import InterlockError, ModelNotFound
from gateway.health import HealthMonitor
from gateway.pipeline import Handler, Step, build
from gateway.pool import ModelTable
from gateway.recording import details, prompt_version
from gateway.streaming import CLIENT_CLOSED, GatewayStream
from gateway.types import RequestContext, UpstreamResponse
from gateway.upstreams import HTTPPool
from observability import SERVER, GatewayMetrics, Tracing, request_attributes
from observability.scrape import Exposition

log = logging.getLogger("interlock.gateway")

Result = UpstreamResponse | GatewayStream


class Gateway:
    """One gateway process's request path. ``settings`` is ``interlock.settings.Settings``."""

    def __init__(self, settings: Any, *, extra_steps: list[Step] | None = None, tracing: Tracing | None = None) -> None:
        self.settings = settings
        self.metrics = GatewayMetrics(labels=settings.observability.metric_labels)
        obs = settings.observability
        self.tracing = tracing or Tracing(
            obs.service_name,
            enabled=obs.tracing,
            otlp_endpoint=obs.otlp_endpoint,
            sample_ratio=obs.trace_sample_ratio,
        )
        # /metrics: rendered in a worker thread (not on the loop: ~50 ms at the label bound), shared for a second
        self.exposition = Exposition(self.metrics.render, ttl=obs.metrics_cache_seconds, refresh=self._refresh_gauges)
        self.extra_steps = extra_steps or []
        self.http: HTTPPool | None = None
        self.table: ModelTable | None = None
        self.engine = None
        self.writer = None
        self.recorder = None  # gateway.recorder.RecorderProcess, when records or spans are shipped by a process
        self.access = None  # gateway.access authenticator, when configured
        self.limiter = None  # gateway.limits limiter, when Redis is configured
        self.pricing = None
        self.embeddings = None  # embeddings.EmbeddingService, built once by the first component that needs it
        self.cache = None  # gateway.cache_step.CacheStep, when a model has a cache section
        self.routers = None  # gateway.intent.runtime.RouterRuntime: intent routers clients name as ``model``
        self.route_step = None
        self.guardrails = None  # guardrails.Guardrails, when guardrails.enabled
        self._handler: Handler | None = None
        self._steps: tuple[list[Step], list[Step]] = ([], [])  # the request path before / after the cache step
        self._background: set[asyncio.Task] = set()
        self._health: HealthMonitor | None = None
        self._in_flight = 0
        self._store_spans = settings.trace_store.enabled
        self._objective_s = settings.rollups.latency_objective_ms / 1000  # goodput
        self.feedback = None  # gateway.feedback.Feedback, when feedback.enabled
        self.config_version: str | None = None  # fingerprint of settings and models in force, for records

    # -- lifecycle -------------------------------------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        # Idle connections are dropped after 4 s: uvicorn (vLLM's server) closes them after 5.
        self.http = HTTPPool(connect_timeout=s.timeouts.connect, idle_timeout=4.0)
        await self._start_database()
        await self._start_access()
        self.table = ModelTable(self.http, s.timeouts, s.health, s.affinity.load_factor)
        self.apply_models(self.access.models)
        await asyncio.to_thread(self._resolve_prices)
        self._health = HealthMonitor(s.health.interval, lambda: self.table.all())
        self._health.start()
        self.dispatcher = Dispatcher(self.table, s.retries, s.affinity, self.tracing, self.metrics)
        await self._start_routers()
        steps: list[Step] = [AuthenticateStep(self.access.authenticator, self.table), self._resolve_model]
        if self.limiter.enabled:
            steps.append(AdmitStep(self.limiter, lambda: self.pricing))
        if s.guardrails.enabled:  # else no guard model loads and nothing of them is on the request path
            from gateway.guarding import start_guardrails

            steps.extend(await start_guardrails(self))
        # The cache step goes between ``steps`` and ``after``, now when a model, key or team has a cache section,
        # else when the first one appears (``fold_steps`` again): until then nothing of it is on the request path.
        from gateway.cache_live import follow_caches

        await follow_caches(self)
        after: list[Step] = []
        if s.feedback.enabled:
            from gateway.feedback import Feedback

            self.feedback = Feedback(s.feedback, self.engine, self.metrics, redis_url=s.redis.url)
            await self.feedback.start()
            if s.feedback.implicit or s.feedback.store_content_for:  # else nothing of it on the request path
                after.append(self.feedback.step)
        after.extend(self.extra_steps)
        if self.guardrails is not None:  # innermost: a retry, hedge or fallback is a fresh upstream answer
            from gateway.guard_output import start_output_guards

            after.extend(start_output_guards(self))
        self._steps = (steps, after)
        self.fold_steps()
        if self.recorder is not None:  # started early, so its start overlapped ours
            await self.recorder.wait_ready(30.0)

    def fold_steps(self) -> None:
        """(Re)build the request path from its steps; requests in flight finish on the one they started with."""
        before, after = self._steps
        steps = [*before, *([self.cache] if self.cache is not None else []), *after]
        if self.settings.trace_store.enabled and self.tracing.enabled:  # a child span per step, when spans are stored
            from gateway.recording import traced

            steps = [traced(step) for step in steps]
        self._handler = build(steps, self._dispatch)

    async def _start_routers(self) -> None:
        """Intent routers: always followed (one added through the admin API serves at once), yet a request that
        names a plain model never reaches their step (see ``_resolve_model``)."""
        from gateway.intent.runtime import RouterRuntime
        from gateway.intent.step import RouteStep

        self.routers = RouterRuntime(
            self.settings.router,
            self.engine,
            self.access.bus,
            embeddings=self.require_embeddings,
            known_models=lambda: {p.name for p in self.table.all()},
        )
        self.route_step = RouteStep(self.routers, self)
        await self.routers.start()

    async def _start_access(self) -> None:
        """Keys, teams and live config (the database, fanned out over Redis), then limits and budgets."""
        from gateway.access import AccessRuntime
        from gateway.db import spend_since
        from gateway.limits import Limiter

        s = self.settings
        self.access = AccessRuntime(s.access, self.engine, s.models, redis_url=s.redis.url)
        await self.access.start()

        async def models_changed(models: list) -> None:
            self.apply_models(models)
            await asyncio.to_thread(self._resolve_prices)

        self.access.on_models_changed(models_changed)
        engine = self.engine
        self.limiter = Limiter(
            s.redis.url,
            timeout=s.redis.timeout,
            failure_policy=s.redis.failure_policy,
            tickets=s.redis.tickets,
            ticket_ttl=s.redis.ticket_ttl,
            settle_delay=s.redis.settle_delay,
            reconcile=lambda key_id, team_id, since: spend_since(engine, key_id=key_id, team_id=team_id, since=since),
        )
        await self.limiter.start()

    async def _start_database(self) -> None:
        from gateway.db import RecordWriter, make_engine, migrate

        url = self.settings.database.url
        await asyncio.to_thread(migrate, url)
        self.engine = make_engine(url)
        db = self.settings.database
        obs = self.settings.observability
        shipped = obs.recorder == "process" and db.journal
        journal_dir = (db.journal_dir or default_journal_dir(url)) if db.journal else None
        self.writer = RecordWriter(
            self.engine,
            batch_size=db.batch_size,
            flush_interval=db.flush_interval,
            journal_dir=journal_dir,
            journal_fsync=db.journal_fsync,
            shipped=shipped,
        )
        await self.writer.start()
        ship_spans = obs.recorder == "process" and self.tracing.enabled and self.tracing.exports_otlp
        store_spans = obs.recorder == "process" and self.tracing.enabled and self.settings.trace_store.enabled
        if shipped or ship_spans or store_spans:
            await self._start_recorder(journal_dir if shipped else None, ship_spans, store_spans)

    async def _start_recorder(self, journal_dir: str | None, ship_spans: bool, store_spans: bool = False) -> None:
        """The process that writes this process's journal to the database and posts its spans."""
        from gateway.recorder import RecorderProcess

        db, obs = self.settings.database, self.settings.observability
        settings = {
            "database_url": db.url if journal_dir else None,
            "journal_dir": journal_dir and str(journal_dir),
            "prefix": self.writer.journal_prefix if journal_dir else None,
            "batch_size": db.batch_size,
            "interval": db.flush_interval,
            "fsync": db.journal_fsync,
            "otlp_endpoint": obs.otlp_endpoint if ship_spans else None,
            "service_name": obs.service_name,
            "log_level": logging.getLevelName(logging.getLogger().getEffectiveLevel()),
            # The ops console's data (gateway/recorder/spans_store.py, rollups.py).
            "store_url": db.url if store_spans else None,
            "trace_store": self.settings.trace_store.model_dump() if store_spans else None,
            "rollups": self.settings.rollups.model_dump() if self.settings.rollups.enabled else None,
        }
        self.recorder = RecorderProcess(
            settings, on_progress=self.writer.shipped, on_keep_ratio=self.tracing.set_keep_ratio
        )
        await self.recorder.start()
        if ship_spans or store_spans:
            self.tracing.send_to(self.recorder.add_span)

    async def aclose(self) -> None:
        if self._health is not None:
            await self._health.aclose()
        if self.access is not None:
            await self.access.aclose()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self.limiter is not None:
            await self.limiter.aclose()
        if self.feedback is not None:
            await self.feedback.aclose()
        if self.writer is not None:
            await self.writer.close()  # releases the journal: the recorder ships the rest and exits
        if self.recorder is not None:
            await self.recorder.aclose()
        if self.cache is not None:
            await self.cache.aclose()
        if self.routers is not None:
            await self.routers.aclose()
        if self.guardrails is not None:  # the PII worker processes, or the guardrails service's HTTP client
            await self.guardrails.aclose()
        if self.http is not None:
            await self.http.aclose()
        if self.embeddings is not None:
            self.embeddings.close()
        if self.engine is not None:
            self.engine.dispose()
        self.tracing.shutdown()

    def require_embeddings(self):
        """The process's one ``EmbeddingService`` (guards, intent router and semantic cache share it). Components
        call this from ``start()``, so the model loads before serving, never on a request."""
        if self.embeddings is None:
            from embeddings import EmbeddingService, load_embedder

            cfg = self.settings.embeddings
            self.embeddings = EmbeddingService(load_embedder(cfg), max_batch=cfg.max_batch)
        return self.embeddings

    def request_embeddings(self, ctx: RequestContext):
        """This request's embedding memo: each text is embedded at most once, whichever step asks first."""
        memo = ctx.notes.get("embeddings")
        if memo is None:
            from embeddings import RequestEmbeddings

            memo = ctx.notes["embeddings"] = RequestEmbeddings(self.require_embeddings())
        return memo

    def apply_models(self, models: list) -> None:
        """Swap the model table (admin changes). In-flight requests finish on the pools they started with."""
        from gateway.limits import Pricing

        assert self.table is not None
        self.table.apply(models)
        self.pricing = Pricing(models)
        from gateway.recording import config_version

        self.config_version = config_version(self.settings, models)

    def _resolve_prices(self) -> None:
        """Look every model's price up now (litellm's map takes ~0.4 s to load), not on the first request."""
        pricing = self.pricing
        if pricing is not None:
            for pool in self.table.all():  # type: ignore[union-attr]
                pricing.prices(pool.name)

    # -- the request path ------------------------------------------------------------------------------------

    async def handle(self, ctx: RequestContext) -> Result:
        """Serve one parsed request. Raises ``InterlockError`` for anything the client should see."""
        if self.tracing.enabled:
            attrs = request_attributes(ctx.route, ctx.body)
            if self._store_spans:  # joins stored spans to the record; the store waits for this span
                attrs["interlock.request_id"] = ctx.request_id
            ctx.notes["otel_span"] = self.tracing.start_span(
                f"{attrs['gen_ai.operation.name']} {ctx.model}", SERVER, attrs, ctx.notes.get("otel_parent")
            )
        self._in_flight += 1
        try:
            result = await self._handler(ctx)
        except BaseException as exc:
            if isinstance(exc, InterlockError):
                ctx.status, ctx.error_type = exc.status, exc.type
            elif isinstance(exc, asyncio.CancelledError):
                ctx.status, ctx.error_type = CLIENT_CLOSED, "client_closed"
            else:
                ctx.status, ctx.error_type = 500, "internal_error"
            ctx.finished_at = time.perf_counter()
            self._finish(ctx, exc)
            raise
        if isinstance(result, UpstreamResponse):
            ctx.usage = result.usage
            ctx.finished_at = time.perf_counter()
            self._finish(ctx, None)
        return result

    async def _resolve_model(self, ctx: RequestContext, call_next: Handler) -> Result:
        if self.table.get(ctx.model) is None:  # type: ignore[union-attr]
            if self.routers is not None and ctx.model in self.routers.names:  # an intent router decides
                return await self.route_step(ctx, call_next)
            raise ModelNotFound(f"The model '{ctx.model}' does not exist.", param="model")
        return await call_next(ctx)

    async def _dispatch(self, ctx: RequestContext) -> Result:
        pool = self.table.get(ctx.model)  # type: ignore[union-attr]
        return await self.dispatcher.dispatch(ctx, pool, self._finish)

    # -- after the request -----------------------------------------------------------------------------------

    def _finish(self, ctx: RequestContext, error: BaseException | None) -> None:
        """Runs once per request: metrics, span, record, ``on_finish`` callbacks. Must never raise."""
        self._in_flight -= 1
        try:
            self._observe(ctx)
            for callback in ctx.on_finish:
                outcome = callback(ctx)
                if asyncio.iscoroutine(outcome):
                    self.spawn(outcome)
        except Exception:  # bookkeeping must never break a response that is already on its way
            log.exception("finishing request %s failed", ctx.request_id)

    def _observe(self, ctx: RequestContext) -> None:
        m = self.metrics
        # A model name the client made up must not become a metric label: that would be unbounded series.
        model = ctx.served_model or (ctx.model if self.table.get(ctx.model) is not None else "(unknown)")
        end = ctx.finished_at or time.perf_counter()
        latency = end - ctx.started
        ttft = tpot = None
        usage = ctx.usage
        p = ctx.principal
        version = prompt_version(ctx.body)
        series = m.series(ctx.route, model, p.key_id, p.team_id, version)
        if ctx.first_token_at is not None:
            ttft = ctx.first_token_at - ctx.started
            series.ttft.observe(ttft)
            if usage is not None and usage.completion_tokens > 1:
                tpot = (end - ctx.first_token_at) / (usage.completion_tokens - 1)
                series.tpot.observe(tpot)
        series.count(ctx.status)
        series.latency.observe(latency)
        if ctx.status < 400 and latency <= self._objective_s:
            series.goodput.inc()
        if usage is not None:
            if self.pricing is not None and ctx.served_model:
                ctx.cost_usd = self.pricing.cost(ctx.served_model, usage)
            series.input.inc(usage.prompt_tokens)
            series.output.inc(usage.completion_tokens)
            if ctx.cost_usd:
                series.cost.inc(ctx.cost_usd)
        span = ctx.notes.get("otel_span")
        if span is not None:
            span.set_attribute("http.response.status_code", ctx.status)
            if ctx.upstream:
                span.set_attribute("interlock.upstream", ctx.upstream)
            if ctx.served_model:
                span.set_attribute("gen_ai.response.model", ctx.served_model)
            if usage is not None:
                span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
                span.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens)
            if ctx.error_type:
                span.set_attribute("error.type", ctx.error_type)
            span.end()
        if self.writer is not None:
            record = {
                "id": ctx.request_id,
                "client_request_id": ctx.client_request_id,
                "created_at": datetime.now(UTC),
                "key_id": p.key_id,
                "team_id": p.team_id,
                "model": ctx.model,
                "served_model": ctx.served_model,
                "upstream": ctx.upstream,
                "route": ctx.route,
                "stream": ctx.stream,
                "status": ctx.status,
                "error_type": ctx.error_type,
                "prompt_tokens": usage.prompt_tokens if usage else 0,
                "completion_tokens": usage.completion_tokens if usage else 0,
                "latency_ms": latency * 1000,
                "ttft_ms": None if ttft is None else ttft * 1000,
                "tpot_ms": None if tpot is None else tpot * 1000,
                "cost_usd": ctx.cost_usd,
                "attempts": ctx.attempts,
                "trace_id": None if span is None else f"{span.trace_id:032x}",
                "prompt_version": version,
                "details": details(ctx, self.config_version),
            }
            self.writer.submit(record)
            if self.feedback is not None:  # feedback may come before the recorder has written the record
                self.feedback.remember(record)

    def refused(
        self, route: Any, request_id: str, client_id: str | None, authorization: bytes | None, error: InterlockError
    ) -> None:
        """Count and record a request the HTTP layer refused before ``handle`` (400, 405, 413, 415, 431): the
        same metrics and journal as any request, no span, nothing on the database here. The body is not known
        (or not valid), so the model is ``(unknown)``. Attributed to its key when ``authorization`` holds a
        valid one (an in-memory lookup)."""
        ctx = RequestContext(request_id, route, {}, "(unknown)", client_request_id=client_id)
        ctx.status, ctx.error_type = error.status, error.type
        try:
            if authorization and self.access is not None:
                ctx.principal = self.access.authenticator.authenticate(authorization.decode("latin-1"))
        except InterlockError:
            pass  # an invalid key: recorded without one
        try:
            self._observe(ctx)
        except Exception:  # bookkeeping must never turn a 4xx into a 500
            log.exception("recording refused request %s failed", ctx.request_id)

    def spawn(self, coro) -> None:
        """Run background work tied to the gateway's life (awaited at shutdown)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- status ----------------------------------------------------------------------------------------------

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready = the database answers and every model has at least one healthy deployment."""
        from gateway.db import check

        db_ok = await asyncio.to_thread(check, self.engine) if self.engine is not None else False
        models = {p.name: p.healthy_count() for p in self.table.all()}  # type: ignore[union-attr]
        checks: dict[str, Any] = {"database": db_ok, "models": models}
        ok = db_ok and all(n > 0 for n in models.values())
        rejected = self._rejected_models()
        if rejected:  # informative: the valid models are served; these wait for an admin to fix them
            checks["rejected_models"] = rejected
        if self.limiter is not None and self.limiter.enabled:
            checks["redis"] = self.limiter.status()
            ok = ok and (self.limiter.healthy or self.settings.redis.failure_policy == "open")
        ready_guards = getattr(self.guardrails, "ready", None)  # guardrails.mode: service
        if ready_guards is not None:
            checks["guardrails_service"] = up = await ready_guards()
            ok = ok and (up or self.settings.guardrails.service.on_error == "open")
        if self.guardrails is not None:  # informative: a dead PII worker is rebuilt by the next request needing it
            checks.update(self.guardrails.health())
        if self.recorder is not None:  # informative: records wait in the journal while it restarts
            checks["recorder"] = {"running": self.recorder.running, "restarts": self.recorder.restarts}
        self._refresh_gauges()
        return ok, checks

    def _rejected_models(self) -> dict[str, str]:
        """Models left out of the table: stored configs that do not validate, upstreams that cannot be built."""
        rejected = dict(self.access.model_errors) if self.access is not None else {}
        rejected.update(self.table.errors)  # type: ignore[union-attr]
        return rejected

    def _refresh_gauges(self) -> None:
        m = self.metrics
        m.models_rejected.set(len(self._rejected_models()))
        for p in self.table.all():  # type: ignore[union-attr]
            for d in p.deployments:
                m.healthy.labels(p.name, d.name).set(1 if d.refresh() else 0)
        m.in_flight.set(self._in_flight)
        if self.writer is not None:
            m.records_pending.set(self.writer.pending)
            m.records_dropped.set(self.writer.dropped)
        if self.limiter is not None and self.limiter.enabled:
            m.set_redis_up(self.limiter.healthy)
        dropped = self.tracing.dropped
        if self.recorder is not None:
            m.recorder_up.set(1 if self.recorder.running else 0)
            dropped += self.recorder.totals["spans_dropped"]
        m.spans_dropped.set(dropped)
        m.traces_shed.set(self.tracing.shed)
        m.trace_keep_ratio.set(self.tracing.keep_ratio)

    async def render_metrics(self) -> bytes:
        """The body of ``GET /metrics`` (``observability.scrape.Exposition``: off the event loop, cached briefly)."""
        return await self.exposition.body()


def default_journal_dir(database_url: str) -> str:
    """One journal folder per database, so a replay can never write one database's records into another."""
    import hashlib
    import os

    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return os.path.abspath(url.database) + ".records-journal"
    key = hashlib.sha256(url.render_as_string(hide_password=True).encode()).hexdigest()[:12]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "interlock", "journal", key)
