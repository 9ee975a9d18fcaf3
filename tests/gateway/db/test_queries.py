"""Spend sums over request records (gateway/db/queries.py), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.db import RecordWriter, spend_since
from tests.gateway.db.support import record

DAY = datetime(2025, 6, 1, tzinfo=UTC)
US = timedelta(microseconds=1)


@pytest.fixture
async def spend(engine):
    """Records around the 2025-06-01 UTC day boundary, for two keys in two teams."""
    writer = RecordWriter(engine)
    rows = [
        ("before", DAY - US, "k1", "t1", 100.0),
        ("at-start", DAY, "k1", "t1", 1.0),
        ("midday", DAY + timedelta(hours=12), "k1", "t1", 2.0),
        ("other-key", DAY + timedelta(hours=1), "k2", "t1", 4.0),
        ("other-team", DAY + timedelta(hours=2), "k3", "t2", 8.0),
        ("next-day", DAY + timedelta(days=1), "k1", "t1", 16.0),
        ("anonymous", DAY + timedelta(hours=3), None, None, 32.0),
    ]
    for rid, at, key, team, cost in rows:
        writer.submit(record(rid, created_at=at, key_id=key, team_id=team, cost_usd=cost))
    await writer.close()
    return engine


CASES = {
    "key, from the start inclusive": ({"key_id": "k1"}, 1.0 + 2.0 + 16.0),
    "key, day end exclusive": ({"key_id": "k1", "until": DAY + timedelta(days=1)}, 3.0),
    "team, one day": ({"team_id": "t1", "until": DAY + timedelta(days=1)}, 7.0),
    "other team": ({"team_id": "t2"}, 8.0),
    "key and team": ({"key_id": "k2", "team_id": "t1"}, 4.0),
    "key not in that team": ({"key_id": "k2", "team_id": "t2"}, 0.0),
    "everyone": ({}, 1.0 + 2.0 + 4.0 + 8.0 + 16.0 + 32.0),
    "no records": ({"key_id": "nobody"}, 0.0),
}


async def test_when_spend_is_summed_then_only_records_in_the_window_count(spend):
    # One table, one database setup: each case is a different query over the same records.
    got = {case: round(spend_since(spend, since=DAY, **filters), 9) for case, (filters, _) in CASES.items()}
    assert got == {case: expected for case, (_, expected) in CASES.items()}


async def test_when_since_is_in_another_time_zone_then_the_same_instant_is_used(spend):
    # 02:00 at UTC+2 is midnight UTC: the record at exactly DAY is included, the one a microsecond before not.
    since = datetime(2025, 6, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))
    assert spend_since(spend, key_id="k1", since=since) == pytest.approx(19.0)
    assert spend_since(spend, key_id="k1", since=since - US) == pytest.approx(119.0)
