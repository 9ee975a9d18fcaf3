"""The built-in trace store end to end: a gateway's recorder writes its spans to the database, one child span per
pipeline step, and each record carries its trace id, prompt version and details."""

from __future__ import annotations

import openai
import pytest
import sqlalchemy as sa

from gateway.db.insights import SpanRow
from gateway.db.models import RequestRecord
from tests.e2e.gateway.conftest import client
from tests.support.gateway import model
from tests.support.polling import eventually


def select(url: str, table) -> list[dict]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(sa.select(table))]
    finally:
        engine.dispose()


def test_when_the_trace_store_is_on_then_a_request_has_its_spans_and_record_in_the_database(
    fresh, gateway, database_url
):
    sqlite_url = database_url  # the same checks on SQLite (embedded) and PostgreSQL (production)
    url, _ = gateway(
        models=[model("m", fresh[0].url)],
        database={"url": sqlite_url, "flush_interval": 0.1},
        trace_store={"enabled": True, "keep_ratio": 1.0},
    )
    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "hi"}]
    reply = client(url).chat.completions.with_raw_response.create(
        model="m", messages=messages, max_tokens=4, temperature=0.2
    )
    request_id = reply.headers["x-request-id"]
    records = eventually(lambda: select(sqlite_url, RequestRecord.__table__), timeout=10)
    (record,) = records
    assert record["trace_id"] and len(record["prompt_version"]) == 12
    assert record["details"]["params"] == {"max_tokens": 4, "temperature": 0.2}
    assert record["details"]["config"]
    spans = eventually(lambda: len(s := select(sqlite_url, SpanRow.__table__)) >= 4 and s, timeout=10)
    assert {s["trace_id"] for s in spans} == {record["trace_id"]}
    assert {s["request_id"] for s in spans} == {request_id}
    names = sorted(s["name"] for s in spans)
    assert "interlock.step authenticate" in names and "interlock.step resolve_model" in names
    assert names.count("chat m") == 2  # the request's span and the upstream call's


def test_when_keep_ratio_is_zero_then_only_the_failed_request_is_stored(fresh, gateway, sqlite_url):
    url, _ = gateway(
        models=[model("m", fresh[0].url)],
        database={"url": sqlite_url, "flush_interval": 0.1},
        trace_store={"enabled": True, "keep_ratio": 0.0},
    )
    c = client(url)
    ok = c.chat.completions.with_raw_response.create(model="m", messages=[{"role": "user", "content": "a"}])
    with pytest.raises(openai.NotFoundError) as failed:
        c.chat.completions.create(model="nope", messages=[{"role": "user", "content": "b"}])
    failed_id = failed.value.response.headers["x-request-id"]
    eventually(lambda: len(select(sqlite_url, RequestRecord.__table__)) == 2, timeout=10)
    stored = eventually(lambda: select(sqlite_url, SpanRow.__table__), timeout=10)
    assert {s["request_id"] for s in stored} == {failed_id} and ok.headers["x-request-id"] != failed_id
