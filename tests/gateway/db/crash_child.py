"""A gateway-like process for the journal tests: submits records to a journaled writer, then waits to
be killed. ``python -m tests.gateway.db.crash_child DB_URL JOURNAL_DIR COUNT``; prints ``submitted
<time.time()>`` once every record is submitted."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from gateway.db import RecordWriter, RequestRecord, make_engine
from tests.gateway.db.support import record

EAST = timezone(timedelta(hours=3))


def crash_records(count: int) -> list[Any]:
    """What the child submits: dicts with an offset ``created_at``, dicts without one (submit time is
    used), and ``RequestRecord`` objects, with a distinct cost each."""
    out: list[Any] = []
    for i in range(count):
        columns = {"key_id": "key-1", "team_id": f"team-{i % 3}", "cost_usd": 0.001 * (i + 1)}
        if i % 3 == 0:
            out.append(record(f"c{i}", created_at=datetime(2025, 1, 2, 5, 0, i % 60, 123456, EAST), **columns))
        elif i % 3 == 1:
            out.append(record(f"c{i}", stream=True, ttft_ms=1.5, **columns))
        else:
            out.append(RequestRecord(id=f"c{i}", model="m", route="embeddings", status=200, latency_ms=2.0, **columns))
    return out


async def main(url: str, journal_dir: str, count: int) -> None:
    writer = RecordWriter(make_engine(url), batch_size=100_000, flush_interval=3600, journal_dir=journal_dir)
    await writer.start()
    for item in crash_records(count):
        writer.submit(item)
    print(f"submitted {time.time()}", flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
