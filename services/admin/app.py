"""The admin API: keys, teams and models, separate from the model API and with its own credentials.

Thin by design: requests are parsed into ``gateway.access.schemas`` models, handed to the
``AccessStore`` and serialised back. The gateway mounts it at ``/admin`` over its own
``AccessRuntime``; standalone (``python -m services.admin``) it builds one from the settings.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from gateway.access import AccessConfig, AccessRuntime
from interlock.settings import Settings, load_settings
from services.admin import cache_routes, console_routes, errors, guardrail_routes, router_routes, routes

DESCRIPTION = """Manage virtual keys, teams and models of an Interlock gateway.

Authenticate with `Authorization: Bearer <admin token>`. The `admin` role may do everything; the
`viewer` role may only read. Errors use OpenAI's error format; a refused change names the field in
`error.param`. Changes reach every gateway replica within a second.
"""


def create_admin_app(
    access: AccessRuntime | Callable[[], AccessRuntime | None] | None = None, *, settings: Settings | None = None
) -> FastAPI:
    """The admin app over ``access``; without it, the app builds and owns a runtime from ``settings``.

    Mounted inside the gateway (where a mounted app's lifespan does not run), pass the gateway's
    runtime, or a function returning it when it is built later (``lambda: gateway.access``): until
    it returns one, admin calls get a 503.
    """
    lifespan = None if access is not None else _standalone_lifespan(settings)
    # Swagger UI and ReDoc from assets in the fastapi-offline wheel, not a CDN: /admin/docs must work on a
    # machine without internet. They are served under /admin/static-offline-docs/.
    app = FastAPIOffline(title="Interlock admin API", version="1", description=DESCRIPTION, lifespan=lifespan)
    app.state.access = access
    errors.install(app)
    app.include_router(routes.router)
    app.include_router(console_routes.router)  # /admin/console: the ops console's API
    app.include_router(cache_routes.router)
    app.include_router(router_routes.router)  # /admin/routers: intent routers, /admin/handoffs
    app.include_router(guardrail_routes.router)  # /admin/escalations, /admin/policies
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict:
    """FastAPI's document without the 422 it adds to every operation: invalid input is a 400 here (OpenAI's
    error format, naming the field), which each operation lists."""
    if app.openapi_schema is None:
        doc = FastAPI.openapi(app)  # builds and caches it in app.openapi_schema
        for operations in doc.get("paths", {}).values():
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)
        schemas = doc.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
    return app.openapi_schema


def _standalone_lifespan(settings: Settings | None):
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from gateway.db import make_engine, migrate

        cfg = settings or load_settings()
        migrate(cfg.database.url)
        engine = make_engine(cfg.database.url)
        # Re-validated as gateway.access's own section, whichever class the settings tree declares.
        access = AccessConfig.model_validate(cfg.access.model_dump())
        runtime = AccessRuntime(access, engine, cfg.models, redis_url=cfg.redis.url)
        await runtime.start()
        app.state.access = runtime
        try:
            yield
        finally:
            await runtime.aclose()
            engine.dispose()

    return lifespan
