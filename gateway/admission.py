"""Request-path steps that decide whether a request may be served: who is calling, and within which limits.

``authenticate`` costs no round trip (keys live in memory, refreshed by the config bus); ``admit`` costs one
Redis script call, and none at all for callers without limits. Settlement (real tokens, cost, the concurrency
slot) runs after the response, when the stream has ended.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.limits import Limiter, Pricing, estimate_usage
from gateway.pipeline import Handler
from gateway.types import RequestContext


class AuthenticateStep:
    """Turn ``Authorization`` into a ``Principal`` (401 on a bad key) and check its model and route grants (403)."""

    def __init__(self, authenticator: Any, models: Any) -> None:
        self.authenticator = authenticator
        self.models = models  # the model table: an unknown model is a 404 before it can be a 403

    async def __call__(self, ctx: RequestContext, call_next: Handler) -> Any:
        ctx.principal = principal = self.authenticator.authenticate(ctx.authorization)
        if self.models.get(ctx.model) is not None:
            self.authenticator.authorize(principal, ctx.model, ctx.route)
        return await call_next(ctx)


class AdmitStep:
    """Admit against the caller's rate limits and budgets; settle or release when the request is over.

    The estimated usage is reserved: its tokens against TPM, its cost at the model's prices against budgets,
    so requests in flight together cannot overshoot a budget by more than their estimates fell short.
    """

    def __init__(self, limiter: Limiter, pricing: Callable[[], Pricing | None] = lambda: None) -> None:
        self.limiter = limiter
        self.pricing = pricing  # a getter: admin changes replace the gateway's Pricing

    async def __call__(self, ctx: RequestContext, call_next: Handler) -> Any:
        p = ctx.principal
        if p.key_limits is None and p.team_limits is None:
            return await call_next(ctx)  # nothing to count: no Redis call at all
        usage = estimate_usage(ctx.route, ctx.body)
        cost = 0.0
        pricing = self.pricing()
        if pricing is not None and (_budgeted(p.key_limits) or _budgeted(p.team_limits)):
            cost = pricing.cost(ctx.model, usage)
        admission = await self.limiter.admit(p, ctx.model, usage.total_tokens, cost)
        ctx.headers.update(admission.headers)
        limiter = self.limiter

        def settle(c: RequestContext):  # returns a coroutine: Gateway._finish runs it in the background
            if c.usage is not None:
                return limiter.settle(admission, c.usage, c.cost_usd)
            return limiter.release(admission)

        ctx.on_finish.append(settle)
        return await call_next(ctx)


def _budgeted(limits: Any) -> bool:
    return limits is not None and (limits.budget_daily_usd is not None or limits.budget_monthly_usd is not None)
