"""``AccessRuntime``: the settings file's teams and keys seed the database; the database then wins."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.access import AccessConfig, AccessRuntime, KeyPatch, hash_key
from gateway.db import make_engine
from gateway.errors import AuthenticationFailed, ConfigError, PermissionDenied
from gateway.types import Limits
from tests.gateway.access.conftest import MODELS

SECRET = "sk-il-from-the-environment-000000000000000000"
HASHED = "sk-il-only-its-hash-is-in-the-file-00000000000"


def _settings(**changes: Any) -> dict[str, Any]:
    data = {
        "require_keys": True,
        "teams": [{"name": "search", "allowed_models": ["small", "embed"], "limits": {"tpm": 10000}}],
        "keys": [
            {"name": "indexer", "team": "search", "key": SECRET, "limits": {"rpm": 100}},
            {"name": "batch", "key_hash": hash_key(HASHED), "allowed_models": ["large"]},
        ],
    }
    data.update(changes)
    return data


@pytest.fixture
async def boot(db_url: str) -> AsyncIterator[Callable[[dict], Any]]:
    """Start a runtime (a gateway start) from settings; several may be started in one test."""
    started = []

    async def start(settings: dict) -> AccessRuntime:
        engine = make_engine(db_url)
        runtime = AccessRuntime(AccessConfig.model_validate(settings), engine, MODELS)
        started.append((runtime, engine))
        await runtime.start()
        return runtime

    yield start
    for runtime, engine in started:
        await runtime.aclose()
        engine.dispose()


async def test_when_the_gateway_starts_then_the_settings_keys_work(boot):
    runtime = await boot(_settings())
    auth = runtime.authenticator

    indexer = auth.authenticate(f"Bearer {SECRET}")
    assert (indexer.key_limits, indexer.team_limits) == (Limits(rpm=100), Limits(tpm=10000))
    auth.authorize(indexer, "embed", "embeddings")
    with pytest.raises(PermissionDenied):
        auth.authorize(indexer, "large", "chat")
    batch = auth.authenticate(f"Bearer {HASHED}")
    auth.authorize(batch, "large", "chat")
    assert [k.name for k in await runtime.store.list_keys()] == ["batch", "indexer"]


async def test_when_the_gateway_restarts_then_admin_changes_survive_and_nothing_is_duplicated(boot):
    first = await boot(_settings())
    await first.store.update_key("indexer", KeyPatch.model_validate({"limits": {"rpm": 5}}))

    second = await boot(_settings())

    keys = await second.store.list_keys()
    assert [k.name for k in keys] == ["batch", "indexer"]
    assert [t.name for t in await second.store.list_teams()] == ["search"]
    assert second.authenticator.authenticate(f"Bearer {SECRET}").key_limits == Limits(rpm=5)


async def test_when_the_settings_give_a_key_a_new_secret_then_the_old_one_stops(boot):
    await boot(_settings())
    new_secret = "sk-il-rotated-through-the-environment-00000000"
    changed = _settings()
    changed["keys"][0]["key"] = new_secret

    runtime = await boot(changed)

    assert runtime.authenticator.authenticate(f"Bearer {new_secret}").key_name == "indexer"
    with pytest.raises(AuthenticationFailed):
        runtime.authenticator.authenticate(f"Bearer {SECRET}")


async def test_when_a_seed_names_an_unknown_model_then_startup_stops_naming_the_key(boot):
    bad = _settings(keys=[{"name": "k", "key_hash": "0" * 64, "allowed_models": ["gpt-9"]}])
    with pytest.raises(ConfigError) as err:
        await boot(bad)
    assert "access.keys[0]" in err.value.message and "allowed_models" in err.value.message


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ({"keys": [{"name": "k"}]}, "give exactly one of key_hash or key"),
        ({"keys": [{"name": "k", "key": "a", "key_hash": "0" * 64}]}, "give exactly one of key_hash or key"),
        ({"keys": [{"name": "k", "key_hash": "not-hex"}]}, "key_hash must be 64 lowercase hex"),
        ({"keys": [{"name": "k", "key": "a", "team": "ghosts"}]}, "access.keys[0].team: unknown team 'ghosts'"),
        ({"teams": [{"name": "t"}, {"name": "t"}]}, "access.teams: names must be unique"),
        ({"keys": [{"name": "k", "key": "a", "limits": {"rpm": -1}}]}, "keys.0.limits.rpm"),
        ({"keys": [{"name": "k", "key": "a", "modles": ["x"]}]}, "keys.0.modles"),
        ({"admin_tokens": {"t": "owner"}}, "admin_tokens.t"),
    ],
)
def test_when_the_access_section_is_invalid_then_the_error_names_the_problem(settings, fragment):
    with pytest.raises(ValidationError) as err:
        AccessConfig.model_validate(settings)
    assert fragment in str(err.value)
