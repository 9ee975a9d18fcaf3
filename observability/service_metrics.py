"""Prometheus metrics of our microservices (guardrails, router, cache): calls by route and status, and latency.

Each service owns a registry of its own, so a test or a process hosting two services never mixes their series.
Routes are a fixed set per service: a client's made-up path counts as ``other``, never as a new series.
``GET /metrics`` awaits ``exposition.body()``: rendered in a worker thread like the gateway's (observability.scrape),
never cached (a service's registry is small: ~1 ms to render, and a test or an operator reads its own calls at once).
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from observability.scrape import Exposition


class ServiceMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, service: str, routes: Iterable[str]) -> None:
        self.service = service
        self.routes = frozenset(routes)
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "interlock_service_requests",
            "Calls served by this Interlock microservice, by route and HTTP status.",
            ["service", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "interlock_service_latency_seconds",
            "Time this microservice took to answer, by route.",
            ["service", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )
        self.exposition = Exposition(self.render, ttl=0)

    def observe(self, path: str, status: int, seconds: float) -> None:
        route = path if path in self.routes else "other"
        self.requests.labels(self.service, route, str(status)).inc()
        self.latency.labels(self.service, route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
