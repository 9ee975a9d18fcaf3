"""Exact caches: the answer to a byte-identical request (same partition, same last turn).

    ExactStore           the role: ``get(key)``, ``put(key, entry, ttl)``, ``clear(invalidation)``
    ├── MemoryExactStore  in process, bounded by entries and bytes, least recently used first (embedded default)
    └── RedisExactStore   Redis, shared by replicas; TTL per entry, eviction as the server's maxmemory-policy says

Redis keys are ``ilc:x:<model hash>:<scope>:<owner hash>:<exact key>`` so an invalidation by model or scope is a
``SCAN MATCH`` without reading values; an invalidation by age reads the entry headers it scans.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from typing import Protocol

from cache.entry import Entry, Invalidation
from cache.errors import CacheUnavailable
from cache.keys import CacheKey


class ExactStore(Protocol):
    async def get(self, key: CacheKey) -> Entry | None: ...

    async def put(self, key: CacheKey, entry: Entry, ttl: int) -> None: ...

    async def clear(self, what: Invalidation) -> int:
        """Drop matching entries; returns how many."""
        ...

    async def aclose(self) -> None: ...


class MemoryExactStore:
    #: In this process only: an invalidation must be repeated on every replica (``ResponseCache.clear_local``).
    shared = False

    def __init__(self, max_entries: int = 10_000, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        # exact key -> (expires at, scope, owner, model, entry)
        self._data: OrderedDict[str, tuple[float, str, str, str, Entry]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    async def get(self, key: CacheKey) -> Entry | None:
        item = self._data.get(key.exact)
        if item is None:
            return None
        if item[0] <= time.time():
            self._drop(key.exact)
            return None
        self._data.move_to_end(key.exact)
        return item[4]

    async def put(self, key: CacheKey, entry: Entry, ttl: int) -> None:
        if len(entry.body) > self.max_bytes:
            return
        self._drop(key.exact)
        self._data[key.exact] = (time.time() + ttl, key.scope, key.owner, key.model, entry)
        self.bytes += len(entry.body)
        while len(self._data) > self.max_entries or self.bytes > self.max_bytes:
            self._drop(next(iter(self._data)))

    async def clear(self, what: Invalidation) -> int:
        now = time.time()
        doomed = [k for k, (_, s, o, m, e) in self._data.items() if what.matches(s, o, m, e.created, now)]
        for k in doomed:
            self._drop(k)
        return len(doomed)

    def _drop(self, k: str) -> None:
        item = self._data.pop(k, None)
        if item is not None:
            self.bytes -= len(item[4].body)

    async def aclose(self) -> None:
        self._data.clear()


def _h(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


class RedisExactStore:
    """Shared by every gateway replica. A failing Redis raises ``CacheUnavailable`` (the caller serves a miss);
    after a failure Redis is not asked again for ``retry_after`` seconds, so an outage costs no connect
    attempts per request."""

    shared = True

    def __init__(self, url: str, *, timeout: float = 0.25, retry_after: float = 1.0) -> None:
        import redis.asyncio as redis

        self._redis = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry_on_timeout=False
        )
        self._errors = (redis.RedisError, OSError)
        self.retry_after = retry_after
        self._down_until = 0.0

    @staticmethod
    def redis_key(key: CacheKey) -> str:
        return f"ilc:x:{_h(key.model)}:{key.scope}:{_h(key.owner)}:{key.exact}"

    def _check(self) -> None:
        if self._down_until and time.monotonic() < self._down_until:
            raise CacheUnavailable("redis", "down, retrying shortly")

    def _failed(self, exc: BaseException) -> CacheUnavailable:
        self._down_until = time.monotonic() + self.retry_after
        return CacheUnavailable("redis", type(exc).__name__)

    async def get(self, key: CacheKey) -> Entry | None:
        self._check()
        try:
            raw = await self._redis.get(self.redis_key(key))
        except self._errors as exc:
            raise self._failed(exc) from exc
        self._down_until = 0.0
        return None if raw is None else Entry.loads(raw)

    async def put(self, key: CacheKey, entry: Entry, ttl: int) -> None:
        self._check()
        try:
            await self._redis.set(self.redis_key(key), entry.dumps(), ex=ttl)
        except self._errors as exc:
            raise self._failed(exc) from exc

    async def clear(self, what: Invalidation) -> int:
        model = _h(what.model) if what.model is not None else "*"
        owner = _h(what.owner) if what.owner is not None else "*"
        pattern = f"ilc:x:{model}:{what.scope or '*'}:{owner}:*"
        removed = 0
        now = time.time()
        try:
            batch: list[bytes] = []
            async for k in self._redis.scan_iter(match=pattern, count=500):
                batch.append(k)
                if len(batch) >= 500:
                    removed += await self._delete(batch, what, now)
                    batch = []
            if batch:
                removed += await self._delete(batch, what, now)
        except self._errors as exc:
            raise self._failed(exc) from exc
        return removed

    async def _delete(self, keys: list[bytes], what: Invalidation, now: float) -> int:
        if what.older_than is not None:
            values = await self._redis.mget(keys)
            keys = [k for k, v in zip(keys, values, strict=True) if v is not None and _old(v, what.older_than, now)]
        return await self._redis.delete(*keys) if keys else 0

    async def aclose(self) -> None:
        await self._redis.aclose()


def _old(raw: bytes, older_than: float, now: float) -> bool:
    return Entry.loads(raw).created <= now - older_than
