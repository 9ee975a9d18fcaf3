"""``/admin/escalations``: answers an ``escalate`` rule held for review (masked text, finding types and offsets),
listed and resolved; ``/admin/policies``: guardrail policies stored in the database (see policy_routes below).

The gateway mounts the admin app with ``app.state.guardrails`` (a function returning the gateway); a standalone
admin app has no gateway and answers 503 here.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request

from gateway.errors import InvalidRequest, NotFound, ServiceUnavailable
from services.admin.routes import _errors, require_role

router = APIRouter(dependencies=[Depends(require_role)], responses=_errors)  # type: ignore[arg-type]


def _gateway(request: Request):
    provider = getattr(request.app.state, "guardrails", None)
    gateway = provider() if callable(provider) else provider
    if gateway is None or gateway.engine is None:
        raise ServiceUnavailable("guardrails are managed through a gateway's admin API (/admin on the gateway)")
    return gateway


def _escalations(request: Request):
    from gateway.guard_escalations import EscalationStore

    gateway = _gateway(request)
    store = getattr(gateway, "guard_escalations", None)
    return store if store is not None else EscalationStore(gateway.engine)


@router.get("/escalations", tags=["guardrails"], summary="Escalated answers, newest first (masked text)")
async def list_escalations(
    request: Request,
    status: Annotated[str | None, Query(description="open or resolved", pattern="^(open|resolved)$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    return await asyncio.to_thread(_escalations(request).list, status, limit)


@router.get("/escalations/{case_id}", tags=["guardrails"], summary="One escalated answer")
async def get_escalation(request: Request, case_id: str) -> dict[str, Any]:
    found = await asyncio.to_thread(_escalations(request).get, case_id)
    if found is None:
        raise NotFound(f"no escalation {case_id!r}", param="case_id")
    return found


@router.post("/escalations/{case_id}/resolve", tags=["guardrails"], summary="Close a case with a resolution")
async def resolve_escalation(
    request: Request,
    case_id: str,
    body: Annotated[dict[str, Any] | None, Body(examples=[{"resolution": "false positive"}])] = None,
) -> dict[str, Any]:
    resolution = (body or {}).get("resolution", "")
    if not isinstance(resolution, str) or len(resolution) > 2000:
        raise InvalidRequest("resolution: a string of at most 2000 characters", param="resolution")
    found = await asyncio.to_thread(_escalations(request).resolve, case_id, resolution)
    if found is None:
        raise NotFound(f"no escalation {case_id!r}", param="case_id")
    return found
