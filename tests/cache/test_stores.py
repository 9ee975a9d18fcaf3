"""Exact stores (in process, real Redis) and the in-process semantic index: bounds, isolation, invalidation."""

from __future__ import annotations

import numpy as np
import pytest

from cache import (
    CacheUnavailable,
    Entry,
    Invalidation,
    InvalidInvalidation,
    MemoryExactStore,
    MemorySemanticIndex,
    RedisExactStore,
    make_key,
    signature,
)
from tests.support.servers import free_port


def key(text: str, owner: str = "k1", model: str = "m", scope: str = "key"):
    return make_key("chat", {"messages": [{"role": "user", "content": text}]}, model, scope, owner)


def entry(body: bytes = b"{}", created: float | None = None) -> Entry:
    import time

    return Entry(body, "req-1", time.time() if created is None else created, 3, 4)


async def test_when_the_memory_store_is_full_then_the_least_recently_used_entry_goes():
    store = MemoryExactStore(max_entries=2)
    await store.put(key("a"), entry(b"A"), 60)
    await store.put(key("b"), entry(b"B"), 60)
    assert await store.get(key("a")) is not None  # "a" is now the most recently used
    await store.put(key("c"), entry(b"C"), 60)
    assert await store.get(key("b")) is None and (await store.get(key("a"))).body == b"A" and len(store) == 2


async def test_when_answers_exceed_the_byte_bound_then_old_ones_are_dropped():
    store = MemoryExactStore(max_entries=100, max_bytes=1024)
    for i in range(5):
        await store.put(key(str(i)), entry(b"x" * 400), 60)
    assert store.bytes <= 1024 and await store.get(key("4")) is not None


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_when_invalidating_by_model_scope_or_age_then_only_matching_entries_go(backend, request):
    store = MemoryExactStore() if backend == "memory" else RedisExactStore(request.getfixturevalue("redis_url"))
    try:
        await store.put(key("q", model="m1"), entry(), 60)
        await store.put(key("q", model="m2"), entry(), 60)
        await store.put(key("q", owner="t1", scope="team"), entry(), 60)
        await store.put(key("old"), entry(created=0.0), 60)
        assert await store.clear(Invalidation(model="m1")) == 1
        assert await store.get(key("q", model="m2")) is not None
        assert await store.clear(Invalidation(scope="team", owner="t1")) == 1
        assert await store.clear(Invalidation(older_than=3600)) == 1
        assert await store.get(key("old")) is None and await store.get(key("q", model="m2")) is not None
    finally:
        await store.aclose()


async def test_when_redis_stores_an_entry_then_it_carries_the_ttl(redis_url):
    import redis.asyncio as redis

    store = RedisExactStore(redis_url)
    await store.put(key("q"), entry(b"body"), 120)
    client = redis.Redis.from_url(redis_url)
    assert 0 < await client.ttl(RedisExactStore.redis_key(key("q"))) <= 120
    assert (await store.get(key("q"))).body == b"body"
    await client.aclose()
    await store.aclose()


async def test_when_redis_is_down_then_the_store_raises_cache_unavailable_and_backs_off():
    store = RedisExactStore(f"redis://127.0.0.1:{free_port()}/0", timeout=0.2)
    with pytest.raises(CacheUnavailable):
        await store.get(key("q"))
    with pytest.raises(CacheUnavailable, match="retrying"):  # no connection attempt during the back-off
        await store.get(key("q"))
    await store.aclose()


def vec(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


async def test_when_searching_then_only_the_partition_is_searched_and_expired_entries_are_skipped():
    index = MemorySemanticIndex(dim=2)
    mine, theirs = key("q", owner="k1"), key("q", owner="k2")
    await index.add(theirs, vec(1, 0), signature("q"), entry(b"theirs"), 60)
    assert await index.search(mine.partition, vec(1, 0), 3) == []
    await index.add(mine, vec(0, 1), signature("q"), entry(b"mine"), 60)
    found = await index.search(mine.partition, vec(1, 0.1), 3)
    assert [c.entry.body for c in found] == [b"mine"]
    assert np.array_equal(found[0].vector, vec(0, 1))  # the stored vector, for the pair verifier
    await index.add(mine, vec(1, 0), signature("q"), entry(b"gone"), -1)  # already expired
    assert [c.entry.body for c in await index.search(mine.partition, vec(1, 0), 3)] == [b"mine"]


async def test_when_the_index_is_full_then_the_oldest_entries_go_and_clear_filters_apply():
    index = MemorySemanticIndex(dim=2, max_entries=3)
    for i in range(5):
        await index.add(key("q", owner=f"k{i}"), vec(1, i), signature("q"), entry(), 60)
    assert index.size == 3
    assert await index.clear(Invalidation(scope="key", owner="k4")) == 1 and index.size == 2


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"scope": "tenant"}, "scope"),
        ({"owner": "k1"}, "owner"),
        ({"older_than": -1}, "older_than"),
        ({"kind": "fuzzy"}, "kind"),
    ],
)
def test_when_an_invalidation_is_malformed_then_it_names_the_field(kw, field):
    with pytest.raises(InvalidInvalidation) as err:
        Invalidation(**kw)
    assert err.value.field == field
