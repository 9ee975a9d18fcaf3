"""rollups_hourly: the per-minute rollups' counters per hour, for console panels over long ranges.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
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
    op.create_table(
        "rollups_hourly",
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(), nullable=False),
        sa.Column("team_id", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("route", sa.String(), nullable=False),
        sa.Column("prompt_version", sa.String(), nullable=False),
        *(sa.Column(c, sa.Float() if c in _FLOATS else sa.Integer(), nullable=False) for c in COUNTERS),
        sa.PrimaryKeyConstraint("minute", "key_id", "team_id", "model", "route", "prompt_version"),
    )
    op.create_index("ix_rollups_hourly_minute", "rollups_hourly", ["minute"])
    # Rollups written before this revision, summed per hour, so long ranges show them too.
    cols = ", ".join(COUNTERS)
    sums = ", ".join(f"SUM({c})" for c in COUNTERS)
    dims = "key_id, team_id, model, route, prompt_version"
    hour = (
        "date_trunc('hour', minute)"
        if op.get_bind().dialect.name == "postgresql"
        else "substr(minute, 1, 13) || ':00:00.000000'"
    )
    op.execute(
        f"INSERT INTO rollups_hourly (minute, {dims}, {cols}) "
        f"SELECT {hour}, {dims}, {sums} FROM rollups GROUP BY {hour}, {dims}"
    )


def downgrade() -> None:
    op.drop_table("rollups_hourly")
