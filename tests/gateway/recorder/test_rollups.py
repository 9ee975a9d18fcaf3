"""Per-minute rollups kept as records are written (gateway/recorder/rollups.py), SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gateway.db.insights import HourlyRollupRow, RollupRow
from gateway.recorder.rollups import RollupInserter

T0 = datetime.now(UTC).replace(minute=0, second=10, microsecond=0) - timedelta(hours=1)


@pytest.fixture
def rollup_engine(engine):
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM rollups"))
        conn.execute(sa.text("DELETE FROM rollups_hourly"))
    return engine


def rec(i: int, **kw) -> dict:
    return {
        "id": f"r{i}", "created_at": kw.pop("at", T0), "key_id": "k1", "team_id": None, "model": "m",
        "route": "chat", "status": 200, "prompt_tokens": 10, "completion_tokens": 5, "latency_ms": 40.0,
        "cost_usd": 0.01, "prompt_version": "abc", **kw,
    }  # fmt: skip


def rollups(engine, table=RollupRow.__table__, totals: bool = False) -> list[dict]:
    """Rows per dimension set (or, with ``totals``, the rows summing every dimension)."""
    t = table
    where = t.c.model == "*" if totals else t.c.model != "*"
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(t).where(where).order_by(t.c.minute, t.c.key_id))]


def test_when_records_are_written_then_their_minute_row_counts_them(rollup_engine):
    inserter = RollupInserter(rollup_engine, {"latency_objective_ms": 1000})
    batch = [
        rec(1),
        rec(2, status=500, latency_ms=3000.0),
        rec(3, ttft_ms=20.0, tpot_ms=4.0, details={"cache": "hit", "guards": ["pii", "injection"]}),
    ]
    assert inserter.write([(r, 0.0, None) for r in batch]).written == 3
    (row,) = rollups(rollup_engine)
    assert row["minute"] == T0.replace(second=0)
    assert (row["key_id"], row["team_id"], row["model"], row["prompt_version"]) == ("k1", "", "m", "abc")
    assert (row["requests"], row["errors"], row["goodput"]) == (3, 1, 2)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (30, 15)
    assert row["cost_usd"] == pytest.approx(0.03)
    assert (row["cache_hits"], row["guard_triggers"], row["ttft_count"], row["tpot_count"]) == (1, 2, 1, 1)
    assert row["lat_3"] == 2 and row["lat_9"] == 1  # 40 ms in (25, 50], 3000 ms in (2500, 5000]


def test_when_a_batch_is_written_twice_then_it_is_counted_once(rollup_engine):
    inserter = RollupInserter(rollup_engine, {})
    batch = [(rec(i), 0.0, None) for i in range(4)]
    inserter.write(batch)
    inserter.write(batch)  # a retried batch whose first commit did land
    assert [r["requests"] for r in rollups(rollup_engine)] == [4]


def test_when_a_batch_overlaps_rows_written_before_then_only_its_new_rows_are_counted(rollup_engine):
    inserter = RollupInserter(rollup_engine, {})
    inserter.write([(rec(i), 0.0, None) for i in range(4)])
    # A replayed segment: rows 2 and 3 landed before the crash, 4 to 6 did not (and 6 is in it twice).
    inserter.write([(rec(i, latency_ms=3000.0), 0.0, None) for i in (2, 3, 4, 5, 6, 6)])
    (row,) = rollups(rollup_engine)
    assert (row["requests"], row["lat_3"], row["lat_9"]) == (7, 4, 3)
    with rollup_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM request_records")).scalar_one() == 7


def test_when_the_database_refuses_a_row_then_the_others_are_written_and_counted_once(rollup_engine):
    inserter = RollupInserter(rollup_engine, {})
    # PostgreSQL text cannot hold NUL: that row is refused there (SQLite stores it), the rest of the batch lands.
    outcome = inserter.write([(rec(1), 0.0, None), (rec(2, model="nul\x00byte"), 0.0, None), (rec(3), 0.0, None)])
    with rollup_engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT count(*) FROM request_records")).scalar_one()
    counted = sum(r["requests"] for r in rollups(rollup_engine))
    assert outcome.written == stored == counted == 3 - len(outcome.rejected)
    assert len(outcome.rejected) == (rollup_engine.dialect.name == "postgresql")


def test_when_two_recorders_write_the_same_minute_then_their_counts_add_up(rollup_engine):
    a, b = RollupInserter(rollup_engine, {}), RollupInserter(rollup_engine, {})
    a.write([(rec(i), 0.0, None) for i in range(3)])
    b.write([(rec(i), 0.0, None) for i in range(3, 5)])
    b.write([(rec(9, at=T0.replace(minute=1), key_id="k2"), 0.0, None)])
    assert [(r["key_id"], r["requests"]) for r in rollups(rollup_engine)] == [("k1", 5), ("k2", 1)]


def test_when_records_are_written_then_hour_rows_and_total_rows_add_up_to_the_minute_rows(rollup_engine):
    inserter = RollupInserter(rollup_engine, {})
    inserter.write([(rec(i, key_id=f"k{i % 3}", at=T0 + timedelta(minutes=i % 2)), 0.0, None) for i in range(6)])
    minutes = rollups(rollup_engine)
    assert sum(r["requests"] for r in minutes) == 6 and len(minutes) == 6
    assert [(r["key_id"], r["requests"]) for r in rollups(rollup_engine, totals=True)] == [("*", 3), ("*", 3)]
    hours = rollups(rollup_engine, HourlyRollupRow.__table__)
    assert sorted((r["key_id"], r["requests"]) for r in hours) == [("k0", 2), ("k1", 2), ("k2", 2)]
    assert [r["requests"] for r in rollups(rollup_engine, HourlyRollupRow.__table__, totals=True)] == [6]
