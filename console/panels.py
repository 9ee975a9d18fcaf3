"""The Overview's charts: one ``Panel`` per chart, each a few series computed from summed rollup counters.

Adding a chart for a new pipeline step (a guard, a cache, a router) is one entry in ``PANELS``: name the rollup
counters it reads and how each series is computed from their sums; the page draws every listed panel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.db.insights import FEEDBACK_KINDS, LATENCY_BOUNDS_MS, LATENCY_COLUMNS, TTFT_BOUNDS_MS, TTFT_COLUMNS

Sums = dict[str, float]


def percentile(sums: Sums, columns: tuple[str, ...], bounds: tuple[float, ...], q: float) -> float | None:
    """The ``q`` quantile of a bucketed histogram, interpolated linearly inside its bucket (as Prometheus'
    ``histogram_quantile``); ``None`` without observations. Above the last bound, the last bound."""
    counts = [sums.get(c, 0) for c in columns]
    total = sum(counts)
    if total <= 0:
        return None
    rank, seen = q * total, 0.0
    for i, n in enumerate(counts):
        if n and seen + n >= rank:
            if i >= len(bounds):
                return float(bounds[-1])
            lo = bounds[i - 1] if i else 0.0
            return lo + (bounds[i] - lo) * (rank - seen) / n
        seen += n
    return float(bounds[-1])


def ratio(num: str, den: str) -> Callable[[Sums], float | None]:
    return lambda s: (s.get(num, 0) / s[den]) if s.get(den) else None


def mean(total: str, count: str) -> Callable[[Sums], float | None]:
    return ratio(total, count)


def column(name: str) -> Callable[[Sums], float | None]:
    return lambda s: s.get(name, 0)


def latency(q: float) -> Callable[[Sums], float | None]:
    return lambda s: percentile(s, LATENCY_COLUMNS, LATENCY_BOUNDS_MS, q)


def ttft(q: float) -> Callable[[Sums], float | None]:
    return lambda s: percentile(s, TTFT_COLUMNS, TTFT_BOUNDS_MS, q)


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str
    #: Rollup counters the panel sums (only these are read: a panel's query stays narrow).
    columns: tuple[str, ...]
    #: Series label -> value from the summed counters of one time bucket.
    series: dict[str, Callable[[Sums], float | None]] = field(default_factory=dict)


def percent(part: str) -> Callable[[Sums], float | None]:
    """``part`` as a percentage of requests."""
    return lambda s: 100 * s.get(part, 0) / s["requests"] if s.get("requests") else None


PANELS: dict[str, Panel] = {
    "traffic": Panel(
        "Traffic", "requests", ("requests", "errors"), {"requests": column("requests"), "errors": column("errors")}
    ),
    "error_rate": Panel("Error rate", "%", ("requests", "errors"), {"error rate": percent("errors")}),
    "latency": Panel(
        "Latency percentiles", "ms", LATENCY_COLUMNS, {"p50": latency(0.5), "p95": latency(0.95), "p99": latency(0.99)}
    ),
    "ttft_tpot": Panel(
        "Time to first token, time per output token",
        "ms",
        (*TTFT_COLUMNS, "tpot_sum_ms", "tpot_count"),
        {"TTFT p50": ttft(0.5), "TTFT p95": ttft(0.95), "TPOT mean": mean("tpot_sum_ms", "tpot_count")},
    ),
    "tokens": Panel(
        "Tokens",
        "tokens",
        ("prompt_tokens", "completion_tokens"),
        {"input": column("prompt_tokens"), "output": column("completion_tokens")},
    ),
    "cost": Panel("Cost", "USD", ("cost_usd",), {"cost": column("cost_usd")}),
    "cache": Panel("Cache hit rate", "%", ("requests", "cache_hits"), {"hit rate": percent("cache_hits")}),
    "guards": Panel("Guard triggers", "triggers", ("guard_triggers",), {"triggers": column("guard_triggers")}),
    "goodput": Panel(
        "Goodput (within the latency objective)", "%", ("requests", "goodput"), {"goodput": percent("goodput")}
    ),
    "feedback": Panel(
        "Feedback and implicit signals",
        "events",
        tuple(f"fb_{k}" for k in FEEDBACK_KINDS),
        {k: column(f"fb_{k}") for k in FEEDBACK_KINDS},
    ),
}
