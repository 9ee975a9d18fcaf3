"""Streamed tool calls are unmasked like content: ``delta.tool_calls[].function.arguments`` arrives in pieces that
may split a placeholder, and what a client joins per tool-call index must be the unmasked arguments, for any
chunking. The inner stream replays the SSE events an upstream model sends (the LLM is the only stand-in)."""

from __future__ import annotations

import asyncio
import itertools

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.guarding import UnmaskingStream
from gateway.upstreams.sse import DONE_EVENT, event
from guardrails import Finding, MaskMap

PROMPT = "Book a table for Ana Lima, phone 212-555-0199."


class _Upstream:
    """What the dispatcher hands back for a streamed answer: ``ctx``, the events, ``abandon``."""

    ctx = None

    def __init__(self, events: list[bytes]) -> None:
        self._events = events

    async def abandon(self) -> None:
        pass

    def __aiter__(self):
        return self._gen()

    async def _gen(self):
        for ev in self._events:
            yield ev


def _chunk(delta: dict, finish: str | None = None) -> bytes:
    body = {"id": "c1", "object": "chat.completion.chunk", "model": "m"}
    return event(orjson.dumps({**body, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}))


def _masked() -> tuple[MaskMap, str]:
    mask_map = MaskMap()
    masked = mask_map.mask(PROMPT, [Finding("pii", "PERSON", 17, 25, 0.9), Finding("pii", "PHONE_NUMBER", 33, 45, 0.9)])
    assert "Ana Lima" not in masked and "212-555-0199" not in masked
    return mask_map, masked


def _run(mask_map: MaskMap, events: list[bytes]) -> list[dict]:
    async def collect() -> list[bytes]:
        return [ev async for ev in UnmaskingStream(_Upstream(events), mask_map, chat=True)]

    out = asyncio.run(collect())
    assert out[-1] == DONE_EVENT
    return [orjson.loads(ev[6:]) for ev in out if ev.startswith(b"data: {")]


def _joined_arguments(chunks: list[dict]) -> dict[int, str]:
    args: dict[int, str] = {}
    for c in chunks:
        for choice in c["choices"]:
            for call in choice["delta"].get("tool_calls") or ():
                args[call["index"]] = args.get(call["index"], "") + call["function"].get("arguments", "")
    return args


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=80), max_size=12), finish_chunk=st.booleans())
def test_when_tool_call_arguments_are_streamed_in_any_chunks_then_the_client_gets_them_unmasked(cuts, finish_chunk):
    mask_map, _ = _masked()
    person, phone = mask_map.by_value["Ana Lima"], mask_map.by_value["212-555-0199"]
    arguments = orjson.dumps({"name": person, "phone": phone, "note": f"{person} calls {phone}"}).decode()
    bounds = sorted({0, len(arguments), *(min(c, len(arguments)) for c in cuts)})
    pieces = [arguments[a:b] for a, b in itertools.pairwise(bounds)]
    events = [
        _chunk(
            {
                "role": "assistant",
                "tool_calls": [
                    {"index": 0, "id": "t1", "type": "function", "function": {"name": "book", "arguments": ""}}
                ],
            }
        )
    ]
    events += [_chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}) for p in pieces]
    if finish_chunk:
        events.append(_chunk({}, "tool_calls"))
    events.append(DONE_EVENT)
    args = _joined_arguments(_run(mask_map, events))
    assert orjson.loads(args[0]) == {"name": "Ana Lima", "phone": "212-555-0199", "note": "Ana Lima calls 212-555-0199"}
