"""``ResponseCache``: the decisions of the exact and semantic caches, with no HTTP and no gateway in sight.

``plan()`` decides whether a request may use the cache at all and computes its keys; ``exact()`` and
``semantic()`` look up; ``store()`` keeps a fresh answer; ``clear()`` invalidates. Backends raise
``CacheUnavailable``; the caller (``gateway/cache_step.py``) turns that into a miss.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cache.cacheability import SHARED_SCOPES, Classifier, has_personal_data, query_reason, sampling_reason
from cache.config import CacheSettings, ModelCacheConfig
from cache.entry import Entry, Invalidation
from cache.exact import ExactStore, MemoryExactStore, RedisExactStore
from cache.keys import CacheKey, make_key, scope_owner
from cache.pair_verifier import PairVerifier
from cache.semantic import DEFAULT_THRESHOLD, MemorySemanticIndex, SemanticIndex
from cache.verify import Signature, signature, veto

#: Nearest entries checked per semantic lookup: the closest one may be vetoed while the next one is fine.
CANDIDATES = 3


@dataclass(slots=True)
class Plan:
    """One request's use of the cache."""

    key: CacheKey
    config: ModelCacheConfig
    lookup: bool = True
    """False for ``Cache-Control: no-cache``: answer fresh, but store it."""
    store: bool = True
    store_reason: str | None = None
    """Why the answer will not be stored (``user_specific``, ``personal_data``, ...)."""
    signature: Signature | None = None


@dataclass(slots=True)
class SemanticResult:
    entry: Entry | None = None
    similarity: float = 0.0
    vetoes: list[str] = field(default_factory=list)
    """Reasons of near hits (above the threshold) that verification refused (``model``: the pair verifier)."""


class ResponseCache:
    def __init__(
        self,
        exact: ExactStore,
        semantic: SemanticIndex | None = None,
        classifier: Classifier | None = None,
        verifier: PairVerifier | None = None,
    ) -> None:
        self.exact_store = exact
        self.semantic_index = semantic
        self.classifier = classifier if classifier is not None else Classifier()
        self.verifier = verifier if verifier is not None else PairVerifier()

    def plan(
        self,
        route: str,
        body: dict[str, Any],
        model: str,
        config: ModelCacheConfig,
        *,
        key_id: str | None,
        team_id: str | None,
    ) -> Plan | str:
        """The plan, or why the request bypasses the cache (``temperature>0``, ``no_user``, ...)."""
        if route == "embeddings":
            return "route"
        reason = sampling_reason(body, config.cacheability)
        if reason is not None:
            return reason
        owner = scope_owner(config.scope, key_id, team_id, body.get("user"))
        if owner is None:
            return f"no_{config.scope}"
        return Plan(make_key(route, body, model, config.scope, owner), config)

    def check_query(self, plan: Plan, pii_found: bool) -> None:
        """After an exact miss (hits never pay for it): may this question's answer be stored and searched?"""
        reason = query_reason(plan.key.query, plan.config.cacheability, self.classifier)
        if reason is None and plan.key.scope in SHARED_SCOPES and (pii_found or has_personal_data(plan.key.query)):
            reason = "personal_data"
        if reason is not None:
            plan.store, plan.store_reason = False, reason

    async def exact(self, plan: Plan) -> Entry | None:
        if not plan.config.exact.enabled:
            return None
        return await self.exact_store.get(plan.key)

    def wants_semantic(self, plan: Plan) -> bool:
        return (
            self.semantic_index is not None
            and plan.config.semantic.enabled
            and plan.store  # an uncacheable question is not answered from a neighbour either
            and bool(plan.key.query.strip())
        )

    @property
    def semantic_is_remote(self) -> bool:
        """The index answers over the network (the cache service): its lookups are worth a client span."""
        return getattr(self.semantic_index, "remote", False)

    async def semantic(self, plan: Plan, vector: np.ndarray, traceparent: str | None = None) -> SemanticResult:
        assert self.semantic_index is not None
        cfg = plan.config.semantic
        # The verifier knows one embedder's vectors (its dimension tells them apart from another's).
        learned = cfg.verify and cfg.learned_verifier and self.verifier.fits(vector)
        threshold = cfg.threshold
        if threshold is None:
            threshold = self.verifier.floor if learned else DEFAULT_THRESHOLD
        result = SemanticResult()
        candidates = await self.semantic_index.search(plan.key.partition, vector, CANDIDATES, traceparent)
        for c in candidates:
            if c.similarity < threshold:
                break
            if cfg.verify:
                if plan.signature is None:
                    plan.signature = signature(plan.key.query)
                if learned and c.vector is not None:
                    reason = self.verifier.check(vector, c.vector, plan.signature, c.signature)
                elif learned and cfg.threshold is None and c.similarity < DEFAULT_THRESHOLD:
                    continue  # no vector from its index (an older cache service): the rules' own threshold
                else:
                    reason = veto(plan.signature, c.signature)
                if reason is not None:
                    result.vetoes.append(reason)
                    continue
            result.entry, result.similarity = c.entry, c.similarity
            break
        return result

    async def store_exact(self, plan: Plan, entry: Entry) -> None:
        if plan.config.exact.enabled:
            await self.exact_store.put(plan.key, entry, plan.config.exact.ttl)

    async def store_semantic(self, plan: Plan, entry: Entry, vector: np.ndarray) -> None:
        assert self.semantic_index is not None
        sig = plan.signature or signature(plan.key.query)
        await self.semantic_index.add(plan.key, vector, sig, entry, plan.config.semantic.ttl)

    async def clear(self, what: Invalidation, *, shared: bool = True, local: bool = True) -> dict[str, int]:
        """Drop matching entries; counts by kind. ``shared``/``local``: which backends, those shared by replicas
        (Redis, pgvector, the cache service) or those held in this process (which every replica must clear)."""
        out = {}
        for kind, backend in (("exact", self.exact_store), ("semantic", self.semantic_index)):
            if what.kind not in (kind, "all") or backend is None:
                continue
            if shared if getattr(backend, "shared", True) else local:
                out[kind] = await backend.clear(what)
        return out

    async def aclose(self) -> None:
        await self.exact_store.aclose()
        if self.semantic_index is not None:
            await self.semantic_index.aclose()


def new_entry(body: bytes, source: str, prompt_tokens: int, completion_tokens: int) -> Entry:
    return Entry(body, source, time.time(), prompt_tokens, completion_tokens)


def build_cache(settings: CacheSettings, *, redis_url: str | None, dim: int | None, semantic: bool) -> ResponseCache:
    """The backends ``settings`` names. ``dim``: the embedder's dimension (needed when ``semantic``)."""
    use_redis = settings.exact_backend == "redis" or (settings.exact_backend == "auto" and redis_url)
    if use_redis:
        if not redis_url:
            raise ValueError("cache.exact_backend is redis but redis.url is not set")
        exact: ExactStore = RedisExactStore(redis_url, timeout=settings.timeout)
    else:
        exact = MemoryExactStore(settings.memory_max_entries, settings.memory_max_bytes)
    return ResponseCache(exact, build_semantic_index(settings, dim) if semantic else None)


def build_semantic_index(settings: CacheSettings, dim: int | None) -> SemanticIndex:
    """The semantic index ``settings.semantic_backend`` names (also when a first semantic cache is enabled live)."""
    assert dim is not None
    if settings.semantic_backend == "pgvector":
        if not settings.postgres_url:
            raise ValueError("cache.postgres_url is required for semantic_backend pgvector")
        from cache.pgvector import PgVectorIndex

        return PgVectorIndex(settings.postgres_url, dim, timeout=settings.timeout)
    if settings.semantic_backend == "service":
        from cache.remote import RemoteSemanticIndex

        return RemoteSemanticIndex(settings.service_url or "", timeout=settings.timeout)
    return MemorySemanticIndex(dim, settings.semantic_max_entries)
