"""The ``cache`` sections: one per model (who may share an entry, TTLs, thresholds) and one process-wide
(where entries live). Validated at startup and by the admin API; a bad value names its field."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Scope = Literal["key", "team", "user", "global"]
SCOPES: tuple[str, ...] = ("key", "team", "user", "global")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExactCacheConfig(_Section):
    enabled: bool = True
    ttl: int = Field(3600, ge=1, le=30 * 86400)
    """Seconds an exact entry lives."""


class SemanticCacheConfig(_Section):
    enabled: bool = False
    """Off unless asked for: a semantic hit serves an answer to a question that was worded differently."""
    ttl: int = Field(3600, ge=1, le=30 * 86400)
    """Seconds a semantic entry lives."""
    threshold: float | None = Field(None, ge=0.5, le=1.0)
    """Cosine similarity a cached query needs to be served (after verification). Unset: the tuned default, the
    pair verifier's floor (or ``cache.semantic.DEFAULT_THRESHOLD`` without it; see the README for both)."""
    verify: bool = True
    """Veto near hits whose numbers, negations, names, dates or comparison words differ. Turn off only to
    measure."""
    learned_verifier: bool = True
    """With ``verify``: near hits the rules let through also need the trained pair verifier's approval
    (``cache/pair_verifier.py``; it catches one-word factual swaps the rules cannot see). Off: the rules alone,
    at ``cache.semantic.DEFAULT_THRESHOLD`` unless ``threshold`` is set."""


class CacheabilityConfig(_Section):
    rules: bool = True
    """Refuse user-specific ("my order") and time-sensitive ("weather now") queries by pattern."""
    classifier: bool = True
    """Also ask the small trained classifier (``cache/_classifier.py``) about the same two classes."""
    classifier_threshold: float = Field(0.5, gt=0, lt=1)
    """Probability above which the classifier calls a query uncacheable."""
    cache_sampled: bool = False
    """Cache answers to requests with ``temperature`` > 0 too (they would differ on every call)."""


class ModelCacheConfig(_Section):
    """``models[].cache``: which caches apply to a model and who may share their entries."""

    scope: Scope = "key"
    """Who may share an entry: ``key`` (default), ``team``, ``user`` (the request's OpenAI ``user`` field;
    requests without it are not cached) or ``global`` (everyone: an explicit opt-in)."""
    exact: ExactCacheConfig = Field(default_factory=ExactCacheConfig)
    semantic: SemanticCacheConfig = Field(default_factory=SemanticCacheConfig)
    cacheability: CacheabilityConfig = Field(default_factory=CacheabilityConfig)


class CacheSettings(_Section):
    """The process-wide ``cache`` section: where entries are kept."""

    exact_backend: Literal["auto", "memory", "redis"] = "auto"
    """``auto``: Redis when ``redis.url`` is set, else in process. Redis entries are shared by replicas and
    evicted as the server's ``maxmemory-policy`` says (use ``allkeys-lru`` or ``volatile-ttl``)."""
    memory_max_entries: int = Field(10_000, ge=1)
    """Bound of the in-process exact cache (least recently used entries go first)."""
    memory_max_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    """Bound on the answer bytes the in-process exact cache holds."""
    semantic_backend: Literal["memory", "pgvector", "service"] = "memory"
    """``memory``: numpy brute force per partition in this process; ``pgvector``: a PostgreSQL table shared
    by every replica (needs the ``vector`` extension); ``service``: the cache service (``interlock cache
    serve``) at ``service_url``, shared by every replica."""
    service_url: str | None = None
    """``http://cache:8400`` for ``service``."""
    postgres_url: str | None = None
    """``postgresql://user@host:5432/db`` for ``pgvector``."""
    semantic_max_entries: int = Field(50_000, ge=1)
    """Bound of the in-process semantic index (oldest entries go first)."""
    timeout: float = Field(0.25, gt=0)
    """Seconds a cache lookup or store may take before it counts as a miss (a cache that is down never fails
    a request)."""
    log_interval: float = Field(60.0, gt=0)
    """A failing cache backend is logged at most once per this many seconds."""

    @model_validator(mode="after")
    def _check(self) -> CacheSettings:
        if self.semantic_backend == "pgvector" and not self.postgres_url:
            raise ValueError("postgres_url is required when semantic_backend is pgvector")
        if self.semantic_backend == "service" and not self.service_url:
            raise ValueError("service_url is required when semantic_backend is service")
        return self


def parse_overrides(metadata: dict | None) -> dict[str, ModelCacheConfig | None] | None:
    """A key's or team's ``metadata.cache``: ``{model name or "*": a cache section, or null for none}``, which
    replaces the model's own section for that caller. ``ValueError`` naming the field when it is invalid."""
    from pydantic import ValidationError

    raw = (metadata or {}).get("cache")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ValueError("cache must map model names (or '*') to cache sections")
    out: dict[str, ModelCacheConfig | None] = {}
    for name, section in raw.items():
        try:
            out[name] = None if section is None else ModelCacheConfig.model_validate(section)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in ("cache", name, *err["loc"]))
            raise ValueError(f"{where}: {err['msg']}") from None
    return out
