"""Admin app fixtures: a runtime over a real database and an HTTP client on the ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.access import AccessConfig, AccessRuntime
from gateway.db import make_engine
from services.admin import create_admin_app
from tests.gateway.access.conftest import (  # noqa: F401 - shared fixtures
    MODELS,
    _sqlite_template,
    access_pg_db,
    db_url,
    sqlite_db,
)

ADMIN, VIEWER, MASTER = "admin-token-for-tests", "viewer-token-for-tests", "sk-il-master-key-for-tests-000"


@pytest.fixture
async def runtime(db_url: str) -> AsyncIterator[AccessRuntime]:  # noqa: F811 - the imported fixture
    config = AccessConfig(require_keys=True, master_key=MASTER, admin_tokens={ADMIN: "admin", VIEWER: "viewer"})
    engine = make_engine(db_url)
    runtime = AccessRuntime(config, engine, MODELS)
    await runtime.start()
    yield runtime
    await runtime.aclose()
    engine.dispose()


@pytest.fixture
async def client(runtime: AccessRuntime) -> AsyncIterator[httpx.AsyncClient]:
    """An admin-role client; pass other ``headers=`` per call to act as someone else."""
    transport = httpx.ASGITransport(create_admin_app(runtime))
    headers = {"authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://admin", headers=headers) as c:
        yield c
