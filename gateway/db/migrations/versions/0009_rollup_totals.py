"""Rollups: indexes for panels filtered by key or model, and the rows that sum every dimension (``*``).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
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
TABLES = ("rollups", "rollups_hourly")


def upgrade() -> None:
    for table in TABLES:
        op.create_index(f"ix_{table}_key_id_minute", table, ["key_id", "minute"])
        op.create_index(f"ix_{table}_model_minute", table, ["model", "minute"])
        # Total rows for what was rolled up before this revision (new writes add them as they go).
        cols = ", ".join(COUNTERS)
        sums = ", ".join(f"SUM({c})" for c in COUNTERS)
        op.execute(
            f"INSERT INTO {table} (minute, key_id, team_id, model, route, prompt_version, {cols}) "
            f"SELECT minute, '*', '*', '*', '*', '*', {sums} FROM {table} WHERE model != '*' GROUP BY minute"
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DELETE FROM {table} WHERE model = '*'")
        op.drop_index(f"ix_{table}_model_minute", table_name=table)
        op.drop_index(f"ix_{table}_key_id_minute", table_name=table)
