"""Routers and handoffs in the database. A router change bumps ``config_version`` in its own transaction and is
published on the config bus (kind ``router``), so every replica loads the new version within a second."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from gateway.access.bus import Change
from gateway.access.store import _bump as bump_config_version
from gateway.db.columns import utcnow
from gateway.intent.models import HandoffRow, IntentRouterRow


class RouterStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def load(self, names: list[str] | None = None) -> list[IntentRouterRow]:
        with Session(self.engine, expire_on_commit=False) as s:
            q = select(IntentRouterRow)
            if names is not None:
                q = q.where(col(IntentRouterRow.name).in_(names))
            return list(s.exec(q).all())

    def save(
        self, name: str, definition: dict[str, Any], weights: bytes, figures: dict, embedder: str, source: str
    ) -> tuple[int, Change]:
        with Session(self.engine) as s, s.begin():
            config_version = bump_config_version(s)
            row = s.get(IntentRouterRow, name)
            version = 1 if row is None else row.version + 1
            row = row or IntentRouterRow(name=name, definition=definition, weights=weights)
            row.version, row.definition, row.weights, row.figures = version, definition, weights, figures
            row.embedder, row.source, row.updated_at = embedder, source, utcnow()
            s.add(row)
        return version, Change(version=config_version, kind="router", ids=(name,))  # type: ignore[arg-type]

    def delete(self, name: str) -> Change | None:
        with Session(self.engine) as s, s.begin():
            row = s.get(IntentRouterRow, name)
            if row is None:
                return None
            config_version = bump_config_version(s)
            s.delete(row)
        return Change(version=config_version, kind="router", ids=(name,))  # type: ignore[arg-type]

    def add_handoff(self, row: HandoffRow) -> None:
        with Session(self.engine) as s, s.begin():
            s.merge(row)

    def set_webhook(self, handoff_id: str, outcome: str) -> None:
        with Session(self.engine) as s, s.begin():
            row = s.get(HandoffRow, handoff_id)
            if row is not None:
                row.webhook = outcome[:200]

    def handoffs(self, queue: str | None, limit: int) -> list[HandoffRow]:
        with Session(self.engine, expire_on_commit=False) as s:
            q = select(HandoffRow).order_by(col(HandoffRow.created_at).desc()).limit(limit)
            if queue is not None:
                q = q.where(HandoffRow.queue == queue)
            return list(s.exec(q).all())
