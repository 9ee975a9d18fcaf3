"""Intent routers (definition, version, trained weights) and human handoffs.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

Owned by ``gateway/intent`` (tables in ``gateway/intent/models.py``; keep the two in step).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "intent_routers",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("weights", sa.LargeBinary(), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("embedder", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "intent_handoffs",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("router", sa.String(length=128), nullable=False),
        sa.Column("router_version", sa.Integer(), nullable=False),
        sa.Column("intent", sa.String(length=128), nullable=True),
        sa.Column("queue", sa.String(length=128), nullable=False),
        sa.Column("key_id", sa.String(length=40), nullable=True),
        sa.Column("team_id", sa.String(length=40), nullable=True),
        sa.Column("webhook", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_intent_handoffs_created_at", "intent_handoffs", ["created_at"])
    op.create_index("ix_intent_handoffs_queue", "intent_handoffs", ["queue"])


def downgrade() -> None:
    op.drop_index("ix_intent_handoffs_queue", table_name="intent_handoffs")
    op.drop_index("ix_intent_handoffs_created_at", table_name="intent_handoffs")
    op.drop_table("intent_handoffs")
    op.drop_table("intent_routers")
