"""Cached answers as the client expects them: a stored body replayed as an SSE stream, and a completed stream
assembled into the body that is stored. (The cache never stores the SSE bytes themselves: one stored form
serves streaming and non-streaming clients alike.)"""

from __future__ import annotations

from typing import Any

import orjson

DONE_EVENT = b"data: [DONE]\n\n"


def _event(obj: Any) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def replay_stream(body: bytes, include_usage: bool) -> list[bytes]:
    """SSE events equivalent to ``body`` (a ``chat.completion`` or ``text_completion``), ending with ``[DONE]``."""
    obj = orjson.loads(body)
    chat = obj.get("object") == "chat.completion"
    base = {
        "id": obj.get("id"),
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": obj.get("created"),
        "model": obj.get("model"),
    }
    events = []
    for choice in obj.get("choices") or []:
        i = choice.get("index", 0)
        if chat:
            msg = choice.get("message") or {}
            events.append(_event({**base, "choices": [{"index": i, "delta": {"role": "assistant", "content": ""},
                                                       "finish_reason": None}]}))  # fmt: skip
            delta = {k: v for k, v in msg.items() if k != "role" and v is not None}
            events.append(_event({**base, "choices": [{"index": i, "delta": delta, "finish_reason": None}]}))
            fin: dict = {"index": i, "delta": {}, "finish_reason": choice.get("finish_reason")}
        else:
            events.append(_event({**base, "choices": [{"index": i, "text": choice.get("text", ""),
                                                       "finish_reason": None}]}))  # fmt: skip
            fin = {"index": i, "text": "", "finish_reason": choice.get("finish_reason")}
        events.append(_event({**base, "choices": [fin]}))
    if include_usage and obj.get("usage") is not None:
        events.append(_event({**base, "choices": [], "usage": obj["usage"]}))
    events.append(DONE_EVENT)
    return events


class StreamAssembler:
    """Feeds on the SSE events a client received; ``body()`` is the equivalent complete answer, or ``None``
    when the stream is not one we can store (tool calls, several choices, an error event, no end)."""

    __slots__ = ("base", "chat", "content", "finish", "ok", "usage")

    def __init__(self, chat: bool) -> None:
        self.chat = chat
        self.content: list[str] = []
        self.finish: str | None = None
        self.base: dict | None = None
        self.usage: dict | None = None
        self.ok = True

    def feed(self, event: bytes) -> None:
        if not self.ok or not event.startswith(b"data: "):
            return
        payload = event[6:].strip()
        if payload == b"[DONE]":
            return
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError:
            self.ok = False
            return
        if "error" in obj:
            self.ok = False
            return
        if self.base is None:
            self.base = {k: obj.get(k) for k in ("id", "created", "model")}
        if obj.get("usage"):
            self.usage = obj["usage"]
        for choice in obj.get("choices") or []:
            if choice.get("index", 0) != 0:
                self.ok = False
                return
            if self.chat:
                delta = choice.get("delta") or {}
                if delta.get("tool_calls") or delta.get("function_call"):
                    self.ok = False
                    return
                if delta.get("content"):
                    self.content.append(delta["content"])
            elif choice.get("text"):
                self.content.append(choice["text"])
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]

    def body(self, usage: dict | None = None) -> bytes | None:
        """The complete answer; ``usage`` fills in when the client's stream carried none (it did not ask)."""
        if not self.ok or self.base is None or self.finish is None:
            return None
        text = "".join(self.content)
        if self.chat:
            choice: dict = {"index": 0, "message": {"role": "assistant", "content": text},
                            "finish_reason": self.finish}  # fmt: skip
            kind = "chat.completion"
        else:
            choice = {"index": 0, "text": text, "finish_reason": self.finish}
            kind = "text_completion"
        obj = {**self.base, "object": kind, "choices": [choice]}
        if (self.usage or usage) is not None:
            obj["usage"] = self.usage or usage
        return orjson.dumps(obj)
