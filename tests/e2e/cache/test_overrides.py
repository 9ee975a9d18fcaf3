"""A key's or team's ``metadata.cache`` replaces a model's cache section for its callers."""

from __future__ import annotations

import contextlib

from tests.e2e.cache.conftest import KEYS, admin, ask, settings, until
from tests.support.gateway import running_gateway

Q = "Explain the Pythagorean theorem."


def test_when_a_team_overrides_the_scope_then_its_keys_share_and_a_key_can_turn_the_cache_off(replica, tmp_path):
    replica.reset()
    cfg = settings(replica, {"scope": "key"}, tmp_path)
    cfg["access"]["teams"] = [{"name": "team-a", "metadata": {"cache": {"m": {"scope": "team"}}}}, {"name": "team-b"}]
    cfg["access"]["keys"] = [
        {"name": n, "key": k, "team": t, "metadata": {"cache": {"*": None}} if n == "y" else {}}
        for n, (k, t) in KEYS.items()
    ]
    with contextlib.ExitStack() as stack:
        url, _ = stack.enter_context(running_gateway(**cfg))
        ask(url, "x", Q)
        until(lambda: ask(url, "x", Q), "hit-exact")
        assert ask(url, "y", Q).headers.get("x-interlock-cache") is None  # y's own key: no cache at all
        assert ask(url, "z", Q).headers["x-interlock-cache"] == "miss"  # team-b: the model's key scope
        # Another key of team-a shares x's entry under the team scope the team chose.
        r = admin(url, "PATCH", "/keys/y", json={"metadata": {}})
        assert r.status_code == 200, r.text
        until(lambda: ask(url, "y", Q), "hit-exact")


def test_when_a_key_override_is_invalid_then_the_admin_api_refuses_it_naming_the_field(gateway):
    url = gateway({"scope": "key"})
    r = admin(url, "PATCH", "/keys/x", json={"metadata": {"cache": {"m": {"scope": "tenant"}}}})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "metadata" and "cache.m.scope" in r.json()["error"]["message"]
