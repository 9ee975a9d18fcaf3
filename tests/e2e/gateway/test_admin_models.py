"""Models changed through the admin API are served by the running gateway within a second, without a restart."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.gateway.conftest import client
from tests.support.gateway import model
from tests.support.polling import eventually

ADMIN = {"Authorization": "Bearer admin-token-for-tests"}


def test_when_an_admin_adds_and_removes_a_model_then_the_gateway_serves_it_and_stops(fresh, gateway, redis_url):
    url, _ = gateway(
        models=[model("m", fresh[0].url)],
        redis={"url": redis_url},
        access={"admin_tokens": {"admin-token-for-tests": "admin"}},
    )
    body = {"name": "late", "deployments": [{"kind": "vllm", "url": fresh[1].url, "model": "m", "name": "new"}]}
    r = httpx.put(url + "/admin/models/late", json=body, headers=ADMIN)
    assert r.status_code in (200, 201), r.text

    def served() -> bool:
        reply = httpx.post(
            url + "/v1/chat/completions", json={"model": "late", "messages": [{"role": "user", "content": "x"}]}
        )
        return reply.status_code == 200 and reply.headers["x-interlock-upstream"] == "new"

    assert eventually(served, timeout=1.5)
    assert "late" in {m.id for m in client(url).models.list()}
    assert httpx.delete(url + "/admin/models/late", headers=ADMIN).status_code == 204
    assert eventually(
        timeout=1.5,
        check=lambda: (
            httpx.post(
                url + "/v1/chat/completions", json={"model": "late", "messages": [{"role": "user", "content": "x"}]}
            ).status_code
            == 404
        ),
    )


def test_when_an_admin_change_is_invalid_then_it_is_refused_naming_the_field(fresh, gateway):
    url, _ = gateway(models=[model("m", fresh[0].url)], access={"admin_tokens": {"admin-token-for-tests": "admin"}})
    r = httpx.put(url + "/admin/models/bad", json={"name": "bad", "deployments": [{"kind": "vllm"}]}, headers=ADMIN)
    assert r.status_code == 400
    assert "url" in r.json()["error"]["message"]
    assert httpx.get(url + "/admin/models", headers={"Authorization": "Bearer wrong"}).status_code == 401


@pytest.mark.parametrize("bad_url", ["http://127.0.0.1:99999", "http://[::1", "ftp://127.0.0.1:8000", "http://"])
def test_when_a_deployment_url_is_invalid_then_the_change_is_a_400_naming_the_field(fresh, gateway, bad_url):
    url, _ = gateway(models=[model("m", fresh[0].url)], access={"admin_tokens": {"admin-token-for-tests": "admin"}})
    body = {"name": "bad", "deployments": [{"kind": "vllm", "url": bad_url}]}
    r = httpx.put(url + "/admin/models/bad", json=body, headers=ADMIN)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "deployments[0].url"
    assert httpx.get(url + "/admin/models/bad", headers=ADMIN).status_code == 404
    assert client(url).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}]).choices
