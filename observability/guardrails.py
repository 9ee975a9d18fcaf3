"""Prometheus metrics of the guardrails: triggers by guard, type and action; guard failures; time spent.

Registered on the gateway's registry (``GatewayMetrics.registry``); children are cached so a request never
calls ``labels()`` twice for the same series.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

GUARD_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class GuardrailMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.triggers = Counter(
            "interlock_guardrail_triggers",
            "Guard findings acted on, by guard, finding type and action (allow, mask, block).",
            ["guard", "type", "action"],
            registry=registry,
        )
        self.failures = Counter(
            "interlock_guardrail_failures", "Guards that raised or timed out.", ["guard"], registry=registry
        )
        self.duration = Histogram(
            "interlock_guardrail_duration_seconds",
            "Time the guards of one request took, by direction.",
            ["direction"],
            buckets=GUARD_BUCKETS,
            registry=registry,
        )
        self._children: dict[tuple, object] = {}

    def trigger(self, guard: str, type_: str, action: str) -> None:
        key = (guard, type_, action)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.triggers.labels(guard, type_, action)
        child.inc()

    def failure(self, guard: str) -> None:
        self.failures.labels(guard).inc()

    def observe(self, direction: str, seconds: float) -> None:
        key = ("duration", direction)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.duration.labels(direction)
        child.observe(seconds)
