"""Three gateway processes on one Redis and one PostgreSQL database enforce one limit between them.

A burst of three times a key's limit, spread round-robin over the replicas and sent all at once, must
admit the limit (nothing within it refused) and refuse the rest with 429, not 60 per replica. The
replicas run with default settings; one test meets them cold, as after a deployment, the other warm.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.limits.conftest import chat_body, completion_body, config, create_key, eventually, gateways, post
from tests.support.processes import GatewayProcess

LIMIT = 60
BURST = 3 * LIMIT
#: Tokens of one request in the TPM burst: 9 prompt token ids + 1 completion token, reserved and used alike.
REQUEST_TOKENS = 10


@pytest.fixture
def replicas(emulator, postgres_url, redis_url) -> Iterator[list[GatewayProcess]]:
    cfg = config(emulator, database_url=postgres_url, redis_url=redis_url)
    # Three gateways, Redis, the emulator and 180 client threads share two cores here: a limit check can wait
    # longer than the production default for its turn on a core. Give it a second.
    cfg["redis"]["timeout"] = 1.0
    with gateways(cfg, cfg, cfg) as procs:
        yield procs


def known_everywhere(replicas: list[GatewayProcess], key: str) -> bool:
    """Whether every replica knows the key, asked without spending any limit: an unknown model is a 404
    for a known key (before admission) and a 401 for an unknown one."""
    return all(post(gw, key, chat_body("no-such-model")).status_code == 404 for gw in replicas)


async def burst(replicas: list[GatewayProcess], key: str, route: str, body: dict) -> list[tuple[int, str]]:
    """``BURST`` requests at once, request i to replica i % 3; returns (status, error type) of each."""
    limits = httpx.Limits(max_connections=BURST, max_keepalive_connections=BURST)
    async with httpx.AsyncClient(limits=limits, timeout=20) as client:

        async def one(i: int) -> tuple[int, str]:
            gw = replicas[i % len(replicas)]
            r = await client.post(f"{gw.url}/v1/{route}", json=body, headers={"authorization": f"Bearer {key}"})
            return r.status_code, "" if r.status_code == 200 else r.json()["error"]["type"]

        return await asyncio.gather(*(one(i) for i in range(BURST)))


def check(results: list[tuple[int, str]]) -> None:
    """Admitted: the limit, neither less (nothing within it refused) nor more (1% of 60 is less than one
    request); everything else a rate-limit refusal, not an error."""
    statuses = collections.Counter(status for status, _ in results)
    assert dict(statuses) == {200: LIMIT, 429: BURST - LIMIT}, collections.Counter(results)
    assert {kind for status, kind in results if status == 429} == {"rate_limit_error"}


def warm_up(replicas: list[GatewayProcess]) -> None:
    """One burst through every path a limited request takes (Redis pool, upstream pool, pricing), whatever
    its outcome, then wait until every replica finds Redis healthy."""
    key = create_key(replicas[0], limits={"rpm": 100 * BURST})["key"]
    assert eventually(lambda: known_everywhere(replicas, key), timeout=3.0)
    asyncio.run(burst(replicas, key, "chat/completions", chat_body()))

    def redis_healthy() -> bool:
        return all(httpx.get(gw.url + "/ready", timeout=5).json()["redis"]["healthy"] for gw in replicas)

    assert eventually(redis_healthy, timeout=5.0)


def test_when_fresh_replicas_take_a_burst_of_three_times_the_rpm_then_exactly_the_limit_is_admitted(replicas):
    # The first traffic these replicas see, as after a deployment: their Redis pools are still cold.
    key = create_key(replicas[0], limits={"rpm": LIMIT})["key"]
    assert eventually(lambda: known_everywhere(replicas, key), timeout=3.0)
    check(asyncio.run(burst(replicas, key, "chat/completions", chat_body())))


def test_when_warm_replicas_take_bursts_of_three_times_the_rpm_and_tpm_then_exactly_the_limits_are_admitted(
    replicas,
):
    warm_up(replicas)
    key = create_key(replicas[1], limits={"rpm": LIMIT})["key"]
    assert eventually(lambda: known_everywhere(replicas, key), timeout=3.0)
    check(asyncio.run(burst(replicas, key, "chat/completions", chat_body())))
    key = create_key(replicas[2], limits={"tpm": LIMIT * REQUEST_TOKENS})["key"]
    assert eventually(lambda: known_everywhere(replicas, key), timeout=3.0)
    check(asyncio.run(burst(replicas, key, "completions", completion_body(REQUEST_TOKENS - 1))))
