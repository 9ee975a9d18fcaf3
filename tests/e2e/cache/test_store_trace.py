"""Cache stores happen in the background after the answer; each is a child span of the request's span, with the
cache kind and the outcome (never the question)."""

from __future__ import annotations

import httpx

from tests.e2e.cache.conftest import KEYS, settings
from tests.support.gateway import running_gateway
from tests.support.otlp_sink import otlp_sink
from tests.support.polling import eventually
from tests.support.servers import free_port

SERVER = 2
QUESTION = "How do I reverse a list in Python?"


def traced_miss(url: str, trace: str) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": QUESTION}], "max_tokens": 8, "temperature": 0}
    headers = {"authorization": f"Bearer {KEYS['x'][0]}", "traceparent": f"00-{trace}-00f067aa0ba902b7-01"}
    r = httpx.post(url + "/v1/chat/completions", json=body, headers=headers, timeout=30)
    assert r.status_code == 200 and r.headers["x-interlock-cache"] == "miss", r.text


def store_spans(sink, trace: str, count: int) -> tuple[list[dict], dict]:
    def spans() -> list[dict]:
        return [s for s in sink.spans if s["trace_id"] == trace]

    assert eventually(lambda: sum(s["name"] == "interlock.cache.store" for s in spans()) == count, timeout=30)
    assert eventually(lambda: any(s["kind"] == SERVER for s in spans()), timeout=30)
    found = spans()
    return [s for s in found if s["name"] == "interlock.cache.store"], next(s for s in found if s["kind"] == SERVER)


def test_when_an_answer_is_stored_then_each_kind_is_a_child_span_of_the_request(gateway):
    trace = "5a1f00c0ffee00000000000000000043"
    with otlp_sink() as sink:
        url = gateway({"scope": "key", "semantic": {"enabled": True}},
                      observability={"recorder": "thread", "otlp_endpoint": sink.url})  # fmt: skip
        traced_miss(url, trace)
        stores, request = store_spans(sink, trace, 2)
    assert {(s["attributes"]["interlock.cache.kind"], s["attributes"]["interlock.cache.outcome"]) for s in stores} == {
        ("exact", "stored"),
        ("semantic", "stored"),
    }
    assert all(s["parent_id"] == request["span_id"] for s in stores)
    assert not any("reverse" in str(v) for s in stores for v in s["attributes"].values())


def test_when_a_store_fails_then_its_span_says_unavailable(replica, tmp_path):
    trace = "5a1f00c0ffee00000000000000000044"
    replica.reset()
    with otlp_sink() as sink:
        config = settings(replica, {"scope": "key", "semantic": {"enabled": True}}, tmp_path,
                          observability={"recorder": "thread", "otlp_endpoint": sink.url})  # fmt: skip
        config["cache"] = {"semantic_backend": "service", "service_url": f"http://127.0.0.1:{free_port()}"}  # down
        with running_gateway(**config) as (url, _):
            traced_miss(url, trace)
            stores, _ = store_spans(sink, trace, 2)
    by_kind = {s["attributes"]["interlock.cache.kind"]: s["attributes"] for s in stores}
    assert by_kind["exact"]["interlock.cache.outcome"] == "stored"
    assert by_kind["semantic"]["interlock.cache.outcome"] == "unavailable"
    assert by_kind["semantic"]["error.type"] == "cache_unavailable"
