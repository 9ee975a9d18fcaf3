"""Admin endpoints: parse, call ``gateway.access``, serialise. Paths are relative (mounted at ``/admin``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request, Response, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gateway.access import (
    AccessRuntime,
    KeyInfo,
    KeyPatch,
    KeySpec,
    KeyWithSecret,
    ModelInfo,
    Role,
    RotateRequest,
    TeamInfo,
    TeamPatch,
    TeamSpec,
)
from gateway.config import ModelConfig
from gateway.errors import ServiceUnavailable
from services.admin.errors import ErrorBody

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="AdminToken",
    description="An admin token (`access.admin_tokens`, role admin or viewer) or the master key.",
)


def runtime(request: Request) -> AccessRuntime:
    """The runtime given to ``create_admin_app``; a provider is called (the gateway builds it at start)."""
    access = request.app.state.access
    if access is not None and not isinstance(access, AccessRuntime):
        access = access()
    if access is None:
        raise ServiceUnavailable("admin API: access control has not started yet")
    return access


Access = Annotated[AccessRuntime, Depends(runtime)]


async def require_role(request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]) -> Role:
    """401 without a valid admin token; 403 when a viewer tries to change something."""
    return runtime(request).admin_tokens.check(request.headers.get("authorization"), request.method)


_errors = {
    400: {"model": ErrorBody, "description": "Invalid change; the message and `param` name the field"},
    401: {"model": ErrorBody, "description": "Missing or unknown admin token"},
    403: {"model": ErrorBody, "description": "The viewer role is read-only"},
    404: {"model": ErrorBody, "description": "No such key, team or model"},
}
#: Every change can meet a conflict: a name or secret already taken, or a concurrent writer that won the race.
_CONFLICT = {409: {"model": ErrorBody, "description": "Conflicts with the current state (e.g. the name is taken)"}}
router = APIRouter(dependencies=[Depends(require_role)], responses=_errors)  # type: ignore[arg-type]
Ref = Annotated[str, "a key or team id, or its name"]


# -- keys ----------------------------------------------------------------------------------------
@router.get("/keys", tags=["keys"], summary="List keys")
async def list_keys(
    access: Access,
    team: Annotated[str | None, Query(description="Only keys of this team (id or name)")] = None,
    include_revoked: Annotated[bool, Query(description="Also list revoked keys")] = False,
) -> list[KeyInfo]:
    return await access.store.list_keys(team=team, include_revoked=include_revoked)


@router.post(
    "/keys", tags=["keys"], status_code=201, summary="Create a key (the full key is returned once)", responses=_CONFLICT
)
async def create_key(access: Access, spec: KeySpec) -> KeyWithSecret:
    return await access.store.create_key(spec)


@router.get("/keys/{ref}", tags=["keys"], summary="Show a key (by id, name or visible prefix)")
async def get_key(access: Access, ref: Ref) -> KeyInfo:
    return await access.store.get_key(ref)


@router.patch(
    "/keys/{ref}", tags=["keys"], summary="Change a key's grants, limits, expiry, team or name", responses=_CONFLICT
)
async def update_key(access: Access, ref: Ref, patch: KeyPatch) -> KeyInfo:
    return await access.store.update_key(ref, patch)


@router.post("/keys/{ref}/rotate", tags=["keys"], summary="New secret for a key (returned once)", responses=_CONFLICT)
async def rotate_key(access: Access, ref: Ref, body: Annotated[RotateRequest | None, Body()] = None) -> KeyWithSecret:
    return await access.store.rotate_key(ref, (body or RotateRequest()).grace_seconds)


@router.post(
    "/keys/{ref}/revoke", tags=["keys"], summary="Revoke a key: it stops working on every replica", responses=_CONFLICT
)
async def revoke_key(access: Access, ref: Ref) -> KeyInfo:
    return await access.store.revoke_key(ref)


# -- teams ---------------------------------------------------------------------------------------
@router.get("/teams", tags=["teams"], summary="List teams")
async def list_teams(access: Access) -> list[TeamInfo]:
    return await access.store.list_teams()


@router.post("/teams", tags=["teams"], status_code=201, summary="Create a team", responses=_CONFLICT)
async def create_team(access: Access, spec: TeamSpec) -> TeamInfo:
    return await access.store.create_team(spec)


@router.get("/teams/{ref}", tags=["teams"], summary="Show a team (by id or name)")
async def get_team(access: Access, ref: Ref) -> TeamInfo:
    return await access.store.get_team(ref)


@router.patch("/teams/{ref}", tags=["teams"], summary="Change a team's grants, limits or name", responses=_CONFLICT)
async def update_team(access: Access, ref: Ref, patch: TeamPatch) -> TeamInfo:
    return await access.store.update_team(ref, patch)


@router.delete("/teams/{ref}", tags=["teams"], summary="Delete a team that has no live keys", responses=_CONFLICT)
async def delete_team(access: Access, ref: Ref) -> TeamInfo:
    return await access.store.delete_team(ref)


# -- models (names may contain "/", as Hugging Face names do) --------------------------------------
@router.get("/models", tags=["models"], summary="List the effective models (YAML overlaid by overrides)")
async def list_models(access: Access) -> list[ModelInfo]:
    return await access.store.list_models()


@router.get("/models/{name:path}", tags=["models"], summary="Show one model's configuration")
async def get_model(access: Access, name: str) -> ModelInfo:
    return await access.store.get_model(name)


@router.put(
    "/models/{name:path}",
    tags=["models"],
    summary="Add or replace a model (deployments, routing, ...)",
    responses=_CONFLICT,
)
async def set_model(access: Access, name: str, config: ModelConfig) -> ModelInfo:
    return await access.store.set_model(name, config)


@router.delete("/models/{name:path}", tags=["models"], status_code=204, summary="Remove a model", responses=_CONFLICT)
async def delete_model(access: Access, name: str) -> Response:
    await access.store.delete_model(name)
    return Response(status_code=204)
