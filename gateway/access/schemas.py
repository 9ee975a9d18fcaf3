"""What callers send and get back: teams, keys and model overrides.

The same models serve the YAML seed (``access.teams``, ``access.keys``), the Python API
(``AccessStore``) and the admin HTTP API (where they make up the OpenAPI document). Patches
distinguish "absent" (unchanged) from ``null`` (unlimited / all) through ``model_fields_set``.
Nothing here ever holds a key hash; only ``KeyWithSecret`` holds a full key, once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cache.config import parse_overrides
from gateway.config import ModelConfig
from gateway.types import Limits

RouteName = Literal["chat", "completions", "embeddings"]
KeyStatus = Literal["active", "expired", "revoked"]


#: Names travel in URL paths (``/keys/{name}``), so they cannot contain "/".
NAME_PATTERN = r"^[^/]+$"


class _Strict(BaseModel):
    # An unknown field is a typo: refuse it with its name instead of ignoring it.
    model_config = ConfigDict(extra="forbid")


def _unique(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    if any(not v for v in values):
        raise ValueError("names must not be empty")
    return list(dict.fromkeys(values))


class LimitsSpec(_Strict):
    """Rate limits and budgets; ``null`` means unlimited. Mirrors ``gateway.types.Limits``."""

    rpm: int | None = Field(None, ge=1)
    """Requests per minute."""
    tpm: int | None = Field(None, ge=1)
    """Tokens (prompt + completion) per minute."""
    max_concurrency: int | None = Field(None, ge=1)
    """Requests in flight at once."""
    budget_daily_usd: float | None = Field(None, ge=0)
    """Spend per UTC day in USD."""
    budget_monthly_usd: float | None = Field(None, ge=0)
    """Spend per UTC calendar month in USD."""

    def to_limits(self) -> Limits | None:
        """The hot-path form, or ``None`` when nothing is limited (the limiter can skip the caller)."""
        values = self.model_dump()
        return None if all(v is None for v in values.values()) else Limits(**values)


class _Grants(_Strict):
    allowed_models: list[str] | None = None
    """Public model names this caller may use; ``null`` means every model."""
    allowed_routes: list[RouteName] | None = None
    """Routes this caller may use (``chat``, ``completions``, ``embeddings``); ``null`` means all."""

    @field_validator("allowed_models", "allowed_routes")
    @classmethod
    def _dedupe(cls, values: list[str] | None) -> list[str] | None:
        return _unique(values)


def _check_metadata(metadata: dict[str, Any] | None) -> dict[str, Any] | None:
    """``metadata.cache`` overrides models' cache sections for a key or team: checked like the sections."""
    parse_overrides(metadata)
    return metadata


class TeamSpec(_Grants):
    """A team: a group of keys sharing model grants and limits (a key's grants intersect its team's)."""

    name: str = Field(min_length=1, max_length=128, pattern=NAME_PATTERN)
    limits: LimitsSpec = Field(default_factory=LimitsSpec)
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Free-form labels (owner, cost centre); returned as given. ``metadata.cache`` (``{model or "*": cache
    section or null}``) replaces those models' ``cache`` sections for the team's keys."""
    _metadata = field_validator("metadata")(_check_metadata)


class TeamPatch(_Grants):
    """Fields to change on a team; fields left out stay as they are. ``limits`` merges field by field."""

    name: str | None = Field(None, min_length=1, max_length=128, pattern=NAME_PATTERN)
    limits: LimitsSpec | None = None
    metadata: dict[str, Any] | None = None
    _metadata = field_validator("metadata")(_check_metadata)


class KeySpec(_Grants):
    """A virtual key to create."""

    name: str = Field(min_length=1, max_length=128, pattern=NAME_PATTERN)
    """Unique among keys that are not revoked."""
    team: str | None = None
    """Team id or name; the key's grants and limits are checked against the team's as well."""
    limits: LimitsSpec = Field(default_factory=LimitsSpec)
    expires_at: datetime | None = None
    """When the key stops working (ISO 8601; naive times are UTC). ``null``: never."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Free-form labels; ``metadata.cache`` overrides models' ``cache`` sections for this key (over its team's)."""
    _metadata = field_validator("metadata")(_check_metadata)


class KeyPatch(_Grants):
    """Fields to change on a key; fields left out stay as they are. ``limits`` merges field by field."""

    name: str | None = Field(None, min_length=1, max_length=128, pattern=NAME_PATTERN)
    team: str | None = None
    """Team id or name; ``null`` takes the key out of its team."""
    limits: LimitsSpec | None = None
    expires_at: datetime | None = None
    metadata: dict[str, Any] | None = None
    _metadata = field_validator("metadata")(_check_metadata)


class RotateRequest(_Strict):
    grace_seconds: int = Field(0, ge=0, le=7 * 86400)
    """How long the old secret keeps working after rotation (0: it stops at once)."""


class TeamInfo(BaseModel):
    id: str
    name: str
    allowed_models: list[str] | None
    allowed_routes: list[RouteName] | None
    limits: LimitsSpec
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class KeyInfo(BaseModel):
    """A key as shown to people: never its hash or secret."""

    id: str
    name: str
    key_prefix: str
    """The visible start of the key (``sk-il-AbCdEfGh``), to recognise it in logs and lists."""
    team_id: str | None
    team_name: str | None
    allowed_models: list[str] | None
    allowed_routes: list[RouteName] | None
    limits: LimitsSpec
    expires_at: datetime | None
    revoked_at: datetime | None
    rotated_at: datetime | None
    created_at: datetime
    updated_at: datetime
    status: KeyStatus
    metadata: dict[str, Any]


class KeyWithSecret(KeyInfo):
    """Returned by create and rotate only."""

    key: str
    """The full key. It is shown this once and cannot be recovered: store it now."""


class ModelInfo(BaseModel):
    name: str
    source: Literal["yaml", "override"]
    """``yaml``: as in the config file; ``override``: set through the admin API (stored in the database)."""
    config: ModelConfig
