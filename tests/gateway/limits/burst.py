"""A burst of concurrent admissions against one Redis, from one process; used in-process and from
worker processes (``multiprocessing`` needs it importable)."""

from __future__ import annotations

import asyncio
from collections import Counter

from gateway.errors import RateLimited
from gateway.limits import Limiter
from gateway.types import Limits, Principal


async def burst(limiters: list[Limiter], principal: Principal, requests: int) -> Counter[str]:
    """Fire ``requests`` admissions at once, spread over ``limiters``; count the outcomes."""

    async def one(i: int) -> str:
        try:
            await limiters[i % len(limiters)].admit(principal, "m", 1)
        except RateLimited:
            return "limited"
        except Exception as exc:
            return type(exc).__name__
        return "admitted"

    return Counter(await asyncio.gather(*(one(i) for i in range(requests))))


def burst_in_process(redis_url: str, rpm: int, requests: int, start, results) -> None:
    """Process entry point: wait for ``start`` (a multiprocessing Event), burst, put the counts on ``results``."""

    async def main() -> Counter[str]:
        limiter = Limiter(redis_url, timeout=5.0, failure_policy="closed")
        await limiter.start()
        try:
            # Open the connections before the start signal, so the burst is a burst.
            await burst([limiter], Principal(key_id="warmup", key_limits=Limits(rpm=10**6)), 50)
            start.wait()
            return await burst([limiter], Principal(key_id="shared", key_limits=Limits(rpm=rpm)), requests)
        finally:
            await limiter.aclose()

    results.put(dict(asyncio.run(main())))
