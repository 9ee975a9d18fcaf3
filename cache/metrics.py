"""Prometheus metrics of the caches, registered on the gateway's registry (served at ``/metrics``).

Hit rate by kind, model and scope is ``interlock_cache_requests_total{result=~"hit-.*"}`` over all results.
Label children are memoised: no ``labels()`` call per request.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

LOOKUP_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)


class CacheMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.requests = Counter(
            "interlock_cache_requests",
            "Requests to models with a cache, by outcome: hit-exact, hit-semantic, miss, bypass.",
            ["model", "scope", "result"],
            registry=r,
        )
        self.tokens_saved = Counter(
            "interlock_cache_tokens_saved", "Tokens (prompt + completion) not generated thanks to a hit.",
            ["model", "kind"], registry=r,
        )  # fmt: skip
        self.cost_saved = Counter(
            "interlock_cache_cost_saved_usd", "USD not spent thanks to a hit.", ["model", "kind"], registry=r
        )
        self.lookup = Histogram(
            "interlock_cache_lookup_seconds", "Time spent looking up (exact; semantic includes the embedding).",
            ["kind"], buckets=LOOKUP_BUCKETS, registry=r,
        )  # fmt: skip
        self.vetoed = Counter(
            "interlock_cache_vetoed_near_hits", "Near hits above the threshold refused by verification, by reason.",
            ["model", "reason"], registry=r,
        )  # fmt: skip
        self.errors = Counter(
            "interlock_cache_backend_errors", "Cache operations that failed or timed out (served as misses).",
            ["backend"], registry=r,
        )  # fmt: skip
        self._children: dict[tuple, object] = {}

    def child(self, metric, *labels: str):
        key = (id(metric), *labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found
