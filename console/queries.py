"""The console's read side: every Overview panel and tile sums per-minute rollups (never raw records); request
search and a request's trace read ``request_records`` and ``spans`` through their indexes. Blocking (SQLAlchemy):
call from async code with ``asyncio.to_thread``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from console.panels import PANELS, Panel, latency, percentile, ttft
from gateway.db.insights import (
    COUNTERS,
    LATENCY_BOUNDS_MS,
    LATENCY_COLUMNS,
    FeedbackRow,
    HourlyRollupRow,
    RollupRow,
    SpanRow,
)
from gateway.db.models import RequestRecord

#: At most this many points per chart: the bucket grows with the range (1 minute for the last two hours).
MAX_POINTS = 120
#: Ranges longer than this read hour rows (``rollups_hourly``): a week is then 168 hours of rows, not 10,080
#: minutes of them, and every panel stays well under 200 ms on a million requests (bench/console_rollups.py).
HOURLY_AFTER = timedelta(hours=6)
DIMENSIONS = ("key_id", "team_id", "model", "route", "prompt_version")


class QueryError(ValueError):
    """A filter the console cannot use; the message names it (the API turns it into a 400)."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Filters:
    since: datetime
    until: datetime
    key_id: str | None = None
    team_id: str | None = None
    model: str | None = None
    route: str | None = None
    prompt_version: str | None = None

    @classmethod
    def last(cls, hours: float = 1.0, **dims: str | None) -> Filters:
        until = datetime.now(UTC)
        return cls(until - timedelta(hours=hours), until, **dims)


def _table(f: Filters) -> tuple[sa.Table, datetime]:
    """Minute rows up to ``HOURLY_AFTER``, hour rows beyond (the range then starts on the hour)."""
    if f.until - f.since > HOURLY_AFTER:
        return HourlyRollupRow.__table__, f.since.replace(minute=0, second=0, microsecond=0)
    return RollupRow.__table__, f.since


def _where(t: sa.Table, f: Filters, since: datetime) -> list:
    if f.until <= f.since:
        raise QueryError("'until' must be after 'since'", "until")
    clauses = [t.c.minute >= since, t.c.minute < f.until]
    filtered = False
    for dim in DIMENSIONS:
        value = getattr(f, dim)
        if value is not None:
            if value == "*":
                raise QueryError(f"'{dim}' cannot be '*'", dim)
            clauses.append(t.c[dim] == value)
            filtered = True
    if not filtered:  # the rows that sum every dimension (gateway/recorder/rollups.py: TOTAL)
        clauses.append(t.c.model == "*")
    return clauses


def bucket_seconds(f: Filters) -> int:
    span = (f.until - f.since).total_seconds()
    unit = 3600 if f.until - f.since > HOURLY_AFTER else 60
    return max(unit, math.ceil(span / MAX_POINTS / unit) * unit)


def panel(engine: Engine, name: str, f: Filters) -> dict[str, Any]:
    """One chart: time buckets and, per series, a value (or ``None``) for each."""
    p: Panel | None = PANELS.get(name)
    if p is None:
        raise QueryError(f"no panel {name!r}; panels: {sorted(PANELS)}", "name")
    t, since = _table(f)
    step = bucket_seconds(f)
    query = sa.select(t.c.minute, *(sa.func.sum(t.c[c]).label(c) for c in p.columns)).where(*_where(t, f, since))
    with engine.connect() as conn:
        rows = conn.execute(query.group_by(t.c.minute)).all()
    start = int(since.timestamp()) // step * step
    n = (int(f.until.timestamp()) - start + step - 1) // step
    buckets: list[dict[str, float]] = [{} for _ in range(n)]
    for row in rows:
        minute = row[0] if row[0].tzinfo else row[0].replace(tzinfo=UTC)
        i = (int(minute.timestamp()) - start) // step
        if 0 <= i < n:
            into = buckets[i]
            for c, v in zip(p.columns, row[1:], strict=True):
                into[c] = into.get(c, 0) + (v or 0)
    series = {label: [fn(b) if b else None for b in buckets] for label, fn in p.series.items()}
    return {
        "name": name,
        "title": p.title,
        "unit": p.unit,
        "step": step,
        "t": [start + i * step for i in range(n)],
        "series": series,
    }


def summary(engine: Engine, f: Filters) -> dict[str, Any]:
    """The Overview's tiles over the whole range: one query, every counter summed."""
    t, since = _table(f)
    query = sa.select(*(sa.func.sum(t.c[c]).label(c) for c in COUNTERS)).where(*_where(t, f, since))
    with engine.connect() as conn:
        s = {k: v or 0 for k, v in conn.execute(query).one()._mapping.items()}
    n = s["requests"]
    return {
        "requests": n,
        "error_rate": s["errors"] / n if n else None,
        "latency_ms": {"p50": latency(0.5)(s), "p95": latency(0.95)(s), "p99": latency(0.99)(s)},
        "ttft_ms": {"p50": ttft(0.5)(s), "p95": ttft(0.95)(s)},
        "tpot_ms": s["tpot_sum_ms"] / s["tpot_count"] if s["tpot_count"] else None,
        "tokens": {"input": s["prompt_tokens"], "output": s["completion_tokens"]},
        "cost_usd": s["cost_usd"],
        "cache_hit_rate": s["cache_hits"] / n if n else None,
        "guard_triggers": s["guard_triggers"],
        "goodput": s["goodput"] / n if n else None,
        "feedback": {k.removeprefix("fb_"): s[k] for k in COUNTERS if k.startswith("fb_")},
    }


def dimensions(engine: Engine, f: Filters) -> dict[str, list[str]]:
    """Values seen in the range, for the filter menus."""
    t, since = _table(f)
    dims = [t.c[d] for d in DIMENSIONS]
    query = sa.select(*dims).where(*_where(t, f, since)[:2], t.c.model != "*").group_by(*dims)
    seen: dict[str, set[str]] = {d: set() for d in DIMENSIONS}
    with engine.connect() as conn:
        for row in conn.execute(query.limit(5000)):
            for d, v in zip(DIMENSIONS, row, strict=True):
                if v:
                    seen[d].add(v)
    return {d: sorted(v) for d, v in seen.items()}


_RECORD_FIELDS = (
    "id", "client_request_id", "created_at", "key_id", "team_id", "model", "served_model", "upstream", "route",
    "stream", "status", "error_type", "prompt_tokens", "completion_tokens", "latency_ms", "ttft_ms", "tpot_ms",
    "cost_usd", "attempts", "trace_id", "prompt_version",
)  # fmt: skip


def search_requests(
    engine: Engine,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    key_id: str | None = None,
    team_id: str | None = None,
    model: str | None = None,
    status: str | None = None,
    min_latency_ms: float | None = None,
    request_id: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Newest first. ``status``: an exact code (``429``), a class (``5xx``) or ``error`` (>= 400)."""
    t = RequestRecord.__table__
    query = sa.select(*(t.c[c] for c in _RECORD_FIELDS))
    if request_id:  # ours, else the client's: two indexed lookups (an OR made SQLite scan the table)
        query = query.where(t.c.id.in_(_ids(engine, request_id)))
    if since is not None:
        query = query.where(t.c.created_at >= since)
    if until is not None:
        query = query.where(t.c.created_at < until)
    for col, value in (("key_id", key_id), ("team_id", team_id), ("model", model)):
        if value:
            query = query.where(t.c[col] == value)
    if status:
        query = query.where(*_status(t, status))
    if min_latency_ms is not None:
        query = query.where(t.c.latency_ms >= min_latency_ms)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(t.c.created_at.desc()).limit(limit)).mappings().all()
    return [_jsonable(dict(r)) for r in rows]


def _ids(engine: Engine, request_id: str) -> list[str]:
    t = RequestRecord.__table__
    with engine.connect() as conn:
        if conn.execute(sa.select(t.c.id).where(t.c.id == request_id)).first() is not None:
            return [request_id]
        return list(conn.execute(sa.select(t.c.id).where(t.c.client_request_id == request_id).limit(50)).scalars())


def _status(t: sa.Table, status: str) -> list:
    s = status.strip().lower()
    if s == "error":
        return [t.c.status >= 400]
    if len(s) == 3 and s[0].isdigit() and s[1:] == "xx":
        lo = int(s[0]) * 100
        return [t.c.status >= lo, t.c.status < lo + 100]
    if s.isdigit():
        return [t.c.status == int(s)]
    raise QueryError("'status' must be a code (429), a class (5xx) or 'error'", "status")


def request_detail(engine: Engine, request_id: str) -> dict[str, Any] | None:
    """A request's record, its stored spans (a waterfall: offsets from the first span) and its feedback."""
    r, s, fb = RequestRecord.__table__, SpanRow.__table__, FeedbackRow.__table__
    ids = _ids(engine, request_id)
    with engine.connect() as conn:
        record = conn.execute(sa.select(r).where(r.c.id.in_(ids)).limit(1)).mappings().first() if ids else None
        if record is None:
            return None
        record = dict(record)
        where = s.c.trace_id == record["trace_id"] if record["trace_id"] else s.c.request_id == record["id"]
        spans = [dict(x) for x in conn.execute(sa.select(s).where(where).order_by(s.c.start_ns)).mappings()]
        feedback = [
            dict(x)
            for x in conn.execute(sa.select(fb).where(fb.c.request_id == record["id"]).order_by(fb.c.id)).mappings()
        ]
    t0 = spans[0]["start_ns"] if spans else 0
    for sp in spans:
        sp["offset_ms"] = (sp.pop("start_ns") - t0) / 1e6
    return {"record": _jsonable(record), "spans": spans, "feedback": [_jsonable(x) for x in feedback]}


def recent_feedback(engine: Engine, *, kind: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The newest feedback and implicit signals, newest first (the console's Feedback page)."""
    fb = FeedbackRow.__table__
    query = sa.select(fb).order_by(fb.c.id.desc()).limit(limit)
    if kind:
        query = query.where(fb.c.kind == kind)
    with engine.connect() as conn:
        return [_jsonable(dict(r)) for r in conn.execute(query).mappings()]


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    for k, v in row.items():
        if isinstance(v, datetime):
            row[k] = (v if v.tzinfo else v.replace(tzinfo=UTC)).isoformat()
    return row


__all__ = ["LATENCY_BOUNDS_MS", "LATENCY_COLUMNS", "Filters", "QueryError", "percentile"]
