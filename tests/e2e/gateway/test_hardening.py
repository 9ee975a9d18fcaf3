"""Spine hardening (issue 7): errors in our shape, headers refused with the right status, metrics that say the truth."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.e2e.gateway.conftest import stored_records
from tests.support.gateway import model

MSG = [{"role": "user", "content": "hi"}]
CHAT = {"model": "m", "messages": MSG, "max_tokens": 2}


def metric_lines(url: str, name: str) -> list[str]:
    return [line for line in httpx.get(url + "/metrics").text.splitlines() if line.startswith(name)]


@pytest.mark.parametrize(
    ("fault", "status", "kind"),
    [
        ("status:400", 400, "invalid_request_error"),
        ("status:404", 404, "invalid_request_error"),
        ("status:422", 422, "invalid_request_error"),
        ("status:429", 429, "rate_limit_error"),
    ],
)
def test_when_the_upstream_refuses_then_its_error_reaches_the_client_in_openai_shape(
    fresh, gateway, fault, status, kind
):
    url, _ = gateway(models=[model("m", fresh[0].url)], retries={"attempts": 1})
    fresh[0].script_faults(fault, 1)
    r = httpx.post(url + "/v1/chat/completions", json=CHAT)
    error = r.json()["error"]
    assert r.status_code == status
    # vLLM sent {"type": "BadRequestError", "code": 400}: the type becomes OpenAI's, the code a string or null.
    assert (error["type"], error["code"]) == (kind, None)
    assert error["message"].endswith("(injected by the interlock emulator)")


def test_when_a_method_is_wrong_then_405_says_which_are_allowed(fresh, gateway):
    url, _ = gateway(models=[model("m", fresh[0].url)])
    r = httpx.get(url + "/v1/chat/completions")
    assert (r.status_code, r.headers["allow"]) == (405, "POST")
    r = httpx.post(url + "/health")
    assert (r.status_code, r.headers["allow"], r.json()["error"]["code"]) == (405, "GET, HEAD", "method_not_allowed")


def test_when_no_redis_is_configured_then_redis_up_is_absent_and_with_redis_it_is_one(fresh, gateway, redis_url):
    without, _ = gateway(models=[model("m", fresh[0].url)])
    assert metric_lines(without, "interlock_redis_up") == []
    with_redis, _ = gateway(
        models=[model("m", fresh[0].url)],
        redis={"url": redis_url},
        access={"bus_channel": f"interlock:config:{uuid.uuid4().hex}"},
    )
    httpx.post(with_redis + "/v1/chat/completions", json=CHAT)
    assert metric_lines(with_redis, "interlock_redis_up ") == ["interlock_redis_up 1.0"]


def test_when_a_model_is_unknown_then_metrics_say_unknown_and_the_record_keeps_the_name(fresh, gateway, sqlite_url):
    url, _ = gateway(models=[model("m", fresh[0].url)], database={"url": sqlite_url, "flush_interval": 0.1})
    r = httpx.post(url + "/v1/chat/completions", json={**CHAT, "model": "made-up-7"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    counted = metric_lines(url, "interlock_requests_total{")
    assert any('model="(unknown)"' in line and 'status="404"' in line for line in counted)
    assert not any("made-up-7" in line for line in counted)
    [record] = stored_records(sqlite_url, 1)
    assert (record["model"], record["served_model"], record["status"]) == ("made-up-7", None, 404)
    # The name is kept in the record, so it is bounded: a model name of 4 MB would be a 4 MB row.
    r = httpx.post(url + "/v1/chat/completions", json={**CHAT, "model": "x" * 257})
    assert (r.status_code, r.json()["error"]["param"]) == (400, "model")


def test_when_headers_exceed_the_limit_then_431_and_below_it_they_pass(fresh, gateway):
    url, _ = gateway(models=[model("m", fresh[0].url)], server={"max_header_bytes": 8192})
    big = {"x-padding": "a" * 1024 * 1024}
    r = httpx.post(url + "/v1/chat/completions", json=CHAT, headers=big)
    assert (r.status_code, r.json()["error"]["code"]) == (431, "request_header_fields_too_large")
    assert httpx.get(url + "/v1/models", headers=big).status_code == 431
    assert httpx.get(url + "/admin/docs", headers=big).status_code == 431
    r = httpx.post(url + "/v1/chat/completions", json=CHAT, headers={"x-padding": "a" * 7000})
    assert r.status_code == 200


def test_when_two_authorization_headers_are_sent_then_the_request_is_refused_with_400(fresh, gateway):
    url, _ = gateway(
        models=[model("m", fresh[0].url)],
        access={"require_keys": True, "master_key": "sk-test-aaaaaaaaaaaaaaaa"},
    )
    good = ("authorization", "Bearer sk-test-aaaaaaaaaaaaaaaa")
    assert httpx.post(url + "/v1/chat/completions", json=CHAT, headers=[good]).status_code == 200
    for headers in ([("authorization", "Bearer nope"), good], [good, good]):
        r = httpx.post(url + "/v1/chat/completions", json=CHAT, headers=headers)
        assert (r.status_code, r.json()["error"]["code"]) == (400, "duplicate_authorization")
        assert httpx.get(url + "/v1/models", headers=headers).status_code == 400


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({**CHAT, "messages": [{"role": ["user"], "content": "x"}]}, "messages[0].role"),
        ({**CHAT, "messages": [{"role": {"user": 1}, "content": "x"}]}, "messages[0].role"),
        ({**CHAT, "messages": [{"role": "user", "content": [1.5]}]}, "messages[0].content[0].type"),
        ({**CHAT, "messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages[0].content[0].text"),
        ({**CHAT, "max_tokens": 0}, "max_tokens"),
    ],
)
def test_when_a_body_would_have_been_a_500_or_an_upstream_error_then_it_is_a_400_naming_the_field(
    fresh, gateway, body, param
):
    url, _ = gateway(models=[model("m", fresh[0].url)])
    r = httpx.post(url + "/v1/chat/completions", json=body)
    assert (r.status_code, r.json()["error"]["param"]) == (400, param)
    assert fresh[0].stats()["requests_received"] == 0


def test_when_completions_ask_for_more_logprobs_than_vllm_allows_then_400_before_the_upstream(fresh, gateway):
    url, _ = gateway(models=[model("m", fresh[0].url)])
    for value in (21, 2**63 - 1):
        r = httpx.post(url + "/v1/completions", json={"model": "m", "prompt": "hi", "logprobs": value})
        assert (r.status_code, r.json()["error"]["param"]) == (400, "logprobs")
    r = httpx.post(url + "/v1/completions", json={"model": "m", "prompt": "hi", "logprobs": 2, "max_tokens": 2})
    assert r.status_code == 200 and len(r.json()["choices"][0]["logprobs"]["top_logprobs"][0]) == 2
