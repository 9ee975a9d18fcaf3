"""Per-minute rollups, kept as request records are written: the console reads these, never raw records.

``RollupInserter`` is the records' ``Inserter`` with one more statement in the same transaction: the records
that were really inserted are summed per minute and (key, team, model, route, prompt version), and added into
``rollups`` with an upsert whose every column is ``column + excluded.column``. Each recorder (one per gateway
worker) adds its own rows; they never overwrite.

A replayed or retried row must not be counted twice. The insert says how many rows were new: all of them is
the live case, and the batch is counted whole. Fewer means some were there already (a replay); that
transaction is rolled back and the batch inserted again with ``RETURNING id``, which names the new ones.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect, Engine

from gateway.db._insert import Inserter, Row, as_dicts, bind_datetime
from gateway.db._rows import INDEX, NAMES
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
_C = {name: i for i, name in enumerate(COUNTERS)}
_REQ, _ERR, _GOOD, _LAT_SUM = _C["requests"], _C["errors"], _C["goodput"], _C["latency_sum_ms"]
_TTFT_N, _TTFT_SUM, _TPOT_N, _TPOT_SUM = _C["ttft_count"], _C["ttft_sum_ms"], _C["tpot_count"], _C["tpot_sum_ms"]
_PT, _CT, _COST, _HITS, _GUARDS = (
    _C[c] for c in ("prompt_tokens", "completion_tokens", "cost_usd", "cache_hits", "guard_triggers")
)
_LAT0, _TTFT0 = _C["lat_0"], _C["ttft_0"]
_ID = INDEX["id"]


def minute_of(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


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
    """Add ``sums`` (per minute, counters by name) into the minute, hour and total rows: one statement per
    table for the whole batch."""
    _upsert(conn, {key: [counters.get(name, 0) for name in COUNTERS] for key, counters in sums.items()})


def record_counters(row: dict[str, Any], latency_objective_ms: float) -> dict[str, float]:
    """The counters one request record (a dict of its columns) adds to its rollup row, by name: ``count_rows``'
    rules, for callers that sum records themselves (``bench/console_rollups.py``)."""
    ((_, counters),) = count_rows([tuple(row.get(name) for name in NAMES)], latency_objective_ms).items()
    return {name: v for name, v in zip(COUNTERS, counters, strict=True) if v}


def count_rows(rows: list[Row], latency_objective_ms: float) -> dict[Key, list[float]]:
    """The counters the request records ``rows`` add, per minute and dimensions (in ``COUNTERS`` order).
    The recorder runs this for every request: positions, not names, and no dict per row."""
    at_i, key_i, team_i, model_i, route_i, pv_i = (INDEX[c] for c in ("created_at", *DIMENSIONS[1:]))
    status_i, lat_i, ttft_i, tpot_i, details_i = (
        INDEX[c] for c in ("status", "latency_ms", "ttft_ms", "tpot_ms", "details")
    )
    pt_i, ct_i, cost_i = INDEX["prompt_tokens"], INDEX["completion_tokens"], INDEX["cost_usd"]
    sums: dict[Key, list[float]] = {}
    width = len(COUNTERS)
    for r in rows:
        key = (
            r[at_i].replace(second=0, microsecond=0),
            r[key_i] or "",
            r[team_i] or "",
            r[model_i] or "",
            r[route_i] or "",
            r[pv_i] or "",
        )
        acc = sums.get(key)
        if acc is None:
            acc = sums[key] = [0] * width
        status, latency = r[status_i], r[lat_i]
        acc[_REQ] += 1
        if status >= 400:
            acc[_ERR] += status != 499  # a client that left is not our error
        elif latency <= latency_objective_ms:
            acc[_GOOD] += 1
        acc[_LAT_SUM] += latency
        acc[_LAT0 + bisect_left(LATENCY_BOUNDS_MS, latency)] += 1
        acc[_PT] += r[pt_i]
        acc[_CT] += r[ct_i]
        acc[_COST] += r[cost_i]
        details = r[details_i]
        if details:
            if str(details.get("cache", "")).startswith("hit"):  # hit-exact, hit-semantic
                acc[_HITS] += 1
            guards = details.get("guards")
            if isinstance(guards, list | tuple):  # anything else would fail the whole batch, forever
                acc[_GUARDS] += len(guards)
        ttft = r[ttft_i]
        if ttft is not None:
            acc[_TTFT_N] += 1
            acc[_TTFT_SUM] += ttft
            acc[_TTFT0 + bisect_left(TTFT_BOUNDS_MS, ttft)] += 1
        tpot = r[tpot_i]
        if tpot is not None:
            acc[_TPOT_N] += 1
            acc[_TPOT_SUM] += tpot
    return sums


def _merge(into: dict[Key, list[float]], key: Key, counters: list[float]) -> None:
    acc = into.get(key)
    if acc is None:
        into[key] = list(counters)
    else:
        for i, v in enumerate(counters):
            if v:
                acc[i] += v


def _upsert(conn: Connection, sums: dict[Key, list[float]]) -> None:
    """Add minute ``sums`` into the minute rows and into the hour rows (created when missing)."""
    if not sums:
        return
    hourly: dict[Key, list[float]] = {}
    totals: dict[Key, list[float]] = {}
    for key, counters in sums.items():
        _merge(hourly, (key[0].replace(minute=0), *key[1:]), counters)
        _merge(totals, (key[0], *TOTAL), counters)
    # One more row per minute (and hour) summed over every dimension: the unfiltered Overview reads 168 rows
    # for a week instead of every (key, team, model, route, prompt version) row.
    for key, counters in totals.items():
        _merge(sums, key, counters)
        _merge(hourly, (key[0].replace(minute=0), *TOTAL), counters)
    for table, rows in ((RollupRow.__table__, sums), (HourlyRollupRow.__table__, hourly)):
        sql, minute = _upsert_for(conn.dialect, table)
        conn.exec_driver_sql(sql, [(minute(k[0]), *k[1:], *c) for k, c in rows.items()])


_UPSERTS: dict[tuple[str, str], tuple[str, Any]] = {}


def _upsert_for(dialect: Dialect, table: sa.Table) -> tuple[str, Any]:
    """The upsert's SQL (the same in SQLite and PostgreSQL) and the binder of ``minute``, made once per table:
    through SQLAlchemy, building the statement (120 column expressions) and binding 60 values per row cost more
    than running it. Parameters: the dimensions, then ``COUNTERS``."""
    found = _UPSERTS.get((dialect.name, table.name))
    if found is None:
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        columns = (*DIMENSIONS, *COUNTERS)
        sql = (
            f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))}) "
            f"ON CONFLICT ({', '.join(DIMENSIONS)}) DO UPDATE SET "
            + ", ".join(f"{c} = {table.name}.{c} + excluded.{c}" for c in COUNTERS)
        )
        found = _UPSERTS[(dialect.name, table.name)] = (sql, bind_datetime(dialect, table.c.minute))
    return found


class RollupInserter(Inserter):
    """Writes records and adds the inserted ones into the rollups, in one transaction."""

    def __init__(self, engine: Engine, config: dict[str, Any]) -> None:
        super().__init__(engine)
        self.latency_objective_ms = float(config.get("latency_objective_ms", 10_000))
        self.max_age = timedelta(days=float(config.get("max_age_days", 90)))
        self._returning = self._insert.returning(RequestRecord.__table__.c.id)
        self._next_retention = 0.0

    def _execute(self, rows: list[Row]) -> None:
        with self._engine.connect() as conn:
            with conn.begin() as tx:
                if self._insert_rows(conn, rows) == len(rows):  # every row new: the live case
                    self._count(conn, rows)
                    return
                tx.rollback()  # some were there already (a replay): which ones is asked below
            with conn.begin():
                inserted = set(conn.execute(self._returning, as_dicts(rows)).scalars())
                new = []
                for row in rows:
                    if row[_ID] in inserted:
                        inserted.remove(row[_ID])  # an id twice in one batch was inserted (and is counted) once
                        new.append(row)
                self._count(conn, new)

    def _count(self, conn: Connection, inserted: list[Row]) -> None:
        _upsert(conn, count_rows(inserted, self.latency_objective_ms))
        if time.monotonic() >= self._next_retention:  # the retention job of rollups: hourly, cheap (indexed)
            self._next_retention = time.monotonic() + 3600
            for t in (RollupRow.__table__, HourlyRollupRow.__table__):
                conn.execute(sa.delete(t).where(t.c.minute < datetime.now(UTC) - self.max_age))


def inserter_for(engine: Engine, rollups: dict[str, Any] | None) -> Inserter:
    """The records' inserter: with rollups when they are enabled."""
    return RollupInserter(engine, rollups) if rollups else Inserter(engine)
