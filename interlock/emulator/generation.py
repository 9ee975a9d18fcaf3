"""Deterministic "model": token counting and the text the emulator generates.

Token counting is a heuristic that is the same everywhere (tests may import it to predict usage):

* a text prompt costs ``ceil(len(text) / 4)`` tokens (``text_tokens``); a token-id prompt costs its length;
* a chat prompt costs, per message, the tokens of its text plus ``MESSAGE_OVERHEAD`` (role markers of a
  chat template), plus ``GENERATION_PROMPT`` for the assistant header (``chat_prompt_tokens``);
* each generated token is one word (with its leading space), so ``completion_tokens`` equals the number
  of streamed content chunks, as with vLLM's one-token-per-chunk streaming.

What is generated:

* ``x-emulator-reply: TEXT`` -> exactly TEXT, split into word tokens; a scripted reply may give the tokens
  themselves, a list of strings (tests choose the chunking, as with tool-call arguments);
* a scripted reply with ``tool_calls`` (chat) -> those calls after the text, in vLLM's shape: each call's first
  chunk has its ``id``, ``type`` and ``function.name``, then its ``arguments`` follow in pieces of up to
  ``TOOL_PIECE`` characters (one token each; ``arguments`` as a list of strings: those pieces), and the answer
  ends with ``finish_reason: tool_calls``;
* no ``seed`` -> an echo: the words of the last user message (or prompt), cycled; choice ``i`` starts at
  word ``i`` so ``n > 1`` choices differ;
* ``seed`` -> words drawn from a fixed vocabulary by a PRNG seeded with (seed, choice, prompt), so the same
  seed and prompt always give the same text and another seed gives another text.

Length: the model "wants" ``output_tokens`` tokens and then ends its sequence (``finish_reason: stop``);
a ``max_tokens`` below that cuts it (``length``). ``stop`` strings end it early as in vLLM: the text up to
the stop string is returned (with it if ``include_stop_str_in_output``), the token that completed the
match is counted, and ``stop_reason`` names the string.
"""

from __future__ import annotations

import json
import random
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

MESSAGE_OVERHEAD = 4
GENERATION_PROMPT = 3

VOCABULARY = (  # noqa: SIM905 - one readable sentence beats a column of 43 strings
    "the quick brown fox jumps over lazy dog while seven bright lanterns glow above quiet "
    "river banks where tired sailors count silver fish under cold northern skies and gentle "
    "winds carry distant songs across green valleys toward old stone bridges near sleeping "
    "villages"
).split()

_WORD = re.compile(r"\s*\S+")
#: Characters of tool-call arguments per streamed piece (a placeholder such as ``[PERSON_1]`` spans three).
TOOL_PIECE = 4


def text_tokens(text: str) -> int:
    """Prompt tokens of a text: ``ceil(len(text) / 4)``."""
    return (len(text) + 3) // 4


def content_text(content: Any) -> str:
    """The text of a chat message ``content``: a string, or the ``text`` parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def chat_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """Prompt tokens of a chat request (see the module docstring)."""
    total = GENERATION_PROMPT
    for message in messages:
        total += MESSAGE_OVERHEAD + text_tokens(content_text(message.get("content")))
    return total


def prompt_tokens(prompt: str | list[int]) -> int:
    """Prompt tokens of one completions prompt: a text or a list of token ids."""
    return text_tokens(prompt) if isinstance(prompt, str) else len(prompt)


@dataclass(slots=True)
class Output:
    """One choice's generated tokens (their texts, in order) and why generation ended."""

    tokens: list[str]
    finish_reason: str
    stop_reason: str | None = None
    #: Tool calls, whole (``{"id", "type", "function": {"name", "arguments"}}``) for the non-streamed message.
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    #: ``delta.tool_calls`` items, one per token step after the content tokens.
    tool_pieces: list[dict[str, Any]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.tokens)

    @property
    def steps(self) -> int:
        """Token steps (streamed chunks): the content tokens, then the tool-call pieces."""
        return len(self.tokens) + len(self.tool_pieces)


def plan_tool_calls(calls: list[dict[str, Any]], choice: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The whole calls and their streamed pieces; ids are stable per (choice, call, name) so tests can compare."""
    whole, pieces = [], []
    for i, call in enumerate(calls):
        name, args = str(call["name"]), call.get("arguments", "")
        # a list of strings: the pieces exactly as streamed (tests choose the chunking); else TOOL_PIECE chars
        split = [str(a) for a in args] if isinstance(args, list) else None
        args = "".join(split) if split is not None else args if isinstance(args, str) else json.dumps(args)
        cid = f"chatcmpl-tool-{zlib.crc32(f'{choice}:{i}:{name}'.encode()):08x}"
        whole.append({"id": cid, "type": "function", "function": {"name": name, "arguments": args}})
        pieces.append({"id": cid, "type": "function", "index": i, "function": {"name": name}})
        if split is None:
            split = [args[j : j + TOOL_PIECE] for j in range(0, len(args), TOOL_PIECE)]
        pieces.extend({"index": i, "function": {"arguments": a}} for a in split if a)
    return whole, pieces


def _words(source: str, seed: int | None, index: int, count: int, lead: bool = False) -> list[str]:
    if seed is not None:
        rng = random.Random(f"{seed}:{index}:{source}")
        picked = [rng.choice(VOCABULARY) for _ in range(count)]
    else:
        words = source.split() or VOCABULARY
        picked = [words[(index + i) % len(words)] for i in range(count)]
    return [w if i == 0 and not lead else " " + w for i, w in enumerate(picked)]


def generate(
    source: str,
    *,
    index: int,
    want: int,
    limit: int,
    seed: int | None = None,
    reply: str | list[str] | None = None,
    stop: list[str] | None = None,
    include_stop: bool = False,
    ignore_eos: bool = False,
    min_tokens: int = 0,
    continuation: bool = False,
    tool_calls: list[dict[str, Any]] | None = None,
) -> Output:
    """Plan one choice's output; ``want`` is the natural length and ``limit`` the effective max_tokens.

    ``continuation`` (legacy completions) starts the first word with a space, as a model continuing a
    prompt does; a chat reply starts without one.
    """
    reply_tokens = list(reply) if isinstance(reply, list) else _WORD.findall(reply) if reply is not None else None
    if reply_tokens is not None:
        want = len(reply_tokens)
    want = max(want, min_tokens)
    if ignore_eos or want > limit:
        count, finish = limit, "length"
    else:
        count, finish = want, "stop"
    if reply_tokens is not None:
        # The reply is the whole message; past its end (ignore_eos) the echo takes over.
        extra = _words(source, seed, index, max(0, count - len(reply_tokens)), lead=bool(reply_tokens))
        tokens = reply_tokens[:count] + extra
    else:
        tokens = _words(source, seed, index, count, lead=continuation)
    if tool_calls:  # the model calls tools after its text (max_tokens and stop apply to the text only)
        whole, pieces = plan_tool_calls(tool_calls, index)
        return Output(tokens, "tool_calls", None, whole, pieces)
    if stop:
        return _apply_stop(tokens, stop, include_stop) or Output(tokens, finish)
    return Output(tokens, finish)


def _apply_stop(tokens: list[str], stop: list[str], include_stop: bool) -> Output | None:
    longest = max(len(s) for s in stop)
    text = ""
    for k, token in enumerate(tokens):
        before = len(text)
        text += token
        window_start = max(0, before - longest + 1)
        hits = [(pos, s) for s in stop if s and (pos := text.find(s, window_start)) != -1]
        if hits:
            pos, matched = min(hits)
            end = pos + len(matched) if include_stop else pos
            # Earlier tokens are already "streamed"; only the matching token's text may shrink.
            return Output([*tokens[:k], text[before:end] if end > before else ""], "stop", matched)
    return None


def token_logprob(token: str, position: int) -> float:
    """A deterministic log-probability for a generated token (only its shape matters to clients)."""
    return -round(((zlib.crc32(token.encode()) + position) % 997) / 1000.0, 4)


def top_alternatives(token: str, position: int, count: int) -> list[tuple[str, float]]:
    """The token itself first, then vocabulary words with lower log-probabilities."""
    chosen = token_logprob(token, position)
    out = [(token, chosen)]
    start = zlib.crc32(token.encode()) % len(VOCABULARY)
    for i in range(max(0, count - 1)):
        word = " " + VOCABULARY[(start + i + 1) % len(VOCABULARY)]
        out.append((word, round(chosen - 1.0 - i, 4)))
    return out
