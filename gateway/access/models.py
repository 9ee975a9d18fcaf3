"""Database tables of access control: ``teams``, ``api_keys``, ``model_overrides``, ``config_version``.

Migration: ``gateway/db/migrations/versions/0002_access.py`` (keep the two in step; a test compares
them). Keys are stored only as a SHA-256 hash plus a visible prefix. Timestamps are timezone-aware UTC
(``UTCDateTime``) on both databases.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel

from gateway.db.columns import UTCDateTime, utcnow
from gateway.types import Limits

__all__ = ["ApiKey", "ConfigVersion", "ModelOverride", "Team", "utc", "utcnow"]


def utc(value: datetime | None) -> datetime | None:
    """The same instant, timezone-aware (callers may send naive times: they are UTC by convention)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _ts(**kw: Any) -> Any:
    return Field(sa_type=UTCDateTime(), **kw)


class _LimitColumns(SQLModel):
    # Mirrors gateway.types.Limits field for field; the limiter reads them through Principal.
    rpm: int | None = None
    tpm: int | None = None
    max_concurrency: int | None = None
    budget_daily_usd: float | None = None
    budget_monthly_usd: float | None = None

    def limit_values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in Limits.__slots__}


class Team(_LimitColumns, table=True):
    __tablename__ = "teams"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=128, unique=True, index=True)
    allowed_models: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    allowed_routes: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # "metadata" is taken by SQLAlchemy's declarative base, hence the attribute name.
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column("metadata", JSON, nullable=False))
    source: str = Field(default="api", max_length=8)
    created_at: datetime = _ts(default_factory=utcnow)
    updated_at: datetime = _ts(default_factory=utcnow)


class ApiKey(_LimitColumns, table=True):
    __tablename__ = "api_keys"
    __table_args__ = (
        # A name is unique among live keys; a revoked key's name may be reused.
        sa.Index(
            "ix_api_keys_live_name",
            "name",
            unique=True,
            sqlite_where=sa.text("revoked_at IS NULL"),
            postgresql_where=sa.text("revoked_at IS NULL"),
        ),
    )

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=128)
    team_id: str | None = Field(default=None, foreign_key="teams.id", index=True, max_length=40)
    key_prefix: str = Field(max_length=32, index=True)
    key_hash: str = Field(max_length=64, unique=True, index=True)
    """Hex SHA-256 of the full key; the key itself is never stored."""
    previous_key_hash: str | None = Field(default=None, max_length=64)
    """The secret replaced by the last rotation, accepted until ``previous_valid_until``."""
    previous_valid_until: datetime | None = _ts(default=None)
    allowed_models: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    allowed_routes: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column("metadata", JSON, nullable=False))
    source: str = Field(default="api", max_length=8)
    expires_at: datetime | None = _ts(default=None)
    revoked_at: datetime | None = _ts(default=None)
    rotated_at: datetime | None = _ts(default=None)
    created_at: datetime = _ts(default_factory=utcnow)
    updated_at: datetime = _ts(default_factory=utcnow)


class ModelOverride(SQLModel, table=True):
    """A model config set (or deleted) through the admin API; overlays the YAML model of that name."""

    __tablename__ = "model_overrides"

    name: str = Field(primary_key=True, max_length=200)
    config: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    deleted: bool = False
    updated_at: datetime = _ts(default_factory=utcnow)


class ConfigVersion(SQLModel, table=True):
    """One row (id 1) bumped by every admin change, in the change's own transaction.

    The row lock orders concurrent changes; replicas compare it with the version they applied.
    """

    __tablename__ = "config_version"

    id: int = Field(primary_key=True)
    version: int = 0
    updated_at: datetime = _ts(default_factory=utcnow)
