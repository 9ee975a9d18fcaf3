"""The Lua scripts and the Python client must name the same UTC day and month for a moment: admit reads
the budget counters under the Lua names, settle books costs under the Python ones."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import redis

from gateway.limits._calendar import Periods
from gateway.limits._scripts import source

LUA = (
    source("renew").split("local expiry")[0]
    + "local P = periods(tonumber(ARGV[1]))\n"
    + "return {P.day, P.month, P.day_start, P.day_end, P.month_start, P.month_end}\n"
)

MOMENTS = [
    "1970-01-01T00:00:00",
    "2000-02-29T12:00:00",
    "2024-02-29T23:59:59.999",
    "2024-03-01T00:00:00",
    "2025-12-31T23:59:59.999999",
    "2026-01-01T00:00:00",
    "2026-11-22T07:00:00",
    "2100-02-28T23:59:59",
    "2100-03-01T00:00:00",
]


@pytest.mark.parametrize("moment", MOMENTS)
def test_when_lua_and_python_name_the_periods_of_a_moment_then_they_agree(redis_url: str, moment: str):
    now = datetime.fromisoformat(moment).replace(tzinfo=UTC).timestamp()
    client = redis.Redis.from_url(redis_url)

    day, month, *bounds = client.eval(LUA, 0, repr(now))

    p = Periods.at(now)
    assert (day.decode(), month.decode(), *bounds) == (
        p.day,
        p.month,
        p.day_start,
        p.day_end,
        p.month_start,
        p.month_end,
    )
    client.close()
