"""guardrails: stored policies (admin API) and escalated answers awaiting review.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

Owned by the guardrails (tables in ``gateway/guard_models.py``; keep the two in step).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "guardrail_policies",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("attach", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "guardrail_escalations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("policy", sa.String(length=128), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("key_id", sa.String(length=40), nullable=True),
        sa.Column("team_id", sa.String(length=40), nullable=True),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("question", sa.String(), nullable=False),
        sa.Column("answer", sa.String(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_guardrail_escalations_created_at", "guardrail_escalations", ["created_at"])
    op.create_index("ix_guardrail_escalations_request_id", "guardrail_escalations", ["request_id"])
    op.create_index("ix_guardrail_escalations_status", "guardrail_escalations", ["status"])


def downgrade() -> None:
    op.drop_index("ix_guardrail_escalations_status", table_name="guardrail_escalations")
    op.drop_index("ix_guardrail_escalations_request_id", table_name="guardrail_escalations")
    op.drop_index("ix_guardrail_escalations_created_at", table_name="guardrail_escalations")
    op.drop_table("guardrail_escalations")
    op.drop_table("guardrail_policies")
