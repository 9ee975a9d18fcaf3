"""Tables of the intent router: ``intent_routers`` (definition, version and trained weights) and
``intent_handoffs`` (human handoffs, without the conversation). Migration: ``0005_intent_routers.py``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel

from gateway.db.columns import UTCDateTime, utcnow


class IntentRouterRow(SQLModel, table=True):
    __tablename__ = "intent_routers"

    name: str = Field(primary_key=True, max_length=128)
    version: int = 1
    definition: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    weights: bytes = Field(sa_column=Column(sa.LargeBinary, nullable=False))
    """``router.intent.Head.to_bytes()``: every replica loads these instead of retraining."""
    figures: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    embedder: str = Field(default="", max_length=200)
    source: str = Field(default="api", max_length=8)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime())


class HandoffRow(SQLModel, table=True):
    __tablename__ = "intent_handoffs"

    id: str = Field(primary_key=True, max_length=128)
    """The request id (what the user's conversation is found by in the app)."""
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime(), index=True)
    router: str = Field(max_length=128)
    router_version: int = 0
    intent: str | None = Field(default=None, max_length=128)
    queue: str = Field(max_length=128, index=True)
    key_id: str | None = Field(default=None, max_length=40)
    team_id: str | None = Field(default=None, max_length=40)
    webhook: str | None = Field(default=None, max_length=200)
    """``sent``, ``failed: <why>``, or null without a webhook."""
