"""Propagation: a change made on one replica reaches another within a second (Redis, or polling)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from gateway.access import AccessConfig, AccessRuntime, AccessStore, KeyPatch, KeySpec
from gateway.config import ModelConfig
from gateway.db import make_engine
from gateway.errors import AuthenticationFailed
from tests.gateway.access.conftest import MODELS

DEADLINE = 1.0  # the promise: every replica within one second


async def eventually(check: Callable[[], Any], deadline: float = DEADLINE) -> Any:
    """Retry ``check`` until it passes; fail with its last error once ``deadline`` seconds have passed."""
    end = time.monotonic() + deadline
    while True:
        try:
            return check()
        except (AssertionError, AuthenticationFailed):
            if time.monotonic() >= end:
                raise
        await asyncio.sleep(0.01)


def _refused(runtime: AccessRuntime, key: str) -> None:
    try:
        runtime.authenticator.authenticate(f"Bearer {key}")
    except AuthenticationFailed:
        return
    raise AssertionError("the key still works on this replica")


@pytest.fixture
async def start_replicas(db_url: str) -> AsyncIterator[Callable[[str | None], Any]]:
    """Start two replicas over one database, sharing Redis when given its URL."""
    started: list[tuple[AccessRuntime, Any]] = []

    async def start(redis_url: str | None) -> tuple[AccessRuntime, AccessRuntime]:
        # A channel of our own: other test runs may share this Redis server.
        config = AccessConfig(require_keys=True, bus_channel=f"interlock:config:{uuid.uuid4().hex}")
        for _ in range(2):
            engine = make_engine(db_url)
            runtime = AccessRuntime(config, engine, MODELS, redis_url=redis_url)
            await runtime.start()
            started.append((runtime, engine))
        return started[-2][0], started[-1][0]

    yield start
    for runtime, engine in started:
        await runtime.aclose()
        engine.dispose()


@pytest.fixture
async def replicas(start_replicas, redis_url: str) -> tuple[AccessRuntime, AccessRuntime]:
    return await start_replicas(redis_url)


async def test_when_a_key_is_revoked_on_one_replica_then_the_other_refuses_it(replicas):
    a, b = replicas
    created = await a.store.create_key(KeySpec(name="app"))
    await eventually(lambda: b.authenticator.authenticate(f"Bearer {created.key}"))

    await a.store.revoke_key(created.id)

    _refused(a, created.key)  # the replica that made the change has applied it before answering
    await eventually(lambda: _refused(b, created.key))


async def test_when_a_key_gains_a_model_on_one_replica_then_the_other_allows_it(replicas):
    a, b = replicas
    created = await a.store.create_key(KeySpec(name="app", allowed_models=["small"]))
    await eventually(lambda: b.authenticator.authenticate(f"Bearer {created.key}"))

    await a.store.update_key("app", KeyPatch(allowed_models=["small", "large"]))

    def allowed() -> None:
        principal = b.authenticator.authenticate(f"Bearer {created.key}")
        assert principal.allowed_models == frozenset({"small", "large"})

    await eventually(allowed)


async def test_when_a_replica_missed_a_change_then_the_next_one_brings_it(replicas):
    a, b = replicas
    # A writer that tells nobody (as if its message were lost): the version row still moves.
    silent = AccessStore(a.store.engine, MODELS)
    missed = await silent.create_key(KeySpec(name="missed"))
    told = await a.store.create_key(KeySpec(name="told"))

    await eventually(lambda: b.authenticator.authenticate(f"Bearer {told.key}"))
    await eventually(lambda: b.authenticator.authenticate(f"Bearer {missed.key}"))


async def test_when_a_model_is_changed_on_one_replica_then_the_other_swaps_its_model_list(replicas):
    a, b = replicas
    seen: list[list[ModelConfig]] = []

    async def swap(models: list[ModelConfig]) -> None:
        seen.append(models)

    b.on_models_changed(swap)
    before = b.models
    names_before = [m.name for m in before]

    await a.store.set_model("org/new", ModelConfig(name="org/new", deployments=[{"url": "http://10.0.0.9"}]))

    def swapped() -> None:
        assert seen and [m.name for m in seen[-1]] == [*names_before, "org/new"]
        assert b.models is seen[-1]

    await eventually(swapped)
    # Requests in flight hold the old list: it was replaced, never changed in place.
    assert [m.name for m in before] == names_before

    await a.store.delete_model("org/new")

    def restored() -> None:
        assert [m.name for m in b.models] == names_before

    await eventually(restored)


async def test_when_there_is_no_redis_then_polling_carries_a_revoke(start_replicas):
    a, b = await start_replicas(None)
    created = await a.store.create_key(KeySpec(name="app"))
    await eventually(lambda: b.authenticator.authenticate(f"Bearer {created.key}"))

    await a.store.revoke_key("app")

    await eventually(lambda: _refused(b, created.key))


async def test_when_one_handler_fails_then_the_others_still_apply_and_it_is_retried(db_url):
    from gateway.access import ConfigBus

    engine = make_engine(db_url)
    bus = ConfigBus(engine, None, poll_interval=0.02)
    broken = True
    applied: list[str] = []

    async def failing(change) -> None:  # registered first: before, it kept every later handler from running
        if broken:
            raise RuntimeError("cannot apply")
        applied.append("failing")

    async def other(change) -> None:
        applied.append("other")

    bus.subscribe(failing)
    bus.subscribe(other)
    await AccessStore(engine, MODELS).create_key(KeySpec(name="bump"))  # a version to apply
    try:
        with pytest.raises(RuntimeError):
            await bus.sync()
        assert applied == ["other"] and bus.version == -1  # not marked applied: the next check tries again
        broken = False
        await bus.start()
        assert applied[-2:] == ["failing", "other"] and bus.version >= 1
    finally:
        await bus.aclose()
        engine.dispose()
