"""A model configuration stored before it could be checked (an older release, a hand edit) must not break
the fleet: every replica applies what is valid, reports what is not, and keeps applying later changes; a
gateway started while the bad row is stored starts and serves the other models. Two ``interlock serve``
processes on one PostgreSQL database and one Redis, as replicas run."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import orjson
import pytest
import sqlalchemy as sa

from tests.support.polling import eventually
from tests.support.processes import GatewayProcess

TOKEN = "admin-token-for-tests"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
BAD = {"name": "bad", "deployments": [{"kind": "vllm", "url": "http://127.0.0.1:99999", "name": "broken"}]}


@pytest.fixture
def settings(fresh, postgres_url, redis_url, tmp_path) -> dict:
    return {
        "models": [{"name": "m", "deployments": [{"kind": "vllm", "url": fresh[0].url, "name": "d0"}]}],
        "database": {"url": postgres_url, "journal_dir": str(tmp_path / "journal")},
        "redis": {"url": redis_url},
        "access": {"admin_tokens": {TOKEN: "admin"}, "bus_channel": f"interlock:config:{uuid.uuid4().hex}"},
    }


@pytest.fixture
def processes() -> Iterator[list[GatewayProcess]]:
    started: list[GatewayProcess] = []
    yield started
    for gw in started:
        gw.cleanup()


def store_bad_row(database_url: str) -> None:
    """What an older release let through ``PUT /admin/models/bad``: the row and a version bump."""
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as c:
            c.execute(sa.text("UPDATE config_version SET version = version + 1 WHERE id = 1"))
            c.execute(
                sa.text(
                    "INSERT INTO model_overrides (name, config, deleted, updated_at) VALUES ('bad', :c, false, :t)"
                ),
                {"c": orjson.dumps(BAD).decode(), "t": datetime.now(UTC)},
            )
    finally:
        engine.dispose()


def serves(gw: GatewayProcess, name: str) -> bool:
    body = {"model": name, "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(gw.url + "/v1/chat/completions", json=body, timeout=10).status_code == 200


def rejected(gw: GatewayProcess) -> dict:
    return httpx.get(gw.url + "/ready", timeout=10).json().get("rejected_models", {})


def test_when_a_bad_model_row_is_stored_then_replicas_keep_applying_and_new_ones_start(settings, processes):
    first = GatewayProcess(settings, startup_timeout=120)
    processes.append(first)
    first.start()
    store_bad_row(settings["database"]["url"])

    # A later, valid change made on the first replica reaches it although the bad version came before.
    late = {"name": "late", "deployments": [{"kind": "vllm", "url": settings["models"][0]["deployments"][0]["url"]}]}
    late["deployments"][0]["model"] = "m"
    assert httpx.put(first.url + "/admin/models/late", json=late, headers=ADMIN, timeout=10).status_code == 200
    assert eventually(lambda: serves(first, "late"), timeout=30)
    assert "deployments.0.url" in eventually(lambda: rejected(first).get("bad"), timeout=30)

    # A replica started while the bad row is stored starts, serves the valid models and names the bad one.
    second = GatewayProcess(settings, startup_timeout=120)  # a busy CI machine starts slowly
    processes.append(second)
    second.start()
    assert serves(second, "m") and serves(second, "late")
    assert "deployments.0.url" in rejected(second)["bad"]
    assert "\ninterlock_models_rejected 1.0" in httpx.get(second.url + "/metrics", timeout=10).text
    assert "99999" not in first.output() + second.output()  # reported by field, never by value

    # The bad row can be removed through the API, and the change after it reaches both replicas.
    assert httpx.delete(second.url + "/admin/models/bad", headers=ADMIN, timeout=10).status_code == 204
    assert httpx.delete(second.url + "/admin/models/late", headers=ADMIN, timeout=10).status_code == 204
    for gw in (first, second):
        assert eventually(lambda gw=gw: not serves(gw, "late") and not rejected(gw), timeout=30)
