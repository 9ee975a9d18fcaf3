"""Preference data from feedback: (prompt, chosen, rejected) pairs, one JSON object per line.

- an **edited output**: the user's edit is chosen over the model's answer;
- a **regeneration followed by positive feedback**: the regenerated answer (rated up) is chosen over the one
  the user regenerated away from.

Prompts and outputs exist only for the keys and teams in ``feedback.store_content_for``; requests without
stored content yield no pair. Blocking (SQLAlchemy).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway.db.insights import FeedbackRow, RequestContent


def preference_pairs(engine: Engine, since: datetime | None = None) -> Iterator[dict[str, Any]]:
    fb, content = FeedbackRow.__table__, RequestContent.__table__
    with engine.connect() as conn:
        q = sa.select(fb)
        if since is not None:
            q = q.where(fb.c.created_at >= since)
        rows = [dict(r) for r in conn.execute(q.order_by(fb.c.id)).mappings()]
        wanted = {r["request_id"] for r in rows} | {r["related_request_id"] for r in rows if r["related_request_id"]}
        stored = {
            c["request_id"]: c
            for c in conn.execute(sa.select(content).where(content.c.request_id.in_(wanted))).mappings()
        }
    positive = {r["request_id"] for r in rows if r["kind"] == "positive"}
    for r in rows:
        original = stored.get(r["request_id"])
        if original is None or original["output"] is None:
            continue
        if r["edited_output"] and r["edited_output"] != original["output"]:
            yield _pair(original, r["edited_output"], "edited_output", r["request_id"])
        elif r["kind"] == "regeneration" and r["related_request_id"] in positive:
            again = stored.get(r["related_request_id"])
            if again is not None and again["output"] is not None and again["output"] != original["output"]:
                yield _pair(original, again["output"], "regeneration", r["related_request_id"])


def _pair(original, chosen: str, source: str, chosen_id: str) -> dict[str, Any]:
    return {
        "prompt": original["messages"],
        "chosen": chosen,
        "rejected": original["output"],
        "source": source,
        "rejected_request_id": original["request_id"],
        "chosen_request_id": chosen_id,
    }
