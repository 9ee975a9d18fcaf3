"""``/admin/escalations``: answers an ``escalate`` rule held for review (masked text, finding types and offsets),
listed and resolved; ``/admin/policies``: guardrail policies stored in the database (``gateway/guard_policies.py``).

The gateway mounts the admin app with ``app.state.guardrails`` (a function returning the gateway); a standalone
admin app has no gateway and answers 503 here.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response

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


# -- policies ------------------------------------------------------------------------------------------------

_POLICY_EXAMPLE = {
    "input": {"pii": {"action": "mask"}, "injection": {"action": "block"}},
    "output": {"refusal": {"action": "retry"}, "toxicity": {"action": "block", "threshold": 0.8}},
    "output_actions": {"retries": 1},
    "attach": {"models": ["gpt-4o"], "teams": [], "keys": []},
}


def _policies(request: Request):
    policies = getattr(_gateway(request), "guard_policies", None)
    if policies is None:
        raise ServiceUnavailable("stored guardrail policies are off on this gateway (guardrails.enabled and "
                                 "guardrails.stored_policies)")  # fmt: skip
    return policies


@router.get("/policies", tags=["guardrails"], summary="Effective policies (YAML overlaid by stored ones)")
async def list_policies(request: Request) -> list[dict[str, Any]]:
    return _policies(request).describe()


@router.get("/policies/{name}", tags=["guardrails"], summary="One policy and what it attaches to")
async def get_policy(request: Request, name: str) -> dict[str, Any]:
    found = _policies(request).describe(name)
    if not found:
        raise NotFound(f"no policy named {name!r}", param="name")
    return found[0]


@router.put("/policies/{name}", tags=["guardrails"], summary="Store a policy; every replica applies it at once")
async def put_policy(
    request: Request, name: str, body: Annotated[dict[str, Any], Body(examples=[_POLICY_EXAMPLE])]
) -> dict[str, Any]:
    """The body is a policy (``input``, ``output``, ``on_error``, ...) with an optional ``attach`` of model
    names, team ids and key ids or names; the most specific attachment wins. Invalid: 400 naming the field."""
    from guardrails import GuardConfigError

    try:
        return await _policies(request).put(name, body)
    except GuardConfigError as exc:
        raise InvalidRequest(exc.message, param=exc.field) from exc


@router.delete("/policies/{name}", tags=["guardrails"], status_code=204, summary="Remove a stored policy")
async def delete_policy(request: Request, name: str) -> Response:
    if not await _policies(request).delete(name):
        raise NotFound(f"no stored policy named {name!r}", param="name")
    return Response(status_code=204)
