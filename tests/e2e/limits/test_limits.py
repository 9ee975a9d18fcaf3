"""Rate limits, concurrency limits and budgets of one gateway process on real Redis and PostgreSQL.

Each test creates its own key through the admin API, so the tests share the gateway but no counter.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import openai
import pytest
import redis

from tests.e2e.limits.conftest import (
    OUTPUT_TOKENS,
    PRICE_IN,
    PRICE_OUT,
    TPOT_MS,
    admin,
    chat_body,
    completion_body,
    config,
    cost,
    create_key,
    eventually,
    gateways,
    post,
    sdk,
    wait_records,
)
from tests.support.processes import GatewayProcess

#: A Go duration as OpenAI's x-ratelimit-reset-* headers send it ("1m0s", "59.93s", "12ms").
GO_DURATION = re.compile(r"^(\d+h)?(\d+m)?(\d+(\.\d+)?s|\d+ms)$")
#: Two thousandths of a dollar per request to ``priced`` (18 prompt tokens, 1 output token), which is also
#: what the gateway reserves for it (42 characters / 4 + 7 prompt tokens estimated, max_tokens 1).
PRICED_PROMPT = "spend " * 7


@pytest.fixture(scope="module")
def gw(emulator, module_postgres_url, module_redis_url) -> Iterator[GatewayProcess]:
    with gateways(config(emulator, database_url=module_postgres_url, redis_url=module_redis_url)) as procs:
        yield procs[0]


def test_when_a_key_has_rate_limits_then_responses_carry_openai_rate_limit_headers(gw):
    key = create_key(gw, limits={"rpm": 3, "tpm": 10_000})["key"]
    client = sdk(gw, key)
    seen = []
    for _ in range(3):
        raw = client.completions.with_raw_response.create(model="m", prompt=list(range(1, 11)), max_tokens=1)
        seen.append(raw.headers)
    assert [h["x-ratelimit-limit-requests"] for h in seen] == ["3", "3", "3"]
    assert [h["x-ratelimit-remaining-requests"] for h in seen] == ["2", "1", "0"]
    # Each request reserves (and, settled, uses) exactly 10 prompt + 1 completion tokens.
    assert [h["x-ratelimit-limit-tokens"] for h in seen] == ["10000"] * 3
    assert [h["x-ratelimit-remaining-tokens"] for h in seen] == ["9989", "9978", "9967"]
    for h in seen:
        assert GO_DURATION.match(h["x-ratelimit-reset-requests"]), h["x-ratelimit-reset-requests"]
        assert GO_DURATION.match(h["x-ratelimit-reset-tokens"]), h["x-ratelimit-reset-tokens"]


def test_when_the_rpm_is_used_up_then_the_sdk_raises_rate_limit_error_with_retry_after(gw):
    key = create_key(gw, limits={"rpm": 2})["key"]
    client = sdk(gw, key)
    for _ in range(2):
        client.chat.completions.create(**chat_body())
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(**chat_body())
    err = caught.value
    assert err.status_code == 429 and err.code == "rate_limit_exceeded"
    assert "requests per minute (RPM)" in err.message and "limit 2" in err.message
    assert 1 <= int(err.response.headers["retry-after"]) <= 60
    assert err.response.headers["x-ratelimit-remaining-requests"] == "0"


def test_when_tokens_are_used_up_then_a_request_with_a_big_max_tokens_is_refused_but_a_small_one_passes(gw):
    key = create_key(gw, limits={"tpm": 1000})["key"]
    for _ in range(4):  # 4 x (200 prompt + 1 completion) = 804 tokens of 1000
        r = post(gw, key, completion_body(200), route="completions")
        assert r.status_code == 200, r.text
    assert r.headers["x-ratelimit-remaining-tokens"] == "196"
    client = sdk(gw, key)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(**chat_body(max_tokens=300))
    assert "tokens per minute (TPM)" in caught.value.message
    assert post(gw, key, completion_body(10), route="completions").status_code == 200
    with pytest.raises(openai.RateLimitError, match="Request too large"):
        client.chat.completions.create(**chat_body(max_tokens=5000))


def test_when_more_requests_than_the_concurrency_limit_run_at_once_then_the_extra_ones_get_429(gw):
    key = create_key(gw, limits={"max_concurrency": 3})["key"]
    slow = chat_body(max_tokens=int(2000 / TPOT_MS) + 1)  # about two seconds in the emulator
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: post(gw, key, slow), range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 3 + [429] * 5, [r.text for r in responses]
    refused = [r.json()["error"]["message"] for r in responses if r.status_code == 429]
    assert all("concurrent requests" in m and "limit 3" in m for m in refused)
    # The slots are freed when the requests end.
    assert eventually(lambda: post(gw, key, chat_body()).status_code == 200, timeout=3.0)


def spend(
    gw: GatewayProcess, key: str, limit: int = 40, request_id: str | None = None
) -> tuple[dict[str, float], openai.RateLimitError]:
    """Call ``priced`` until refused; return the cost of each served request by (our) id, and the refusal.
    With ``request_id`` every request sends that ``x-request-id``."""
    client = sdk(gw, key)
    costs: dict[str, float] = {}
    extra = {"extra_headers": {"x-request-id": request_id}} if request_id else {}
    for _ in range(limit):
        try:
            raw = client.chat.completions.with_raw_response.create(
                **chat_body("priced", content=PRICED_PROMPT), **extra
            )
        except openai.RateLimitError as exc:
            return costs, exc
        costs[raw.headers["x-interlock-request-id"]] = cost(raw.parse().usage.model_dump())
    raise AssertionError(f"{limit} requests were served, costing ${sum(costs.values()):.4f}, and none was refused")


def test_when_the_daily_budget_is_spent_then_requests_get_429_naming_the_budget_and_its_reset(gw, module_postgres_url):
    created = create_key(gw, name=f"budget-{uuid.uuid4().hex[:6]}", limits={"budget_daily_usd": 0.01})
    costs, refused = spend(gw, created["key"])
    # Each request reserves its estimated cost at admission, here exactly its real cost: spend reaches the
    # budget and never passes it.
    assert sum(costs.values()) == pytest.approx(0.01) and len(costs) == 5
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT00:00:00Z")
    assert refused.code == "budget_exceeded" and refused.status_code == 429
    assert refused.body["message"] == f"key {created['name']!r} daily budget of $0.01 is spent; resets at {tomorrow}"
    # Every served request is in the database with its cost; the refusal is recorded at no cost.
    rows = wait_records(module_postgres_url, created["id"], len(costs) + 1)
    served = {r["id"]: r["cost_usd"] for r in rows if r["status"] == 200}
    assert served == pytest.approx(costs, rel=1e-9)
    assert sum(r["cost_usd"] for r in rows) == pytest.approx(sum(costs.values()), rel=1e-9)
    assert [r["cost_usd"] for r in rows if r["status"] == 429] == [0.0]


def test_when_redis_loses_its_data_then_budgets_are_rebuilt_from_the_database(
    gw, module_postgres_url, module_redis_url
):
    created = create_key(gw, limits={"budget_daily_usd": 0.01})
    costs, _ = spend(gw, created["key"])
    wait_records(module_postgres_url, created["id"], len(costs) + 1)  # every cost is stored before the flush
    with redis.Redis.from_url(module_redis_url) as r:
        r.flushdb()
        assert r.dbsize() == 0
    with pytest.raises(openai.RateLimitError) as caught:
        sdk(gw, created["key"]).chat.completions.create(**chat_body("priced"))
    assert caught.value.code == "budget_exceeded"
    # A key that spent nothing is unaffected by the rebuild.
    fresh = create_key(gw, limits={"budget_daily_usd": 0.01})["key"]
    assert post(gw, fresh, chat_body("priced")).status_code == 200


def test_when_keys_share_a_team_then_the_teams_limit_counts_all_of_them_and_the_refusal_names_the_team(gw):
    team = admin(gw, "POST", "/teams", {"name": f"team-{uuid.uuid4().hex[:6]}", "limits": {"rpm": 3}}, expect=201)
    first = create_key(gw, team=team["name"], limits={"rpm": 100})["key"]
    second = create_key(gw, team=team["name"])["key"]
    assert [post(gw, k, chat_body()).status_code for k in (first, second, first)] == [200, 200, 200]
    refused = post(gw, second, chat_body())
    assert refused.status_code == 429
    message = refused.json()["error"]["message"]
    assert f"team {team['id']!r}" in message and "requests per minute (RPM)" in message and "limit 3" in message
    assert 1 <= int(refused.headers["retry-after"]) <= 60


def test_when_a_stream_ends_then_its_real_tokens_replace_the_reservation(gw):
    key = create_key(gw, limits={"tpm": 10_000})["key"]
    # 10 prompt tokens and max_tokens 200 reserve 210; the emulator writes OUTPUT_TOKENS (64) and stops.
    with httpx.stream(
        "POST",
        f"{gw.url}/v1/completions",
        json={**completion_body(10, max_tokens=200), "stream": True},
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    ) as r:
        assert r.status_code == 200
        assert r.headers["x-ratelimit-remaining-tokens"] == str(10_000 - 210)
        body = b"".join(r.iter_bytes())
    assert body.rstrip().endswith(b"data: [DONE]")
    used = 10 + OUTPUT_TOKENS
    calls = 0

    def settled() -> bool:
        """One more request that reserves exactly what it uses (10 prompt + 1 output tokens): do its
        headers count the stream's real tokens (not its reservation of 210) and every such request?"""
        nonlocal calls
        calls += 1
        r = post(gw, key, completion_body(10), route="completions")
        return int(r.headers["x-ratelimit-remaining-tokens"]) == 10_000 - used - 11 * calls

    # Settlement runs when the stream has ended, off the response path: a moment later at most.
    assert eventually(settled, timeout=5)


def test_when_a_client_repeats_its_request_id_then_a_budget_rebuilt_after_a_redis_flush_counts_every_request(
    gw, module_postgres_url, module_redis_url
):
    created = create_key(gw, limits={"budget_daily_usd": 0.01})
    costs, _ = spend(gw, created["key"], request_id="same-id-every-time")
    rows = wait_records(module_postgres_url, created["id"], len(costs) + 1)
    assert len(rows) == len(costs) + 1 and {r["client_request_id"] for r in rows} == {"same-id-every-time"}
    assert sum(r["cost_usd"] for r in rows) == pytest.approx(sum(costs.values()), rel=1e-9)
    with redis.Redis.from_url(module_redis_url) as r:
        r.flushdb()
    # Rebuilt from the records: every request's cost is there, so the budget still refuses.
    with pytest.raises(openai.RateLimitError) as caught:
        sdk(gw, created["key"]).chat.completions.create(**chat_body("priced", content=PRICED_PROMPT))
    assert caught.value.code == "budget_exceeded"


#: A request whose estimate is its real usage: 20 prompt token ids and 10 output tokens, $0.004 at the prices
#: of ``priced``; about 0.5 s in the emulator (50 ms per output token), so a burst is in flight at once.
BURST_BODY = completion_body(20, max_tokens=10, model="priced")
BURST_COST = 20 * PRICE_IN + 10 * PRICE_OUT


@pytest.mark.parametrize("concurrency", [30, 300])
def test_when_a_burst_hits_a_budget_then_spend_stays_within_it_whatever_the_concurrency(
    gw, module_postgres_url, concurrency
):
    created = create_key(gw, limits={"budget_daily_usd": 0.05})

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=concurrency)
        headers = {"authorization": f"Bearer {created['key']}"}
        async with httpx.AsyncClient(limits=limits, headers=headers, timeout=60) as client:
            url = f"{gw.url}/v1/completions"
            return await asyncio.gather(*(client.post(url, json=BURST_BODY) for _ in range(concurrency)))

    responses = asyncio.run(burst())
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 12 + [429] * (concurrency - 12)  # 12 x $0.004 = $0.048 <= $0.05 < 13 x $0.004
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 429} == {"budget_exceeded"}
    rows = wait_records(module_postgres_url, created["id"], concurrency)
    spent = sum(r["cost_usd"] for r in rows)
    assert spent == pytest.approx(12 * BURST_COST) and spent <= 0.05


def test_when_admission_tickets_are_on_then_a_busy_key_is_served_on_them_and_its_limit_holds(
    emulator, module_postgres_url, module_redis_url
):
    settings = config(emulator, database_url=module_postgres_url, redis_url=module_redis_url)
    settings["redis"]["tickets"] = True
    with gateways(settings) as (gw,):
        key = create_key(gw, limits={"rpm": 20})["key"]
        statuses = [post(gw, key, chat_body()).status_code for _ in range(25)]
        tickets = httpx.get(gw.url + "/ready", timeout=10).json()["redis"]["tickets"]

    # Sequential requests past the first find a ticket while under half the limit; none past it.
    assert statuses == [200] * 20 + [429] * 5
    assert 1 <= tickets["used"] <= 10
