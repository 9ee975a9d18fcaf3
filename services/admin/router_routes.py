"""``/admin/routers``: define, train, inspect and remove intent routers; ``/admin/handoffs``: human handoffs.

The gateway mounts the admin app with ``app.state.routers`` (a function returning its ``RouterRuntime``).
``PUT`` trains in a worker thread and answers once the new version serves on this replica; every other replica
loads the stored weights through the config bus. Errors of ``router.intent`` become 400/404 here, one seam.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response

from gateway.errors import InvalidRequest, NotFound, ServiceUnavailable
from router.intent import DefinitionError
from services.admin.routes import _errors, require_role

router = APIRouter(dependencies=[Depends(require_role)], responses=_errors)  # type: ignore[arg-type]

_EXAMPLE = {
    "intents": [
        {"name": "track_order", "examples": ["where is my parcel", "track my order"], "target": {"model": "m"}},
        {"name": "complaint", "examples": ["I want a manager"], "target": {"human": {"queue": "care"}}},
    ],
    "out_of_scope": {"target": {"reply": "I can only help with orders."}, "examples": ["tell me a joke"]},
}


def _runtime(request: Request):
    provider = getattr(request.app.state, "routers", None)
    runtime = provider() if callable(provider) else provider
    if runtime is None:
        raise ServiceUnavailable("intent routers are managed through a gateway's admin API (/admin on the gateway)")
    return runtime


@router.put("/routers/{name}", tags=["routers"], summary="Define (or redefine) a router: trains, then serves it")
async def put_router(
    request: Request, name: str, definition: Annotated[dict[str, Any], Body(examples=[_EXAMPLE])]
) -> dict[str, Any]:
    """Answers once the new version serves on this replica, with its training figures. A bad definition is a
    400 naming the field (``error.param``); the version that was serving keeps serving."""
    runtime = _runtime(request)
    try:
        return await runtime.put(name, definition)
    except DefinitionError as exc:
        raise InvalidRequest(exc.message, param=exc.param) from exc


@router.get("/routers", tags=["routers"], summary="List routers with their versions and training figures")
async def list_routers(request: Request) -> list[dict[str, Any]]:
    return await _runtime(request).describe()


@router.get("/routers/{name}", tags=["routers"], summary="Show one router (definition, version, figures)")
async def get_router(request: Request, name: str) -> dict[str, Any]:
    found = await _runtime(request).describe(name)
    if not found:
        raise NotFound(f"no router named {name!r}", param="name")
    return found[0]


@router.delete("/routers/{name}", tags=["routers"], status_code=204, summary="Remove a router")
async def delete_router(request: Request, name: str) -> Response:
    if not await _runtime(request).delete(name):
        raise NotFound(f"no router named {name!r}", param="name")
    return Response(status_code=204)


@router.get("/handoffs", tags=["routers"], summary="Human handoffs, newest first (no conversation text)")
async def list_handoffs(
    request: Request,
    queue: Annotated[str | None, Query(description="Only this queue")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    rows = await asyncio.to_thread(_runtime(request).store.handoffs, queue, limit)
    return [{**r.model_dump(), "created_at": r.created_at.isoformat()} for r in rows]
