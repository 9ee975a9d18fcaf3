"""Admission tickets: a key far from its limits gets its next admission ahead of time, in the background.

What must hold: a request on a ticket waits for no Redis call; near a limit nobody gets a ticket and every
admission is exact; an unused ticket is handed back (as if never admitted); a used one is settled with the
real usage like any other admission.
"""

from __future__ import annotations

import asyncio

import pytest
import redis

from gateway.errors import RateLimited, ServiceUnavailable
from gateway.limits import Limiter
from gateway.types import Usage
from tests.gateway.limits.conftest import MakeLimiter, key
from tests.support.polling import async_eventually


def waiting(limiter: Limiter) -> int:
    return limiter.status()["tickets"]["waiting"]  # type: ignore[index]


async def test_when_a_key_is_far_from_its_limits_then_its_next_request_waits_for_no_redis_call(
    make_limiter: MakeLimiter, redis_url: str
):
    limiter = await make_limiter(timeout=0.5, failure_policy="closed", tickets=True)
    p = key(rpm=1000, tpm=100_000, max_concurrency=50, budget_daily_usd=100.0)
    await limiter.admit(p, "m", 100, 0.001)
    assert await async_eventually(lambda: waiting(limiter) == 1)

    paused = redis.Redis.from_url(redis_url)
    paused.execute_command("CLIENT", "PAUSE", 3000, "ALL")  # from now on every Redis call would time out
    try:
        on_ticket = await limiter.admit(p, "m", 100, 0.001)
        assert on_ticket.headers["x-ratelimit-limit-requests"] == "1000"
        with pytest.raises(ServiceUnavailable):  # no ticket left: the exact path needs Redis, policy closed
            await limiter.admit(p, "m", 100, 0.001)
    finally:
        paused.execute_command("CLIENT", "UNPAUSE")
        paused.close()
    assert limiter.status()["tickets"]["used"] == 1  # type: ignore[index]


async def test_when_a_key_nears_its_limit_then_no_ticket_is_taken_and_exactly_the_limit_is_admitted(
    make_limiter: MakeLimiter,
):
    limiters = [await make_limiter(tickets=True) for _ in range(3)]
    p = key(rpm=10)
    admitted = limited = 0
    for i in range(30):  # round robin over three replicas, each keeping tickets
        try:
            await limiters[i % 3].admit(p, "m", 1)
            admitted += 1
        except RateLimited:
            limited += 1
        if admitted >= 5:  # past half of the limit: no replica may hold room in reserve
            assert sum(waiting(lim) for lim in limiters) <= 3 and all(waiting(lim) <= 1 for lim in limiters)
    assert (admitted, limited) == (10, 20)
    assert sum(waiting(lim) for lim in limiters) == 0


async def test_when_a_ticket_would_pass_half_of_a_limit_then_redis_refuses_it(make_limiter: MakeLimiter):
    limiter = await make_limiter(tickets=True)
    observer = await make_limiter(tickets=False)
    p = key(rpm=4)
    await limiter.admit(p, "m", 1)  # 1 of 4: a ticket makes it 2, half of the limit
    assert await async_eventually(lambda: waiting(limiter) == 1)
    await limiter.admit(p, "m", 1)  # on the ticket; a new one would make 3 of 4
    await asyncio.sleep(0.3)  # the background ask, refused

    assert waiting(limiter) == 0
    for _ in range(2):  # the other replica still has the last two requests of the minute
        await observer.admit(p, "m", 1)


async def test_when_a_ticket_is_not_used_then_it_is_handed_back(make_limiter: MakeLimiter):
    keeper = await make_limiter(tickets=True, ticket_ttl=0.2)
    observer = await make_limiter(tickets=False)
    p = key(rpm=100, tpm=10_000)
    await keeper.admit(p, "m", 50)
    assert await async_eventually(lambda: keeper.status()["tickets"]["returned"] == 1)  # type: ignore[index]

    seen = await observer.admit(p, "m", 50)

    # The first request and this one count; the ticket (101 tokens reserved) left no trace.
    assert seen.headers["x-ratelimit-remaining-requests"] == "98"
    assert seen.headers["x-ratelimit-remaining-tokens"] == str(10_000 - 50 - 50)


async def test_when_requests_run_on_tickets_then_their_real_usage_is_booked(make_limiter: MakeLimiter):
    limiter = await make_limiter(tickets=True, ticket_ttl=30.0)
    observer = await make_limiter(tickets=False)
    p = key(rpm=1000, tpm=100_000)
    first = await limiter.admit(p, "m", 100)
    await limiter.settle(first, Usage(30, 10), 0.0)
    assert await async_eventually(lambda: waiting(limiter) == 1)
    second = await limiter.admit(p, "m", 100)
    assert limiter.status()["tickets"]["used"] == 1  # type: ignore[index]
    await limiter.settle(second, Usage(20, 10), 0.0)
    assert await async_eventually(lambda: waiting(limiter) == 1)
    await limiter.aclose()  # hands the waiting ticket back

    seen = await observer.admit(p, "m", 10)

    assert seen.headers["x-ratelimit-remaining-requests"] == str(1000 - 3)
    assert seen.headers["x-ratelimit-remaining-tokens"] == str(100_000 - 40 - 30 - 10)


async def test_when_tickets_are_not_asked_for_then_nothing_is_admitted_ahead(make_limiter: MakeLimiter):
    limiter = await make_limiter()
    await limiter.admit(key(rpm=1000), "m", 1)
    assert limiter.status()["tickets"] is None
