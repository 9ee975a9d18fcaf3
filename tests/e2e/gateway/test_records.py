"""Every request becomes a record, on SQLite and on a real PostgreSQL, written off the request path."""

from __future__ import annotations

import httpx

from tests.e2e.gateway.conftest import client, stored_records
from tests.support.gateway import model, running_gateway


def test_when_requests_are_served_then_each_is_recorded_with_tokens_and_timings(fresh, gateway, database_url):
    url, _ = gateway(models=[model("m", fresh[0].url)], database={"url": database_url, "flush_interval": 0.1})
    c = client(url)
    r1 = c.chat.completions.with_raw_response.create(
        model="m", messages=[{"role": "user", "content": "a b c"}], max_tokens=4
    )
    list(c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], max_tokens=6, stream=True))
    httpx.post(url + "/v1/chat/completions", json={"model": "ghost", "messages": [{"role": "user", "content": "x"}]})
    found = {r["status"]: r for r in stored_records(database_url, 3)}
    by_id = {r["id"]: r for r in stored_records(database_url, 3)}
    assert len(by_id) == 3
    plain = by_id[r1.headers["x-request-id"]]
    assert (plain["model"], plain["upstream"], plain["route"], plain["status"]) == ("m", "d0", "chat", 200)
    assert plain["completion_tokens"] == 4 and plain["prompt_tokens"] > 0 and plain["latency_ms"] > 0
    assert plain["stream"] is False or plain["stream"] == 0
    streamed = next(r for r in by_id.values() if r["stream"] in (True, 1))
    assert streamed["completion_tokens"] == 6 and streamed["ttft_ms"] > 0 and streamed["tpot_ms"] is not None
    assert found[404]["model"] == "ghost" and found[404]["upstream"] is None


def test_when_the_gateway_stops_then_pending_records_are_flushed(fresh, sqlite_url):
    with running_gateway(models=[model("m", fresh[0].url)], database={"url": sqlite_url, "flush_interval": 30}) as (
        url,
        app,
    ):
        c = client(url)
        for _ in range(5):
            c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        assert app.gateway.writer.pending == 5  # nothing written yet: the interval is long
    assert len(stored_records(sqlite_url, 5)) == 5
