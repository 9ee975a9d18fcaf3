"""Context length: does prompt + ``max_tokens`` fit the target's window? If not, a larger model or a cut.

Tokens are counted with the model's own ``tokenizer.json`` when one is configured (Hugging Face
``tokenizers``, loaded once), else estimated (characters / 4 plus a few tokens of chat template per message,
which overestimates English slightly: an estimate should err towards "does not fit"). Never a silent cut: the
plan says what it did, and the gateway puts that in the headers and the trace.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from router.intent.errors import IntentRouterError

_PER_MESSAGE = 4  # role markers and separators of a chat template


class ModelContext(BaseModel):
    model_config = ConfigDict(extra="forbid")

    context_window: int = Field(gt=0)
    """Tokens the model accepts, prompt and completion together."""
    tokenizer: str | None = None
    """Path of the model's ``tokenizer.json``; unset: a fast estimate (characters / 4)."""


class ContextTooLong(IntentRouterError):
    """Nothing fits, or the policy forbids what would: the client gets a 400 ``context_length_exceeded``."""


@dataclass(slots=True)
class ContextPlan:
    model: str
    messages: list[Any]
    needed: int
    window: int | None
    action: Literal["fits", "upgraded", "truncated", "unknown"] = "fits"
    dropped: int = 0
    """Turns removed (oldest first, the system prompt kept)."""
    original_model: str | None = None

    def header(self) -> str:
        if self.action == "upgraded":
            return f"upgraded; from={self.original_model}; needed={self.needed}; window={self.window}"
        if self.action == "truncated":
            return f"truncated; dropped_turns={self.dropped}; needed={self.needed}; window={self.window}"
        return self.action


@functools.lru_cache(maxsize=16)
def _tokenizer(path: str):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(path)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def count_tokens(messages: list[Any], ctx: ModelContext | None) -> int:
    texts = [_text(m.get("content")) if isinstance(m, dict) else "" for m in messages]
    if ctx is not None and ctx.tokenizer:
        tok = _tokenizer(ctx.tokenizer)
        body = sum(len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False)) if texts else 0
    else:
        body = sum((len(t) + 3) // 4 for t in texts)
    return body + _PER_MESSAGE * len(messages)


def plan_context(
    model: str,
    messages: list[Any],
    max_tokens: int,
    windows: dict[str, ModelContext],
    policy: list[Literal["larger_model", "truncate"]],
    candidates: list[str] | None = None,
) -> ContextPlan:
    """Where the request goes so that it fits. ``candidates`` limits the larger models (default: any known)."""
    mine = windows.get(model)
    if mine is None:
        return ContextPlan(model, messages, count_tokens(messages, None) + max_tokens, None, "unknown")
    needed = count_tokens(messages, mine) + max_tokens
    if needed <= mine.context_window:
        return ContextPlan(model, messages, needed, mine.context_window)
    for step in policy:
        if step == "larger_model":
            pool = [m for m in (candidates if candidates is not None else list(windows)) if m in windows]
            for name in sorted(pool, key=lambda m: windows[m].context_window):
                w = windows[name]
                if w.context_window <= mine.context_window:
                    continue
                n = count_tokens(messages, w) + max_tokens
                if n <= w.context_window:
                    return ContextPlan(name, messages, n, w.context_window, "upgraded", original_model=model)
        elif step == "truncate":
            plan = _truncate(model, messages, max_tokens, mine)
            if plan is not None:
                return plan
    raise ContextTooLong(
        f"the prompt ({needed - max_tokens} tokens) plus max_tokens ({max_tokens}) does not fit the "
        f"{mine.context_window}-token window of {model!r}, and no configured policy ({policy}) made it fit",
        param="messages",
    )


def _truncate(model: str, messages: list[Any], max_tokens: int, ctx: ModelContext) -> ContextPlan | None:
    """Drop the oldest turns (never a system prompt, never the last message) until it fits."""
    kept = list(messages)
    dropped = 0
    while True:
        n = count_tokens(kept, ctx) + max_tokens
        if n <= ctx.context_window:
            return ContextPlan(model, kept, n, ctx.context_window, "truncated", dropped=dropped)
        victims = [i for i, m in enumerate(kept[:-1]) if not (isinstance(m, dict) and m.get("role") == "system")]
        if not victims:
            return None
        del kept[victims[0]]
        dropped += 1
