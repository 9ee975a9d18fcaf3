"""Exact and semantic response caches. A library: it never imports ``gateway/`` or FastAPI.

    ResponseCache        plan (may this request use the cache? its keys), look up, store, invalidate
    ├── ExactStore       MemoryExactStore (bounded LRU, in process) | RedisExactStore (shared, TTL)
    └── SemanticIndex    MemorySemanticIndex (numpy per partition) | PgVectorIndex (PostgreSQL + pgvector)
    keys                 partition (scope owner, model, system prompt, earlier turns, every sampling field,
                         tools, response_format) and exact key (partition + last user turn), hashed
    cacheability         sampling, user-specific / time-sensitive rules and classifier, personal data
    verify               numbers, negations, names, dates, comparisons, antonyms: vetoes of near hits
    pair_verifier        the learned check after the rules (both vectors, both signatures; ``_pair_verifier.npz``)
    responses            a stored answer replayed as SSE; a completed stream assembled for storage

Errors: ``cache.errors`` (``CacheError`` > ``CacheUnavailable`` | ``InvalidInvalidation``).
"""

from cache.cacheability import Classifier
from cache.config import CacheSettings, ModelCacheConfig
from cache.engine import Plan, ResponseCache, SemanticResult, build_cache, new_entry
from cache.entry import Entry, Invalidation
from cache.errors import CacheError, CacheUnavailable, InvalidInvalidation
from cache.exact import MemoryExactStore, RedisExactStore
from cache.keys import CacheKey, make_key, scope_owner
from cache.responses import StreamAssembler, replay_stream
from cache.semantic import DEFAULT_THRESHOLD, MemorySemanticIndex
from cache.verify import Signature, signature, veto

__all__ = [
    "DEFAULT_THRESHOLD",
    "CacheError",
    "CacheKey",
    "CacheSettings",
    "CacheUnavailable",
    "Classifier",
    "Entry",
    "InvalidInvalidation",
    "Invalidation",
    "MemoryExactStore",
    "MemorySemanticIndex",
    "ModelCacheConfig",
    "Plan",
    "RedisExactStore",
    "ResponseCache",
    "SemanticResult",
    "Signature",
    "StreamAssembler",
    "build_cache",
    "make_key",
    "new_entry",
    "replay_stream",
    "scope_owner",
    "signature",
    "veto",
]
