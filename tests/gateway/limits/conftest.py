"""Fixtures for the limiter tests: limiters on a real, private Redis, closed after the test."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from gateway.limits import Limiter
from gateway.types import Limits, Principal
from tests.support.servers import free_port, throwaway_redis

MakeLimiter = Callable[..., Awaitable[Limiter]]


@pytest.fixture(scope="session")
def limits_redis_server() -> Iterator[str]:
    """A Redis server for this folder only. These tests count admissions exactly and rebuild state after
    a flush, so another suite flushing the shared database 15 at the same moment would break them."""
    with throwaway_redis() as (url, _proc):
        yield url


@pytest.fixture
def redis_url(limits_redis_server: str) -> Iterator[str]:
    """Overrides the shared fixture: the private server, flushed before and after the test."""
    client = redis.Redis.from_url(limits_redis_server)
    client.flushdb()
    yield limits_redis_server
    client.flushdb()
    client.close()


@pytest.fixture
async def make_limiter(redis_url: str) -> AsyncIterator[MakeLimiter]:
    """``await make_limiter(**kwargs)``: a started ``Limiter`` (default: the test's Redis, 2 s timeout)."""
    made: list[Limiter] = []

    async def make(url: str | None = redis_url, **kwargs: Any) -> Limiter:
        kwargs.setdefault("timeout", 2.0)
        limiter = Limiter(url, **kwargs)
        await limiter.start()
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        await limiter.aclose()


def key(
    key_id: str = "k1",
    *,
    team_id: str | None = None,
    name: str | None = None,
    team_limits: Limits | None = None,
    **limits: Any,
) -> Principal:
    """A principal for key ``key_id`` with the given key limits (``rpm=...``, ``budget_daily_usd=...``)."""
    return Principal(
        key_id=key_id,
        team_id=team_id,
        key_name=name,
        key_limits=Limits(**limits),
        team_limits=team_limits,
    )


class RedisProcess:
    """A private redis-server that a test can stop and start again on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._running: contextlib.AbstractContextManager | None = None

    def start(self) -> None:
        self._running = throwaway_redis(self.port)
        self._running.__enter__()

    def stop(self) -> None:
        if self._running is not None:
            self._running.__exit__(None, None, None)
            self._running = None


@pytest.fixture
def redis_process() -> Iterator[RedisProcess]:
    """A running private Redis the test may kill and restart."""
    server = RedisProcess()
    server.start()
    yield server
    server.stop()


class Records:
    """Request costs as the database would hold them; ``spend`` is a ``reconcile`` source."""

    def __init__(self) -> None:
        self.rows: list[tuple[str | None, str | None, datetime, float]] = []
        self.calls = 0

    def add(self, key_id: str | None, team_id: str | None, cost: float, at: datetime | None = None) -> None:
        self.rows.append((key_id, team_id, at or datetime.now(UTC), cost))

    def spend(self, key_id: str | None, team_id: str | None, since: datetime) -> float:
        self.calls += 1
        return sum(
            cost
            for k, t, at, cost in self.rows
            if at >= since and (key_id is None or k == key_id) and (team_id is None or t == team_id)
        )
