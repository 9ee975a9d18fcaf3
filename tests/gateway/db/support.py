"""Helpers for the SQL store tests: build records, read them back through SQL, wait for the writer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway.db import RequestRecord


def record(request_id: str, **columns: Any) -> dict[str, Any]:
    """A request record with the required columns filled."""
    return {"id": request_id, "model": "m", "route": "chat", "status": 200, "latency_ms": 1.0, **columns}


def stored(engine: Engine) -> dict[str, dict[str, Any]]:
    """Every stored request record by id."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(RequestRecord.__table__)).mappings().all()
    return {row["id"]: dict(row) for row in rows}


def rename_table(engine: Engine, old: str, new: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(f"ALTER TABLE {old} RENAME TO {new}"))


async def eventually(condition: Callable[[], bool], what: str, within: float = 15.0) -> None:
    """Wait until ``condition()`` holds; the deadline only stops a hung test."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.01)
