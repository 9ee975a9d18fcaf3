"""Tables of the guardrails' stored state: ``guardrail_policies`` (policies from the admin API, with what they
attach to) and ``guardrail_escalations`` (answers an ``escalate`` rule held for review: masked text, findings as
types and offsets). Migration: ``0008_guardrails.py`` (keep the two in step)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import JSON, Column, Field, SQLModel

from gateway.db.columns import UTCDateTime, utcnow


class PolicyRow(SQLModel, table=True):
    __tablename__ = "guardrail_policies"

    name: str = Field(primary_key=True, max_length=128)
    definition: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    """``guardrails.PolicyConfig`` as JSON (validated before it is stored)."""
    attach: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    """``{"models": [...], "teams": [...], "keys": [...]}``: what the policy applies to."""
    version: int = 1
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime())


class EscalationRow(SQLModel, table=True):
    __tablename__ = "guardrail_escalations"

    id: str = Field(primary_key=True, max_length=40)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime(), index=True)
    request_id: str = Field(max_length=64, index=True)
    policy: str = Field(max_length=128)
    model: str = Field(max_length=200)
    key_id: str | None = Field(default=None, max_length=40)
    team_id: str | None = Field(default=None, max_length=40)
    findings: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    """``[{"guard", "type", "start", "end", "score", "action"}]``: offsets into ``answer``, never values."""
    question: str = ""
    """The last user message as it went upstream, PII and secrets masked."""
    answer: str = ""
    """The answer with PII and secrets masked (the values never reach the database)."""
    status: str = Field(default="open", max_length=16, index=True)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
    resolution: str | None = None
