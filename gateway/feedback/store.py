"""Feedback rows, their rollup counters and opted-in content, in the database. Blocking: call in a thread."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway.db.insights import FeedbackRow, RequestContent
from gateway.db.models import RequestRecord
from gateway.recorder.rollups import add, key_of, upsert

#: Explicit kinds counted in rollups as positive or negative; the rest (rating 3, a comment, an edit) are stored only.
COUNTED = {"positive", "negative", "regeneration", "early_termination", "rephrase", "abandonment", "refusal"}


class FeedbackStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record_of(self, request_id: str) -> dict[str, Any] | None:
        """The columns feedback needs from a request's record; ``None`` when it is not (yet) stored."""
        t = RequestRecord.__table__
        cols = (t.c.id, t.c.key_id, t.c.team_id, t.c.model, t.c.route, t.c.prompt_version, t.c.trace_id)
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(*cols).where(t.c.id == request_id)).mappings().first()
        return dict(row) if row is not None else None

    def write(self, items: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[int]:
        """``(feedback row, the request's dimensions)`` pairs: rows inserted, rollups counted, in one transaction."""
        if not items:
            return []
        now = datetime.now(UTC)
        sums: dict = {}
        for row, dims in items:
            if row["kind"] in COUNTED:
                add(sums, key_of(dims, now), {f"fb_{row['kind']}": 1})
        t = FeedbackRow.__table__
        with self.engine.begin() as conn:
            ids = [conn.execute(t.insert().values(created_at=now, **row)).inserted_primary_key[0] for row, _ in items]
            upsert(conn, sums)
        return ids

    def write_content(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        t = RequestContent.__table__
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        with self.engine.begin() as conn:
            conn.execute(insert(t).on_conflict_do_nothing(index_elements=["request_id"]), rows)
