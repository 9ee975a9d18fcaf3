"""Virtual keys through the model API, with the ``openai`` SDK, on two replicas sharing PostgreSQL and Redis.

Keys are created, revoked and changed through the admin API of replica 0; replica 1 learns of it over the
config bus, which is what a deployment behind a load balancer relies on.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import openai
import pytest

from tests.e2e.limits.conftest import admin, chat_body, config, create_key, eventually, gateways, post, sdk
from tests.support.processes import GatewayProcess

SEEDED_KEY = "sk-il-seeded-from-yaml-0123456789abcdef"


@pytest.fixture(scope="module")
def replicas(emulator, module_postgres_url, module_redis_url) -> Iterator[list[GatewayProcess]]:
    cfg = config(
        emulator,
        database_url=module_postgres_url,
        redis_url=module_redis_url,
        keys=[{"name": "seeded", "key": SEEDED_KEY, "allowed_models": ["m"]}],
    )
    with gateways(cfg, cfg) as procs:
        yield procs


def ask(client: openai.OpenAI, model: str = "m", **kw):
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=1, **kw)


def test_when_no_key_is_sent_then_the_sdk_raises_authentication_error_in_openai_format(replicas):
    with pytest.raises(openai.AuthenticationError) as caught:
        # The SDK insists on an api_key; omit its header so the request carries none.
        ask(sdk(replicas[0], "unused"), extra_headers={"Authorization": openai.omit})
    assert caught.value.status_code == 401
    error = caught.value.response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "authentication_error" and "missing API key" in error["message"]


def test_when_an_unknown_key_is_sent_then_it_is_refused_with_401(replicas):
    with pytest.raises(openai.AuthenticationError) as caught:
        ask(sdk(replicas[1], key="sk-il-" + "x" * 32))
    assert caught.value.code == "invalid_api_key"


def test_when_a_key_is_created_through_the_admin_api_then_it_works_on_every_replica(replicas):
    created = create_key(replicas[0])
    assert created["key"].startswith("sk-il-") and created["key"].startswith(created["key_prefix"])
    assert "key" not in admin(replicas[0], "GET", f"/keys/{created['id']}")  # shown once, at creation
    assert ask(sdk(replicas[0], created["key"])).choices[0].message.content
    # The other replica hears of the key over the config bus.
    assert eventually(lambda: post(replicas[1], created["key"], chat_body()).status_code == 200, timeout=2.0)


def test_when_a_key_is_limited_to_other_models_then_the_sdk_raises_permission_denied_naming_the_model(replicas):
    created = create_key(replicas[0], allowed_models=["other"])
    client = sdk(replicas[0], created["key"])
    assert ask(client, "other").choices
    with pytest.raises(openai.PermissionDeniedError) as caught:
        ask(client, "m")
    assert caught.value.status_code == 403
    assert "'m'" in caught.value.message and caught.value.body["param"] == "model"


def test_when_a_key_is_revoked_on_one_replica_then_the_other_refuses_it_within_a_second(replicas):
    created = create_key(replicas[0])
    client = sdk(replicas[1], created["key"])
    assert eventually(lambda: post(replicas[1], created["key"], chat_body()).status_code == 200, timeout=2.0)
    admin(replicas[0], "POST", f"/keys/{created['id']}/revoke")
    assert eventually(lambda: post(replicas[1], created["key"], chat_body()).status_code == 401, timeout=1.0)
    with pytest.raises(openai.AuthenticationError) as caught:
        ask(client)
    assert caught.value.code == "revoked_api_key" and "revoked" in caught.value.message


def test_when_a_key_has_expired_then_it_is_refused_with_401(replicas):
    # Expiry must lie in the future when set, so the key is made to expire a second from now.
    created = create_key(replicas[0], expires_at=(datetime.now(UTC) + timedelta(seconds=1)).isoformat())
    assert post(replicas[0], created["key"], chat_body()).status_code == 200
    for gw in replicas:
        assert eventually(lambda gw=gw: post(gw, created["key"], chat_body()).status_code == 401, timeout=3.0)
    with pytest.raises(openai.AuthenticationError) as caught:
        ask(sdk(replicas[1], created["key"]))
    assert caught.value.code == "expired_api_key" and "expired" in caught.value.message


def test_when_a_key_is_seeded_from_yaml_then_it_works_on_every_replica_with_its_grants(replicas):
    for gw in replicas:
        assert ask(sdk(gw, SEEDED_KEY)).choices
        with pytest.raises(openai.PermissionDeniedError):
            ask(sdk(gw, SEEDED_KEY), "other")
    listed = admin(replicas[1], "GET", "/keys")
    assert [k["name"] for k in listed].count("seeded") == 1  # two replicas started together seed it once


def test_when_listing_models_then_a_key_sees_only_what_it_may_use(replicas):
    seeded = sdk(replicas[0], SEEDED_KEY)
    assert [m.id for m in seeded.models.list()] == ["m"]
    everything = {m.id for m in sdk(replicas[0], create_key(replicas[0])["key"]).models.list()}
    assert everything > {"m"}
    with pytest.raises(openai.AuthenticationError):
        sdk(replicas[0], "unused").models.list(extra_headers={"Authorization": openai.omit})
