"""Prometheus metrics of the gateway: request counts, latency, time to first token, time per output token,
tokens, cost, upstream outcomes. Served at ``GET /metrics``; dashboards in later issues read these names.

One ``GatewayMetrics`` per process, built in the lifespan and passed down (no module-level singletons, so
tests can build several gateways in one process).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Buckets chosen for LLM serving: sub-millisecond gateway errors up to multi-minute generations.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
TPOT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1)


class GatewayMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "interlock_requests", "Requests answered, by status.", ["route", "model", "status"], registry=r
        )
        self.latency = Histogram(
            "interlock_request_duration_seconds",
            "Time from request to last byte.",
            ["route", "model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "interlock_time_to_first_token_seconds",
            "Time to first token (streaming).",
            ["model"],
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.tpot = Histogram(
            "interlock_time_per_output_token_seconds",
            "Time per output token after the first.",
            ["model"],
            buckets=TPOT_BUCKETS,
            registry=r,
        )
        self.tokens = Counter("interlock_tokens", "Tokens processed.", ["model", "type"], registry=r)
        self.cost = Counter("interlock_cost_usd", "Spend in USD.", ["model"], registry=r)
        self.upstream = Counter(
            "interlock_upstream_requests", "Upstream calls by outcome.", ["deployment", "outcome"], registry=r
        )
        self.retries = Counter("interlock_retries", "Retried upstream calls.", ["model"], registry=r)
        self.fallbacks = Counter(
            "interlock_fallbacks", "Requests served by a fallback model.", ["model", "fallback"], registry=r
        )
        self.healthy = Gauge(
            "interlock_deployment_healthy",
            "1 when a deployment takes traffic.",
            ["model", "deployment"],
            registry=r,
        )
        self.in_flight = Gauge("interlock_in_flight_requests", "Requests being served.", registry=r)
        self.records_pending = Gauge("interlock_records_pending", "Request records not yet written.", registry=r)
        self.records_dropped = Gauge(
            "interlock_records_dropped", "Records dropped because the database stayed down.", registry=r
        )
        self.recorder_up = Gauge(
            "interlock_recorder_up",
            "1 when this gateway process's recorder (records to SQL, spans to OTLP) runs; 0 while it restarts, "
            "and always 0 with observability.recorder: thread.",
            registry=r,
        )
        self.spans_dropped = Gauge(
            "interlock_spans_dropped", "Spans dropped: the collector was down or export fell behind.", registry=r
        )
        self.traces_shed = Gauge(
            "interlock_traces_shed",
            "Traces not recorded because span export was behind (sampled under load, in proportion).",
            registry=r,
        )
        self.trace_keep_ratio = Gauge(
            "interlock_trace_keep_ratio",
            "Share of new traces recorded now (1: all; lower while export is behind).",
            registry=r,
        )
        # Registered by the first ``set_redis_up``: a gateway without Redis has no Redis to be up or down, and a
        # 1 (or 0) there would tell a dashboard something false; absent is what ``absent()`` alerts can test.
        self.redis_up = Gauge(
            "interlock_redis_up",
            "1 when the configured Redis answers (limits and budgets); absent without Redis.",
            registry=None,
        )
        self._redis_registered = False
        self.models_rejected = Gauge(
            "interlock_models_rejected",
            "Models not served because their stored configuration is invalid (named in /ready).",
            registry=r,
        )
        # The ops console's families (issue 11). Cache hits, guard triggers and routing decisions are counted by
        # their own libraries (cache/metrics.py, guardrails, gateway/intent); refusal rate is
        # interlock_feedback{kind="refusal"} over interlock_requests.
        self.feedback = Counter(
            "interlock_feedback",
            "Explicit feedback (positive, negative, rating, comment, edit) and implicit signals (regeneration, "
            "rephrase, early_termination, abandonment, refusal).",
            ["kind", "model", "route", "prompt_version"],
            registry=r,
        )
        self.goodput = Counter(
            "interlock_goodput",
            "Successful requests answered within the latency objective (rollups.latency_objective_ms).",
            ["route", "model"],
            registry=r,
        )
        self._goodput_children: dict[tuple, Any] = {}
        self._request_children: dict[tuple, tuple] = {}
        self._count_children: dict[tuple, Any] = {}
        self._upstream_children: dict[tuple, Any] = {}

    def set_redis_up(self, up: bool) -> None:
        """Report Redis reachability; call only when Redis is configured (the gauge appears on the first call)."""
        if not self._redis_registered:
            self.registry.register(self.redis_up)
            self._redis_registered = True
        self.redis_up.set(1 if up else 0)

    # -- cached children: ``labels()`` hashes and locks on every call, 8% of the gateway's profile --------------

    def for_request(self, route: str, model: str) -> tuple:
        """``(latency, ttft, tpot, input tokens, output tokens, cost)`` children for one route and model."""
        key = (route, model)
        found = self._request_children.get(key)
        if found is None:
            found = self._request_children[key] = (
                self.latency.labels(route, model),
                self.ttft.labels(model),
                self.tpot.labels(model),
                self.tokens.labels(model, "input"),
                self.tokens.labels(model, "output"),
                self.cost.labels(model),
            )
        return found

    def count_goodput(self, route: str, model: str) -> None:
        key = (route, model)
        child = self._goodput_children.get(key)
        if child is None:
            child = self._goodput_children[key] = self.goodput.labels(route, model)
        child.inc()

    def count_request(self, route: str, model: str, status: int) -> None:
        key = (route, model, status)
        child = self._count_children.get(key)
        if child is None:
            child = self._count_children[key] = self.requests.labels(route, model, str(status))
        child.inc()

    def count_upstream(self, deployment: str, outcome: str) -> None:
        key = (deployment, outcome)
        child = self._upstream_children.get(key)
        if child is None:
            child = self._upstream_children[key] = self.upstream.labels(deployment, outcome)
        child.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
