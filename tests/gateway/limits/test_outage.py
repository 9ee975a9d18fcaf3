"""Redis unreachable, hung or restarted: the failure policy, no hangs, recovery."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from gateway.errors import ServiceUnavailable
from gateway.types import Principal, Usage
from tests.gateway.limits.conftest import MakeLimiter, RedisProcess, key
from tests.support.servers import refused_port

# Nothing listens here, for the whole run: connections are refused at once.
DEAD = f"redis://127.0.0.1:{refused_port()}/0"


@pytest.fixture
async def hung_redis() -> AsyncIterator[str]:
    """A server that accepts connections and never answers: the worst kind of dead Redis."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"redis://127.0.0.1:{port}/0"
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_when_redis_is_down_and_policy_is_open_then_requests_pass_unmetered(make_limiter: MakeLimiter):
    limiter = await make_limiter(DEAD, timeout=0.2, failure_policy="open")

    admission = await limiter.admit(key(rpm=1), "m", 1)
    await limiter.settle(admission, Usage(1, 1), 0.5)

    assert admission.unmetered
    assert admission.headers == {}
    assert not limiter.healthy
    assert limiter.failures >= 1
    assert limiter.unmetered == 1
    assert limiter.status()["healthy"] is False


async def test_when_redis_is_down_and_policy_is_closed_then_503(make_limiter: MakeLimiter):
    limiter = await make_limiter(DEAD, timeout=0.2, failure_policy="closed")

    with pytest.raises(ServiceUnavailable, match="Redis is unreachable") as err:
        await limiter.admit(key(rpm=1), "m", 1)

    assert err.value.status == 503
    assert err.value.headers["retry-after"] == "1"


@pytest.mark.timeout(20)
@pytest.mark.parametrize("policy", ["open", "closed"])
async def test_when_redis_hangs_then_the_call_returns_after_the_timeout(
    make_limiter: MakeLimiter, hung_redis: str, policy: str
):
    limiter = await make_limiter(hung_redis, timeout=0.3, failure_policy=policy)
    # The bound is the call's own timeout, not the connection's (dropped after max(4 x 0.3, 1) s of silence).
    bounded = 1.0
    await asyncio.sleep(1.5)  # past the connection's first silence (the script load at start): a fresh one

    if policy == "closed":
        with pytest.raises(ServiceUnavailable):
            await asyncio.wait_for(limiter.admit(key(rpm=1), "m", 1), bounded)
    else:
        assert (await asyncio.wait_for(limiter.admit(key(rpm=1), "m", 1), bounded)).unmetered


async def test_when_redis_just_failed_then_it_is_not_asked_again_on_every_request(make_limiter: MakeLimiter):
    limiter = await make_limiter(DEAD, timeout=0.2, failure_policy="open", probe_interval=60)
    await limiter.admit(key(rpm=1), "m", 1)
    failures = limiter.failures

    for _ in range(50):
        assert (await limiter.admit(key(rpm=1), "m", 1)).unmetered

    assert limiter.failures == failures


async def test_when_redis_stays_down_then_unreachable_is_logged_once(
    make_limiter: MakeLimiter, caplog: pytest.LogCaptureFixture
):
    limiter = await make_limiter(DEAD, timeout=0.2, failure_policy="open", probe_interval=0.01)

    with caplog.at_level(logging.ERROR, logger="interlock.limits"):
        for _ in range(10):
            await limiter.admit(key(rpm=1), "m", 1)
            await asyncio.sleep(0.02)

    assert limiter.failures > 1
    assert sum("redis unreachable" in r.getMessage() for r in caplog.records) == 1


async def test_when_a_principal_has_no_limits_then_redis_is_not_asked(make_limiter: MakeLimiter):
    limiter = await make_limiter(DEAD, timeout=0.2, failure_policy="closed")
    failed_at_start = limiter.failures  # loading the scripts at start failed

    anonymous = await limiter.admit(Principal(), "m", 1)
    unlimited = await limiter.admit(key(), "m", 1)
    await limiter.settle(unlimited, Usage(1, 1), 1.0)

    assert limiter.failures == failed_at_start
    assert not anonymous.unmetered and not unlimited.unmetered


async def test_when_no_redis_is_configured_then_everything_is_admitted(make_limiter: MakeLimiter):
    limiter = await make_limiter(None)

    for _ in range(3):
        admission = await limiter.admit(key(rpm=1), "m", 1)

    assert admission.headers == {}
    assert limiter.healthy and not limiter.enabled


async def test_when_redis_comes_back_then_limits_are_enforced_again(
    make_limiter: MakeLimiter, redis_process: RedisProcess
):
    limiter = await make_limiter(redis_process.url, timeout=0.2, failure_policy="open", probe_interval=0.1)
    p = key(rpm=2)
    await limiter.admit(p, "m", 1)
    redis_process.stop()
    assert (await limiter.admit(p, "m", 1)).unmetered

    redis_process.start()
    for _ in range(200):  # the background probe notices within probe_interval; the bound only stops a hang
        if limiter.healthy:
            break
        await asyncio.sleep(0.05)

    assert limiter.healthy
    assert not (await limiter.admit(p, "m", 1)).unmetered
