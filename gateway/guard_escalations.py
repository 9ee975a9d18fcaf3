"""Escalated answers: recorded for review (masked), listed and resolved through the admin API, announced to a
webhook. The store is plain SQL through the gateway's engine, in worker threads; the webhook post runs in the
background so the client never waits for a third party."""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime
from typing import Any

import httpx
import sqlalchemy as sa
from sqlmodel import Session, select

from gateway.guard_models import EscalationRow

log = logging.getLogger("interlock.guardrails")


class EscalationStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def add(self, row: EscalationRow) -> str:
        case_id = row.id = row.id or "esc_" + secrets.token_hex(12)
        with Session(self.engine) as s:
            s.add(row)
            s.commit()
        return case_id

    def list(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        q = select(EscalationRow).order_by(EscalationRow.created_at.desc()).limit(limit)  # type: ignore[attr-defined]
        if status is not None:
            q = q.where(EscalationRow.status == status)
        with Session(self.engine) as s:
            return [as_dict(r) for r in s.exec(q).all()]

    def get(self, case_id: str) -> dict[str, Any] | None:
        with Session(self.engine) as s:
            row = s.get(EscalationRow, case_id)
            return as_dict(row) if row is not None else None

    def resolve(self, case_id: str, resolution: str) -> dict[str, Any] | None:
        with Session(self.engine) as s:
            row = s.get(EscalationRow, case_id)
            if row is None:
                return None
            row.status, row.resolution, row.resolved_at = "resolved", resolution, datetime.now(UTC)
            s.add(row)
            s.commit()
            s.refresh(row)
            return as_dict(row)


def as_dict(row: EscalationRow) -> dict[str, Any]:
    return row.model_dump(mode="json")


async def notify(url: str, payload: dict[str, Any], timeout: float = 5.0) -> None:
    """POST the case (ids and finding types, never text) to the policy's webhook; failures are logged only."""
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.post(url, json=payload)
        if response.status_code >= 300:
            log.warning("escalation webhook answered %s for case %s", response.status_code, payload.get("id"))
    except (TimeoutError, httpx.HTTPError) as exc:
        log.warning("escalation webhook failed for case %s: %s", payload.get("id"), type(exc).__name__)
