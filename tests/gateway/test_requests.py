"""Request checks: each bad input names its field."""

import pytest

from gateway.errors import InvalidRequest
from gateway.requests import build_context, new_request_id, parse_body

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("route", "body", "param"),
    [
        ("chat", {"messages": CHAT["messages"]}, "model"),
        ("chat", {"model": ""}, "model"),
        ("chat", {"model": "m"}, "messages"),
        ("chat", {"model": "m", "messages": []}, "messages"),
        ("chat", {"model": "m", "messages": ["hi"]}, "messages[0]"),
        ("chat", {"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ("chat", {"model": "m", "messages": [{"role": "user", "content": 3}]}, "messages[0].content"),
        ("chat", {**CHAT, "stream": "yes"}, "stream"),
        ("chat", {**CHAT, "stream_options": {"include_usage": True}}, "stream_options"),
        ("chat", {**CHAT, "temperature": "hot"}, "temperature"),
        ("chat", {**CHAT, "temperature": 3}, "temperature"),
        ("chat", {**CHAT, "top_p": 1.5}, "top_p"),
        ("chat", {**CHAT, "n": 0}, "n"),
        ("chat", {**CHAT, "max_tokens": 1.5}, "max_tokens"),
        ("chat", {**CHAT, "max_tokens": True}, "max_tokens"),
        ("chat", {**CHAT, "response_format": "json"}, "response_format"),
        ("chat", {"model": "m", "messages": [{"role": ["user"], "content": "x"}]}, "messages[0].role"),
        ("chat", {"model": "m", "messages": [{"role": {"a": 1}, "content": "x"}]}, "messages[0].role"),
        ("chat", {"model": "m", "messages": [{"role": "user", "content": [1.5]}]}, "messages[0].content[0].type"),
        (
            "chat",
            {"model": "m", "messages": [{"role": "user", "content": [{"text": "x"}]}]},
            "messages[0].content[0].type",
        ),
        (
            "chat",
            {"model": "m", "messages": [{"role": "user", "content": [{"type": ["text"]}]}]},
            "messages[0].content[0].type",
        ),
        (
            "chat",
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "text"}]}]},
            "messages[0].content[0].text",
        ),
        (
            "chat",
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": 1.5}]}]},
            "messages[0].content[0].text",
        ),
        (
            "chat",
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": 3}]}]},
            "messages[0].content[0].image_url",
        ),
        ("chat", {**CHAT, "max_tokens": 0}, "max_tokens"),
        ("chat", {**CHAT, "top_p": 0}, "top_p"),
        ("chat", {**CHAT, "repetition_penalty": 0}, "repetition_penalty"),
        ("chat", {**CHAT, "min_p": 1.5}, "min_p"),
        ("chat", {**CHAT, "min_tokens": -1}, "min_tokens"),
        ("chat", {**CHAT, "max_completion_tokens": 0}, "max_completion_tokens"),
        ("chat", {**CHAT, "logprobs": 5}, "logprobs"),
        ("chat", {**CHAT, "top_logprobs": 21}, "top_logprobs"),
        ("chat", {**CHAT, "seed": 2**63}, "seed"),
        ("completions", {"model": "m", "prompt": "hi", "logprobs": 2**63}, "logprobs"),
        ("completions", {"model": "m", "prompt": "hi", "logprobs": 21}, "logprobs"),
        ("completions", {"model": "m", "prompt": "hi", "logprobs": -1}, "logprobs"),
        ("completions", {"model": "m", "prompt": "hi", "logprobs": True}, "logprobs"),
        ("completions", {"model": "m"}, "prompt"),
        ("completions", {"model": "m", "prompt": [1, "a"]}, "prompt"),
        ("embeddings", {"model": "m", "input": []}, "input"),
        ("embeddings", {"model": "m", "input": "hi", "messages": [[]]}, "messages[0]"),
        ("embeddings", {"model": "m", "input": "hi", "messages": "hi"}, "messages"),
    ],
)
def test_when_a_field_is_wrong_then_the_error_names_it(route, body, param):
    with pytest.raises(InvalidRequest) as err:
        build_context(route, body, "r1", None)
    assert err.value.param == param and err.value.status == 400


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("chat", {**CHAT, "temperature": 0, "top_k": 5, "seed": 1, "logprobs": True, "guided_json": {}}),
        ("completions", {"model": "m", "prompt": "hi", "logprobs": 20, "max_tokens": 1}),
        (
            "chat",
            {
                "model": "m",
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {}}]}
                ],
            },
        ),
        ("completions", {"model": "m", "prompt": [1, 2, 3]}),
        ("completions", {"model": "m", "prompt": [[1, 2], [3]]}),
        ("embeddings", {"model": "m", "input": ["a", "b"], "stream": True}),
    ],
)
def test_when_a_body_is_valid_then_it_passes_untouched(route, body):
    ctx = build_context(route, body, "r1", None)
    assert ctx.body is body and ctx.model == "m"
    assert ctx.stream is False


@pytest.mark.parametrize("raw", [b"", b"{", b"[1, 2]", b'"text"'])
def test_when_the_body_is_not_a_json_object_then_it_is_refused(raw):
    with pytest.raises(InvalidRequest):
        parse_body(raw)


def test_when_the_client_sends_a_sane_request_id_then_it_is_kept_else_replaced():
    assert new_request_id("abc-123") == "abc-123"
    assert new_request_id("bad id with spaces") != "bad id with spaces"
    assert len(new_request_id(None)) == 32
