"""Balancing decisions on plain dataclasses: no HTTP, no clocks but the ones we pass."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from router import EndpointInfo, EngineStats, LeastOutstandingRouter, PrefixAffinityRouter, RouteHint, prefix_hashes


def eps(*loads: int, weights: tuple[float, ...] | None = None) -> list[EndpointInfo]:
    weights = weights or (1.0,) * len(loads)
    return [EndpointInfo(f"e{i}", weight=w, in_flight=n) for i, (n, w) in enumerate(zip(loads, weights, strict=True))]


async def test_when_loads_differ_then_least_outstanding_picks_the_idlest():
    r = LeastOutstandingRouter()
    assert (await r.choose(eps(5, 1, 3), RouteHint())).name == "e1"


async def test_when_one_is_unhealthy_or_full_then_it_is_never_chosen():
    r = LeastOutstandingRouter()
    c = eps(0, 9)
    c[0].healthy = False
    assert (await r.choose(c, RouteHint())).name == "e1"
    c[1].max_concurrency = 9
    assert await r.choose(c, RouteHint()) is None


async def test_when_weights_differ_then_traffic_splits_by_weight():
    r = LeastOutstandingRouter()
    c = eps(0, 0, weights=(3.0, 1.0))
    counts: Counter[str] = Counter()
    for _ in range(400):
        e = await r.choose(c, RouteHint())
        e.in_flight += 1  # requests stay in flight: the split follows the weights
        counts[e.name] += 1
    assert counts["e0"] == pytest.approx(300, abs=3)


async def test_when_vllm_reports_a_queue_then_that_replica_counts_as_busier():
    r = LeastOutstandingRouter()
    c = eps(1, 2)
    c[0].stats = EngineStats(running=4, waiting=6, kv_cache_usage=0.5, scraped_at=time.monotonic())
    assert (await r.choose(c, RouteHint())).name == "e1"
    c[0].stats.scraped_at = time.monotonic() - 3600  # stale stats are ignored
    assert (await r.choose(c, RouteHint())).name == "e0"


async def test_when_prompts_share_a_prefix_then_they_land_on_the_same_replica():
    r = PrefixAffinityRouter(load_factor=2.0)
    system = "You are a careful banking assistant. " * 40
    c = eps(0, 0, 0, 0)
    chosen = {(await r.choose(c, RouteHint(prefix_hashes(system + q, 256, 8192)))).name for q in ("a?", "b?", "c?")}
    assert len(chosen) == 1


async def test_when_a_conversation_grows_then_its_next_turn_follows_the_earlier_one():
    r = PrefixAffinityRouter(load_factor=10.0)
    c = eps(0, 0, 0, 0)
    turn1 = "user: hello there " * 40
    first = await r.choose(c, RouteHint(prefix_hashes(turn1, 256, 8192)))
    # Other conversations come and go in between.
    for i in range(20):
        await r.choose(c, RouteHint(prefix_hashes(f"other {i} " * 80, 256, 8192)))
    turn2 = turn1 + "assistant: hi! user: and now? " * 10
    assert (await r.choose(c, RouteHint(prefix_hashes(turn2, 256, 8192)))) is first


async def test_when_the_preferred_replica_is_over_the_bound_then_the_key_spills():
    r = PrefixAffinityRouter(load_factor=1.25)
    c = eps(0, 0, 0)
    hint = RouteHint(prefix_hashes("same system prompt " * 100, 256, 8192))
    home = await r.choose(c, hint)
    home.in_flight = 10  # far above 1.25 x mean load
    other = await r.choose(c, hint)
    assert other is not home


async def test_when_the_preferred_replica_fails_then_only_its_keys_move():
    r = PrefixAffinityRouter(load_factor=100.0)
    c = eps(0, 0, 0, 0)
    hints = [RouteHint(session=f"s{i}") for i in range(200)]
    before = [(await r.choose(c, h)).name for h in hints]
    c[2].healthy = False
    after = [(await r.choose(c, h)).name for h in hints]
    moved = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert moved and all(b == "e2" for b, _ in moved)
    assert "e2" not in after


async def test_when_a_session_header_is_sent_then_it_pins_across_router_instances():
    # Two gateway replicas (two router objects) agree, because the ring uses a stable hash.
    a, b = PrefixAffinityRouter(), PrefixAffinityRouter()
    ca, cb = eps(0, 0, 0), eps(0, 0, 0)
    for s in ("alice", "bob", "carol", "dave"):
        assert (await a.choose(ca, RouteHint(session=s))).name == (await b.choose(cb, RouteHint(session=s))).name


@pytest.mark.parametrize(
    ("text", "block", "expected"),
    [("", 4, 1), ("abc", 4, 1), ("abcd", 4, 1), ("abcdefgh", 4, 2), ("abcdefghij", 4, 2)],
)
def test_when_hashing_prefixes_then_only_whole_blocks_count(text, block, expected):
    assert len(prefix_hashes(text, block, 1000)) == expected


def test_when_texts_share_leading_blocks_then_their_hashes_match_up_to_there():
    a = prefix_hashes("aaaabbbbcccc", 4, 100)
    b = prefix_hashes("aaaabbbbdddd", 4, 100)
    assert a[:2] == b[:2] and a[2] != b[2]
