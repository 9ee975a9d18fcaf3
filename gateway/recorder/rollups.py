"""Per-minute rollups, kept as request records are written: the console reads these, never raw records.

``RollupInserter`` is the records' ``Inserter`` with one more statement in the same transaction: the records
that were really inserted (``RETURNING``: a replayed or retried row is not counted twice) are summed per minute
and (key, team, model, route, prompt version), and added into ``rollups`` with an upsert whose every column is
``column + excluded.column``. Each recorder (one per gateway worker) adds its own rows; they never overwrite.
"""

from __future__ import annotations

import bisect
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gateway.db._insert import Inserter
from gateway.db.insights import (
    COUNTERS,
    DIMENSIONS,
    LATENCY_BOUNDS_MS,
    TTFT_BOUNDS_MS,
    HourlyRollupRow,
    RollupRow,
)
from gateway.db.models import RequestRecord

Key = tuple[datetime, str, str, str, str, str]
#: The dimensions of the rows that sum every dimension ("all keys, teams, models, routes, prompt versions").
TOTAL = ("*", "*", "*", "*", "*")


def minute_of(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def record_counters(row: dict[str, Any], latency_objective_ms: float) -> dict[str, float]:
    """The counters one request record adds to its rollup row."""
    status, latency = row["status"], row["latency_ms"]
    details = row.get("details") or {}
    failed = status >= 400 and status != 499  # a client that left is not our error
    out: dict[str, float] = {
        "requests": 1,
        "errors": int(failed),
        "goodput": int(status < 400 and latency <= latency_objective_ms),
        "latency_sum_ms": latency,
        "prompt_tokens": row["prompt_tokens"],
        "completion_tokens": row["completion_tokens"],
        "cost_usd": row["cost_usd"],
        "cache_hits": int(str(details.get("cache", "")).startswith("hit")),  # hit-exact, hit-semantic
        "guard_triggers": len(details.get("guards") or ()),
        f"lat_{bisect.bisect_left(LATENCY_BOUNDS_MS, latency)}": 1,
    }
    if row.get("ttft_ms") is not None:
        out["ttft_count"] = 1
        out["ttft_sum_ms"] = row["ttft_ms"]
        out[f"ttft_{bisect.bisect_left(TTFT_BOUNDS_MS, row['ttft_ms'])}"] = 1
    if row.get("tpot_ms") is not None:
        out["tpot_count"] = 1
        out["tpot_sum_ms"] = row["tpot_ms"]
    return out


def key_of(row: dict[str, Any], at: datetime) -> Key:
    return (
        minute_of(at),
        row.get("key_id") or "",
        row.get("team_id") or "",
        row.get("model") or "",
        row.get("route") or "",
        row.get("prompt_version") or "",
    )


def add(sums: dict[Key, dict[str, float]], key: Key, counters: dict[str, float]) -> None:
    into = sums.get(key)
    if into is None:
        sums[key] = dict(counters)
        return
    for name, v in counters.items():
        into[name] = into.get(name, 0) + v


def upsert(conn: Connection, sums: dict[Key, dict[str, float]]) -> None:
    """Add ``sums`` (per minute) into the minute rows and into the hour rows (created when missing): one
    statement per table for the whole batch."""
    if not sums:
        return
    hourly: dict[Key, dict[str, float]] = {}
    totals: dict[Key, dict[str, float]] = {}
    for key, counters in sums.items():
        add(hourly, (key[0].replace(minute=0), *key[1:]), counters)
        add(totals, (key[0], *TOTAL), counters)
    # One more row per minute (and hour) summed over every dimension: the unfiltered Overview reads 168 rows
    # for a week instead of every (key, team, model, route, prompt version) row.
    for key, counters in totals.items():
        add(sums, key, counters)
        add(hourly, (key[0].replace(minute=0), *TOTAL), counters)
    for table, rows in ((RollupRow.__table__, sums), (HourlyRollupRow.__table__, hourly)):
        _upsert(conn, table, rows)


def _upsert(conn: Connection, table: sa.Table, sums: dict[Key, dict[str, float]]) -> None:
    rows = []
    for key, counters in sums.items():
        row: dict[str, Any] = dict(zip(DIMENSIONS, key, strict=True))
        for name in COUNTERS:
            row[name] = counters.get(name, 0)
        rows.append(row)
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(DIMENSIONS), set_={c: table.c[c] + stmt.excluded[c] for c in COUNTERS}
    )
    conn.execute(stmt, rows)


class RollupInserter(Inserter):
    """Writes records and adds the inserted ones into the rollups, in one transaction."""

    def __init__(self, engine: Engine, config: dict[str, Any]) -> None:
        super().__init__(engine)
        self.latency_objective_ms = float(config.get("latency_objective_ms", 10_000))
        self.max_age = timedelta(days=float(config.get("max_age_days", 90)))
        self._returning = self._insert.returning(RequestRecord.__table__.c.id)
        self._next_retention = 0.0

    def _execute(self, rows: list[dict[str, Any]]) -> None:
        with self._engine.begin() as conn:
            inserted = set(conn.execute(self._returning, rows).scalars())
            sums: dict[Key, dict[str, float]] = {}
            for row in rows:
                if row["id"] in inserted:
                    add(sums, key_of(row, row["created_at"]), record_counters(row, self.latency_objective_ms))
            upsert(conn, sums)
            if time.monotonic() >= self._next_retention:  # the retention job of rollups: hourly, cheap (indexed)
                self._next_retention = time.monotonic() + 3600
                for t in (RollupRow.__table__, HourlyRollupRow.__table__):
                    conn.execute(sa.delete(t).where(t.c.minute < datetime.now(UTC) - self.max_age))


def inserter_for(engine: Engine, rollups: dict[str, Any] | None) -> Inserter:
    """The records' inserter: with rollups when they are enabled."""
    return RollupInserter(engine, rollups) if rollups else Inserter(engine)
