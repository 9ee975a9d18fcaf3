"""The check on a stream's first events, made before the gateway commits a 200 to the client."""

from __future__ import annotations

import pytest

from gateway.errors import UpstreamHTTPError, UpstreamProtocolError
from gateway.upstreams.sse import check_first_event

ROLE = b'{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}'
TOKEN = b'{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"}}]}'


@pytest.mark.parametrize("payload", [ROLE, TOKEN, b'{"choices":[],"usage":{"prompt_tokens":1}}'])
def test_when_the_event_is_a_chunk_then_it_passes(payload):
    check_first_event("d0", payload)


@pytest.mark.parametrize(
    "payload",
    [
        b'{"id":"chatcmpl-garbage","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"con',
        b"this is not json",
        b"[1, 2]",
        b'"a string"',
        b"",
    ],
)
def test_when_the_event_is_not_a_json_object_then_it_is_a_protocol_error(payload):
    with pytest.raises(UpstreamProtocolError, match="d0"):
        check_first_event("d0", payload)


@pytest.mark.parametrize(
    ("payload", "status", "retryable"),
    [
        (b'{"error":{"message":"prompt too long","type":"BadRequestError","code":400}}', 400, False),
        (b'{"error":{"message":"engine dead","type":"InternalServerError","code":500}}', 500, True),
        (b'{"error":"something broke"}', 502, True),
    ],
)
def test_when_the_event_is_an_upstream_error_then_it_keeps_its_status(payload, status, retryable):
    with pytest.raises(UpstreamHTTPError) as err:
        check_first_event("d0", payload)
    assert (err.value.status, err.value.retryable) == (status, retryable)
