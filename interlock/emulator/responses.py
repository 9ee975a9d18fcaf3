"""Turn planned outputs into vLLM's bodies and stream chunks, for chat and for legacy completions.

A ``Choice`` is one output of one prompt. ``Formatter`` knows the two routes' differences: chat sends a
role chunk first and uses ``delta``; completions put ``text`` in each chunk and send ``usage: null``;
completions with ``echo`` put the prompt in front of the first chunk / the text.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from interlock.emulator import protocol as p
from interlock.emulator.generation import Output
from interlock.emulator.validation import GenerationRequest


@dataclass(slots=True)
class Choice:
    index: int
    prompt: int
    out: Output
    echo: str = ""
    sent: int = 0
    """Tokens streamed so far (for cuts, continuous usage and the abort accounting)."""
    text_offset: int = 0


class Formatter:
    """Builds bodies and chunks for one request; ``rid``/``created``/``model`` are fixed per request."""

    def __init__(self, req: GenerationRequest, rid: str, created: int) -> None:
        self.req = req
        self.chat = req.kind == "chat"
        self.rid = rid
        self.created = created
        self.model = req.model
        self.object = "chat.completion.chunk" if self.chat else "text_completion"
        # Fast path for the common chunk (no logprobs, no per-chunk usage, not the last one): byte
        # templates around the token text, identical to what orjson makes of the dict.
        self._fast = req.logprobs is None and not req.continuous_usage
        self._head = b"".join(
            (
                b'data: {"id":',
                orjson.dumps(rid),
                b',"object":"',
                self.object.encode(),
                b'","created":',
                str(created).encode(),
                b',"model":',
                orjson.dumps(req.model),
                b',"choices":[{"index":',
            )
        )
        self._body_key = b',"delta":{"content":' if self.chat else b',"text":'
        self._tail = (
            b'},"logprobs":null,"finish_reason":null,"token_ids":null}]}\n\n'
            if self.chat
            else b',"logprobs":null,"finish_reason":null,"stop_reason":null,"prompt_token_ids":null,'
            b'"token_ids":null}],"usage":null}\n\n'
        )

    def body(self, choices: list[Choice]) -> bytes:
        req = self.req
        prompt = sum(req.prompt_tokens)
        completion = sum(c.out.steps for c in choices)
        use = p.usage(prompt, completion)
        if self.chat:
            items = [
                p.chat_choice(
                    c.index,
                    c.echo + c.out.text,
                    c.out.finish_reason,
                    c.out.stop_reason,
                    p.chat_logprobs(c.out.tokens, 0, req.logprobs) if req.logprobs is not None else None,
                    c.out.tool_calls,
                )
                for c in choices
            ]
            return orjson.dumps(p.chat_response(self.rid, self.created, self.model, items, use))
        items = [
            p.completion_choice(
                c.index,
                c.echo + c.out.text,
                c.out.finish_reason,
                c.out.stop_reason,
                p.completion_logprobs(c.out.tokens, 0, len(c.echo), req.logprobs) if req.logprobs is not None else None,
                stream=False,
            )
            for c in choices
        ]
        return orjson.dumps(p.completion_response(self.rid, self.created, self.model, items, use))

    def role_chunks(self, choices: list[Choice]) -> list[bytes]:
        if not self.chat:
            return []
        out = []
        for c in choices:
            chunk = p.chat_chunk(self.rid, self.created, self.model, p.chat_role_choice(c.index))
            chunk["prompt_token_ids"] = None
            if self.req.continuous_usage:
                chunk["usage"] = p.usage(self.req.prompt_tokens[c.prompt], 0)
            out.append(p.sse(chunk))
        return out

    def token_chunk(self, c: Choice, step: int) -> bytes:
        """The chunk for token ``step`` of choice ``c`` (the last one carries the finish reason)."""
        tokens = c.out.tokens
        if step >= len(tokens) and c.out.tool_pieces:
            return self._tool_chunk(c, step)
        last = step >= c.out.steps - 1
        if self._fast and not last and (self.chat or step or not c.echo):
            c.sent = step + 1
            return b"".join((self._head, str(c.index).encode(), self._body_key, orjson.dumps(tokens[step]), self._tail))
        text = tokens[step] if step < len(tokens) else ""
        finish = c.out.finish_reason if last else None
        stop_reason = c.out.stop_reason if last else None
        piece = [text] if step < len(tokens) else []
        c.sent = min(step + 1, c.out.steps)
        req = self.req
        use = p.usage(req.prompt_tokens[c.prompt], c.sent) if req.continuous_usage else None
        if self.chat:
            logprobs = p.chat_logprobs(piece, step, req.logprobs) if req.logprobs is not None else None
            chunk = p.chat_chunk(
                self.rid, self.created, self.model, p.chat_delta_choice(c.index, text, logprobs, finish, stop_reason)
            )
            if use is not None:
                chunk["usage"] = use
            return p.sse(chunk)
        if step == 0 and c.echo:
            text = c.echo + text
        logprobs = (
            p.completion_logprobs(piece, step, c.text_offset + (len(c.echo) if step == 0 else 0), req.logprobs)
            if req.logprobs is not None
            else None
        )
        c.text_offset += len(text)
        choice = p.completion_choice(c.index, text, finish, stop_reason, logprobs, stream=True)
        return p.sse(p.completion_chunk(self.rid, self.created, self.model, choice, use))

    def _tool_chunk(self, c: Choice, step: int) -> bytes:
        """A ``delta.tool_calls`` chunk as vLLM's tool parsers send it (no ``content`` key); the last one carries
        ``finish_reason: tool_calls``."""
        last = step >= c.out.steps - 1
        c.sent = step + 1
        choice = {"index": c.index, "delta": {"tool_calls": [c.out.tool_pieces[step - len(c.out.tokens)]]}}
        choice |= {"logprobs": None, "finish_reason": "tool_calls" if last else None}
        if last:
            choice["stop_reason"] = None
        choice["token_ids"] = None
        chunk = p.chat_chunk(self.rid, self.created, self.model, choice)
        if self.req.continuous_usage:
            chunk["usage"] = p.usage(self.req.prompt_tokens[c.prompt], c.sent)
        return p.sse(chunk)

    def tail(self, choices: list[Choice]) -> bytes:
        """The usage chunk (when asked for) and ``[DONE]``."""
        if not self.req.include_usage:
            return p.DONE
        completion = sum(c.out.steps for c in choices)
        use = p.usage(sum(self.req.prompt_tokens), completion, drop_none=True)
        return p.sse(p.usage_chunk(self.object, self.rid, self.created, self.model, use)) + p.DONE
