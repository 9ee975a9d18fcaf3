"""Rate limits, concurrency limits and spend budgets per key and team, in Redis; request pricing.

limiter = Limiter(settings.redis.url, timeout=settings.redis.timeout,
                  failure_policy=settings.redis.failure_policy, reconcile=spend_source)
await limiter.start()
usage = estimate_usage(route, body)
admission = await limiter.admit(principal, model, usage.total_tokens, pricing.cost(model, usage))  # 429/503
...                                                                              # serve it
await limiter.settle(admission, usage, pricing.cost(model, usage))               # or release(admission)
"""

from gateway.limits._messages import go_duration
from gateway.limits.limiter import Admission, Limiter
from gateway.limits.pricing import (
    DEFAULT_COMPLETION_TOKENS,
    Pricing,
    estimate_tokens,
    estimate_usage,
    litellm_price_map,
)

__all__ = [
    "DEFAULT_COMPLETION_TOKENS",
    "Admission",
    "Limiter",
    "Pricing",
    "estimate_tokens",
    "estimate_usage",
    "go_duration",
    "litellm_price_map",
]
