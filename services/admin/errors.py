"""The admin app's one error seam: everything leaves as OpenAI error JSON."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from gateway.errors import InterlockError, InvalidRequest, NotFound

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(BaseModel):
    """OpenAI's error format, used for every admin API error."""

    error: ErrorDetail


def _render(exc: InterlockError) -> JSONResponse:
    return JSONResponse(exc.to_openai(), status_code=exc.status, headers=exc.headers or None)


def _field(loc: tuple) -> str:
    # ("body", "limits", "rpm") -> "limits.rpm"; list positions as [0].
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def validation_error(exc: RequestValidationError) -> InvalidRequest:
    """A 400 whose message and ``param`` name the offending field(s)."""
    errors = exc.errors()
    problems = [f"{_field(tuple(e['loc']))}: {e['msg']}" for e in errors]
    first = _field(tuple(errors[0]["loc"])) if errors else None
    return InvalidRequest("; ".join(problems) or "invalid request", param=first)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed(request: Request) -> list[str]:
    """The methods some route takes at the request's path (asked of every route, included routers too)."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]


def install(app: FastAPI) -> None:
    async def on_interlock(_: Request, exc: InterlockError) -> JSONResponse:
        return _render(exc)

    async def on_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _render(validation_error(exc))

    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return _render(NotFound(f"the admin API has no endpoint {request.method} {request.url.path}"))
        if exc.status_code == 405:  # with every method the path takes: Starlette names only its first route's
            allow = ", ".join(_allowed(request))
            return _render(
                InvalidRequest(str(exc.detail), status=405, code="method_not_allowed", headers={"allow": allow})
            )
        return _render(InvalidRequest(str(exc.detail), status=exc.status_code, code="http_error"))

    async def on_crash(_: Request, exc: Exception) -> JSONResponse:
        log.exception("admin API: unexpected error")
        return _render(InterlockError(f"internal error: {type(exc).__name__}"))

    app.add_exception_handler(InterlockError, on_interlock)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_crash)
