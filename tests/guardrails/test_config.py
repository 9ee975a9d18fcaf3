"""The ``guardrails`` settings section: bad policies are refused with the field named; attachment resolves the
most specific policy (key, then team, then model, then the default)."""

from __future__ import annotations

import pytest

from gateway.errors import ConfigError
from guardrails import Guardrails, GuardrailsConfig
from interlock.settings import load_settings


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"input": {"spellcheck": {}}}, "input.spellcheck: unknown guard"),
        ({"input": {"pii": {"action": "retry"}}}, "input.pii.action: 'retry' is an output action"),
        ({"input": {"injection": {"action": "mask"}}}, "input.injection.action: 'injection' scores the whole text"),
        ({"input": {"pii": {"types": {"US_SSN": "hedge"}}}}, "input.pii.types.US_SSN"),
        ({"input": {"pii": {"threshold": 1.5}}}, "threshold"),
        ({"output": {"sentiment": {}}}, "output.sentiment: unknown guard or scorer"),
        ({"on_error": "maybe"}, "on_error"),
    ],
)
def test_when_a_policy_is_invalid_then_startup_stops_naming_the_field(policy, message):
    with pytest.raises(ConfigError) as err:
        load_settings(None, guardrails={"policies": {"p": policy}})
    assert message in str(err.value) and "guardrails.policies.p" in str(err.value)


def test_when_an_attachment_names_an_unknown_policy_then_startup_stops_naming_it():
    with pytest.raises(ConfigError, match=r"attach\.models\.m: unknown policy 'nope'"):
        load_settings(None, guardrails={"attach": {"models": {"m": "nope"}}})


def test_when_policies_attach_at_several_levels_then_the_most_specific_wins():
    config = GuardrailsConfig(
        policies={name: {"input": {"secrets": {}}} for name in ("k", "t", "m", "d")},
        attach={"keys": {"key-1": "k"}, "teams": {"team-1": "t"}, "models": {"gpt": "m"}, "default": "d"},
    )
    g = Guardrails(config)
    p = config.policies
    assert g.policy_for("key-1", None, "team-1", "gpt") is p["k"]
    assert g.policy_for("key-2", None, "team-1", "gpt") is p["t"]
    assert g.policy_for("key-2", None, "team-2", "gpt") is p["m"]
    assert g.policy_for(None, None, None, "other") is p["d"]


def test_when_nothing_is_attached_then_no_request_needs_the_guard_step():
    assert not Guardrails(GuardrailsConfig(policies={"p": {"input": {"pii": {}}}})).attached
