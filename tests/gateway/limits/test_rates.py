"""Requests and tokens per minute, concurrency and headers, on a real Redis."""

from __future__ import annotations

import asyncio
import multiprocessing

import pytest

from gateway.errors import RateLimited
from gateway.types import Limits, Usage
from tests.gateway.limits.burst import burst, burst_in_process
from tests.gateway.limits.conftest import MakeLimiter, key


async def test_when_clients_burst_3x_the_rpm_then_exactly_the_limit_is_admitted(make_limiter: MakeLimiter):
    # A generous timeout: on a loaded test machine a burst of 600 may queue for a while.
    limiters = [await make_limiter(timeout=5.0) for _ in range(4)]

    outcomes = await burst(limiters, key(rpm=200), 600)

    assert outcomes == {"admitted": 200, "limited": 400}


def test_when_three_processes_burst_3x_the_rpm_then_exactly_the_limit_is_admitted(redis_url: str):
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=burst_in_process, args=(redis_url, 150, 150, start, results)) for _ in range(3)]
    for p in procs:
        p.start()
    try:
        start.set()
        counts = [results.get(timeout=60) for _ in procs]
    finally:
        for p in procs:
            p.join(30)
    admitted = sum(c.get("admitted", 0) for c in counts)
    limited = sum(c.get("limited", 0) for c in counts)
    # Exact: the sliding log admits the limit and not one more, and refuses nothing within it.
    assert (admitted, limited) == (150, 300), counts


async def test_when_rpm_is_reached_then_429_says_which_limit_and_when_to_retry(make_limiter: MakeLimiter):
    limiter = await make_limiter()
    p = key(name="checkout", rpm=2)
    await limiter.admit(p, "gpt-x", 1)
    await limiter.admit(p, "gpt-x", 1)

    with pytest.raises(RateLimited) as err:
        await limiter.admit(p, "gpt-x", 1)

    assert err.value.status == 429
    assert "key 'checkout'" in err.value.message
    assert "requests per minute" in err.value.message
    assert 0 < err.value.retry_after <= 60
    assert 1 <= int(err.value.headers["retry-after"]) <= 60
    assert err.value.headers["x-ratelimit-remaining-requests"] == "0"


async def test_when_admitted_then_headers_show_limits_and_what_remains(make_limiter: MakeLimiter):
    limiter = await make_limiter()
    p = key(rpm=10, tpm=1000)

    first = await limiter.admit(p, "m", 100)
    second = await limiter.admit(p, "m", 250)

    assert first.headers == {
        "x-ratelimit-limit-requests": "10",
        "x-ratelimit-remaining-requests": "9",
        "x-ratelimit-reset-requests": "1m0s",
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "900",
        "x-ratelimit-reset-tokens": "1m0s",
    }
    assert second.headers["x-ratelimit-remaining-requests"] == "8"
    assert second.headers["x-ratelimit-remaining-tokens"] == "650"


async def test_when_only_rpm_is_limited_then_no_token_headers(make_limiter: MakeLimiter):
    limiter = await make_limiter()

    admission = await limiter.admit(key(rpm=5), "m", 100)

    assert set(admission.headers) == {
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
    }


async def test_when_settled_then_the_token_reservation_is_replaced_by_the_real_count(make_limiter: MakeLimiter):
    limiter = await make_limiter()
    p = key(tpm=1000)
    first = await limiter.admit(p, "m", 600)
    with pytest.raises(RateLimited, match="tokens per minute"):
        await limiter.admit(p, "m", 500)

    await limiter.settle(first, Usage(prompt_tokens=60, completion_tokens=40), 0.0)
    second = await limiter.admit(p, "m", 500)

    assert second.headers["x-ratelimit-remaining-tokens"] == str(1000 - 100 - 500)


async def test_when_released_then_the_reservation_is_dropped(make_limiter: MakeLimiter):
    limiter = await make_limiter()
    p = key(tpm=1000)
    first = await limiter.admit(p, "m", 900)

    await limiter.release(first)
    second = await limiter.admit(p, "m", 900)

    assert second.headers["x-ratelimit-remaining-tokens"] == "100"


async def test_when_one_request_needs_more_than_the_tpm_then_it_is_refused_without_retry(
    make_limiter: MakeLimiter,
):
    limiter = await make_limiter()

    with pytest.raises(RateLimited, match="Request too large") as err:
        await limiter.admit(key(tpm=1000), "m", 1001)

    assert err.value.retry_after is None
    assert "retry-after" not in err.value.headers


async def test_when_concurrency_is_full_then_refused_until_a_slot_is_released(make_limiter: MakeLimiter):
    limiter = await make_limiter()
    p = key(max_concurrency=2)
    a = await limiter.admit(p, "m", 1)
    b = await limiter.admit(p, "m", 1)
    with pytest.raises(RateLimited, match="concurrent"):
        await limiter.admit(p, "m", 1)

    await limiter.release(a)
    c = await limiter.admit(p, "m", 1)
    await limiter.settle(b, Usage(1, 1), 0.0)
    await limiter.settle(c, Usage(1, 1), 0.0)

    await limiter.admit(p, "m", 1)
    await limiter.admit(p, "m", 1)


async def test_when_a_settle_is_deferred_then_the_next_admission_carries_it_and_finds_the_slot_free(
    make_limiter: MakeLimiter,
):
    limiter = await make_limiter(settle_delay=30.0)  # only the next admission can send the settle
    other_replica = await make_limiter()
    p = key(max_concurrency=1)
    first = await limiter.admit(p, "m", 1)
    settling = asyncio.ensure_future(limiter.settle(first, Usage(1, 1), 0.0))
    await asyncio.sleep(0.05)

    with pytest.raises(RateLimited, match="concurrent"):  # held back: Redis still counts the slot
        await other_replica.admit(p, "m", 1)
    await limiter.admit(p, "m", 1)  # the settle went first in the same write: the slot was free
    await settling


async def test_when_a_replica_dies_holding_a_slot_then_the_slot_expires(make_limiter: MakeLimiter):
    crashed = await make_limiter(lease=0.5)
    survivor = await make_limiter(lease=0.5)
    p = key(max_concurrency=1)
    await crashed.admit(p, "m", 1)
    await crashed.aclose()  # stops renewing, never settles: as if the process died
    with pytest.raises(RateLimited):
        await survivor.admit(p, "m", 1)

    await asyncio.sleep(0.8)

    await survivor.admit(p, "m", 1)


async def test_when_a_request_outlives_its_lease_then_the_slot_is_renewed(make_limiter: MakeLimiter):
    holder = await make_limiter(lease=0.6)
    other = await make_limiter(lease=0.6)
    p = key(max_concurrency=1)
    held = await holder.admit(p, "m", 1)

    await asyncio.sleep(1.5)

    with pytest.raises(RateLimited):
        await other.admit(p, "m", 1)
    await holder.settle(held, Usage(1, 1), 0.0)
    await other.admit(p, "m", 1)


async def test_when_two_keys_share_a_team_then_the_team_rpm_covers_both(make_limiter: MakeLimiter):
    limiter = await make_limiter()
    team = Limits(rpm=5)
    k1 = key("k1", team_id="acme", rpm=100, team_limits=team)
    k2 = key("k2", team_id="acme", rpm=100, team_limits=team)
    for _ in range(3):
        await limiter.admit(k1, "m", 1)
    for _ in range(2):
        await limiter.admit(k2, "m", 1)

    with pytest.raises(RateLimited, match="team 'acme'") as err:
        await limiter.admit(k2, "m", 1)

    assert err.value.headers["x-ratelimit-limit-requests"] == "5"


async def test_when_a_team_limit_refuses_then_the_key_count_is_not_taken(make_limiter: MakeLimiter):
    limiter = await make_limiter()
    p = key("k1", team_id="acme", rpm=3, team_limits=Limits(rpm=1))
    await limiter.admit(p, "m", 1)
    with pytest.raises(RateLimited, match="team"):
        await limiter.admit(p, "m", 1)

    alone = await limiter.admit(key("k1", team_id="acme", rpm=3), "m", 1)

    assert alone.headers["x-ratelimit-remaining-requests"] == "1"
