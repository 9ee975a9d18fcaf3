"""``Authenticator``: the hot-path checks, table-driven, over keys made through the real store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from gateway.access import AccessConfig, AccessStore, Authenticator, Change, KeySpec, LimitsSpec, TeamSpec
from gateway.db import make_engine, migrate
from gateway.errors import AuthenticationFailed, PermissionDenied
from gateway.types import Limits
from tests.gateway.access.conftest import MODELS

MASTER = "sk-il-master-for-tests-0123456789"


class Clock:
    """A settable clock so expiry is tested without waiting."""

    __test__ = False

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def _make_keys(store: AccessStore) -> dict[str, str]:
    """One full key per situation, made through the store as the admin API makes them."""
    await store.create_team(TeamSpec(name="search", allowed_models=["small", "embed"], limits=LimitsSpec(rpm=600)))
    out = {}
    out["valid"] = (await store.create_key(KeySpec(name="valid", limits=LimitsSpec(rpm=60)))).key
    revoked = await store.create_key(KeySpec(name="revoked"))
    await store.revoke_key(revoked.id)
    out["revoked"] = revoked.key
    soon = datetime.now(UTC) + timedelta(hours=1)
    out["expiring"] = (await store.create_key(KeySpec(name="expiring", expires_at=soon))).key
    old = await store.create_key(KeySpec(name="rotated"))
    out["rotated_new"] = (await store.rotate_key(old.id)).key
    out["rotated_old"] = old.key
    graced = await store.create_key(KeySpec(name="graced"))
    out["graced_new"] = (await store.rotate_key(graced.id, grace_seconds=600)).key
    out["graced_old"] = graced.key
    out["small_only"] = (await store.create_key(KeySpec(name="small_only", allowed_models=["small"]))).key
    out["team_all"] = (await store.create_key(KeySpec(name="team_all", team="search"))).key
    spec = KeySpec(name="team_narrow", team="search", allowed_models=["small", "large"])
    out["team_narrow"] = (await store.create_key(spec)).key
    out["chat_only"] = (await store.create_key(KeySpec(name="chat_only", allowed_routes=["chat"]))).key
    return out


@pytest.fixture(scope="module")
def keyring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AccessStore, dict[str, str]]]:
    """A store holding the keys above, shared by this module (the tests below only read it)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('keys')}/interlock.db"
    migrate(url)
    engine = make_engine(url)
    store = AccessStore(engine, MODELS)
    yield store, asyncio.run(_make_keys(store))
    engine.dispose()


@pytest.fixture
def store(keyring) -> AccessStore:
    return keyring[0]


@pytest.fixture
def keys(keyring) -> dict[str, str]:
    return keyring[1]


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _auth(store: AccessStore, clock: Clock, **config) -> Authenticator:
    return Authenticator(AccessConfig(master_key=MASTER, **config), store, clock=clock)


AUTH_CASES = [
    # (situation, header, seconds later, keys required, outcome: key name | "anonymous" | error fragment)
    ("valid key", "valid", 0, True, "key:valid"),
    ("lower-case scheme", "bearer valid", 0, True, "key:valid"),
    ("unknown key", "sk-il-unknown00000000000000000000000000000000000", 0, True, "401:invalid API key sk-il-unknown0"),
    ("revoked key", "revoked", 0, True, "401:has been revoked"),
    ("before expiry", "expiring", 3500, True, "key:expiring"),
    ("after expiry", "expiring", 3700, True, "401:has expired"),
    ("rotated: new secret", "rotated_new", 0, True, "key:rotated"),
    ("rotated: old secret", "rotated_old", 0, True, "401:invalid API key"),
    ("grace: old secret within grace", "graced_old", 500, True, "key:graced"),
    ("grace: old secret after grace", "graced_old", 700, True, "401:was rotated"),
    ("grace: new secret after grace", "graced_new", 700, True, "key:graced"),
    ("master key", MASTER, 0, True, "key:master"),
    ("no header, keys required", None, 0, True, "401:missing API key"),
    ("no header, keys optional", None, 0, False, "anonymous"),
    ("placeholder, keys optional", "EMPTY", 0, False, "anonymous"),
    ("placeholder, keys required", "EMPTY", 0, True, "401:invalid API key"),
    ("unknown sk-il- key, keys optional", "sk-il-unknown0000000000000000000000", 0, False, "401:invalid API key"),
    ("not bearer", "basic valid", 0, True, "401:malformed Authorization header"),
]


def _header(token: str | None, keys: dict[str, str]) -> str | None:
    if token is None:
        return None
    scheme, _, name = token.rpartition(" ")
    return f"{scheme or 'Bearer'} {keys.get(name, name)}"


@pytest.mark.parametrize(("situation", "token", "later", "required", "outcome"), AUTH_CASES)
async def test_when_a_caller_authenticates_then_the_key_decides(
    store, clock, keys, situation, token, later, required, outcome
):
    auth = _auth(store, clock, require_keys=required)
    await auth.apply(None)
    clock.now += later
    header = _header(token, keys)

    if outcome == "anonymous":
        assert auth.authenticate(header).key_id is None, situation
    elif outcome.startswith("key:"):
        assert auth.authenticate(header).key_name == outcome[4:], situation
    else:
        with pytest.raises(AuthenticationFailed) as err:
            auth.authenticate(header)
        assert err.value.status == 401
        assert outcome[4:] in err.value.message, situation
        assert header is None or header.split(" ", 1)[1] not in err.value.message  # never echo a secret


PERMISSION_CASES = [
    # (key, model, route, allowed)
    ("valid", "large", "chat", True),
    ("small_only", "small", "chat", True),
    ("small_only", "large", "chat", False),
    ("team_all", "embed", "embeddings", True),  # the team's grants apply to a key without its own
    ("team_all", "large", "chat", False),
    ("team_narrow", "small", "chat", True),  # key ∩ team
    ("team_narrow", "large", "chat", False),  # the key allows it, the team does not
    ("team_narrow", "embed", "chat", False),  # the team allows it, the key does not
    ("chat_only", "small", "chat", True),
    ("chat_only", "small", "embeddings", False),
]


@pytest.mark.parametrize(("name", "model", "route", "allowed"), PERMISSION_CASES)
async def test_when_a_key_calls_a_model_then_its_grants_decide(store, clock, keys, name, model, route, allowed):
    auth = _auth(store, clock)
    await auth.apply(None)
    principal = auth.authenticate(f"Bearer {keys[name]}")
    if allowed:
        auth.authorize(principal, model, route)
        return
    with pytest.raises(PermissionDenied) as err:
        auth.authorize(principal, model, route)
    body = err.value.to_openai()["error"]
    assert err.value.status == 403 and body["type"] == "permission_error"
    assert (model in body["message"]) if route == "chat" else (route in body["message"])


async def test_when_a_key_is_in_a_team_then_both_limits_reach_the_principal(store, clock, keys):
    auth = _auth(store, clock)
    await auth.apply(None)
    team_key = auth.authenticate(f"Bearer {keys['team_all']}")
    assert team_key.key_limits is None
    assert team_key.team_limits == Limits(rpm=600)
    own = auth.authenticate(f"Bearer {keys['valid']}")
    assert own.key_limits == Limits(rpm=60) and own.team_limits is None


async def test_when_the_master_key_is_used_then_every_model_is_allowed(store, clock, keys):
    auth = _auth(store, clock)
    await auth.apply(None)
    principal = auth.authenticate(f"Bearer {MASTER}")
    auth.authorize(principal, "anything", "embeddings")
    assert principal.allowed_models is None


async def test_when_a_change_is_applied_then_only_that_key_is_reloaded(store, clock, keys):
    auth = _auth(store, clock)
    await auth.apply(None)
    before = auth.key_count
    created = await store.create_key(KeySpec(name="late"))
    with pytest.raises(AuthenticationFailed):
        auth.authenticate(f"Bearer {created.key}")  # no bus here: nothing told this replica yet

    await auth.apply(Change(version=0, kind="key", ids=(created.id,)))
    assert auth.authenticate(f"Bearer {created.key}").key_name == "late"
    assert auth.key_count == before + 1
