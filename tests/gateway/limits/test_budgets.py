"""Daily and monthly spend budgets: hard stops, messages, and counters rebuilt after Redis lost them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import redis

from gateway.errors import BudgetExceeded, ServiceUnavailable
from gateway.types import Limits, Usage
from tests.gateway.limits.conftest import MakeLimiter, Records, RedisProcess, key


def redis_today(url: str) -> datetime:
    """Midnight UTC of the Redis server's day (the limiter counts on the server's clock)."""
    client = redis.Redis.from_url(url)
    seconds, _ = client.time()
    client.close()
    return datetime.fromtimestamp(seconds - seconds % 86400, UTC)


async def spend(limiter, principal, cost: float) -> None:
    """One admitted request that cost ``cost``."""
    admission = await limiter.admit(principal, "m", 1)
    await limiter.settle(admission, Usage(1, 1), cost)


async def test_when_the_daily_budget_is_spent_then_requests_stop_with_the_budget_and_its_reset(
    make_limiter: MakeLimiter, redis_url: str
):
    limiter = await make_limiter()
    p = key(name="checkout", budget_daily_usd=0.01)
    await spend(limiter, p, 0.006)
    await spend(limiter, p, 0.006)

    with pytest.raises(BudgetExceeded) as err:
        await limiter.admit(p, "m", 1)

    tomorrow = (redis_today(redis_url) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert err.value.message == f"key 'checkout' daily budget of $0.01 is spent; resets at {tomorrow}"
    assert (err.value.status, err.value.code) == (429, "budget_exceeded")
    assert 0 < err.value.retry_after <= 86400


async def test_when_spend_is_below_the_budget_then_requests_pass(make_limiter: MakeLimiter):
    limiter = await make_limiter()
    p = key(budget_daily_usd=0.01)

    await spend(limiter, p, 0.009)

    await limiter.admit(p, "m", 1)


async def test_when_the_monthly_budget_is_spent_then_the_reset_is_the_first_of_next_month(
    make_limiter: MakeLimiter, redis_url: str
):
    limiter = await make_limiter()
    p = key(name="checkout", budget_daily_usd=100.0, budget_monthly_usd=0.01)
    await spend(limiter, p, 0.02)

    with pytest.raises(BudgetExceeded, match=r"monthly budget of \$0.01 is spent") as err:
        await limiter.admit(p, "m", 1)

    today = redis_today(redis_url)
    first_of_next = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    assert err.value.message.endswith(f"resets at {first_of_next:%Y-%m-%dT%H:%M:%SZ}")


async def test_when_two_keys_of_a_team_spend_then_the_team_budget_stops_both(make_limiter: MakeLimiter):
    limiter = await make_limiter()
    team = Limits(budget_daily_usd=0.01)
    k1 = key("k1", team_id="acme", team_limits=team)
    k2 = key("k2", team_id="acme", team_limits=team)
    await spend(limiter, k1, 0.006)
    await spend(limiter, k2, 0.006)

    with pytest.raises(BudgetExceeded, match="team 'acme' daily budget"):
        await limiter.admit(k1, "m", 1)


async def test_when_settled_twice_then_the_cost_counts_once(make_limiter: MakeLimiter):
    limiter = await make_limiter()
    p = key(budget_daily_usd=0.01)
    admission = await limiter.admit(p, "m", 1)

    await limiter.settle(admission, Usage(1, 1), 0.006)
    await limiter.settle(admission, Usage(1, 1), 0.006)

    await limiter.admit(p, "m", 1)


async def test_when_redis_restarts_then_spend_is_rebuilt_from_the_records(
    make_limiter: MakeLimiter, redis_process: RedisProcess
):
    records = Records()
    limiter = await make_limiter(redis_process.url, reconcile=records.spend)
    p = key(name="checkout", budget_daily_usd=0.05)
    await spend(limiter, p, 0.03)
    records.add("k1", None, 0.03)

    redis_process.stop()
    redis_process.start()
    await spend(limiter, p, 0.03)  # 0.03 remembered from the records, + 0.03 = 0.06

    with pytest.raises(BudgetExceeded):
        await limiter.admit(p, "m", 1)


async def test_when_replicas_rebuild_at_once_then_spend_is_counted_once(make_limiter: MakeLimiter):
    records = Records()
    records.add("k1", "acme", 0.04)
    records.add("k1", "acme", 5.0, at=datetime.now(UTC) - timedelta(days=40))  # an older month
    replicas = [await make_limiter(reconcile=records.spend) for _ in range(2)]
    p = key("k1", team_id="acme", budget_daily_usd=0.05, budget_monthly_usd=0.05)

    admitted = await asyncio.gather(*(replicas[i % 2].admit(p, "m", 1) for i in range(20)))

    # Each replica reads the day and the month once per level at most (one rebuild in flight per level).
    assert records.calls <= 2 * 2
    await replicas[0].settle(admitted[0], Usage(1, 1), 0.005)
    await replicas[1].admit(p, "m", 1)  # 0.045 of 0.05
    await replicas[1].settle(admitted[1], Usage(1, 1), 0.005)
    with pytest.raises(BudgetExceeded):
        await replicas[0].admit(p, "m", 1)


@pytest.mark.parametrize("policy", ["open", "closed"])
async def test_when_the_records_cannot_be_read_then_the_failure_policy_applies(make_limiter: MakeLimiter, policy: str):
    def broken(key_id, team_id, since):
        raise ConnectionError("database is down")

    limiter = await make_limiter(reconcile=broken, failure_policy=policy)
    p = key(budget_daily_usd=1.0)

    if policy == "closed":
        with pytest.raises(ServiceUnavailable, match="budgets cannot be checked"):
            await limiter.admit(p, "m", 1)
    else:
        admission = await limiter.admit(p, "m", 1)
        assert not admission.unmetered


@pytest.fixture(params=["sqlite_url", pytest.param("postgres_url", marks=pytest.mark.postgres)])
def records_engine(request: pytest.FixtureRequest):
    """A migrated request-records database (SQLite file or PostgreSQL) and its engine."""
    db = pytest.importorskip("gateway.db")
    url = request.getfixturevalue(request.param)
    db.migrate(url)
    engine = db.make_engine(url)
    yield engine
    engine.dispose()


def store(engine, request_id: str, cost: float, at: datetime) -> None:
    """One row as the record writer would store it."""
    import sqlalchemy as sa

    from gateway.db import RequestRecord

    row = {"id": request_id, "key_id": "k1", "team_id": "acme", "model": "m", "route": "chat", "status": 200}
    with engine.begin() as conn:
        conn.execute(sa.insert(RequestRecord.__table__).values(**row, latency_ms=1.0, cost_usd=cost, created_at=at))


async def test_when_redis_is_flushed_then_spend_is_rebuilt_from_the_request_records_table(
    make_limiter: MakeLimiter, redis_url: str, records_engine
):
    from gateway.db import spend_since

    today = redis_today(redis_url)
    store(records_engine, "r1", 0.04, today + timedelta(seconds=1))
    store(records_engine, "r0", 9.0, today - timedelta(seconds=1))  # yesterday: not in today's budget
    limiter = await make_limiter(
        reconcile=lambda k, t, since: spend_since(records_engine, key_id=k, team_id=t, since=since)
    )
    p = key("k1", team_id="acme", budget_daily_usd=0.05, team_limits=Limits(budget_daily_usd=0.05))
    await spend(limiter, p, 0.005)
    store(records_engine, "r2", 0.005, today + timedelta(seconds=2))

    redis.Redis.from_url(redis_url).flushdb()
    await spend(limiter, p, 0.005)  # 0.045 from the table + 0.005
    store(records_engine, "r3", 0.005, today + timedelta(seconds=3))

    with pytest.raises(BudgetExceeded, match=r"key 'k1' daily budget of \$0.05"):
        await limiter.admit(p, "m", 1)


# -- reservations: the estimated cost is booked at admission, the real cost at settle ---------------------


@pytest.mark.parametrize("concurrency", [30, 300])
async def test_when_a_burst_arrives_at_once_then_the_budget_admits_what_its_estimates_fit(
    make_limiter: MakeLimiter, concurrency: int
):
    limiter = await make_limiter()
    p = key(budget_daily_usd=0.05)

    results = await asyncio.gather(
        *(limiter.admit(p, "m", 1, 0.004) for _ in range(concurrency)), return_exceptions=True
    )

    admitted = [r for r in results if not isinstance(r, BaseException)]
    assert len(admitted) == 12  # 12 x $0.004 = $0.048; a 13th could reach $0.052
    assert all(isinstance(r, BudgetExceeded) for r in results if isinstance(r, BaseException))
    for admission in admitted:
        await limiter.settle(admission, Usage(1, 1), 0.004)
    with pytest.raises(BudgetExceeded):
        await limiter.admit(p, "m", 1, 0.004)


async def test_when_a_request_settles_then_its_reservation_gives_way_to_the_real_cost(make_limiter: MakeLimiter):
    limiter = await make_limiter()
    p = key(name="checkout", budget_daily_usd=0.05)
    first = await limiter.admit(p, "m", 1, 0.04)

    with pytest.raises(BudgetExceeded) as err:
        await limiter.admit(p, "m", 1, 0.02)
    assert err.value.message.startswith("key 'checkout' daily budget of $0.05 cannot cover this request:")
    assert "$0.0000 spent, $0.0400 reserved by requests in flight, this one may cost $0.0200" in err.value.message
    assert err.value.retry_after == 1  # it fits once the request in flight settles below its estimate

    await limiter.settle(first, Usage(1, 1), 0.01)
    second = await limiter.admit(p, "m", 1, 0.02)
    await limiter.release(second)  # failed before any usage: its reservation is dropped, nothing spent
    await limiter.admit(p, "m", 1, 0.04)  # $0.01 spent + $0.04 = the whole budget


async def test_when_an_estimate_exceeds_what_is_left_then_the_retry_is_at_the_reset(make_limiter: MakeLimiter):
    limiter = await make_limiter()
    p = key(budget_daily_usd=0.05)
    await spend(limiter, p, 0.04)

    with pytest.raises(BudgetExceeded, match="Resets at") as err:
        await limiter.admit(p, "m", 1, 0.02)
    assert err.value.retry_after > 1
    await limiter.admit(p, "m", 1, 0.005)


async def test_when_a_replica_dies_then_its_reservations_expire_with_their_lease(make_limiter: MakeLimiter):
    dead = await make_limiter(lease=0.5)
    p = key(budget_daily_usd=0.05)
    await dead.admit(p, "m", 1, 0.05)
    await dead.aclose()  # never settles, never renews
    alive = await make_limiter()

    with pytest.raises(BudgetExceeded):
        await alive.admit(p, "m", 1, 0.01)

    async def admitted() -> bool:
        try:
            await alive.admit(p, "m", 1, 0.01)
        except BudgetExceeded:
            return False
        return True

    deadline = asyncio.get_running_loop().time() + 10
    while not await admitted():
        assert asyncio.get_running_loop().time() < deadline, "the dead replica's reservation never expired"
        await asyncio.sleep(0.1)


async def test_when_a_request_outlives_its_lease_then_its_replica_keeps_the_reservation(make_limiter: MakeLimiter):
    limiter = await make_limiter(lease=1.2)  # renewed every 0.4 s
    p = key(budget_daily_usd=0.05)
    long_running = await limiter.admit(p, "m", 1, 0.05)

    await asyncio.sleep(3.6)  # three leases

    with pytest.raises(BudgetExceeded):
        await limiter.admit(p, "m", 1, 0.01)
    await limiter.settle(long_running, Usage(1, 1), 0.03)
    await limiter.admit(p, "m", 1, 0.01)


async def test_when_estimates_fall_short_then_the_overshoot_is_their_error_over_the_requests_in_flight(
    make_limiter: MakeLimiter,
):
    limiter = await make_limiter()
    p = key(budget_daily_usd=0.05)

    results = await asyncio.gather(*(limiter.admit(p, "m", 1, 0.003) for _ in range(300)), return_exceptions=True)
    admitted = [r for r in results if not isinstance(r, BaseException)]
    for admission in admitted:
        await limiter.settle(admission, Usage(1, 1), 0.004)  # each cost $0.001 more than estimated

    assert len(admitted) == 16  # 16 x $0.003 = $0.048 fits, a 17th would not
    with pytest.raises(BudgetExceeded) as err:
        await limiter.admit(p, "m", 1, 0.0)
    # $0.064 spent: $0.014 over, within the bound of 16 requests in flight x $0.001 short each.
    assert err.value.message.startswith("key 'k1' daily budget of $0.05 is spent")
