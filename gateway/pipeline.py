"""The request path as a list of small steps, folded once at startup (like Starlette's middleware stack).

A step is ``async def step(ctx, call_next) -> Result``: it may act before the rest of the path (check a key,
admit against limits, later: guard the input, answer from cache), after it (score the output), or register an
``on_finish`` callback for work that must wait until a stream has ended (settle token counts).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from gateway.types import RequestContext

Handler = Callable[[RequestContext], Awaitable[Any]]
Step = Callable[[RequestContext, Handler], Awaitable[Any]]


def build(steps: Sequence[Step], endpoint: Handler) -> Handler:
    """Fold ``steps`` around ``endpoint``: the first step runs first."""
    handler = endpoint
    for step in reversed(steps):
        handler = _bind(step, handler)
    return handler


def _bind(step: Step, call_next: Handler) -> Handler:
    async def run(ctx: RequestContext) -> Any:
        return await step(ctx, call_next)

    run.__qualname__ = getattr(step, "__qualname__", "step")
    return run
