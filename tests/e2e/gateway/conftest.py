"""Emulated vLLM replicas and gateways in front of them, over real HTTP."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
import sqlalchemy as sa

from interlock.emulator import EmulatorServer
from tests.support.gateway import running_gateway


@pytest.fixture(scope="module")
def replicas() -> Iterator[list[EmulatorServer]]:
    """Three emulated vLLM workers serving model ``m`` (reset before each test by ``fresh``)."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(EmulatorServer(port=0, served_model_names=["m"])) for _ in range(3)]


@pytest.fixture
def fresh(replicas: list[EmulatorServer]) -> list[EmulatorServer]:
    for r in replicas:
        r.reset()
    return replicas


@pytest.fixture
def gateway(tmp_path):
    """``gateway(models=[...], **settings)`` starts a gateway and returns ``(url, app)``; stopped after the test."""
    with contextlib.ExitStack() as stack:

        def start(**settings: Any):
            settings.setdefault("database", {"url": f"sqlite:///{tmp_path}/gw-{len(stack._exit_callbacks)}.db"})
            settings.setdefault("health", {"interval": 0.2, "failure_threshold": 2, "cooldown": 0.5})
            settings.setdefault("retries", {"attempts": 3, "backoff_base": 0.01, "backoff_max": 0.05})
            return stack.enter_context(running_gateway(**settings))

        yield start


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request) -> str:
    """The test runs once with records in SQLite and once in PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_url")


def stored_records(url: str, expected: int) -> list[dict[str, Any]]:
    """Every request record in the database, once at least ``expected`` are stored (or after 10 s): the recorder
    writes them off the request path."""
    engine = sa.create_engine(url)
    try:
        deadline = time.monotonic() + 10
        while True:
            with engine.connect() as c:
                found = [dict(r._mapping) for r in c.execute(sa.text("SELECT * FROM request_records"))]
            if len(found) >= expected or time.monotonic() > deadline:
                return found
            time.sleep(0.1)
    finally:
        engine.dispose()


def client(url: str, **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, **kw)


def served(replicas: list[EmulatorServer]) -> list[int]:
    """Inference requests each replica received."""
    return [r.stats()["requests_received"] for r in replicas]
