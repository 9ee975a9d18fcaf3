"""``AccessStore`` against real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gateway.access import AccessStore, KeyPatch, KeySpec, LimitsSpec, TeamPatch, TeamSpec
from gateway.config import ModelConfig
from gateway.errors import InvalidRequest, ModelNotFound, NotFound
from tests.gateway.access.conftest import MODELS


@pytest.fixture
def store(engine: sa.Engine) -> AccessStore:
    return AccessStore(engine, MODELS)


def _rows(engine: sa.Engine, table: str) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(f"SELECT * FROM {table}"))]


async def test_when_a_key_is_created_then_only_its_hash_and_prefix_are_stored(store, engine):
    created = await store.create_key(KeySpec(name="app", allowed_models=["small"]))

    rows = _rows(engine, "api_keys")
    assert len(rows) == 1
    assert rows[0]["key_hash"] == hashlib.sha256(created.key.encode()).hexdigest()
    assert rows[0]["key_prefix"] == created.key[:14] == created.key_prefix
    everything = " ".join(str(v) for row in rows for v in row.values())
    assert created.key not in everything
    assert created.key[14:] not in everything


async def test_when_keys_are_listed_then_no_secret_or_hash_is_returned(store, engine):
    created = await store.create_key(KeySpec(name="app"))
    listed = await store.list_keys()
    dumped = listed[0].model_dump_json()
    assert created.key not in dumped
    assert _rows(engine, "api_keys")[0]["key_hash"] not in dumped


async def test_when_a_key_is_updated_then_only_the_sent_fields_change(store):
    await store.create_key(KeySpec(name="app", allowed_models=["small"], limits=LimitsSpec(rpm=10, tpm=1000)))
    patch = KeyPatch.model_validate({"limits": {"rpm": 20}, "allowed_routes": ["chat"]})
    updated = await store.update_key("app", patch)
    assert updated.limits.rpm == 20
    assert updated.limits.tpm == 1000
    assert updated.allowed_models == ["small"]
    assert updated.allowed_routes == ["chat"]

    cleared = await store.update_key("app", KeyPatch.model_validate({"allowed_models": None}))
    assert cleared.allowed_models is None


async def test_when_a_key_is_rotated_then_its_hash_changes_and_its_grants_stay(store, engine):
    first = await store.create_key(KeySpec(name="app", allowed_models=["small"]))
    second = await store.rotate_key(first.id)
    assert second.id == first.id and second.key != first.key
    assert second.allowed_models == ["small"]
    row = _rows(engine, "api_keys")[0]
    assert row["key_hash"] == hashlib.sha256(second.key.encode()).hexdigest()
    assert row["previous_key_hash"] is None


async def test_when_a_key_is_revoked_then_its_name_can_be_used_again(store):
    first = await store.create_key(KeySpec(name="app"))
    revoked = await store.revoke_key("app")
    assert revoked.status == "revoked"
    again = await store.create_key(KeySpec(name="app"))
    assert again.id != first.id
    assert [k.id for k in await store.list_keys()] == [again.id]
    assert {k.id for k in await store.list_keys(include_revoked=True)} == {first.id, again.id}


async def test_when_a_key_is_looked_up_then_id_name_and_prefix_all_find_it(store):
    created = await store.create_key(KeySpec(name="app"))
    for ref in (created.id, "app", created.key_prefix):
        assert (await store.get_key(ref)).id == created.id
    with pytest.raises(NotFound) as err:
        await store.get_key("nope")
    assert err.value.status == 404


@pytest.mark.parametrize(
    ("spec", "param"),
    [
        ({"name": "k", "allowed_models": ["gpt-9"]}, "allowed_models"),
        ({"name": "k", "expires_at": datetime.now(UTC) - timedelta(days=1)}, "expires_at"),
        ({"name": "k", "team": "no-such-team"}, "team"),
    ],
)
async def test_when_a_key_is_invalid_then_the_error_names_the_field(store, spec, param):
    with pytest.raises((InvalidRequest, NotFound)) as err:
        await store.create_key(KeySpec.model_validate(spec))
    assert err.value.param == param
    assert await store.list_keys() == []


async def test_when_a_live_key_name_is_taken_then_create_is_a_409_naming_name(store):
    await store.create_key(KeySpec(name="app"))
    with pytest.raises(InvalidRequest) as err:
        await store.create_key(KeySpec(name="app"))
    assert (err.value.status, err.value.param) == (409, "name")


async def test_when_a_team_has_live_keys_then_it_cannot_be_deleted(store):
    team = await store.create_team(TeamSpec(name="search", allowed_models=["small", "large"]))
    key = await store.create_key(KeySpec(name="app", team="search"))
    assert key.team_id == team.id and key.team_name == "search"
    with pytest.raises(InvalidRequest) as err:
        await store.delete_team("search")
    assert err.value.param == "team"

    await store.revoke_key("app")
    await store.delete_team("search")
    assert await store.list_teams() == []
    assert (await store.get_key(key.id)).team_id is None


async def test_when_a_team_is_renamed_then_keys_show_the_new_name(store):
    await store.create_team(TeamSpec(name="search"))
    await store.create_key(KeySpec(name="app", team="search"))
    await store.update_team("search", TeamPatch(name="retrieval"))
    assert (await store.get_key("app")).team_name == "retrieval"


async def test_when_a_model_is_set_then_it_overlays_the_yaml_model(store):
    replaced = ModelConfig(name="small", deployments=[{"url": "http://10.0.0.1:8000"}], routing="least_outstanding")
    await store.set_model("small", replaced)
    added = ModelConfig(name="org/new", deployments=[{"url": "http://10.0.0.2:8000"}], fallbacks=["small"])
    await store.set_model("org/new", added)

    models = {m.name: m for m in await store.list_models()}
    assert models["small"].source == "override"
    assert models["small"].config.routing == "least_outstanding"
    assert models["large"].source == "yaml"
    assert models["org/new"].config.fallbacks == ["small"]
    assert [m.name for m in store.load_models()] == ["small", "large", "embed", "org/new"]


async def test_when_a_model_is_deleted_then_it_leaves_the_effective_list(store):
    await store.delete_model("large")
    assert [m.name for m in store.load_models()] == ["small", "embed"]
    with pytest.raises(ModelNotFound):
        await store.get_model("large")


async def test_when_a_model_change_breaks_a_fallback_then_it_is_refused_naming_it(store):
    with pytest.raises(InvalidRequest) as err:
        await store.set_model("x", ModelConfig(name="x", deployments=[{"url": "http://h"}], fallbacks=["nope"]))
    assert err.value.param == "models[x].fallbacks"

    await store.set_model("x", ModelConfig(name="x", deployments=[{"url": "http://h"}], fallbacks=["small"]))
    with pytest.raises(InvalidRequest) as err:
        await store.delete_model("small")
    assert err.value.param == "models[x].fallbacks"


async def test_when_a_model_body_names_another_model_then_it_is_refused(store):
    with pytest.raises(InvalidRequest) as err:
        await store.set_model("a", ModelConfig(name="b", deployments=[{"url": "http://h"}]))
    assert err.value.param == "name"


async def test_when_a_model_has_an_api_key_then_it_survives_storage(store):
    cfg = ModelConfig(name="paid", deployments=[{"kind": "openai", "url": "http://h", "api_key": "s3cret"}])
    await store.set_model("paid", cfg)
    loaded = {m.name: m for m in store.load_models()}["paid"]
    assert loaded.deployments[0].api_key.get_secret_value() == "s3cret"


async def test_when_changes_are_made_then_the_version_row_counts_them(store):
    before = store.read_version()
    await store.create_team(TeamSpec(name="t"))
    await store.create_key(KeySpec(name="k", team="t"))
    assert store.read_version() == before + 2
    with pytest.raises(InvalidRequest):
        await store.create_key(KeySpec(name="k"))
    assert store.read_version() == before + 2  # a refused change bumps nothing


async def test_when_changes_race_then_each_commits_with_its_own_version(store):
    before = store.read_version()
    created = await asyncio.gather(*(store.create_key(KeySpec(name=f"k{i}")) for i in range(12)))
    assert len({k.id for k in created}) == 12
    assert store.read_version() == before + 12


def _store_raw(engine: sa.Engine, name: str, config: object) -> None:
    """A row as an older release (or a hand edit) could have left it: never checked by ``set_model``."""
    import orjson

    with engine.begin() as c:
        c.execute(
            sa.text("INSERT INTO model_overrides (name, config, deleted, updated_at) VALUES (:n, :c, false, :t)"),
            {"n": name, "c": orjson.dumps(config).decode(), "t": datetime.now(UTC)},
        )


async def test_when_stored_models_do_not_validate_then_they_are_skipped_and_named(store, engine):
    secret = "sk-do-not-echo-me"
    _store_raw(engine, "bad", {"name": "bad", "deployments": [{"url": "http://127.0.0.1:99999", "api_key": secret}]})
    _store_raw(engine, "large", {"name": "large", "deployments": [{"url": "http://[::1"}]})
    _store_raw(engine, "alias", {"name": "small", "deployments": [{"url": "http://10.0.0.1:8000"}]})
    _store_raw(engine, "junk", [1, 2])
    errors: dict[str, str] = {}

    models = store.load_models(errors)

    assert [m.name for m in models] == ["small", "large", "embed"]
    assert models[1] == MODELS[1]  # a bad override of a YAML model leaves the YAML model served
    assert set(errors) == {"bad", "large", "alias", "junk"}
    assert "deployments.0.url" in errors["bad"] and "deployments.0.url" in errors["large"]
    assert "'small'" in errors["alias"]
    assert not any(secret in e or "99999" in e for e in errors.values())
    await store.delete_model("bad")  # an invalid row can still be removed through the API
    errors.clear()
    store.load_models(errors)
    assert "bad" not in errors
