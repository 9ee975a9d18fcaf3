"""Prometheus metrics of the guardrails' output side: hedged tries started (by policy) and what streams held back.
Triggers by guard, type and action share ``interlock_guardrail_triggers`` with the input side."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class OutputGuardMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.hedges = Counter(
            "interlock_guardrail_hedges", "Extra tries started by hedging, by policy.", ["policy"], registry=registry
        )
        self.stream_trips = Counter(
            "interlock_guardrail_stream_trips",
            "Streams ended by an output guard, by guard.",
            ["guard"],
            registry=registry,
        )
        self.held_back = Histogram(
            "interlock_guardrail_stream_held_chunks",
            "The most content chunks a guarded stream held back at once (its hold-back window).",
            buckets=(0, 1, 2, 4, 8, 16, 32, 64),
            registry=registry,
        )

    def hedged(self, policy: str, n: int) -> None:
        self.hedges.labels(policy).inc(n)
