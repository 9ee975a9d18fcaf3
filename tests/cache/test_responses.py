"""A stored answer replayed as SSE assembles back into the same answer; broken streams are not stored."""

from __future__ import annotations

import orjson

from cache import StreamAssembler, replay_stream

BODY = orjson.dumps(
    {
        "id": "c1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
)  # fmt: skip


def test_when_an_answer_is_replayed_then_the_events_end_with_usage_and_done_and_assemble_back():
    events = replay_stream(BODY, include_usage=True)
    assert events[-1] == b"data: [DONE]\n\n" and b'"usage"' in events[-2]
    asm = StreamAssembler(chat=True)
    for e in events:
        asm.feed(e)
    back = orjson.loads(asm.body())
    assert back["choices"][0]["message"]["content"] == "Hello there" and back["usage"]["total_tokens"] == 5


def test_when_usage_is_not_asked_then_the_replay_has_no_usage_chunk():
    assert not any(b'"usage"' in e for e in replay_stream(BODY, include_usage=False))


def test_when_a_stream_carries_an_error_or_tool_calls_or_never_finishes_then_nothing_is_stored():
    for events in (
        [b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n',
         b'data: {"error":{"message":"boom"}}\n\n'],
        [b'data: {"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"id":"t"}]},"finish_reason":"tool_calls"}]}'
         b"\n\n"],
        [b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'],
    ):  # fmt: skip
        asm = StreamAssembler(chat=True)
        for e in events:
            asm.feed(e)
        assert asm.body() is None
