"""Prometheus metrics of the gateway: request counts, latency, time to first token, time per output token,
tokens, cost, upstream outcomes. Served at ``GET /metrics``; dashboards in later issues read these names.

One ``GatewayMetrics`` per process, built in the lifespan and passed down (no module-level singletons, so
tests can build several gateways in one process).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from observability.config import MetricLabelsConfig
from observability.labels import OTHER, Bound, Series

#: Labels of the per-request series: who (key, team), what (route, model) and with which system prompt.
REQUEST_LABELS = ["route", "model", "key", "team", "prompt_version"]

# Buckets chosen for LLM serving: sub-millisecond gateway errors up to multi-minute generations.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
TPOT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1)


class GatewayMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None, labels: MetricLabelsConfig | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        bounds = labels or MetricLabelsConfig()
        self._key, self._team = Bound(bounds.max_keys), Bound(bounds.max_teams)
        self._version = Bound(bounds.max_prompt_versions)
        self._max_series = bounds.max_series
        self._series: dict[tuple, Series] = {}
        self.requests = Counter(
            "interlock_requests",
            "Requests answered, by status; key, team and prompt_version bounded (observability.metric_labels).",
            ["route", "model", "status", "key", "team", "prompt_version"],
            registry=r,
        )
        self.latency = Histogram(
            "interlock_request_duration_seconds",
            "Time from request to last byte.",
            REQUEST_LABELS,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        # TTFT and TPOT by route and model only: a histogram is ~19 exposition lines a series, rendered at each
        # scrape (CPU and GIL the event loop shares); per key, team and prompt version they are in the rollups.
        self.ttft = Histogram(
            "interlock_time_to_first_token_seconds",
            "Time to first token (streaming).",
            ["route", "model"],
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.tpot = Histogram(
            "interlock_time_per_output_token_seconds",
            "Time per output token after the first.",
            ["route", "model"],
            buckets=TPOT_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "interlock_tokens",
            "Tokens processed.",
            ["model", "type", "route", "key", "team", "prompt_version"],
            registry=r,
        )
        self.cost = Counter("interlock_cost_usd", "Spend in USD.", REQUEST_LABELS, registry=r)
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
            REQUEST_LABELS,
            registry=r,
        )
        self._feedback_models = Bound(256)  # a feedback's model is the record's, which a client may have made up
        self._upstream_children: dict[tuple, Any] = {}

    def set_redis_up(self, up: bool) -> None:
        """Report Redis reachability; call only when Redis is configured (the gauge appears on the first call)."""
        if not self._redis_registered:
            self.registry.register(self.redis_up)
            self._redis_registered = True
        self.redis_up.set(1 if up else 0)

    # -- the request path: cached children, bounded labels -----------------------------------------------------

    def series(self, route: str, model: str, key: str | None, team: str | None, prompt_version: str | None) -> Series:
        """The children for one request's labels (``model`` must already be bounded: a configured name). Three
        dict lookups for the bounded values and one for the children; labelled only on a combination's first use."""
        labels = (route, model, self._key(key), self._team(team), self._version(prompt_version))
        found = self._series.get(labels)
        if found is None:
            if len(self._series) >= self._max_series:  # every tenant label gives way, route and model stay
                labels = (route, model, *(OTHER if v else "" for v in labels[2:]))
                found = self._series.get(labels)
            if found is None:
                found = self._series[labels] = Series(self, labels)
        return found

    def count_feedback(self, kind: str, model: str | None, route: str | None, prompt_version: str | None) -> None:
        """One explicit feedback or implicit signal (not the request path: a handful a second at most)."""
        self.feedback.labels(kind, self._feedback_models(model), route or "", self._version(prompt_version)).inc()

    def count_upstream(self, deployment: str, outcome: str) -> None:
        key = (deployment, outcome)
        child = self._upstream_children.get(key)
        if child is None:
            child = self._upstream_children[key] = self.upstream.labels(deployment, outcome)
        child.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
