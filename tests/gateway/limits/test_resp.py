"""The lean RESP client against a real Redis: pipelining, error replies, NOSCRIPT, lost connections, db."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.limits._resp import RespClient, RespError, pack, pack_py
from gateway.limits._scripts import Script
from tests.gateway.limits.conftest import RedisProcess
from tests.support.servers import free_port

MakeClient = Callable[..., Awaitable[RespClient]]


@pytest.fixture
async def make_client(redis_url: str) -> AsyncIterator[MakeClient]:
    """``await make_client(url=...)``: a ``RespClient`` (default: the test's Redis), closed after the test."""
    made: list[RespClient] = []

    async def make(url: str = redis_url, **kwargs: float) -> RespClient:
        client = RespClient(url, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


async def test_when_1000_incrs_run_concurrently_then_each_reply_matches_its_command(make_client: MakeClient):
    client = await make_client()

    async def incr_and_echo(i: int) -> tuple[int, bytes]:
        count, echoed = await asyncio.gather(client.execute("INCR", "n"), client.execute("ECHO", f"e{i}"))
        return count, echoed

    results = await asyncio.gather(*(incr_and_echo(i) for i in range(1000)))

    assert sorted(count for count, _ in results) == list(range(1, 1001))
    assert [echoed for _, echoed in results] == [f"e{i}".encode() for i in range(1000)]
    assert await client.execute("GET", "n") == b"1000"


async def test_when_arguments_are_str_bytes_int_float_then_redis_gets_them_verbatim(make_client: MakeClient):
    client = await make_client()

    await client.execute("RPUSH", "l", "héllo", b"\x00\r\n", -7, 0.1, "")

    assert await client.execute("LRANGE", "l", 0, -1) == ["héllo".encode(), b"\x00\r\n", b"-7", b"0.1", b""]


async def test_when_redis_answers_an_error_then_resp_error_carries_it_and_the_connection_goes_on(
    make_client: MakeClient,
):
    client = await make_client()
    await client.execute("SET", "s", "text")

    # Both in flight at once: the error reply must not shift the next reply onto the wrong caller.
    failing = asyncio.ensure_future(client.execute("INCR", "s"))
    following = asyncio.ensure_future(client.execute("PING"))
    with pytest.raises(RespError, match=r"^ERR value is not an integer"):
        await failing

    assert await following == b"PONG"
    with pytest.raises(RespError, match="unknown command"):
        await client.execute("NOSUCHCOMMAND")


async def test_when_the_script_cache_is_flushed_then_the_script_is_loaded_again(make_client: MakeClient):
    client = await make_client()
    script = Script("return {KEYS[1], ARGV[1]}", client)
    assert await script(keys=["k"], args=["a"]) == [b"k", b"a"]

    await client.execute("SCRIPT", "FLUSH")

    assert await client.execute("SCRIPT", "EXISTS", script.sha) == [0]
    assert await script(keys=["k2"], args=[2]) == [b"k2", b"2"]
    assert await client.execute("SCRIPT", "EXISTS", script.sha) == [1]


async def test_when_a_script_fails_then_its_error_is_raised_not_reloaded(make_client: MakeClient):
    client = await make_client()
    script = Script("return redis.error_reply('BOOM it failed')", client)

    with pytest.raises(RespError, match="BOOM it failed"):
        await script(keys=[], args=[])


@pytest.mark.timeout(30)
async def test_when_the_server_dies_mid_flight_then_pending_calls_fail_and_a_restart_heals(
    make_client: MakeClient, redis_process: RedisProcess
):
    client = await make_client(redis_process.url)
    assert await client.execute("PING") == b"PONG"
    # Blocks server-side, so these calls are surely pending when the server goes away.
    pending = [asyncio.ensure_future(client.execute("BLPOP", "never", 0)) for _ in range(5)]
    await asyncio.sleep(0.2)
    assert not any(call.done() for call in pending)

    redis_process.stop()
    results = await asyncio.gather(*pending, return_exceptions=True)

    assert all(isinstance(result, ConnectionError) for result in results), results
    with pytest.raises(ConnectionError):
        await client.execute("PING")
    redis_process.start()
    assert await client.execute("PING") == b"PONG"


async def test_when_the_server_restarts_while_idle_then_the_next_call_succeeds(
    make_client: MakeClient, redis_process: RedisProcess
):
    client = await make_client(redis_process.url)
    await client.execute("PING")

    redis_process.stop()
    redis_process.start()

    assert await client.execute("SET", "a", 1) == b"OK"


async def test_when_nothing_listens_then_connection_error(make_client: MakeClient):
    client = await make_client(f"redis://127.0.0.1:{free_port()}/0")

    with pytest.raises(ConnectionError):
        await client.execute("PING")


async def test_when_the_url_names_a_db_then_commands_run_in_it(make_client: MakeClient, redis_url: str):
    base = redis_url.rsplit("/", 1)[0]
    client = await make_client(f"{base}/3")

    await client.execute("SET", "where", "db3")

    direct = redis.Redis.from_url(f"{base}/3")
    try:
        assert direct.get("where") == b"db3"
        assert redis.Redis.from_url(f"{base}/0").get("where") is None
    finally:
        direct.flushdb()
        direct.close()


async def test_when_the_url_has_a_password_then_the_client_authenticates(make_client: MakeClient):
    server = RedisProcess()
    server.start()
    try:
        admin = redis.Redis.from_url(server.url)
        admin.config_set("requirepass", "s3cret")
        admin.close()

        good = await make_client(f"redis://:s3cret@127.0.0.1:{server.port}/0")
        bad = await make_client(f"redis://127.0.0.1:{server.port}/0")
        wrong = await make_client(f"redis://:nope@127.0.0.1:{server.port}/0")

        assert await good.execute("PING") == b"PONG"
        with pytest.raises(RespError, match="NOAUTH"):
            await bad.execute("PING")
        with pytest.raises(ConnectionError, match="refused the connection setup"):
            await wrong.execute("PING")
    finally:
        server.stop()


async def test_when_closed_then_calls_fail_with_connection_error(make_client: MakeClient):
    client = await make_client()
    await client.execute("PING")

    await client.aclose()

    with pytest.raises(ConnectionError):
        await client.execute("PING")


async def test_when_a_server_stays_silent_past_the_read_timeout_then_the_connection_is_dropped(
    make_client: MakeClient,
):
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accepts and never answers

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        client = await make_client(f"redis://127.0.0.1:{port}/0", read_timeout=0.2)
        with pytest.raises(ConnectionError, match="no reply from redis"):
            await client.execute("PING")
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


_ARGS = st.lists(st.one_of(st.text(), st.binary(), st.integers(), st.floats(allow_nan=False)), min_size=1, max_size=20)


@settings(max_examples=300, deadline=None)
@given(_ARGS)
def test_when_commands_are_packed_by_hiredis_then_the_bytes_are_the_python_packer_s(args: list):
    # The C packer is what the hot path uses; the Python one spells out the protocol the scripts rely on
    # (floats by repr, ints in decimal): they must agree byte for byte.
    assert pack(tuple(args)) == pack_py(tuple(args))


async def test_when_every_kind_of_argument_is_sent_then_redis_gets_each_unchanged(make_client: MakeClient):
    client = await make_client()
    args = ("snowman ☃", b"\x00\xffraw", 2**70, -5, 0.1, 1e-05)

    echoed = [await client.execute("ECHO", a) for a in args]

    assert echoed == ["snowman ☃".encode(), b"\x00\xffraw", b"1180591620717411303424", b"-5", b"0.1", b"1e-05"]


async def test_when_a_command_is_deferred_then_it_runs_just_before_the_next_command(make_client: MakeClient):
    client = await make_client(coalesce=30.0)  # the timer never fires in this test: only the next command sends it
    observer = await make_client()
    await client.execute("DEL", "deferred")
    later = asyncio.ensure_future(client.execute_later("SET", "deferred", "v"))
    await asyncio.sleep(0.05)

    assert await observer.execute("GET", "deferred") is None  # held back, not sent on its own
    assert await client.execute("GET", "deferred") == b"v"  # sent in the same write, ahead of the GET
    assert await later == b"OK"


async def test_when_nothing_follows_a_deferred_command_then_it_is_sent_after_the_coalesce_delay(
    make_client: MakeClient,
):
    client = await make_client(coalesce=0.01)
    await client.execute("DEL", "alone")

    assert await asyncio.wait_for(client.execute_later("SET", "alone", "v"), 2.0) == b"OK"
    assert await client.execute("GET", "alone") == b"v"


async def test_when_the_client_closes_then_deferred_commands_reach_redis_first(make_client: MakeClient):
    client = await make_client(coalesce=30.0)
    observer = await make_client()
    await client.execute("DEL", "at-close")
    later = asyncio.ensure_future(client.execute_later("SET", "at-close", "v"))
    await asyncio.sleep(0)

    await client.aclose()

    assert await later == b"OK"
    assert await observer.execute("GET", "at-close") == b"v"


async def test_when_the_connection_is_lost_then_deferred_commands_fail_with_connection_error(
    make_client: MakeClient, redis_process: RedisProcess
):
    client = await make_client(redis_process.url, coalesce=30.0)
    await client.execute("PING")
    later = asyncio.ensure_future(client.execute_later("SET", "lost", "v"))
    await asyncio.sleep(0)

    redis_process.stop()  # the server closes the connection while the SET is still held back

    with pytest.raises(ConnectionError):
        await asyncio.wait_for(later, 2.0)
    redis_process.start()
    assert await client.execute("PING") == b"PONG"


async def test_when_a_reply_is_later_than_the_call_s_timeout_then_it_fails_and_later_replies_keep_their_order(
    make_client: MakeClient,
):
    client = await make_client()
    pauser = await make_client()
    await client.execute("SET", "slow", "before")
    await pauser.execute("CLIENT", "PAUSE", 600, "ALL")  # every command of other clients waits 0.6 s

    with pytest.raises(TimeoutError):
        await client.execute("GET", "slow", timeout=0.1)
    without_timeout = asyncio.ensure_future(client.execute("SET", "slow", "after"))

    assert await asyncio.wait_for(without_timeout, 5.0) == b"OK"  # the late GET's reply did not land here
    assert await client.execute("GET", "slow", timeout=1.0) == b"after"
