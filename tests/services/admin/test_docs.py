"""The admin API's documentation tells the truth: what the responses hold, which statuses come back, and it loads
without internet."""

from __future__ import annotations

import re

import httpx
import pytest
import schemathesis
from starlette.applications import Starlette
from starlette.routing import Mount

from gateway.access import AccessRuntime
from services.admin import create_admin_app
from tests.services.admin.conftest import ADMIN

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def conforms(doc: dict, method: str, path: str, response: httpx.Response) -> None:
    """``response`` has a status the document lists for the operation and a body its schema accepts, as
    schemathesis judges them (it reads ``writeOnly`` as "never in a response", as the issue's probe did)."""
    documented = doc["paths"][path][method]["responses"]
    assert str(response.status_code) in documented, (response.status_code, sorted(documented))
    schemathesis.openapi.from_dict(doc)[path][method.upper()].validate_response(response)


@SQLITE_ONLY
async def test_when_models_are_listed_then_a_null_api_key_matches_the_document(client):
    doc = (await client.get("/openapi.json")).json()
    listed = await client.get("/models")
    assert listed.json()[0]["config"]["deployments"][0]["api_key"] is None
    conforms(doc, "get", "/models", listed)
    secret = {"name": "paid", "deployments": [{"kind": "openai", "url": "http://127.0.0.1:9", "api_key": "sk-up"}]}
    assert (await client.put("/models/paid", json=secret)).status_code == 200
    shown = await client.get("/models/paid")
    assert shown.json()["config"]["deployments"][0]["api_key"] == "**********"  # masked, never the secret
    conforms(doc, "get", "/models/{name}", shown)


@SQLITE_ONLY
async def test_when_a_team_name_is_taken_then_the_409_is_in_the_document(client):
    doc = (await client.get("/openapi.json")).json()
    assert (await client.post("/teams", json={"name": "blue"})).status_code == 201
    again = await client.post("/teams", json={"name": "blue"})
    assert again.status_code == 409
    conforms(doc, "post", "/teams", again)


@SQLITE_ONLY
async def test_when_input_is_invalid_then_the_document_lists_the_400_it_gets_and_no_422(client):
    doc = (await client.get("/openapi.json")).json()
    refused = await client.post("/teams", json={"name": 5})
    conforms(doc, "post", "/teams", refused)
    assert '"422"' not in str(doc).replace("'", '"')


@SQLITE_ONLY
async def test_when_docs_are_opened_under_admin_then_every_asset_is_served_locally(runtime: AccessRuntime):
    parent = Starlette(routes=[Mount("/admin", app=create_admin_app(runtime))])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(parent), base_url="http://gw") as c:
        for page in ("/admin/docs", "/admin/redoc"):
            html = (await c.get(page)).text
            assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
            assert assets and not [a for a in assets if "://" in a or a.startswith("//")], assets
            for asset in assets:
                loaded = await c.get(asset)
                assert loaded.status_code == 200 and loaded.content, asset
        openapi_url = re.search(r"""url: ?['"]([^'"]+)['"]""", (await c.get("/admin/docs")).text).group(1)
        assert openapi_url == "/admin/openapi.json"
        assert (await c.get(openapi_url, headers={"authorization": f"Bearer {ADMIN}"})).status_code == 200


@SQLITE_ONLY
async def test_when_an_admin_path_gets_a_method_it_does_not_take_then_405_says_which_it_takes(client):
    refused = await client.put("/teams")
    assert refused.status_code == 405 and refused.json()["error"]["code"] == "method_not_allowed"
    assert set(refused.headers["allow"].split(", ")) == {"GET", "POST"}
