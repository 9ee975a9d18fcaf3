"""Semantic indexes: the nearest cached questions *within one partition*.

    SemanticIndex          the role: ``search(partition, vector, k)``, ``add(...)``, ``clear(invalidation)``
    ├── MemorySemanticIndex numpy brute force per partition, in process (embedded default)
    └── PgVectorIndex       a PostgreSQL table with pgvector, shared by replicas (``cache/pgvector.py``)

The partition is the first thing looked up, never a filter applied to a global search's results, so another
tenant's entry cannot be a candidate however close its vector is. Vectors are L2-normalised: the dot product is
the cosine similarity.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from cache.entry import Entry, Invalidation
from cache.keys import CacheKey
from cache.verify import Signature

#: The similarity a near hit needs by default (tuned on ../shared/data/paraphrase; see the README).
DEFAULT_THRESHOLD = 0.93


@dataclass(slots=True)
class Candidate:
    similarity: float
    signature: Signature
    entry: Entry
    vector: np.ndarray | None = None
    """The stored question's vector (the pair verifier reads it); ``None`` from a service that does not send it."""


class SemanticIndex(Protocol):
    async def search(
        self, partition: str, vector: np.ndarray, k: int, traceparent: str | None = None
    ) -> list[Candidate]:
        """Up to ``k`` live entries of ``partition``, most similar first. ``traceparent`` (W3C): a remote index
        sends it, so its span joins the caller's trace."""
        ...

    async def add(self, key: CacheKey, vector: np.ndarray, signature: Signature, entry: Entry, ttl: int) -> None: ...

    async def clear(self, what: Invalidation) -> int: ...

    async def aclose(self) -> None: ...


class _Partition:
    __slots__ = ("meta", "n", "vectors")

    def __init__(self, dim: int) -> None:
        self.vectors = np.zeros((8, dim), dtype=np.float32)
        self.n = 0
        # per row: (expires at, scope, owner, model, signature, entry)
        self.meta: list[tuple[float, str, str, str, Signature, Entry]] = []

    def append(self, vector: np.ndarray, meta: tuple) -> None:
        if self.n == len(self.vectors):
            self.vectors = np.concatenate([self.vectors, np.zeros_like(self.vectors)])
        self.vectors[self.n] = vector
        self.meta.append(meta)
        self.n += 1

    def keep(self, rows: list[int]) -> None:
        self.vectors[: len(rows)] = self.vectors[rows]
        self.meta = [self.meta[i] for i in rows]
        self.n = len(rows)


class MemorySemanticIndex:
    #: In this process only: an invalidation must be repeated on every replica (``ResponseCache.clear_local``).
    shared = False

    def __init__(self, dim: int, max_entries: int = 50_000) -> None:
        self.dim = dim
        self.max_entries = max_entries
        self.size = 0
        self._parts: OrderedDict[str, _Partition] = OrderedDict()

    async def search(
        self, partition: str, vector: np.ndarray, k: int, traceparent: str | None = None
    ) -> list[Candidate]:
        part = self._parts.get(partition)
        if part is None or part.n == 0:
            return []
        sims = part.vectors[: part.n] @ vector
        order = np.argsort(-sims)[: k * 2]  # a few spare rows in case some expired
        now = time.time()
        out: list[Candidate] = []
        for i in order:
            meta = part.meta[i]
            if meta[0] > now:
                out.append(Candidate(float(sims[i]), meta[4], meta[5], part.vectors[i].copy()))
                if len(out) == k:
                    break
        return out

    async def add(self, key: CacheKey, vector: np.ndarray, signature: Signature, entry: Entry, ttl: int) -> None:
        part = self._parts.get(key.partition)
        if part is None:
            part = self._parts[key.partition] = _Partition(self.dim)
        self._parts.move_to_end(key.partition)
        now = time.time()
        if part.n and part.n % 64 == 0:  # drop expired rows now and then, not on every add
            self.size -= part.n
            part.keep([i for i, m in enumerate(part.meta) if m[0] > now])
            self.size += part.n
        part.append(vector, (now + ttl, key.scope, key.owner, key.model, signature, entry))
        self.size += 1
        while self.size > self.max_entries:
            self._evict_one()

    def _evict_one(self) -> None:
        """The oldest row of the partition that was added to least recently."""
        name, part = next(iter(self._parts.items()))
        part.keep(list(range(1, part.n)))
        self.size -= 1
        if part.n == 0:
            del self._parts[name]

    async def clear(self, what: Invalidation) -> int:
        now = time.time()
        removed = 0
        for name in list(self._parts):
            part = self._parts[name]
            keep = [i for i, m in enumerate(part.meta) if not what.matches(m[1], m[2], m[3], m[5].created, now)]
            removed += part.n - len(keep)
            self.size -= part.n - len(keep)
            part.keep(keep)
            if part.n == 0:
                del self._parts[name]
        return removed

    async def aclose(self) -> None:
        self._parts.clear()
        self.size = 0
