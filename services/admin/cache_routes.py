"""``DELETE /admin/cache``: invalidate cached answers by scope, owner, model and age.

The gateway mounts the admin app with ``app.state.cache`` (a function returning its ``CacheStep``). The shared
backends (Redis, pgvector, the cache service) are cleared once; the in-process ones on every replica, through the
config bus (``gateway/cache_live.py``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from cache import CacheUnavailable, Invalidation, InvalidInvalidation
from gateway.errors import InvalidRequest, ServiceUnavailable
from services.admin.routes import _errors, require_role

router = APIRouter(dependencies=[Depends(require_role)], responses=_errors)  # type: ignore[arg-type]
_PARAMS = frozenset({"scope", "owner", "model", "older_than", "kind", "all"})


@router.delete("/cache", tags=["cache"], summary="Invalidate cached answers (exact and semantic)")
async def clear_cache(
    request: Request,
    scope: Annotated[Literal["key", "team", "user", "global"] | None, Query(description="Only this scope")] = None,
    owner: Annotated[
        str | None,
        Query(description="Only this owner within the scope: a key id, a team id, `<key id>/<user>` for user"),
    ] = None,
    model: Annotated[str | None, Query(description="Only this model")] = None,
    older_than: Annotated[float | None, Query(ge=0, description="Only entries created more than N seconds ago")] = None,
    kind: Annotated[Literal["exact", "semantic", "all"], Query(description="Which cache")] = "all",
    all: Annotated[bool, Query(description="Required to clear everything when no filter is given")] = False,
) -> dict[str, int]:
    """Returns how many entries each cache dropped."""
    unknown = sorted(set(request.query_params) - _PARAMS)
    if unknown:  # a misspelt filter must not widen the purge to everything
        raise InvalidRequest(f"unknown parameter {unknown[0]!r}", param=unknown[0])
    if scope is None and model is None and older_than is None and owner is None and not all:
        raise InvalidRequest("name a filter (scope, model, older_than) or pass all=true", param="scope")
    try:
        what = Invalidation(scope=scope, owner=owner, model=model, older_than=older_than, kind=kind)
    except InvalidInvalidation as exc:
        raise InvalidRequest(str(exc), param=exc.field) from exc
    provider = getattr(request.app.state, "cache", None)
    step = provider() if provider is not None else None
    if step is None:
        return {"exact": 0, "semantic": 0}
    try:
        return await step.clear(what)
    except CacheUnavailable as exc:
        raise ServiceUnavailable(f"the cache could not be cleared: {exc}") from exc
