"""A streamed answer tapped by several steps (the cache stores it, feedback reads refusals) is assembled once:
every tap feeds the request's shared assembler, and an event relayed by the tap inside is not parsed again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import orjson
import pytest
import sqlalchemy as sa

from cache.responses import StreamAssembler, replay_stream
from gateway.db.insights import FeedbackRow
from gateway.streaming import assembler
from gateway.types import RequestContext
from interlock.emulator import EmulatorServer
from tests.support.gateway import model, running_gateway
from tests.support.polling import eventually

ANSWER = orjson.dumps({"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there"},
                                    "finish_reason": "stop"}]})  # fmt: skip


async def _tap(events: AsyncIterator[bytes], ctx: RequestContext) -> AsyncIterator[bytes]:
    """What a step's stream wrapper does: feed the shared assembler, relay the event unchanged."""
    async for e in events:
        assembler(ctx).feed(e)
        yield e


async def _source(events: list[bytes]) -> AsyncIterator[bytes]:
    for e in events:
        yield e


def test_when_two_steps_tap_one_stream_then_the_answer_is_assembled_once_and_whole():
    ctx = RequestContext("r1", "chat", {}, "m")
    events = replay_stream(ANSWER, include_usage=False)

    async def relay() -> list[bytes]:
        return [e async for e in _tap(_tap(_source(events), ctx), ctx)]  # feedback inside, the cache outside

    assert asyncio.run(relay()) == events
    body = orjson.loads(assembler(ctx).body())
    assert body["choices"][0]["message"]["content"] == "Hello there"  # not "HelloHello there there"
    # What sharing one assembler without the check would do: every event parsed, and its text added, twice.
    naive = StreamAssembler(chat=True)
    for e in events:
        naive.feed(e)
        naive.feed(e)
    assert orjson.loads(naive.body())["choices"][0]["message"]["content"] == "Hello thereHello there"


@pytest.fixture(scope="module")
def gw(tmp_path_factory) -> Iterator[tuple[str, str]]:
    """The cache and implicit feedback both on for model ``m``: both tap a streamed answer."""
    db = f"sqlite:///{tmp_path_factory.mktemp('sharing')}/s.db"
    with EmulatorServer(port=0, served_model_names=["m"]) as worker:
        settings = {
            "models": [model("m", worker.url, cache={"scope": "global", "exact": {"ttl": 600}})],
            "database": {"url": db, "flush_interval": 0.1},
            "feedback": {"implicit": True, "flush_interval": 0.1},
        }
        with running_gateway(**settings) as (url, _):
            yield url, db


def _kinds(db: str, request_id: str) -> list[str]:
    engine = sa.create_engine(db)
    try:
        t = FeedbackRow.__table__
        with engine.connect() as c:
            return [r.kind for r in c.execute(sa.select(t.c.kind).where(t.c.request_id == request_id))]
    finally:
        engine.dispose()


def test_when_the_cache_and_feedback_tap_a_stream_then_both_see_the_whole_answer(gw):
    url, db = gw
    question = {"model": "m", "max_tokens": 8, "temperature": 0,
                "messages": [{"role": "user", "content": "I'm sorry, but I can't help with that."}]}  # fmt: skip
    text, rid = "", None
    with httpx.stream("POST", url + "/v1/chat/completions", json={**question, "stream": True}) as r:
        assert r.headers["x-interlock-cache"] == "miss"
        rid = r.headers["x-interlock-request-id"]
        for line in r.iter_lines():
            if line.startswith("data: {"):
                for choice in orjson.loads(line[6:])["choices"]:
                    text += choice["delta"].get("content") or ""
    assert text.startswith("I'm sorry")
    assert eventually(lambda: "refusal" in _kinds(db, rid), timeout=10)  # feedback read the assembled answer

    def hit():
        r = httpx.post(url + "/v1/chat/completions", json=question)
        return r.headers["x-interlock-cache"] == "hit-exact" and r

    found = eventually(hit, timeout=10)
    assert found
    assert found.json()["choices"][0]["message"]["content"] == text  # the cache stored the same, whole answer
