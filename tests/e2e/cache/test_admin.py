"""Cache administration: invalidation through the API and the CLI, refused requests and configs, metrics."""

from __future__ import annotations

import httpx
import pytest
from click.testing import CliRunner

from tests.e2e.cache.conftest import ADMIN, admin, ask, until

CACHE = {"scope": "team", "exact": {"ttl": 600}}
Q = "Explain the Pythagorean theorem."


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"scope": "tenant"}, "scope"),
        ({"owner": "t1"}, "owner"),
        ({"older_than": "-5"}, "older_than"),
        ({"older_than": "soon"}, "older_than"),
        ({"kind": "fuzzy"}, "kind"),
        ({"modle": "m"}, "modle"),  # a misspelt filter must not purge everything
        ({}, "scope"),  # no filter at all needs all=true
    ],
)
def test_when_an_invalidation_request_is_invalid_then_it_is_a_400_naming_the_field(gateway, params, field):
    url = gateway(CACHE)
    r = admin(url, "DELETE", "/cache", params=params)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == field


def test_when_the_cache_of_a_model_is_cleared_then_the_next_request_is_a_miss(gateway):
    url = gateway(CACHE)
    ask(url, "x", Q)
    until(lambda: ask(url, "x", Q), "hit-exact")
    r = admin(url, "DELETE", "/cache", params={"model": "m", "older_than": 0})
    assert r.status_code == 200 and r.json()["exact"] == 1
    assert ask(url, "x", Q).headers["x-interlock-cache"] == "miss"


def test_when_the_cli_clears_a_scope_then_entries_of_that_scope_go(gateway):
    from interlock.cli import main

    url = gateway(CACHE)
    ask(url, "x", Q)
    until(lambda: ask(url, "x", Q), "hit-exact")
    result = CliRunner().invoke(main, ["cache", "clear", "--scope", "team", "--url", url + "/admin", "--token", ADMIN])
    assert result.exit_code == 0, result.output
    assert "exact: 1" in result.output
    assert ask(url, "x", Q).headers["x-interlock-cache"] == "miss"
    bad = CliRunner().invoke(main, ["cache", "clear", "--url", url + "/admin", "--token", ADMIN])
    assert bad.exit_code == 1 and "all=true" in bad.output


@pytest.mark.parametrize(
    ("cache", "field"),
    [
        ({"scope": "tenant"}, "cache.scope"),
        ({"semantic": {"threshold": 2}}, "cache.semantic.threshold"),
        ({"exact": {"ttl": 0}}, "cache.exact.ttl"),
        ({"exact": {"tll": 60}}, "cache.exact.tll"),
    ],
)
def test_when_a_model_cache_section_is_invalid_then_the_admin_api_refuses_it_naming_the_field(
    gateway, replica, cache, field
):
    url = gateway(CACHE)
    body = {"name": "m", "deployments": [{"kind": "vllm", "url": replica.url}], "cache": cache}
    r = admin(url, "PUT", "/models/m", json=body)
    assert r.status_code == 400, r.text
    assert field in r.json()["error"]["message"]


def test_when_a_model_override_changes_its_cache_then_the_gateway_applies_it(gateway, replica):
    url = gateway(CACHE)
    body = {"name": "m", "deployments": [{"kind": "vllm", "url": replica.url}], "cache": None}
    assert admin(url, "PUT", "/models/m", json=body).status_code in (200, 201)
    r = until(lambda: ask(url, "x", Q), None)  # no cache section: the step stays out of the way
    assert r.headers.get("x-interlock-cache") is None


def test_when_hits_happen_then_metrics_count_them_with_tokens_saved(gateway):
    url = gateway(CACHE)
    ask(url, "x", Q)
    until(lambda: ask(url, "x", Q), "hit-exact")
    text = httpx.get(url + "/metrics").text
    assert 'interlock_cache_requests_total{model="m",result="hit-exact",scope="team"}' in text
    assert 'interlock_cache_requests_total{model="m",result="miss",scope="team"}' in text
    assert 'interlock_cache_tokens_saved_total{kind="exact",model="m"}' in text
