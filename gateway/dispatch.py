"""Getting an answer from some upstream: replica choice, retries with backoff, and the fallback chain.

For each model in ``[requested, *fallbacks]``: up to ``retries.attempts`` tries. A retry goes at once to a
replica not tried yet; only when every replica has failed does it wait (exponential backoff with jitter, or the
upstream's ``Retry-After`` when that is short enough). Errors the caller caused (4xx but 429) are not retried.
A stream counts as answered only once its first token arrived: until then nothing has reached the client, so a
stream that breaks that early, or begins with an event that is not a JSON object, is retried like any other failure.

A request can be the cause of its own failures (a "poison" request that makes the upstream answer 500). So that such
requests cannot eject a healthy deployment:
- a request counts at most one failure against each deployment's breaker, so opening one takes failures from
  ``failure_threshold`` distinct requests in a row;
- an HTTP 500 is held back until the request's tries on that model are over: a request that got a 500 from every
  replica of the model (twice at least) is the cause, is not retried there again and counts against none of them;
  otherwise (another replica answered, or the others failed differently) the replicas that answered 500 are charged.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

from gateway.config import AffinityConfig, RetryConfig
from gateway.errors import UpstreamError, UpstreamHTTPError, UpstreamProtocolError, UpstreamUnavailable
from gateway.pool import Deployment, ModelPool, ModelTable
from gateway.requests import affinity_text
from gateway.streaming import GatewayStream
from gateway.types import RequestContext, UpstreamRequest, UpstreamResponse
from gateway.upstreams.sse import check_first_event, is_role_only
from observability import CLIENT, OPERATION, GatewayMetrics, Tracing
from router import PrefixAffinityRouter, RouteHint, prefix_hashes

log = logging.getLogger("interlock.dispatch")


def hurts_health(exc: UpstreamError) -> bool:
    """Failures that say the deployment is unwell (as opposed to busy, or a bad request)."""
    if isinstance(exc, UpstreamHTTPError):
        return exc.status >= 500
    return True


def backoff(attempt: int, cfg: RetryConfig, exc: UpstreamError | None) -> float:
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None and retry_after <= cfg.retry_after_max:
        return retry_after
    ceiling = min(cfg.backoff_max, cfg.backoff_base * (2**attempt))
    return ceiling * random.uniform(0.5, 1.0)  # "equal jitter": spread retries, keep a floor


def fails_everywhere(pool: ModelPool, answered_500: list[Deployment]) -> bool:
    """The request got an HTTP 500 from every replica of ``pool``, at least twice: it is the request, not them."""
    return len(answered_500) >= 2 and all(d in answered_500 for d in pool.deployments)


def is_500(exc: BaseException | None) -> bool:
    return isinstance(exc, UpstreamHTTPError) and exc.status == 500


class Dispatcher:
    def __init__(
        self,
        table: ModelTable,
        retries: RetryConfig,
        affinity: AffinityConfig,
        tracing: Tracing,
        metrics: GatewayMetrics,
    ) -> None:
        self.table = table
        self.retries = retries
        self.affinity = affinity
        self.tracing = tracing
        self.metrics = metrics

    def _hint(self, ctx: RequestContext, pool: ModelPool) -> RouteHint:
        if len(pool.deployments) < 2 or not isinstance(pool.router, PrefixAffinityRouter):
            return RouteHint()
        if ctx.session_id is not None:
            return RouteHint(session=ctx.session_id)
        text = affinity_text(ctx)
        if not text:
            return RouteHint()
        return RouteHint(prefix_hashes(text, self.affinity.block_chars, self.affinity.prefix_chars))

    async def dispatch(self, ctx: RequestContext, pool: ModelPool, finish) -> UpstreamResponse | GatewayStream:
        chain = [pool]
        for name in pool.config.fallbacks:
            fb = self.table.get(name)
            if fb is not None:
                chain.append(fb)
        last: UpstreamError | None = None
        for position, p in enumerate(chain):
            hint = self._hint(ctx, p)
            tried: set[str] = set()
            answered_500: list[Deployment] = []  # charged once the request is known not to be the cause
            served: Deployment | None = None
            try:
                for attempt in range(self.retries.attempts):
                    d = await p.pick(hint, tried)
                    if d is None and tried:
                        d = await p.pick(hint)  # every replica failed once: back off and try the best again
                        if d is not None:
                            await asyncio.sleep(backoff(attempt, self.retries, last))
                    if d is None:
                        last = last or UpstreamUnavailable(f"no healthy deployment is available for model {p.name!r}")
                        break
                    if attempt:
                        self.metrics.retries.labels(p.name).inc()
                    try:
                        result = await self._attempt(ctx, p, d, finish)
                    except UpstreamError as exc:
                        last = exc
                        tried.add(d.name)
                        if not exc.retryable:
                            raise
                        if is_500(exc):
                            answered_500.append(d)
                            if fails_everywhere(p, answered_500):
                                log.warning(
                                    "request %s: HTTP 500 from every replica of %s, not retried", ctx.request_id, p.name
                                )
                                answered_500.clear()  # the request is the cause: no replica is to blame
                                break  # more tries would get the same 500: on to the fallbacks, if any
                        continue
                    served = d
                    if position:
                        self.metrics.fallbacks.labels(pool.name, p.name).inc()
                    return result
            finally:
                for d in answered_500:
                    if d is not served:
                        charge(ctx, d)
        assert last is not None
        raise last

    async def _attempt(self, ctx: RequestContext, pool: ModelPool, d: Deployment, finish):
        ctx.attempts += 1
        ctx.served_model = pool.name
        ctx.upstream = d.name
        span = None
        parent = ctx.notes.get("otel_span")
        if parent is not None:
            model = getattr(d.upstream, "model", pool.name)
            span = self.tracing.start_span(
                f"{OPERATION[ctx.route]} {model}",
                CLIENT,
                {
                    "gen_ai.operation.name": OPERATION[ctx.route],
                    "gen_ai.provider.name": d.config.kind if d.config.kind != "litellm" else model.split("/")[0],
                    "gen_ai.request.model": model,
                    "interlock.deployment": d.name,
                    "interlock.attempt": ctx.attempts,
                },
                parent,
            )
        d.info.in_flight += 1
        d.breaker.acquire()
        request = UpstreamRequest(
            ctx.route,
            ctx.body,
            ctx.stream,
            ctx.client_request_id or ctx.request_id,  # the client's id when given, so its traces join ours
            span.traceparent if span is not None else None,
        )
        stream = None
        try:
            result = await d.upstream.send(request)
            if not ctx.stream:
                self._done(ctx, d, span, None, result.usage)
                return result
            stream = result
            rest = stream.__aiter__()
            prefetched: list[bytes] = []
            async for payload in rest:
                check_first_event(d.name, payload)  # nothing is committed yet: garbage here is this replica's failure
                prefetched.append(payload)
                if not is_role_only(payload):
                    break
            else:
                if not prefetched:
                    raise UpstreamProtocolError(f"upstream {d.name} ended the stream without any event")
            ctx.first_token_at = time.perf_counter()
        except UpstreamError as exc:
            if stream is not None:
                await stream.aclose()
            self._done(ctx, d, span, exc, None)
            raise
        except BaseException as exc:  # cancelled (client gone) or a bug: release the replica, then re-raise
            if stream is not None:
                await stream.aclose()
            self._done(ctx, d, span, exc, None)
            raise

        def finish_stream(c: RequestContext, error: BaseException | None) -> None:
            self._done(c, d, span, error if isinstance(error, UpstreamError) else None, c.usage)
            finish(c, error)

        return GatewayStream(ctx, stream, rest, prefetched, finish_stream)

    def _done(self, ctx: RequestContext, d: Deployment, span, exc: BaseException | None, usage) -> None:
        d.info.in_flight -= 1
        if isinstance(exc, UpstreamError):
            if is_500(exc):
                d.breaker.release()  # judged by ``dispatch`` once it knows whether the request is the cause
            elif hurts_health(exc):
                charge(ctx, d)
            else:
                d.breaker.success()
            outcome = type(exc).__name__
        elif exc is None:
            d.breaker.success()
            outcome = "ok"
        else:
            d.breaker.release()
            outcome = "cancelled"
        self.metrics.count_upstream(d.name, outcome)
        if span is not None:
            if usage is not None:
                span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
                span.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens)
            if exc is not None:
                span.set_error(type(exc).__name__, str(exc))
            span.end()


def charge(ctx: RequestContext, d: Deployment) -> None:
    """Count a failure against ``d``'s breaker once per request: a retry failing the same way on the same replica
    says nothing new about it. (The set is made on the first failure only: the success path allocates nothing.)"""
    charged = ctx.notes.get("breaker_charged")
    if charged is None:
        charged = ctx.notes["breaker_charged"] = set()
    if d in charged:
        d.breaker.release()  # a half-open trial slot it took goes back
        return
    charged.add(d)
    d.breaker.failure()
