"""Ops console: stored spans, per-minute rollups, feedback; trace id, prompt version and details on records.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out, not imported: a migration must not change when the model module does.
COUNTERS = (
    "requests",
    "errors",
    "goodput",
    "latency_sum_ms",
    "ttft_count",
    "ttft_sum_ms",
    "tpot_count",
    "tpot_sum_ms",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "cache_hits",
    "guard_triggers",
    "fb_positive",
    "fb_negative",
    "fb_regeneration",
    "fb_early_termination",
    "fb_rephrase",
    "fb_abandonment",
    "fb_refusal",
    "lat_0",
    "lat_1",
    "lat_2",
    "lat_3",
    "lat_4",
    "lat_5",
    "lat_6",
    "lat_7",
    "lat_8",
    "lat_9",
    "lat_10",
    "lat_11",
    "lat_12",
    "lat_13",
    "lat_14",
    "lat_15",
    "ttft_0",
    "ttft_1",
    "ttft_2",
    "ttft_3",
    "ttft_4",
    "ttft_5",
    "ttft_6",
    "ttft_7",
    "ttft_8",
    "ttft_9",
    "ttft_10",
    "ttft_11",
    "ttft_12",
)
_FLOATS = {"latency_sum_ms", "ttft_sum_ms", "tpot_sum_ms", "cost_usd"}


def upgrade() -> None:
    with op.batch_alter_table("request_records") as batch:
        batch.add_column(sa.Column("trace_id", sa.String(), nullable=True))
        batch.add_column(sa.Column("prompt_version", sa.String(), nullable=True))
        batch.add_column(sa.Column("details", sa.JSON(), nullable=True))
    op.create_table(
        "spans",
        sa.Column("trace_id", sa.String(), nullable=False),
        sa.Column("span_id", sa.String(), nullable=False),
        sa.Column("parent_id", sa.String(), nullable=True),
        sa.Column("request_id", sa.String(), nullable=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("kind", sa.Integer(), nullable=False),
        sa.Column("start_ns", sa.BigInteger(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("trace_id", "span_id"),
    )
    op.create_index("ix_spans_start_ns", "spans", ["start_ns"])
    op.create_index("ix_spans_request_id", "spans", ["request_id"])
    op.create_table(
        "rollups",
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(), nullable=False),
        sa.Column("team_id", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("route", sa.String(), nullable=False),
        sa.Column("prompt_version", sa.String(), nullable=False),
        *(sa.Column(c, sa.Float() if c in _FLOATS else sa.Integer(), nullable=False) for c in COUNTERS),
        sa.PrimaryKeyConstraint("minute", "key_id", "team_id", "model", "route", "prompt_version"),
    )
    op.create_index("ix_rollups_minute", "rollups", ["minute"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(), nullable=False),
        sa.Column("trace_id", sa.String(), nullable=True),
        sa.Column("key_id", sa.String(), nullable=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("comment", sa.String(), nullable=True),
        sa.Column("edited_output", sa.String(), nullable=True),
        sa.Column("related_request_id", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_feedback_created_at", "feedback", ["created_at"])
    op.create_index("ix_feedback_request_id", "feedback", ["request_id"])


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("rollups")
    op.drop_table("spans")
    with op.batch_alter_table("request_records") as batch:
        batch.drop_column("details")
        batch.drop_column("prompt_version")
        batch.drop_column("trace_id")
