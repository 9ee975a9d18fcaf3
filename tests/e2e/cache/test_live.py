"""The caches follow admin changes on every replica without a restart: an invalidation reaches the other replicas'
in-process caches, and a first cache section (a model's, or a key's override) turns the cache on live."""

from __future__ import annotations

import contextlib
import time
import uuid

from tests.e2e.cache.conftest import admin, ask, settings, until
from tests.support.gateway import running_gateway

Q = "Explain the Pythagorean theorem."
OTHER = "How do I reverse a list in Python?"


def test_when_one_replica_clears_the_cache_then_the_other_replicas_in_process_entries_go_too(replica, tmp_path):
    """Two gateways on one database, no Redis: each keeps its own in-process exact and semantic caches."""
    replica.reset()
    cache = {"scope": "team", "semantic": {"enabled": True}}
    with contextlib.ExitStack() as stack:
        a, b = (stack.enter_context(running_gateway(**settings(replica, cache, tmp_path)))[0] for _ in range(2))
        for url in (a, b):
            for caller in ("x", "z"):  # two partitions (teams a and b)
                ask(url, caller, OTHER)
                until(lambda url=url, caller=caller: ask(url, caller, OTHER), "hit-exact")
        r = admin(a, "DELETE", "/cache", params={"model": "m", "kind": "all"})
        assert r.status_code == 200 and r.json() == {"exact": 2, "semantic": 2}, r.text
        assert ask(a, "x", OTHER).headers["x-interlock-cache"] == "miss"
        # B hears of it over the config bus (polling the version row here) and drops its own entries, both kinds:
        # z's exact entry is the probe, then x's semantic entry is gone too (no semantic hit for other words).
        until(lambda: ask(b, "z", OTHER), "miss")
        assert ask(b, "x", "How can I reverse a Python list?").headers["x-interlock-cache"] == "miss"


def test_when_replicas_share_redis_then_the_clear_reaches_the_others_semantic_index_over_pub_sub(
    replica, tmp_path, redis_url
):
    """With Redis the exact cache is shared (cleared once) and the bus is pub/sub; the semantic indexes stay in
    each process, and B's must empty too."""
    replica.reset()
    cache = {"scope": "team", "semantic": {"enabled": True}}
    shared = {
        "redis": {"url": redis_url},
        "access": {"bus_channel": f"ilc-test-{uuid.uuid4().hex}"},
    }
    with contextlib.ExitStack() as stack:
        a, b = (stack.enter_context(running_gateway(**_merged(settings(replica, cache, tmp_path), shared)))[0]
                for _ in range(2))  # fmt: skip
        ask(b, "x", OTHER)
        until(lambda: ask(b, "x", "How can I reverse a Python list?"), "hit-semantic")
        r = admin(a, "DELETE", "/cache", params={"model": "m"})
        assert r.status_code == 200 and r.json()["exact"] >= 1, r.text
        deadline = time.monotonic() + 5
        while ask(b, "x", "Could you tell me how to reverse a list in Python?").headers["x-interlock-cache"] != "miss":
            assert time.monotonic() < deadline, "B still serves its in-process semantic entry"
            time.sleep(0.1)


def _merged(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = {**out.get(k, {}), **v} if isinstance(v, dict) else v
    return out


def test_when_a_replica_clears_by_age_then_the_others_drop_only_entries_as_old(replica, tmp_path):
    replica.reset()
    with contextlib.ExitStack() as stack:
        a, b = (stack.enter_context(running_gateway(**settings(replica, {"scope": "team"}, tmp_path)))[0]
                for _ in range(2))  # fmt: skip
        ask(b, "x", Q)
        until(lambda: ask(b, "x", Q), "hit-exact")
        time.sleep(1.5)
        ask(b, "z", Q)
        until(lambda: ask(b, "z", Q), "hit-exact")
        assert admin(a, "DELETE", "/cache", params={"older_than": 1}).status_code == 200
        until(lambda: ask(b, "x", Q), "miss")  # older than a second when A was asked: gone from B as well
        assert ask(b, "z", Q).headers["x-interlock-cache"] == "hit-exact"  # younger: kept, though B applied later


def test_when_a_model_without_a_cache_gets_a_section_then_it_is_cached_without_a_restart(gateway, replica):
    url = gateway(None)  # no model has a cache section: the gateway starts without a cache step
    assert ask(url, "x", Q).headers.get("x-interlock-cache") is None
    body = {"name": "m", "deployments": [{"kind": "vllm", "url": replica.url}],
            "cache": {"scope": "team", "semantic": {"enabled": True}}}  # fmt: skip
    assert admin(url, "PUT", "/models/m", json=body).status_code in (200, 201)
    first = until(lambda: ask(url, "x", OTHER), "miss", timeout=60)  # the embedder loads meanwhile
    until(lambda: ask(url, "y", OTHER), "hit-exact")  # team-a shares it
    r = until(lambda: ask(url, "x", "How can I reverse a Python list?"), "hit-semantic")
    assert r.headers["x-interlock-cache-source"] == first.headers["x-request-id"]


def test_when_a_key_override_is_the_first_cache_section_then_it_applies_live(gateway):
    url = gateway(None)
    r = admin(url, "PATCH", "/keys/x", json={"metadata": {"cache": {"m": {"scope": "key"}}}})
    assert r.status_code == 200, r.text
    until(lambda: ask(url, "x", Q), "miss")
    until(lambda: ask(url, "x", Q), "hit-exact")
    assert ask(url, "y", Q).headers.get("x-interlock-cache") is None  # y has no override, m no section


def test_when_a_semantic_cache_is_first_enabled_then_its_index_is_built_live(gateway, replica):
    url = gateway({"scope": "team"})  # exact only: no embedder, no index at start
    body = {"name": "m", "deployments": [{"kind": "vllm", "url": replica.url}],
            "cache": {"scope": "team", "semantic": {"enabled": True}}}  # fmt: skip
    assert admin(url, "PUT", "/models/m", json=body).status_code in (200, 201)
    deadline_q = "What is the capital of France?"
    first = until(lambda: ask(url, "x", deadline_q), "miss", timeout=60)
    r = until(lambda: ask(url, "x", "Which city is the capital of France?"), "hit-semantic", timeout=60)
    assert r.headers["x-interlock-cache-source"] == first.headers["x-request-id"]
