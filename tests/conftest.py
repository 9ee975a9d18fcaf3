"""Shared fixtures: real Redis and PostgreSQL (localhost if running, else throwaway servers), and how
``pytest -n`` (pytest-xdist, as ``make test`` runs it) shares the tests out between processes."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.servers import port_open, temporary_database, throwaway_postgres, throwaway_redis


#: Test modules that use the real vLLM worker (``tests/e2e/test_*vllm*.py``): one xdist process runs them all,
#: so the worker (a minute to start, 2 GB) starts once, and they go first, since they are the longest unit.
def _uses_vllm(nodeid: str) -> bool:
    module = nodeid.split("::", 1)[0]
    return module.startswith("tests/e2e/test_") and "vllm" in module


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """Whole modules to one process (their module-scoped gateways and emulators start once), the vLLM ones
    together."""
    from xdist.scheduler import LoadScopeScheduling

    class ByModule(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "vllm" if _uses_vllm(nodeid) else nodeid.split("::", 1)[0]

    return ByModule(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not _uses_vllm(item.nodeid))  # stable: the rest keep their order


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    """A Redis server URL (database 0). Tests must use ``redis_url`` for an isolated database/prefix.

    Under xdist each process starts a Redis of its own: tests flush databases and listen on pub/sub channels,
    which are server-wide. ``INTERLOCK_TEST_REDIS_URL`` names one for every process: use it without ``-n``."""
    url = os.environ.get("INTERLOCK_TEST_REDIS_URL")
    if url:
        yield url
    elif "PYTEST_XDIST_WORKER" not in os.environ and port_open("127.0.0.1", 6379):
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
