"""The gateway's configuration sections. ``interlock.settings.Settings`` composes them into one tree."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from cache.config import ModelCacheConfig


class _Section(BaseModel):
    # A typo in the YAML must stop startup with the key's name, not be silently ignored.
    model_config = ConfigDict(extra="forbid")


def _readable_secret(schema: dict[str, Any]) -> None:
    # pydantic marks SecretStr ``writeOnly``: "never in a response". Ours are in responses, masked or null, and
    # a document that says otherwise fails clients and schema checkers (schemathesis) on every read.
    for branch in schema.get("anyOf", ()):
        branch.pop("writeOnly", None)


class DeploymentConfig(_Section):
    """One place a model is served."""

    kind: Literal["vllm", "openai", "litellm"] = "vllm"
    """``vllm`` and ``openai``: any OpenAI-compatible server, through our native pooled client (the fast
    path); ``vllm`` also reads the worker's ``/metrics`` as a load signal. ``litellm``: any provider litellm
    supports (imported only when such a deployment exists)."""
    name: str | None = None
    """Shown in ``x-interlock-upstream``, traces and records. Defaults to the URL or the litellm model."""
    url: str | None = None
    """Base URL of an OpenAI-compatible server, e.g. ``http://10.0.0.5:8000`` (with or without ``/v1``)."""
    model: str | None = None
    """The model name the upstream knows; defaults to the public model name. For litellm:
    ``provider/model`` such as ``anthropic/claude-3-5-haiku-20241022``."""
    api_key: SecretStr | None = Field(None, json_schema_extra=_readable_secret)
    """The upstream's API key. Reads (``GET /admin/models``) show it masked as ``**********``, or null when unset."""
    weight: float = Field(1.0, gt=0)
    """Relative share of traffic among healthy replicas."""
    max_concurrency: int | None = Field(None, gt=0)
    """Requests in flight above which the balancer treats this replica as full."""
    litellm_params: dict[str, Any] = Field(default_factory=dict)
    """Extra keyword arguments for ``litellm.acompletion`` (``api_base``, ``aws_region_name``, ...)."""

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str | None) -> str | None:
        # Checked whole here, where the error can name the field: a URL that only fails when its upstream is
        # built would stop startup with a traceback, or stop every replica from applying an admin change.
        return None if url is None else check_url(url)

    @model_validator(mode="after")
    def _check(self) -> DeploymentConfig:
        if self.kind in ("vllm", "openai") and not self.url:
            raise ValueError(f"a deployment of kind {self.kind!r} needs a url")
        if self.kind == "litellm" and not self.model:
            raise ValueError("a litellm deployment needs model: provider/model-name")
        if self.url:
            url = self.url.rstrip("/")
            self.url = url[: -len("/v1")] if url.endswith("/v1") else url
        if self.name is None:
            self.name = self.url or self.model
        return self


def check_url(url: str) -> str:
    """``url`` if it is an absolute ``http(s)://host[:port][/path]`` URL; ``ValueError`` saying what is wrong."""
    if url != url.strip() or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise ValueError("the URL must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # an unclosed "[" of an IPv6 host
        raise ValueError(f"not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("the URL must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("the URL has no host")
    try:
        port = parts.port  # parsed lazily: an out-of-range or non-numeric port raises only here
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise ValueError("the port must be a number from 1 to 65535")
    if parts.username is not None or parts.password is not None:
        raise ValueError("the URL must not carry credentials: put the key in api_key")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise ValueError("the URL must not have a query or fragment")
    return url


class PricingConfig(_Section):
    """USD per token. Unset prices fall back to litellm's price map when the model is known there."""

    input_per_token: float | None = Field(None, ge=0)
    output_per_token: float | None = Field(None, ge=0)


class ModelConfig(_Section):
    """A public model name and where it is served."""

    name: str
    deployments: list[DeploymentConfig] = Field(min_length=1)
    fallbacks: list[str] = Field(default_factory=list)
    """Models to try, in order, when every deployment of this one failed with a retryable error."""
    routing: Literal["prefix_affinity", "least_outstanding"] = "prefix_affinity"
    """How to pick a replica; see ``router.balancing``."""
    pricing: PricingConfig = Field(default_factory=PricingConfig)
    cache: ModelCacheConfig | None = None
    """Exact and semantic caches for this model (``cache.config.ModelCacheConfig``); unset: no cache."""

    @model_validator(mode="after")
    def _unique(self) -> ModelConfig:
        names = [d.name for d in self.deployments]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"model {self.name!r}: deployment names must be unique, repeated: {sorted(dup)}")
        return self


class TimeoutConfig(_Section):
    connect: float = Field(2.0, gt=0)
    """Seconds to open a TCP connection to an upstream."""
    first_token: float = Field(60.0, gt=0)
    """Seconds until response headers (non-streaming: the whole answer counts against ``total``)."""
    total: float = Field(600.0, gt=0)
    """Seconds for the whole upstream call, streaming included."""


class RetryConfig(_Section):
    attempts: int = Field(3, ge=1, le=10)
    """Tries per model (the first one included) before moving to the fallback chain."""
    backoff_base: float = Field(0.05, ge=0)
    backoff_max: float = Field(2.0, ge=0)
    retry_after_max: float = Field(5.0, ge=0)
    """The longest ``Retry-After`` we honour in-line; longer ones fail over instead of waiting."""


class HealthConfig(_Section):
    interval: float = Field(5.0, gt=0)
    """Seconds between active checks of each deployment's ``/health`` (and ``/metrics`` for vLLM)."""
    timeout: float = Field(2.0, gt=0)
    failure_threshold: int = Field(3, ge=1)
    """Consecutive failures that open a deployment's circuit (passive ejection)."""
    cooldown: float = Field(10.0, gt=0)
    """Seconds an open circuit stays open before one trial request is let through (half-open)."""


class AffinityConfig(_Section):
    block_chars: int = Field(512, ge=16)
    """Prompt blocks hashed for affinity. Only whole blocks count, so turn N+1 of a conversation repeats the
    hashes of turn N and finds the replica that holds its prefix in cache."""
    prefix_chars: int = Field(16384, ge=16)
    """How much of the leading prompt (system prompt, earlier turns) is hashed at most."""
    load_factor: float = Field(1.25, ge=1.0)
    """Bounded-load consistent hashing: a replica takes at most ``ceil(load_factor * mean load)`` in flight
    before its keys spill to the next replica on the ring."""
    session_header: str = "x-session-id"
    """A request carrying this header is pinned by its value instead of by its prompt."""


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    """Bodies above this get a 413 before they are parsed."""
    max_header_bytes: int = Field(32 * 1024, ge=1024)
    """Request headers (names and values, all together) above this get a 431. The HTTP server has no limit of
    its own, so a client could otherwise make every replica hold megabytes of headers per request."""
