"""Shared fixtures: real Redis and PostgreSQL (localhost if running, else throwaway servers)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.servers import port_open, temporary_database, throwaway_postgres, throwaway_redis


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    """A Redis server URL (database 0). Tests must use ``redis_url`` for an isolated database/prefix."""
    url = os.environ.get("INTERLOCK_TEST_REDIS_URL")
    if url:
        yield url
    elif port_open("127.0.0.1", 6379):
        yield "redis://127.0.0.1:6379/0"
    else:
        with throwaway_redis() as (started, _proc):
            yield started


@pytest.fixture
def redis_url(redis_server_url: str) -> Iterator[str]:
    """A Redis URL on database 15, flushed before and after the test."""
    import redis

    url = redis_server_url.rsplit("/", 1)[0] + "/15"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    url = os.environ.get("INTERLOCK_TEST_POSTGRES_URL")
    if url:
        yield url
    elif port_open("127.0.0.1", 5432):
        yield "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    else:
        with throwaway_postgres() as started:
            yield started


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    with temporary_database(postgres_server_url) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/interlock.db"
