"""The ops console's API, under ``/admin/console``: parse, call ``console.queries`` in a thread, serialise.
Same credentials as the rest of the admin API (the viewer role reads everything here)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from console import queries
from console.panels import PANELS
from gateway.errors import InvalidRequest, NotFound
from services.admin.routes import _errors, require_role, runtime

router = APIRouter(prefix="/console", tags=["console"], dependencies=[Depends(require_role)], responses=_errors)  # type: ignore[arg-type]


def _engine(request: Request):
    return runtime(request).store.engine


def filters(
    hours: Annotated[float, Query(gt=0, le=24 * 400, description="The last N hours (when since is not given)")] = 1.0,
    since: Annotated[datetime | None, Query(description="Start, ISO 8601")] = None,
    until: Annotated[datetime | None, Query(description="End, ISO 8601 (default: now)")] = None,
    key: Annotated[str | None, Query(description="Key id")] = None,
    team: Annotated[str | None, Query(description="Team id")] = None,
    model: str | None = None,
    route: str | None = None,
    prompt_version: str | None = None,
) -> queries.Filters:
    end = _utc(until) or datetime.now(UTC)
    start = _utc(since) or end - timedelta(hours=hours)
    return queries.Filters(start, end, key or None, team or None, model or None, route or None, prompt_version or None)


Filters = Annotated[queries.Filters, Depends(filters)]


def _utc(at: datetime | None) -> datetime | None:
    if at is None:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


async def _run(fn, *args, **kwargs) -> Any:
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except queries.QueryError as exc:
        raise InvalidRequest(str(exc), param=exc.param) from exc


@router.get("/panels", summary="The Overview's charts (a registry: console/panels.py)")
async def list_panels() -> list[dict[str, Any]]:
    return [{"name": n, "title": p.title, "unit": p.unit, "series": list(p.series)} for n, p in PANELS.items()]


@router.get("/panels/{name}", summary="One chart's series over a time range, from per-minute rollups")
async def get_panel(request: Request, name: str, f: Filters) -> dict[str, Any]:
    if name not in PANELS:
        raise NotFound(f"no panel {name!r}; panels: {sorted(PANELS)}", param="name")
    return await _run(queries.panel, _engine(request), name, f)


@router.get("/summary", summary="Totals over a time range: requests, error rate, percentiles, cost, feedback")
async def get_summary(request: Request, f: Filters) -> dict[str, Any]:
    return await _run(queries.summary, _engine(request), f)


@router.get("/dimensions", summary="Keys, teams, models, routes and prompt versions seen in a time range")
async def get_dimensions(request: Request, f: Filters) -> dict[str, list[str]]:
    return await _run(queries.dimensions, _engine(request), f)


@router.get("/requests", summary="Search request records, newest first")
async def search_requests(
    request: Request,
    since: datetime | None = None,
    until: datetime | None = None,
    key: str | None = None,
    team: str | None = None,
    model: str | None = None,
    status: Annotated[str | None, Query(description="A code (429), a class (5xx) or 'error'")] = None,
    min_latency_ms: Annotated[float | None, Query(ge=0)] = None,
    request_id: Annotated[str | None, Query(description="Our id or the client's x-request-id")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[dict[str, Any]]:
    return await _run(
        queries.search_requests,
        _engine(request),
        since=_utc(since),
        until=_utc(until),
        key_id=key or None,
        team_id=team or None,
        model=model or None,
        status=status or None,
        min_latency_ms=min_latency_ms,
        request_id=request_id or None,
        limit=limit,
    )


@router.get("/requests/{request_id}", summary="One request: its record, its trace's spans and its feedback")
async def get_request(request: Request, request_id: str) -> dict[str, Any]:
    found = await _run(queries.request_detail, _engine(request), request_id)
    if found is None:
        raise NotFound(f"no request {request_id!r} is recorded", param="request_id")
    return found


@router.get("/feedback", summary="The newest feedback and implicit signals, newest first")
async def list_feedback(
    request: Request,
    kind: Annotated[str | None, Query(description="positive, negative, regeneration, rephrase, ...")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[dict[str, Any]]:
    return await _run(queries.recent_feedback, _engine(request), kind=kind or None, limit=limit)
