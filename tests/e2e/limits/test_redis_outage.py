"""Redis dies under two gateway processes and comes back on the same port.

One gateway fails closed (limited keys get 503 while limits cannot be checked), the other fails open
(requests go on unmetered). Neither may crash, and both enforce limits again once Redis is back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.limits.conftest import chat_body, config, database, eventually, gateways, post
from tests.support.processes import GatewayProcess
from tests.support.servers import free_port, throwaway_redis

KEY = "sk-il-outage-test-key-0123456789abcdef"
#: Bounds each call while Redis is down: a gateway stuck on a dead Redis fails the test instead of hanging it.
CLIENT_TIMEOUT = 3.0


def ready(gw: GatewayProcess) -> tuple[int, dict]:
    r = httpx.get(gw.url + "/ready", timeout=CLIENT_TIMEOUT)
    return r.status_code, r.json()


def redis_up_metric(gw: GatewayProcess) -> float:
    text = httpx.get(gw.url + "/metrics", timeout=CLIENT_TIMEOUT).text
    line = next(line for line in text.splitlines() if line.startswith("interlock_redis_up "))
    return float(line.split()[1])


@pytest.fixture
def setup(emulator, postgres_server_url) -> Iterator[tuple[dict, list[GatewayProcess]]]:
    """A throwaway Redis (``redis["proc"]``, ``redis["port"]``) and gateways [closed, open] on it."""
    port = free_port()
    with contextlib.ExitStack() as stack:
        url, proc = stack.enter_context(throwaway_redis(port))
        seed = [{"name": "limited", "key": KEY, "limits": {"rpm": 100_000}}]
        closed, opened = (
            config(
                emulator,
                database_url=stack.enter_context(database(postgres_server_url)),
                redis_url=url,
                policy=policy,
                keys=seed,
            )
            for policy in ("closed", "open")
        )
        procs = stack.enter_context(gateways(closed, opened))
        yield {"port": port, "proc": proc}, procs


def test_when_redis_dies_and_returns_then_closed_refuses_open_serves_and_both_recover(setup):
    redis, (closed, opened) = setup
    for gw in (closed, opened):
        r = post(gw, KEY, chat_body())
        assert r.status_code == 200 and r.headers["x-ratelimit-limit-requests"] == "100000"

    redis["proc"].kill()
    redis["proc"].wait(10)

    # Fail closed: 503 in OpenAI's format, fast enough for a client with a 3 s timeout.
    r = post(closed, KEY, chat_body(), timeout=CLIENT_TIMEOUT)
    assert r.status_code == 503, r.text
    assert r.json()["error"]["type"] == "service_unavailable" and "Redis" in r.json()["error"]["message"]
    assert post(closed, KEY, chat_body(), timeout=CLIENT_TIMEOUT).status_code == 503
    status, body = ready(closed)
    assert status == 503 and body["status"] == "not ready"
    assert body["redis"]["healthy"] is False and body["redis"]["failure_policy"] == "closed"
    assert redis_up_metric(closed) == 0

    # Fail open: served, unmetered; still ready, since it can serve.
    for _ in range(3):
        assert post(opened, KEY, chat_body(), timeout=CLIENT_TIMEOUT).status_code == 200
    status, body = ready(opened)
    assert status == 200 and body["redis"]["healthy"] is False and body["redis"]["unmetered"] >= 3
    assert redis_up_metric(opened) == 0

    with throwaway_redis(redis["port"]):
        for gw in (closed, opened):
            # A 200 alone proves nothing for the fail-open gateway (it serves unmetered while its circuit waits to
            # re-probe Redis): wait for metered answers, which carry the rate-limit headers again.
            def metered(gw=gw) -> bool:
                r = post(gw, KEY, chat_body(), timeout=CLIENT_TIMEOUT)
                return r.status_code == 200 and "x-ratelimit-remaining-requests" in r.headers

            assert eventually(metered, 5)
            assert eventually(lambda gw=gw: ready(gw)[0] == 200, 5), ready(gw)
            # /metrics may serve a body up to observability.metrics_cache_seconds old (1 s): read until fresh
            assert eventually(lambda gw=gw: redis_up_metric(gw) == 1, 5)
        assert closed.alive and opened.alive
