"""Commercial providers go through litellm: here pointed at the emulator as an OpenAI-compatible provider, so
the whole litellm path (lazy import, translation to our bytes, streams, errors) runs without any network."""

from __future__ import annotations

import openai
import pytest

from tests.e2e.gateway.conftest import client


def litellm_model(name: str, url: str) -> dict:
    return {
        "name": name,
        "deployments": [
            {"kind": "litellm", "name": "provider", "model": "openai/m", "url": url, "api_key": "sk-provider"}
        ],
    }


def test_when_a_model_is_served_through_litellm_then_chat_and_streams_work(fresh, gateway):
    url, _ = gateway(models=[litellm_model("hosted", fresh[0].url)])
    c = client(url)
    msg = [{"role": "user", "content": "hi"}]
    r = c.chat.completions.with_raw_response.create(model="hosted", messages=msg, max_tokens=4)
    assert r.parse().usage.completion_tokens == 4 and r.headers["x-interlock-upstream"] == "provider"
    chunks = list(
        c.chat.completions.create(
            model="hosted", messages=msg, max_tokens=4, stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert chunks[-1].usage.completion_tokens == 4
    sent = fresh[0].recorded_requests()[-1]
    assert sent["headers"]["authorization"] == "Bearer sk-provider" and sent["body"]["model"] == "m"


def test_when_the_provider_fails_then_litellm_errors_become_ours_and_fall_back(fresh, gateway):
    local = {"name": "local", "deployments": [{"kind": "vllm", "url": fresh[1].url, "model": "m", "name": "vllm"}]}
    url, _ = gateway(
        models=[{**litellm_model("hosted", fresh[0].url), "fallbacks": ["local"]}, local], retries={"attempts": 1}
    )
    fresh[0].script_faults("status:503", 5)
    raw = client(url).chat.completions.with_raw_response.create(
        model="hosted", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-interlock-model"] == "local"


def test_when_the_provider_rejects_the_request_then_its_status_reaches_the_client(fresh, gateway):
    url, _ = gateway(models=[litellm_model("hosted", fresh[0].url)])
    fresh[0].script_faults("status:400", 5)
    with pytest.raises(openai.BadRequestError):
        client(url).chat.completions.create(model="hosted", messages=[{"role": "user", "content": "hi"}])
