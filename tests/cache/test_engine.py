"""``ResponseCache`` with in-process backends: near hits are served only above the threshold and when verified."""

from __future__ import annotations

import numpy as np

from cache import MemoryExactStore, MemorySemanticIndex, ResponseCache, new_entry
from cache.config import ModelCacheConfig

CONFIG = ModelCacheConfig(semantic={"enabled": True, "threshold": 0.9})
V = np.array([1.0, 0.0], dtype=np.float32)


def plan(cache: ResponseCache, text: str, config: ModelCacheConfig = CONFIG):
    body = {"messages": [{"role": "user", "content": text}], "temperature": 0}
    p = cache.plan("chat", body, "m", config, key_id="k", team_id=None)
    cache.check_query(p, pii_found=False)
    return p


async def stored(text: str) -> ResponseCache:
    cache = ResponseCache(MemoryExactStore(), MemorySemanticIndex(dim=2))
    p = plan(cache, text)
    entry = new_entry(b"{}", "req-1", 1, 2)
    await cache.store_exact(p, entry)
    await cache.store_semantic(p, entry, V)
    return cache


async def test_when_a_near_question_passes_verification_then_it_is_served_with_its_similarity():
    cache = await stored("How do I reverse 2 lists in Python?")
    found = await cache.semantic(plan(cache, "How can I reverse 2 Python lists?"), V)
    assert found.entry is not None and found.entry.source == "req-1" and found.similarity > 0.99


async def test_when_a_near_question_differs_in_a_number_then_it_is_vetoed_and_counted():
    cache = await stored("How do I reverse 2 lists in Python?")
    found = await cache.semantic(plan(cache, "How do I reverse 3 lists in Python?"), V)
    assert found.entry is None and found.vetoes == ["numbers"]


async def test_when_verification_is_off_then_the_same_near_question_is_served():
    cache = await stored("How do I reverse 2 lists in Python?")
    off = ModelCacheConfig(semantic={"enabled": True, "threshold": 0.9, "verify": False})
    assert (await cache.semantic(plan(cache, "How do I reverse 3 lists in Python?", off), V)).entry is not None


async def test_when_similarity_is_below_the_threshold_then_nothing_is_served():
    cache = await stored("How do I reverse 2 lists in Python?")
    far = np.array([0.8, 0.6], dtype=np.float32)  # cosine 0.8
    assert (await cache.semantic(plan(cache, "How can I reverse 2 Python lists?"), far)).entry is None


async def test_when_the_exact_question_returns_then_the_exact_store_answers_it():
    cache = await stored("How do I reverse 2 lists in Python?")
    assert (await cache.exact(plan(cache, "How do I reverse 2 lists in Python?"))).source == "req-1"
    assert await cache.exact(plan(cache, "How do I reverse 2 lists in python?")) is None
