"""Implicit signals across gateway replicas: with Redis configured, a user's next turn that reaches another
replica is still read against the conversation (its state is in Redis, never its text)."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
import redis
import sqlalchemy as sa

from gateway.db.insights import FeedbackRow
from interlock.emulator import EmulatorServer
from tests.support.gateway import model
from tests.support.polling import eventually
from tests.support.processes import GatewayProcess


@pytest.fixture
def replicas(postgres_url, redis_url, tmp_path) -> Iterator[tuple[str, str]]:
    """Two gateway processes on one database and one Redis, implicit feedback on."""
    with EmulatorServer(port=0, served_model_names=["m"], output_tokens=8) as worker:
        config = {
            "models": [model("m", worker.url)],
            "database": {"url": postgres_url, "flush_interval": 0.1, "journal_dir": str(tmp_path / "journal")},
            "redis": {"url": redis_url},
            "feedback": {"implicit": True, "flush_interval": 0.1, "abandon_after": 1.0},
        }
        with GatewayProcess(config, startup_timeout=120) as a, GatewayProcess(config, startup_timeout=120) as b:
            yield a.url, b.url


def chat(url: str, messages: list[dict]) -> str:
    c = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    r = c.chat.completions.with_raw_response.create(model="m", messages=messages, max_tokens=8)
    return r.headers["x-interlock-request-id"]


def kinds(db: str, request_id: str) -> list[str]:
    engine = sa.create_engine(db)
    try:
        t = FeedbackRow.__table__
        with engine.connect() as c:
            return sorted(r.kind for r in c.execute(sa.select(t.c.kind).where(t.c.request_id == request_id)))
    finally:
        engine.dispose()


def test_when_the_regeneration_reaches_another_replica_then_the_first_request_gets_it(
    replicas, postgres_url, redis_url
):
    a, b = replicas
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a river."}]
    first = chat(a, messages)
    eventually(lambda: redis.Redis.from_url(redis_url).keys("interlock:feedback:c:*"), timeout=10)
    chat(b, messages)  # the same conversation again, through the other replica
    assert eventually(lambda: kinds(postgres_url, first), timeout=10) == ["regeneration"]
    # Only hashes, ids and a bigram sketch are kept there: never the conversation's text.
    stored = b"".join(redis.Redis.from_url(redis_url).get(k) for k in redis.Redis.from_url(redis_url).keys("*:c:*"))
    assert b"river" not in stored and b"Be brief" not in stored


def test_when_a_correction_reaches_another_replica_then_the_previous_answer_gets_a_rephrase(
    replicas, postgres_url, redis_url
):
    a, b = replicas
    question = [{"role": "user", "content": "What is the capital of Australia?"}]
    first = chat(a, question)
    eventually(lambda: redis.Redis.from_url(redis_url).keys("interlock:feedback:c:*"), timeout=10)
    follow = [
        *question,
        {"role": "assistant", "content": "Sydney."},
        {"role": "user", "content": "No, I meant Austria."},
    ]
    chat(b, follow)
    assert eventually(lambda: kinds(postgres_url, first), timeout=10) == ["rephrase"]


def test_when_a_refused_conversation_is_abandoned_then_one_replica_records_it_once(replicas, postgres_url):
    a, _ = replicas
    # The emulator echoes the user's words: the "model" refuses. Both replicas sweep; one claims the abandonment.
    refused = chat(a, [{"role": "user", "content": "I'm sorry, but I can't help with that."}])
    assert eventually(lambda: len(k := kinds(postgres_url, refused)) >= 2 and k, timeout=10) == [
        "abandonment",
        "refusal",
    ]
    assert kinds(postgres_url, refused) == ["abandonment", "refusal"]
