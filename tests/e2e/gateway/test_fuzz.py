"""Fuzzing the model routes over HTTP: whatever the body, the answer is never a 5xx, and every refusal is OpenAI
error JSON. Two fuzzers, each bounded to a few seconds per route: bodies that start valid and have any field
(message roles, content parts, sampling numbers, ...) replaced by arbitrary JSON, which is how ``role: ["user"]``
once became a 500 with a traceback; and schemathesis over the document the gateway publishes at ``/openapi.json``,
whose answers must also match that document, and whose bodies outside it must be refused."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import checks
from schemathesis.generation import GenerationMode

from interlock.emulator import EmulatorServer
from tests.support.gateway import model, running_gateway

pytestmark = pytest.mark.timeout(300)

ROLES = ["system", "user", "assistant", "tool", "developer"]
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
parts = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=12) | json_values}),
    st.fixed_dictionaries({"type": st.just("image_url"), "image_url": json_values}),
    st.fixed_dictionaries(
        {}, optional={"type": json_values | st.sampled_from(["text", "refusal"]), "text": json_values}
    ),
    json_values,
)
messages = st.fixed_dictionaries(
    {},
    optional={
        "role": st.sampled_from(ROLES) | json_values,
        "content": st.text(max_size=20) | st.lists(parts, max_size=3) | json_values,
        "name": json_values,
        "tool_calls": json_values,
        "tool_call_id": json_values,
    },
)
# A sensible value or arbitrary JSON for every field the gateway (or vLLM) reads.
FIELDS = {
    "model": st.just("m") | json_values,
    "messages": st.lists(messages, min_size=1, max_size=3) | json_values,
    "prompt": st.text(max_size=20) | st.lists(st.integers(0, 50_000), max_size=4) | json_values,
    "input": st.text(max_size=20) | st.lists(st.text(max_size=8), max_size=3) | json_values,
    "stream": st.booleans() | json_values,
    "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}) | json_values,
    "max_tokens": st.integers(-2, 40) | json_values,
    "max_completion_tokens": st.integers(-2, 40) | json_values,
    "n": st.integers(-1, 3) | json_values,
    "logprobs": st.booleans() | st.integers(-1, 25) | json_values,
    "top_logprobs": st.integers(-2, 25) | json_values,
    "echo": st.booleans() | json_values,
    **dict.fromkeys(
        ("temperature", "top_p", "top_k", "seed", "presence_penalty", "frequency_penalty", "min_tokens", "stop"),
        json_values,
    ),
    **dict.fromkeys(("response_format", "tools", "tool_choice", "user", "encoding_format", "dimensions"), json_values),
}
VALID = {
    "chat": {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3},
    "completions": {"model": "m", "prompt": "hi", "max_tokens": 3},
    "embeddings": {"model": "m", "input": "hi"},
}


#: The field each route is mostly about: fuzzed in most examples, the others now and then.
MAIN = {"chat": "messages", "completions": "prompt", "embeddings": "input"}


def bodies(route: str) -> st.SearchStrategy[dict]:
    main = MAIN[route]
    names = st.sets(st.sampled_from(sorted(FIELDS)), max_size=2).flatmap(
        lambda others: st.sets(st.just(main), max_size=1).map(lambda first: first | others)
    )
    changes = names.flatmap(lambda chosen: st.fixed_dictionaries({name: FIELDS[name] for name in chosen}))
    dropped = st.sets(st.sampled_from(sorted(VALID[route])), max_size=1)
    return st.tuples(changes, dropped).map(
        lambda cd: {k: v for k, v in {**VALID[route], **cd[0]}.items() if k not in cd[1]}
    )


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("fuzz") / "gw.db"
    with (
        EmulatorServer(port=0, served_model_names=["m"]) as emulator,
        running_gateway(
            models=[model("m", emulator.url)],
            database={"url": f"sqlite:///{db}"},
            retries={"attempts": 1},
        ) as (url, _),
    ):
        yield url


def check(client: httpx.Client, route: str, body: dict) -> None:
    response = client.post(f"/v1/{route.replace('chat', 'chat/completions')}", json=body)
    assert response.status_code < 500, (body, response.status_code, response.text[:300])
    if response.status_code >= 400:
        error = response.json()["error"]
        assert isinstance(error["message"], str) and isinstance(error["type"], str), error
        assert error["code"] is None or isinstance(error["code"], str), error


@pytest.mark.parametrize("route", ["chat", "completions", "embeddings"])
def test_when_bodies_are_fuzzed_then_no_answer_is_a_5xx_and_every_refusal_is_openai_json(gateway_url, route):
    with httpx.Client(base_url=gateway_url, timeout=30) as client:

        @settings(
            max_examples=150,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(body=bodies(route))
        def fuzz(body: dict) -> None:
            check(client, route, body)

        fuzz()


# Fewer than the hand-written fuzzer: generating from the chat schema's nested anyOf costs ~0.2 s an example here.
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"])
def test_when_schemathesis_fuzzes_the_published_document_then_answers_match_it_and_none_is_a_5xx(
    gateway_url, path, mode
):
    operation = schemathesis.openapi.from_url(gateway_url + "/openapi.json")[path]["POST"]
    extra = [checks.negative_data_rejection] if mode is GenerationMode.NEGATIVE else []

    @SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case) -> None:
        if mode is GenerationMode.POSITIVE and isinstance(case.body, dict):
            case.body["model"] = "m"  # a valid body names a served model, else every answer is the same 404
        response = case.call(base_url=gateway_url, timeout=30)
        case.validate_response(response, checks=CHECKS + extra)

    fuzz()
