"""UTC days and months as the spend counters name them (``lua/_lib.lua`` ``periods`` does the same in Lua)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

_DAY = 86400


def _epoch(d: datetime) -> int:
    return int(d.timestamp())


@dataclass(slots=True, frozen=True)
class Periods:
    """The UTC day and month containing a moment: ids for key names, bounds in epoch seconds."""

    day: str
    month: str
    day_start: int
    day_end: int
    month_start: int
    month_end: int

    @classmethod
    def at(cls, now: float) -> Periods:
        """The periods of ``now``, a Redis server time (epoch seconds), so replicas agree."""
        return _of_day(int(now // _DAY) * _DAY)


# Every settle needs the periods of its admission; a day's are worked out once (datetime is slow).
@lru_cache(maxsize=8)
def _of_day(day_start: int) -> Periods:
    start = datetime.fromtimestamp(day_start, UTC)
    first = start.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return Periods(
        day=f"{start:%Y%m%d}",
        month=f"{start:%Y%m}",
        day_start=day_start,
        day_end=day_start + _DAY,
        month_start=_epoch(first),
        month_end=_epoch(following),
    )
