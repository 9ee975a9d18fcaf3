"""PII masking in front of the real vLLM-CPU worker (SmolLM2-135M): what vLLM saw, what the client got back.

vLLM itself tells us what reached it: ``prompt_logprobs`` returns the prompt's tokens as the model read them,
and ``logprobs`` the answer's tokens as the model wrote them. The gateway unmasks only the answer's content, so
these show the masked side, and the assertions are gateway guarantees, not facts a 135M model may know.
"""

from __future__ import annotations

import json

import httpx
import pytest

from tests.e2e.gateway.conftest import stored_records
from tests.e2e.guardrails.conftest import _running

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(900)]

NAME, EMAIL = "Maria Gonzalez", "maria.gonzalez@example.com"


@pytest.fixture(scope="module")
def database_url(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('gw') / 'gw.db'}"


@pytest.fixture(scope="module")
def gateway_url(vllm_worker, database_url):
    deployments = [{"kind": "vllm", "name": "cpu-worker", "url": vllm_worker.url, "model": "smollm2"}]
    settings = {
        "models": [{"name": "smollm2", "deployments": deployments}],
        "database": {"url": database_url, "flush_interval": 0.1},
        "timeouts": {"first_token": 120, "total": 300},
        "guardrails": {
            "enabled": True,
            "policies": {"mask": {"input": {"pii": {"action": "mask"}}}},
            "attach": {"models": {"smollm2": "mask"}},
        },
    }
    with _running(settings) as url:
        yield url


def test_when_a_prompt_carries_pii_then_vllm_reads_placeholders_and_the_client_gets_the_values(
    gateway_url, database_url
):
    prompt = f"My name is {NAME} and my email is {EMAIL}. Repeat my email address: {EMAIL}"
    r = httpx.post(
        gateway_url + "/v1/chat/completions",
        json={
            "model": "smollm2",
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": 24,
            "temperature": 0,
            "logprobs": True,
            "prompt_logprobs": 0,
        },
        timeout=300,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    seen = "".join(token["decoded_token"] for pos in body["prompt_logprobs"] if pos for token in pos.values())
    assert EMAIL not in seen and NAME not in seen
    assert seen.count("[EMAIL_ADDRESS_1]") == 2 and "[PERSON_1]" in seen

    # The answer as vLLM wrote it, token by token; the client's content is exactly its unmasking.
    choice = body["choices"][0]
    written = "".join(t["token"] for t in choice["logprobs"]["content"])
    expected = written.replace("[EMAIL_ADDRESS_1]", EMAIL).replace("[PERSON_1]", NAME)
    assert choice["message"]["content"] == expected

    record = next(row for row in stored_records(database_url, 1) if row["route"] == "chat")
    details = record["details"] if isinstance(record["details"], dict) else json.loads(record["details"])
    assert details["guard_action"] == "mask" and "pii:EMAIL_ADDRESS" in details["guards"]
    assert not any(EMAIL in str(v) or NAME in str(v) for v in record.values())
