"""The one typed settings tree: a YAML file, overridden by environment variables, validated at startup.

Environment variables use the ``INTERLOCK_`` prefix and ``__`` between levels
(``INTERLOCK_SERVER__PORT=9000``); ``DATABASE_URL`` and ``REDIS_URL`` are honoured as the usual
shorthands. This module is the only place that reads the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from cache.config import CacheSettings
from embeddings.config import EmbeddingConfig
from gateway.access.config import AccessConfig
from gateway.config import (
    AffinityConfig,
    HealthConfig,
    ModelConfig,
    RetryConfig,
    ServerConfig,
    TimeoutConfig,
)
from gateway.errors import ConfigError
from gateway.feedback.config import FeedbackConfig
from gateway.intent.config import IntentRouterConfig
from guardrails.config import GuardrailsConfig
from observability.config import MetricLabelsConfig, RollupConfig, TraceStoreConfig


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatabaseConfig(_Section):
    url: str = "sqlite:///interlock.db"
    """SQLAlchemy URL: ``sqlite:///path.db`` (embedded default) or ``postgresql+psycopg://user@host/db``."""
    flush_interval: float = Field(0.5, gt=0)
    """Seconds between batched writes of request records (off the request path)."""
    batch_size: int = Field(500, ge=1)
    journal: bool = True
    """Append each record to a local journal before it is batched, so a killed gateway process loses none
    (the next start replays them). Costs a few µs per request."""
    journal_dir: str | None = None
    """Where the journal lives: local disk only, one folder per database. Default: next to a SQLite file,
    else ``~/.cache/interlock/journal/<hash of the database URL>``."""
    journal_fsync: bool = False
    """fsync each journal segment when it is flushed: survives a machine crash, not only a process crash."""


class RedisConfig(_Section):
    url: str | None = None
    """``redis://host:6379/0``. Without it keys still work, but limits and budgets are off."""
    timeout: float = Field(0.5, gt=0)
    """Seconds a limit check may wait for Redis before the failure policy applies."""
    failure_policy: Literal["open", "closed"] = "closed"
    """When Redis is unreachable: ``open`` admits requests unmetered, ``closed`` refuses them with 503."""
    tickets: bool = False
    """Admit a key's next request ahead of time while it is far from its limits (half of each), so its
    requests wait for no Redis round trip; limits stay exact. Off by default: it lowers the p50 but widened
    the p99 at concurrency 1 in the independent harness (see README, "Admission tickets")."""
    ticket_ttl: float = Field(1.0, gt=0, le=60)
    """Seconds an unused ticket waits before it is handed back (the room it holds meanwhile)."""
    settle_delay: float = Field(0.0, ge=0, le=0.1)
    """Seconds a finished request's settle may wait to share a later command's write to Redis. 0 (default): it
    is sent at the end of the event loop's current iteration, with every other settle and admission of that
    iteration in one write (under load, many). Above 0 it may also wait for the next admission, which Redis
    then runs after it, so a replica's own next request sees the freed concurrency slot; other replicas see it
    up to that much later, and its Redis time is then on that admission's path. uvloop counts whole
    milliseconds: below 1 ms is the same as 0."""


class ObservabilityConfig(_Section):
    service_name: str = "interlock-gateway"
    otlp_endpoint: str | None = None
    """OTLP/HTTP traces endpoint, e.g. ``http://collector:4318/v1/traces``. Unset: spans are made but not sent."""
    tracing: bool = True
    trace_sample_ratio: float = Field(1.0, ge=0, le=1)
    """Share of new traces recorded (a ``traceparent`` from the caller decides for its own trace)."""
    metrics: bool = True
    metric_labels: MetricLabelsConfig = Field(default_factory=MetricLabelsConfig)
    """Bounds of the ``key``, ``team`` and ``prompt_version`` labels of the request series."""
    metrics_cache_seconds: float = Field(1.0, ge=0)
    """``GET /metrics`` serves the body it rendered for this long (0: render every scrape). A render is ~50 ms of
    CPU at the label bound: however many scrapers and however often, at most one render per this many seconds."""
    recorder: Literal["process", "thread"] = "process"
    """Where request records are written to the database and spans sent to the collector: ``process``, a
    recorder process beside each gateway process (the journal on disk is its input, so records need
    ``database.journal``); ``thread``, background threads of the gateway process, which share its GIL with
    the event loop and cost p99 latency (see the README's benchmark)."""
    log_prompts: bool = False
    """Raw prompts and completions never reach logs unless an admin turns this on."""


class Settings(BaseSettings):
    """Everything Interlock reads at startup."""

    model_config = SettingsConfigDict(
        env_prefix="INTERLOCK_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    server: ServerConfig = Field(default_factory=ServerConfig)
    models: list[ModelConfig] = Field(default_factory=list)
    timeouts: TimeoutConfig = Field(default_factory=TimeoutConfig)
    retries: RetryConfig = Field(default_factory=RetryConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    affinity: AffinityConfig = Field(default_factory=AffinityConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    redis: RedisConfig = Field(default_factory=RedisConfig)
    observability: ObservabilityConfig = Field(default_factory=ObservabilityConfig)
    trace_store: TraceStoreConfig = Field(default_factory=TraceStoreConfig)
    """The built-in trace store (spans in the database, tail sampling, retention)."""
    rollups: RollupConfig = Field(default_factory=RollupConfig)
    """Per-minute rollups of request records, read by the ops console."""
    feedback: FeedbackConfig = Field(default_factory=FeedbackConfig)
    """``POST /v1/feedback`` and implicit feedback signals."""
    access: AccessConfig = Field(default_factory=AccessConfig)
    embeddings: EmbeddingConfig = Field(default_factory=EmbeddingConfig)
    """The one embedding model of the AI layer (guards, intent router, semantic cache)."""
    guardrails: GuardrailsConfig = Field(default_factory=GuardrailsConfig)
    """Input guards (PII, secrets, keywords, injection), masking, and the policies that attach them."""
    cache: CacheSettings = Field(default_factory=CacheSettings)
    """Where cached answers live (per-model switches are ``models[].cache``)."""
    router: IntentRouterConfig = Field(default_factory=IntentRouterConfig)
    """Intent routers clients name as ``model`` (``gateway.intent``); see the README's "Intent router"."""

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        names = [m.name for m in self.models]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"models: names must be unique, repeated: {sorted(dup)}")
        for m in self.models:
            missing = [f for f in m.fallbacks if f not in names]
            if missing:
                raise ValueError(f"models[{m.name}].fallbacks: unknown model(s) {missing}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # init (the YAML file, passed in by load_settings) < environment: env overrides the file.
        return (env_settings, init_settings)


def _shorthands(data: dict[str, Any]) -> dict[str, Any]:
    if url := os.environ.get("DATABASE_URL"):
        data.setdefault("database", {})["url"] = url
    if url := os.environ.get("REDIS_URL"):
        data.setdefault("redis", {})["url"] = url
    return data


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read and validate the settings. A bad file stops startup with an error naming the key."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            loaded = yaml.safe_load(p.read_text()) or {}
        except FileNotFoundError as exc:
            raise ConfigError(f"config file not found: {p}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {p} is not valid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {p} must hold a mapping at the top level")
        data = loaded
    data = _shorthands(data)
    data.update(overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, source=str(path or "settings"))) from exc


def describe_validation_error(exc: ValidationError, source: str) -> str:
    """One line per problem, each naming the key path the way a person would write it."""
    lines = [f"invalid configuration in {source}:"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  {loc}: {err['msg']}")
    return "\n".join(lines)
