"""Hedging: more than one try of the same request, the first good answer served, the rest cancelled.

- Complete answers (``hedged``): ``hedge_k`` tries at once, or the extra ones only once ``hedge_after`` seconds pass
  without an answer; each answer is judged as it arrives and the first that passes every output rule wins.
- Streams (``hedged_stream``): time only; a second try when the first token is later than ``hedge_after``; the
  first stream to deliver a token wins. Each try gets its own ``finish`` that forwards for the winner only, so the
  request is recorded and settled once.
- Extra tries come out of ``HedgeBudget``, a token bucket per policy (``hedge_budget_per_minute``): the load hedging
  adds is capped whatever the traffic.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from gateway.types import RequestContext, UpstreamResponse
from guardrails import GuardContext, PolicyConfig
from guardrails.output import PASSING, OutputVerdict


class HedgeBudget:
    """Token buckets of extra tries, one per policy: ``per_minute`` refill, burst of the same size."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, policy: str, per_minute: float, want: int) -> int:
        now = time.monotonic()
        tokens, last = self._buckets.get(policy, (per_minute, now))
        tokens = min(per_minute, tokens + (now - last) * per_minute / 60.0)
        granted = min(want, int(tokens))
        self._buckets[policy] = (tokens - granted, now)
        return granted


async def hedged(
    step: Any, ctx: RequestContext, call_next, policy: PolicyConfig, name: str, gctx: GuardContext, tries: dict
):
    """The first answer that passes every rule; the others cancelled. Extra tries come out of the budget."""
    acts = policy.output_actions
    extra = step.budget.take(name, acts.hedge_budget_per_minute, acts.hedge_k - 1)
    pending = {asyncio.ensure_future(call_next(ctx))}
    launched = 0

    def launch(n: int) -> None:
        nonlocal launched
        for _ in range(n):
            pending.add(asyncio.ensure_future(call_next(ctx)))
        launched += n
        tries["hedged"] += n
        step.out_metrics.hedged(name, n)

    if extra and acts.hedge_after is None:
        launch(extra)
    last: tuple[UpstreamResponse, OutputVerdict] | None = None
    error: BaseException | None = None
    try:
        while pending:
            wait = acts.hedge_after if launched < extra else None
            done, pending = await asyncio.wait(pending, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            if not done:  # the first try is slow: start the extra ones beside it
                launch(extra - launched)
                continue
            for task in done:
                if task.exception() is not None:
                    error = task.exception()
                    continue
                verdict = await step.judge_answer(task.result(), policy, gctx)
                if verdict.action in PASSING:
                    return task.result(), verdict
                last = (task.result(), verdict)
            if not pending and launched < extra:  # answered fast but failed: the hedges still get their chance
                launch(extra - launched)
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    if last is None:
        assert error is not None
        raise error
    return last


async def hedged_stream(step: Any, ctx: RequestContext, policy: PolicyConfig, name: str):
    """A stream whose first token is later than ``hedge_after``: a second try beside it (budget allowing); the
    first to deliver a token is served, the other cancelled or closed. Only the served stream finishes the
    request (one record, one settlement): each try gets a ``finish`` that forwards for the winner only."""
    acts = policy.output_actions
    pool = step.gateway.table.get(ctx.model)
    winner: int | None = None

    def finish_for(i: int):
        def finish(c: RequestContext, error: BaseException | None) -> None:
            if winner == i:
                step.gateway._finish(c, error)

        return finish

    tries = [asyncio.ensure_future(step.gateway.dispatcher.dispatch(ctx, pool, finish_for(0)))]
    done, _ = await asyncio.wait(tries, timeout=acts.hedge_after)
    if not done and step.budget.take(name, acts.hedge_budget_per_minute, 1):
        tries.append(asyncio.ensure_future(step.gateway.dispatcher.dispatch(ctx, pool, finish_for(1))))
        step.out_metrics.hedged(name, 1)
    pending, error = set(tries), None
    try:
        while pending and winner is None:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in sorted(done, key=tries.index):
                if task.exception() is not None:
                    error = task.exception()
                elif winner is None:
                    winner = tries.index(task)
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    for i, task in enumerate(tries):  # a loser that also got its first token: closed without finishing
        if i != winner and task.done() and not task.cancelled() and task.exception() is None:
            saved = ctx.status, ctx.error_type, ctx.finished_at
            await task.result().abandon()
            ctx.status, ctx.error_type, ctx.finished_at = saved
    if winner is None:
        assert error is not None
        raise error
    return tries[winner].result()
