"""Stored guardrail policies through ``PolicyRuntime`` (the Python API the admin routes call): the most specific
attachment wins, YAML policies stay beside stored ones, a stored policy of the same name overrides the YAML's."""

from __future__ import annotations

import asyncio

import pytest

from gateway.access.bus import ConfigBus
from gateway.db import make_engine, migrate
from gateway.guard_policies import PolicyRuntime
from guardrails import GuardConfigError, Guardrails, GuardrailsConfig


def run(coro):
    return asyncio.run(coro)


async def runtime_for(url: str, yaml: dict) -> tuple[Guardrails, PolicyRuntime, ConfigBus]:
    migrate(url)
    engine = make_engine(url)
    bus = ConfigBus(engine)
    guards = Guardrails(GuardrailsConfig.model_validate({"enabled": True, **yaml}))  # built, never loaded
    policies = PolicyRuntime(guards, engine, bus)
    await bus.start()
    return guards, policies, bus


YAML = {
    "policies": {"base": {"output": {"empty": {"action": "block"}}}},
    "attach": {"models": {"m": "base"}},
}


def test_when_policies_attach_to_model_team_and_key_then_the_most_specific_wins(sqlite_url):
    async def scenario():
        guards, policies, bus = await runtime_for(sqlite_url, YAML)
        try:
            await policies.put("for-team", {"output": {"refusal": {"action": "retry"}}, "attach": {"teams": ["t1"]}})
            await policies.put("for-key", {"output": {"json": {"action": "block"}}, "attach": {"keys": ["k1"]}})
            by_model = guards.policy_for(None, None, None, "m")
            by_team = guards.policy_for(None, None, "t1", "m")
            by_key = guards.policy_for("k1", None, "t1", "m")
            other = guards.policy_for("k2", None, "t2", "other")
            return by_model, by_team, by_key, other
        finally:
            await bus.aclose()

    by_model, by_team, by_key, other = run(scenario())
    assert list(by_model.output) == ["empty"]
    assert list(by_team.output) == ["refusal"]
    assert list(by_key.output) == ["json"]
    assert other is None


def test_when_a_stored_policy_has_a_yaml_name_then_it_overrides_until_deleted(sqlite_url):
    async def scenario():
        guards, policies, bus = await runtime_for(sqlite_url, YAML)
        try:
            await policies.put("base", {"output": {"refusal": {"action": "block"}}})
            stored = list(guards.policy_for(None, None, None, "m").output)
            sources = {p["name"]: p["source"] for p in policies.describe()}
            assert await policies.delete("base")
            restored = list(guards.policy_for(None, None, None, "m").output)
            return stored, sources, restored
        finally:
            await bus.aclose()

    stored, sources, restored = run(scenario())
    assert stored == ["refusal"] and sources == {"base": "database"}
    assert restored == ["empty"]


def test_when_a_stored_policy_is_invalid_then_the_error_names_the_field(sqlite_url):
    async def scenario():
        _, policies, bus = await runtime_for(sqlite_url, YAML)
        try:
            with pytest.raises(GuardConfigError) as info:
                await policies.put("x", {"output": {"toxicity": {"action": "hedge", "threshold": 3}}})
            return info.value.field
        finally:
            await bus.aclose()

    assert run(scenario()) == "output.toxicity.threshold"
