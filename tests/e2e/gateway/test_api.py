"""The OpenAI-compatible API through the gateway, with the official SDK, against emulated vLLM."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.e2e.gateway.conftest import client
from tests.support.gateway import model

MSG = [{"role": "user", "content": "Say something about otters."}]


def test_when_chatting_then_the_sdk_gets_a_completion_with_usage_and_our_headers(fresh, gateway):
    url, _ = gateway(models=[model("m", fresh[0].url)])
    raw = client(url).chat.completions.with_raw_response.create(model="m", messages=MSG, max_tokens=5)
    r = raw.parse()
    assert r.choices[0].message.content and r.usage.completion_tokens == 5
    assert r.choices[0].finish_reason == "length"
    assert raw.headers["x-interlock-model"] == "m" and raw.headers["x-interlock-upstream"] == "d0"
    assert len(raw.headers["x-request-id"]) == 32


def test_when_a_request_id_is_sent_then_it_is_echoed_and_forwarded(fresh, gateway):
    url, _ = gateway(models=[model("m", fresh[0].url)])
    raw = client(url).chat.completions.with_raw_response.create(
        model="m", messages=MSG, extra_headers={"x-request-id": "trace-me-42"}
    )
    assert raw.headers["x-request-id"] == "trace-me-42"
    assert fresh[0].recorded_requests()[-1]["headers"]["x-request-id"] == "trace-me-42"


def test_when_streaming_with_usage_then_chunks_and_a_final_usage_chunk_arrive(fresh, gateway):
    url, _ = gateway(models=[model("m", fresh[0].url)])
    chunks = list(
        client(url).chat.completions.create(
            model="m", messages=MSG, stream=True, stream_options={"include_usage": True}, max_tokens=4
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text and chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 4


def test_when_streaming_without_usage_then_no_usage_chunk_reaches_the_client(fresh, gateway):
    url, _ = gateway(models=[model("m", fresh[0].url)])
    chunks = list(client(url).chat.completions.create(model="m", messages=MSG, stream=True, max_tokens=4))
    assert chunks and all(c.choices for c in chunks)
    # ... although the gateway asked the upstream for it, to count tokens:
    assert fresh[0].recorded_requests()[-1]["body"]["stream_options"] == {"include_usage": True}


def test_when_completing_and_embedding_then_both_routes_work_streaming_included(fresh, gateway):
    url, _ = gateway(models=[model("m", fresh[0].url)])
    c = client(url)
    assert c.completions.create(model="m", prompt="Once upon", max_tokens=3).usage.completion_tokens == 3
    streamed = list(c.completions.create(model="m", prompt="Once upon", max_tokens=3, stream=True))
    assert "".join(s.choices[0].text for s in streamed if s.choices)
    e = c.embeddings.create(model="m", input=["a", "b"])
    assert len(e.data) == 2 and len(e.data[0].embedding) == 384


def test_when_sampling_parameters_are_sent_then_they_reach_vllm_untouched(fresh, gateway):
    url, _ = gateway(models=[model("m", fresh[0].url)])
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    params = dict(
        temperature=0.3,
        top_p=0.9,
        stop=["\n"],
        max_tokens=7,
        seed=11,
        logprobs=True,
        top_logprobs=2,
        n=2,
        response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": schema}},
    )
    r = client(url).chat.completions.create(model="m", messages=MSG, extra_body={"top_k": 5}, **params)
    assert len(r.choices) == 2
    body = fresh[0].recorded_requests()[-1]["body"]
    for k, v in {**params, "top_k": 5}.items():
        assert body[k] == v, k


def test_when_listing_models_then_configured_names_are_returned(fresh, gateway):
    url, _ = gateway(models=[model("m", fresh[0].url), model("other", fresh[1].url)])
    assert sorted(m.id for m in client(url).models.list()) == ["m", "other"]


@pytest.mark.parametrize(
    ("body", "headers", "status", "needle"),
    [
        (b"{not json", {"content-type": "application/json"}, 400, "not valid JSON"),
        (b'{"messages": []}', {"content-type": "application/json"}, 400, "'model' is required"),
        (b'{"model": "m"}', {"content-type": "application/json"}, 400, "'messages'"),
        (
            b'{"model": "ghost", "messages": [{"role": "user", "content": "x"}]}',
            {"content-type": "application/json"},
            404,
            "does not exist",
        ),
        (b"model=m", {"content-type": "application/x-www-form-urlencoded"}, 415, "Content-Type: application/json"),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "' + b"x" * 3000 + b'"}]}',
            {"content-type": "application/json"},
            413,
            "larger than the limit",
        ),
    ],
)
def test_when_input_is_bad_then_a_clear_openai_error_comes_back(fresh, gateway, body, headers, status, needle):
    url, _ = gateway(models=[model("m", fresh[0].url)], server={"max_body_bytes": 2048})
    r = httpx.post(url + "/v1/chat/completions", content=body, headers=headers)
    assert r.status_code == status
    err = r.json()["error"]
    assert needle in err["message"] and set(err) == {"message", "type", "param", "code"}
    assert fresh[0].stats()["requests_received"] == 0


def test_when_the_sdk_hits_an_unknown_model_then_it_raises_not_found(fresh, gateway):
    url, _ = gateway(models=[model("m", fresh[0].url)])
    with pytest.raises(openai.NotFoundError):
        client(url).chat.completions.create(model="ghost", messages=MSG)


def test_when_a_route_or_method_is_wrong_then_404_or_405(fresh, gateway):
    url, _ = gateway(models=[model("m", fresh[0].url)])
    assert httpx.get(url + "/v2/everything").status_code == 404
    assert httpx.get(url + "/v1/chat/completions").status_code == 405


def test_when_the_upstream_answers_garbage_then_the_client_gets_a_502(fresh, gateway):
    url, _ = gateway(models=[model("m", fresh[0].url)], retries={"attempts": 1})
    fresh[0].script_faults("garbage", 1)
    r = httpx.post(url + "/v1/chat/completions", json={"model": "m", "messages": MSG})
    assert r.status_code == 502 and "invalid JSON" in r.json()["error"]["message"]


def test_when_the_upstream_refuses_the_request_then_its_4xx_reaches_the_client_unretried(fresh, gateway):
    url, _ = gateway(models=[model("m", fresh[0].url)])
    fresh[0].script_faults("status:400", 3)
    with pytest.raises(openai.BadRequestError):
        client(url).chat.completions.create(model="m", messages=MSG)
    assert fresh[0].stats()["requests_received"] == 1


def test_when_probed_then_health_ready_and_metrics_answer(fresh, gateway):
    url, _ = gateway(models=[model("m", fresh[0].url)])
    client(url).chat.completions.create(model="m", messages=MSG, stream=True).close()
    client(url).chat.completions.create(model="m", messages=MSG)
    assert httpx.get(url + "/health").json() == {"status": "ok"}
    ready = httpx.get(url + "/ready")
    assert ready.status_code == 200 and ready.json()["models"] == {"m": 1}
    metrics = httpx.get(url + "/metrics").text
    for name in (
        "interlock_requests_total",
        "interlock_request_duration_seconds_bucket",
        "interlock_time_to_first_token_seconds_bucket",
        "interlock_time_per_output_token_seconds_bucket",
        "interlock_tokens_total",
    ):
        assert name in metrics, name


def test_when_no_replica_of_a_model_is_healthy_then_ready_says_503(fresh, gateway):
    url, _ = gateway(models=[model("m", fresh[0].url)])
    fresh[0].set_healthy(False)
    deadline = 50
    while httpx.get(url + "/ready").status_code == 200 and deadline:
        deadline -= 1
        __import__("time").sleep(0.1)
    r = httpx.get(url + "/ready")
    assert r.status_code == 503 and r.json()["models"] == {"m": 0}
