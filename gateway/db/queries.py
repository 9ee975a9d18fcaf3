"""Read-side helpers over request records."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway.db.models import RequestRecord


def spend_since(
    engine: Engine,
    *,
    key_id: str | None = None,
    team_id: str | None = None,
    since: datetime,
    until: datetime | None = None,
) -> float:
    """USD spent from ``since`` (inclusive) to ``until`` (exclusive; default: no end), for a key, a team,
    both, or everyone when neither is given. Rebuilds budget counters after Redis lost them.

    Counts only what the writer has stored: records still queued (up to one flush interval) are not in it.
    Blocking: call it in a thread from async code.
    """
    t = RequestRecord.__table__
    query = sa.select(sa.func.coalesce(sa.func.sum(t.c.cost_usd), 0.0)).where(t.c.created_at >= since)
    if until is not None:
        query = query.where(t.c.created_at < until)
    if key_id is not None:
        query = query.where(t.c.key_id == key_id)
    if team_id is not None:
        query = query.where(t.c.team_id == team_id)
    with engine.connect() as conn:
        return float(conn.execute(query).scalar_one())
