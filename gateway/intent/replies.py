"""Stock answers (reply, clarify, human, url) as ordinary chat completions, streamed when asked, no model call.

A stream goes through ``GatewayStream`` like a model's would (usage chunk dropped unless asked for, ``finish``
exactly once, ``[DONE]`` at the end), so clients and the books cannot tell the difference.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import orjson

from gateway.streaming import GatewayStream
from gateway.types import RequestContext, UpstreamResponse, Usage
from router.intent import Target


def stock_text(target: Target) -> str:
    if target.reply is not None:
        return target.reply
    if target.clarify is not None:
        return target.clarify
    if target.human is not None:
        return target.human.reply
    return f"You will find help with this here: {target.url}"


def _base(ctx: RequestContext, name: str, kind: str) -> dict:
    return {"id": f"chatcmpl-{ctx.request_id}", "object": kind, "created": int(time.time()), "model": name}


def completion(ctx: RequestContext, name: str, text: str) -> UpstreamResponse:
    body = {
        **_base(ctx, name, "chat.completion"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }
    # No usage: no tokens were spent, and a price lookup for a router name would be wasted work.
    return UpstreamResponse(200, orjson.dumps(body), None)


class _Stock:
    """The ``UpstreamStream`` side of a stock answer: nothing to close, no tokens spent."""

    def __init__(self) -> None:
        self.usage: Usage | None = None

    def __aiter__(self):  # pragma: no cover - GatewayStream reads ``rest`` instead
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


def stream(ctx: RequestContext, name: str, text: str, finish) -> GatewayStream:
    chunk = _base(ctx, name, "chat.completion.chunk")

    async def payloads() -> AsyncIterator[bytes]:
        ctx.first_token_at = time.perf_counter()
        delta = {"role": "assistant", "content": text}
        yield orjson.dumps({**chunk, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        yield orjson.dumps({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        yield orjson.dumps({**chunk, "choices": [], "usage": usage})

    return GatewayStream(ctx, _Stock(), payloads(), [], finish)
