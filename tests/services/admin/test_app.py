"""The admin API over HTTP: key lifecycle, roles, errors that name the field, the OpenAPI document."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.routing import Mount

from gateway.access import AccessRuntime
from gateway.errors import AuthenticationFailed
from services.admin import create_admin_app
from tests.services.admin.conftest import ADMIN, MASTER, VIEWER

# Checks that do not depend on the database kind run on SQLite only (the lifecycle runs on both).
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _works(runtime: AccessRuntime, key: str) -> bool:
    try:
        runtime.authenticator.authenticate(f"Bearer {key}")
    except AuthenticationFailed:
        return False
    return True


async def test_when_a_key_goes_through_its_lifecycle_then_the_gateway_follows_each_step(client, runtime):
    team = await client.post("/teams", json={"name": "search", "allowed_models": ["small", "embed"]})
    assert team.status_code == 201, team.text

    created = await client.post("/keys", json={"name": "app", "team": "search", "limits": {"rpm": 60}})
    assert created.status_code == 201, created.text
    body = created.json()
    key = body["key"]
    assert key.startswith(body["key_prefix"]) and body["team_name"] == "search"
    assert _works(runtime, key)

    listed = (await client.get("/keys")).json()
    assert [k["name"] for k in listed] == ["app"]
    assert "key" not in listed[0] and key not in str(listed)
    shown = (await client.get(f"/keys/{body['key_prefix']}")).json()
    assert shown["id"] == body["id"] and "key" not in shown

    patched = await client.patch("/keys/app", json={"limits": {"tpm": 1000}, "allowed_models": ["small"]})
    assert patched.json()["limits"] == {**body["limits"], "rpm": 60, "tpm": 1000}
    principal = runtime.authenticator.authenticate(f"Bearer {key}")
    assert principal.allowed_models == frozenset({"small"}) and principal.key_limits.tpm == 1000

    rotated = await client.post(f"/keys/{body['id']}/rotate")
    new_key = rotated.json()["key"]
    assert rotated.status_code == 200 and new_key != key
    assert _works(runtime, new_key) and not _works(runtime, key)

    revoked = await client.post("/keys/app/revoke")
    assert revoked.json()["status"] == "revoked"
    assert not _works(runtime, new_key)
    assert (await client.get("/keys")).json() == []
    assert [k["status"] for k in (await client.get("/keys?include_revoked=true")).json()] == ["revoked"]


async def test_when_keys_are_created_then_the_database_holds_no_secret(client, runtime):
    created = [(await client.post("/keys", json={"name": f"k{i}"})).json()["key"] for i in range(3)]
    with runtime.store.engine.connect() as conn:
        dump = str(conn.execute(sa.text("SELECT * FROM api_keys")).all())
    assert all(key not in dump and key[14:] not in dump for key in created)


async def test_when_a_rotation_has_a_grace_period_then_both_secrets_work_for_now(client, runtime):
    old = (await client.post("/keys", json={"name": "app"})).json()["key"]
    new = (await client.post("/keys/app/rotate", json={"grace_seconds": 300})).json()["key"]
    assert _works(runtime, old) and _works(runtime, new)


ROLE_CASES = [
    # (who, method, path, json, status)
    ("viewer", "GET", "/keys", None, 200),
    ("viewer", "GET", "/models", None, 200),
    ("viewer", "POST", "/keys", {"name": "x"}, 403),
    ("viewer", "PATCH", "/teams/search", {"name": "y"}, 403),
    ("viewer", "DELETE", "/teams/search", None, 403),
    ("viewer", "PUT", "/models/small", {"name": "small", "deployments": [{"url": "http://h"}]}, 403),
    ("admin", "POST", "/keys", {"name": "x"}, 201),
    ("master", "POST", "/keys", {"name": "x"}, 201),
    ("nobody", "GET", "/keys", None, 401),
    ("wrong", "GET", "/keys", None, 401),
    ("virtual key", "GET", "/keys", None, 401),
]


@SQLITE_ONLY
@pytest.mark.parametrize(("who", "method", "path", "json", "status"), ROLE_CASES)
async def test_when_a_caller_uses_the_admin_api_then_its_role_decides(client, who, method, path, json, status):
    await client.post("/teams", json={"name": "search"})
    virtual = (await client.post("/keys", json={"name": "someone"})).json()["key"]
    tokens = {"viewer": VIEWER, "admin": ADMIN, "master": MASTER, "wrong": "guess", "virtual key": virtual}
    headers = {"authorization": f"Bearer {tokens[who]}"} if who in tokens else {"authorization": ""}

    r = await client.request(method, path, json=json, headers=headers)

    assert r.status_code == status, r.text
    if status >= 400:
        error = r.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["type"] == {401: "authentication_error", 403: "permission_error"}[status]


INVALID_CASES = [
    # (method, path, json, status, param)
    ("POST", "/keys", {"name": "k", "limits": {"rpm": 0}}, 400, "limits.rpm"),
    ("POST", "/keys", {"name": "k", "modles": ["small"]}, 400, "modles"),
    ("POST", "/keys", {"name": "k", "allowed_routes": ["fax"]}, 400, "allowed_routes[0]"),
    ("POST", "/keys", {"name": "k", "allowed_models": ["gpt-9"]}, 400, "allowed_models"),
    ("POST", "/keys", {"name": "a/b"}, 400, "name"),
    ("POST", "/keys", {"name": "k", "expires_at": "2001-01-01T00:00:00Z"}, 400, "expires_at"),
    ("POST", "/keys", {"name": "taken"}, 409, "name"),
    ("POST", "/keys", {}, 400, "name"),
    ("PATCH", "/keys/taken", {"limits": {"budget_daily_usd": -1}}, 400, "limits.budget_daily_usd"),
    ("PATCH", "/keys/nope", {"name": "x"}, 404, "key"),
    ("POST", "/teams", {"name": "t", "limits": {"tpm": "lots"}}, 400, "limits.tpm"),
    ("PUT", "/models/m", {"name": "m", "deployments": [{"kind": "vllm"}]}, 400, "deployments[0]"),
    ("PUT", "/models/m", {"name": "m", "deployments": []}, 400, "deployments"),
    (
        "PUT",
        "/models/m",
        {"name": "m", "deployments": [{"url": "http://h"}], "fallbacks": ["x"]},
        400,
        "models[m].fallbacks",
    ),
    ("DELETE", "/models/nope", None, 404, "name"),
]


@SQLITE_ONLY
@pytest.mark.parametrize(("method", "path", "json", "status", "param"), INVALID_CASES)
async def test_when_a_change_is_invalid_then_it_is_refused_naming_the_field(client, method, path, json, status, param):
    await client.post("/keys", json={"name": "taken"})
    r = await client.request(method, path, json=json)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["param"] == param
    named = path.rsplit("/", 1)[1] if status == 404 else param.split("[")[0].split(".")[0]
    assert named in error["message"]


async def test_when_a_model_is_set_then_this_replica_serves_the_new_list_at_once(client, runtime):
    body = {"name": "org/new", "deployments": [{"url": "http://10.0.0.9:8000", "api_key": "s3cret"}]}
    r = await client.put("/models/org/new", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["source"] == "override"
    assert "s3cret" not in r.text
    assert "org/new" in [m.name for m in runtime.models]
    assert "s3cret" not in (await client.get("/models")).text

    assert (await client.delete("/models/org/new")).status_code == 204
    assert "org/new" not in [m.name for m in runtime.models]


async def test_when_the_openapi_document_is_read_then_every_admin_operation_is_in_it(client):
    doc = (await client.get("/openapi.json", headers={})).json()
    operations = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert operations >= {
        ("GET", "/keys"),
        ("POST", "/keys"),
        ("GET", "/keys/{ref}"),
        ("PATCH", "/keys/{ref}"),
        ("POST", "/keys/{ref}/rotate"),
        ("POST", "/keys/{ref}/revoke"),
        ("GET", "/teams"),
        ("POST", "/teams"),
        ("PATCH", "/teams/{ref}"),
        ("DELETE", "/teams/{ref}"),
        ("GET", "/models"),
        ("PUT", "/models/{name}"),
        ("DELETE", "/models/{name}"),
    }
    schemas = doc["components"]["schemas"]
    assert {"KeySpec", "KeyPatch", "KeyInfo", "KeyWithSecret", "TeamSpec", "ModelConfig", "ErrorBody"} <= set(schemas)
    assert "AdminToken" in doc["components"]["securitySchemes"]
    assert "key_hash" not in str(doc)


@SQLITE_ONLY
async def test_when_mounted_under_admin_with_a_late_runtime_then_it_answers_once_started(runtime):
    holder: dict[str, AccessRuntime | None] = {"access": None}
    parent = Starlette(routes=[Mount("/admin", app=create_admin_app(lambda: holder["access"]))])
    headers = {"authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(parent), base_url="http://gw") as c:
        early = await c.get("/admin/keys", headers=headers)
        assert early.status_code == 503 and early.json()["error"]["type"] == "service_unavailable"

        holder["access"] = runtime
        assert (await c.post("/admin/keys", json={"name": "app"}, headers=headers)).status_code == 201
        assert [k["name"] for k in (await c.get("/admin/keys", headers=headers)).json()] == ["app"]
