"""Fill a database with request records and their per-minute rollups, then time every console panel's API.

    .venv/bin/python bench/console_rollups.py                       # 1,000,000 records in a SQLite file
    .venv/bin/python bench/console_rollups.py --postgres            # the same in a throwaway PostgreSQL database

Records are generated over ``--days`` (uniform arrival, 20 keys in 5 teams, 4 models, 2 routes, 3 prompt
versions, 2% errors, 10% cache hits) and inserted in bulk, with their rollups computed by the recorder's own
code (``gateway/recorder/rollups.py``). Each API call goes through the admin app (ASGI, in process, admin
token, JSON decoding included), ``--repeat`` times per range; the median and the worst are printed. Target:
every panel under 200 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import sqlalchemy as sa

from console.panels import PANELS
from gateway.access import AccessConfig, AccessRuntime
from gateway.db import make_engine, migrate
from gateway.db.models import RequestRecord
from gateway.recorder.rollups import add, key_of, record_counters, upsert

TOKEN = "bench-admin-token"
RANGES = {"1h": 1, "24h": 24, "7d": 24 * 7}


def generate(n: int, days: float, seed: int = 7):
    rng = random.Random(seed)
    now = datetime.now(UTC)
    span = days * 86400
    keys = [(f"key-{i:02d}", f"team-{i % 5}") for i in range(20)]
    models, versions = ["llama-8b", "llama-70b", "gpt-4o-mini", "qwen-7b"], ["a1b2c3d4e5f6", "0f9e8d7c6b5a", ""]
    for i in range(n):
        key, team = rng.choice(keys)
        status = 200 if rng.random() > 0.02 else rng.choice((429, 500, 503))
        latency = rng.lognormvariate(6, 0.8)
        stream = rng.random() < 0.6
        yield {
            "id": f"r{i:08d}",
            "created_at": now - timedelta(seconds=rng.random() * span),
            "key_id": key,
            "team_id": team,
            "model": rng.choice(models),
            "served_model": None,
            "upstream": "d0",
            "route": "chat" if rng.random() < 0.9 else "completions",
            "stream": stream,
            "status": status,
            "error_type": None if status == 200 else "upstream_error",
            "prompt_tokens": rng.randint(20, 2000),
            "completion_tokens": rng.randint(1, 500),
            "latency_ms": latency,
            "ttft_ms": latency * 0.2 if stream else None,
            "tpot_ms": 20.0 if stream else None,
            "cost_usd": 0.0001 * rng.random(),
            "attempts": 1,
            "client_request_id": None,
            "trace_id": None,
            "prompt_version": rng.choice(versions) or None,
            "details": {"cache": "hit"} if rng.random() < 0.1 else None,
        }


def fill(engine, n: int, days: float, batch: int = 20_000) -> tuple[int, int, float]:
    """Insert ``n`` records and their minute and hour rollups (summed by the recorder's own functions)."""
    t0 = time.perf_counter()
    sums: dict = {}
    records = RequestRecord.__table__
    columns = [c.name for c in records.c]
    sqlite = engine.dialect.name == "sqlite"
    raw = engine.raw_connection()  # SQLite: the DB-API's executemany, 5x faster than Core for a million rows
    try:
        cur = raw.cursor()
        insert = f"INSERT INTO request_records ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        rows = []
        for r in generate(n, days):
            add(sums, key_of(r, r["created_at"]), record_counters(r, 10_000))
            rows.append(r)
            if len(rows) >= batch:
                _write(engine, cur, insert, columns, rows, sqlite)
                rows = []
        if rows:
            _write(engine, cur, insert, columns, rows, sqlite)
        raw.commit()
    finally:
        raw.close()
    with engine.begin() as conn:
        upsert_all(conn, sums, batch)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
    else:
        with engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
    with engine.connect() as conn:
        minutes = conn.execute(sa.text("SELECT count(*) FROM rollups")).scalar_one()
        hours = conn.execute(sa.text("SELECT count(*) FROM rollups_hourly")).scalar_one()
    return minutes, hours, time.perf_counter() - t0


def _write(engine, cur, insert: str, columns: list[str], rows: list[dict], sqlite: bool) -> None:
    if not sqlite:
        with engine.begin() as conn:
            conn.execute(RequestRecord.__table__.insert(), rows)
        return
    out = []
    for r in rows:
        r = dict(r)
        r["created_at"] = r["created_at"].strftime("%Y-%m-%d %H:%M:%S.%f")  # UTCDateTime's stored form
        r["details"] = json.dumps(r["details"]) if r["details"] is not None else None
        out.append(tuple(r[c] for c in columns))
    cur.executemany(insert, out)


def upsert_all(conn, sums: dict, batch: int) -> None:
    items = list(sums.items())
    for i in range(0, len(items), batch):
        upsert(conn, dict(items[i : i + batch]))


def calls(n: int) -> list[tuple[str, str, dict]]:
    some = f"r{n // 2:08d}"
    out = []
    for label, hours in RANGES.items():
        for name in PANELS:
            out.append((f"panel {name} {label}", f"/console/panels/{name}", {"hours": hours}))
        out.append((f"summary {label}", "/console/summary", {"hours": hours}))
        out.append((f"panel latency {label} key+model", "/console/panels/latency",
                    {"hours": hours, "key": "key-03", "model": "llama-8b"}))  # fmt: skip
    out.append(("dimensions 24h", "/console/dimensions", {"hours": 24}))
    out.append(("requests newest 50", "/console/requests", {}))
    out.append(("requests key+5xx", "/console/requests", {"key": "key-07", "status": "5xx"}))
    out.append(("requests by id", "/console/requests", {"request_id": some}))
    out.append(("request detail", f"/console/requests/{some}", {}))
    return out


async def measure(engine, n: int, repeat: int) -> list[tuple[str, float, float, float]]:
    from services.admin import create_admin_app

    runtime = AccessRuntime(AccessConfig(admin_tokens={TOKEN: "viewer"}), engine, [])
    await runtime.start()
    results = []
    try:
        transport = httpx.ASGITransport(create_admin_app(runtime))
        headers = {"authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://admin", headers=headers) as c:
            for label, path, params in calls(n):
                times, cpu = [], []
                for _ in range(repeat + 1):  # the first call warms caches and is not counted
                    t0, c0 = time.perf_counter(), time.process_time()
                    r = await c.get(path, params=params)
                    r.raise_for_status()
                    r.json()
                    times.append((time.perf_counter() - t0) * 1000)
                    cpu.append((time.process_time() - c0) * 1000)
                results.append((label, statistics.median(times[1:]), max(times[1:]), statistics.median(cpu[1:])))
    finally:
        await runtime.aclose()
    return results


@contextlib.contextmanager
def database(args):
    if args.postgres:
        from tests.support.servers import temporary_database

        with temporary_database(args.postgres) as url:
            yield url
    else:
        with tempfile.TemporaryDirectory() as d:
            yield f"sqlite:///{d}/console-bench.db"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--days", type=float, default=7)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--postgres", nargs="?", const="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = p.parse_args()
    with database(args) as url:
        migrate(url)
        engine = make_engine(url)
        minutes, hours, seconds = fill(engine, args.records, args.days)
        print(f"{engine.dialect.name}: {args.records:,} records over {args.days:g} days; rollup rows: {minutes:,} "
              f"per minute, {hours:,} per hour (filled in {seconds:.0f} s)")  # fmt: skip
        results = asyncio.run(measure(engine, args.records, args.repeat))
        width = max(len(r[0]) for r in results)
        # CPU ms: this process's CPU time per call (all threads), which other programs on a shared machine do
        # not inflate; wall ms is what a person waits.
        print(f"{'API call'.ljust(width)}  median ms  worst ms  CPU ms")
        for label, med, worst, cpu in results:
            flag = "" if worst < 200 else "  > 200 ms"
            print(f"{label.ljust(width)}  {med:9.1f}  {worst:8.1f}  {cpu:6.1f}{flag}")
        slowest = max(r[2] for r in results)
        print(f"slowest call (worst of {args.repeat}): {slowest:.1f} ms")
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
