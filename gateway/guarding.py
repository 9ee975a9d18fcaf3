"""The guardrails step: input guards before the request goes upstream, unmasking of the answer after.

- Requests whose policy has no input guards (or that no policy covers) pass with three dict lookups.
- The prompt's texts (every message and role; a completions prompt) are scanned concurrently; ``mask``
  findings are replaced by placeholders in ``ctx.body`` before dispatch, ``block`` stops the request (a 400
  ``guardrail_blocked`` naming the guard, or a stock completion), a failed guard follows ``on_error``.
- ``text/event-stream``: the answer's SSE events are rewritten chunk by chunk by ``UnmaskingStream``: content
  pieces go through a ``StreamUnmasker`` per choice, which holds back only a possible placeholder prefix.
  Non-streaming answers are unmasked whole (content and tool-call arguments).
- Findings (types, offsets, scores: never values) go to ``ctx.notes["guardrails"]``, the span and the metrics.
  The mask map lives in this coroutine's frame and in the stream wrapper only.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from gateway.errors import InvalidRequest, ServiceUnavailable
from gateway.types import RequestContext, UpstreamResponse, Usage
from gateway.upstreams.sse import DONE_EVENT, event
from guardrails import Action, GuardContext, GuardFailed, Guardrails, MaskMap, PolicyConfig, StreamUnmasker
from observability.guardrails import GuardrailMetrics
from observability.tracing import CLIENT, step_span

#: ``ctx.notes`` key: the placeholders of the request's mask map (never its values); not recorded.
NOTE_PLACEHOLDERS = "guard_placeholders"


async def start_guardrails(gateway: Any) -> list:
    """Build and load the guards (models load now, in a thread, never on a request); return the step to add,
    or nothing when no policy is attached to anything."""
    cfg = gateway.settings.guardrails
    if cfg.mode == "service":  # the same interface over HTTP; the models live in the guardrails service
        from guardrails.remote import RemoteGuardrails

        runtime = RemoteGuardrails(cfg)
    else:
        runtime = Guardrails(cfg)
    gateway.require_embeddings()
    await asyncio.to_thread(runtime.load)
    gateway.guardrails = runtime
    gateway.guardrail_metrics = metrics = GuardrailMetrics(gateway.metrics.registry)
    stored = gateway.settings.guardrails.stored_policies
    if stored:  # policies from the admin API (gateway/guard_policies.py): loaded now, then followed over the bus
        from gateway.guard_policies import start_policies

        await start_policies(gateway, runtime)
    return [GuardStep(runtime, gateway, metrics)] if runtime.attached or stored else []


def guard_context(gateway: Any, ctx: RequestContext) -> GuardContext:
    """Guards embed through the request's shared memo: the router and the cache reuse the same vectors. The scope
    (the caller's key, else team) keeps what guards memoise per tenant."""
    return GuardContext(embed=gateway.request_embeddings(ctx).get, scope=guard_scope(ctx))


def guard_scope(ctx: RequestContext) -> str:
    p = ctx.principal
    return f"key:{p.key_id}" if p.key_id else f"team:{p.team_id}" if p.team_id else "anonymous"


class GuardStep:
    def __init__(self, runtime: Guardrails, gateway: Any, metrics: GuardrailMetrics) -> None:
        self.runtime = runtime
        self.gateway = gateway
        self.metrics = metrics
        #: Service mode: each scan is a CLIENT span whose traceparent makes the guardrails service's span its child.
        self.remote = getattr(runtime, "service", None) is not None

    async def __call__(self, ctx: RequestContext, call_next):
        if ctx.route == "embeddings":
            return await call_next(ctx)
        p = ctx.principal
        policy = self.runtime.policy_for(p.key_id, p.key_name, p.team_id, ctx.model)
        if policy is None or not policy.input:
            return await call_next(ctx)
        return await self._guarded(ctx, call_next, policy)

    async def _guarded(self, ctx: RequestContext, call_next, policy: PolicyConfig):
        slots, roles = _text_slots(ctx)
        texts = [container[key] for container, key in slots]
        started = time.perf_counter()
        gctx = guard_context(self.gateway, ctx)
        span = (
            step_span(ctx.notes.get("otel_span"), "interlock.guardrails.remote", None, CLIENT) if self.remote else None
        )
        if span is not None:
            gctx.traceparent = span.traceparent
        try:
            scan = await self.runtime.scan(
                texts,
                policy.input,
                gctx,
                roles=roles,
                timeout=policy.timeout,
                on_error=policy.on_error,
            )
        except GuardFailed as exc:
            self.metrics.failure(exc.guard or "unknown")
            ctx.notes["guardrails"] = {"action": "error", "failed": exc.guard}
            raise ServiceUnavailable(
                f"The guardrail '{exc.guard}' is unavailable and this request's policy fails closed.",
                code="guardrail_unavailable",
            ) from exc
        finally:
            self.metrics.observe("input", time.perf_counter() - started)
            if span is not None:
                span.end()
        self._record(ctx, scan)
        if scan.action is Action.BLOCK:
            f = scan.blocked_by
            if policy.block_with == "stock":
                return self._stock(ctx, policy.stock_reply)
            raise InvalidRequest(
                f"The request was blocked by the guardrail '{f.guard}' (found {f.type}).",
                code="guardrail_blocked",
                param="messages" if ctx.route == "chat" else "prompt",
            )
        mask_map = MaskMap()
        if scan.action is Action.MASK:
            for (container, key), masked in zip(slots, scan.mask(texts, mask_map), strict=True):
                container[key] = masked
            # the output step's ``mask`` leaves these be (they unmask to the user's values); placeholders only
            ctx.notes[NOTE_PLACEHOLDERS] = frozenset(mask_map.by_placeholder)
        result = await call_next(ctx)
        if not mask_map:
            return result
        if isinstance(result, UpstreamResponse):
            return _unmask_response(result, mask_map)
        return UnmaskingStream(result, mask_map, chat=ctx.route == "chat")

    def _record(self, ctx: RequestContext, scan) -> None:
        findings = []
        for i, found in enumerate(scan.findings):
            for f, action in found:
                self.metrics.trigger(f.guard, f.type, action.value)
                findings.append({"text": i, **f.as_dict(), "action": action.value})
        for name in scan.failed:
            self.metrics.failure(name)
        note = {"action": scan.action.value, "findings": findings, "scores": scan.scores}
        if scan.failed:
            note["failed"] = sorted(scan.failed)
        ctx.notes["guardrails"] = note
        span = ctx.notes.get("otel_span")
        if span is not None:
            span.set_attribute("interlock.guardrails.action", scan.action.value)
            span.set_attribute("interlock.guardrails.findings", [f"{x['guard']}:{x['type']}" for x in findings])

    def _stock(self, ctx: RequestContext, reply: str):
        """A normal answer saying ``reply``: non-streaming JSON, or an SSE stream for stream requests."""
        ctx.served_model = ctx.model
        chat = ctx.route == "chat"
        base = {"id": f"guardrail-{ctx.request_id}", "created": int(time.time()), "model": ctx.model}
        if not ctx.stream:
            choice = {"index": 0, "finish_reason": "stop"}
            choice |= {"message": {"role": "assistant", "content": reply}} if chat else {"text": reply}
            body = {**base, "object": "chat.completion" if chat else "text_completion", "choices": [choice]}
            body["usage"] = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
            return UpstreamResponse(200, orjson.dumps(body), Usage(0, 0))
        piece = {"delta": {"role": "assistant", "content": reply}} if chat else {"text": reply}
        obj = "chat.completion.chunk" if chat else "text_completion"
        events = [
            event(orjson.dumps({**base, "object": obj, "choices": [{"index": 0, **piece, "finish_reason": "stop"}]})),
            DONE_EVENT,
        ]
        return StockStream(ctx, events, self.gateway._finish)


def _text_slots(ctx: RequestContext) -> tuple[list[tuple[Any, Any]], list[str | None]]:
    """Where the prompt's texts are in the body: ``(container, key)`` pairs, so masked text goes back in place."""
    slots: list[tuple[Any, Any]] = []
    roles: list[str | None] = []
    body = ctx.body
    if ctx.route == "chat":
        for m in body.get("messages") or ():
            if not isinstance(m, dict):
                continue
            content = m.get("content")
            if isinstance(content, str):
                slots.append((m, "content"))
                roles.append(m.get("role"))
            elif isinstance(content, list):
                for part in content:
                    if isinstance(part, dict) and isinstance(part.get("text"), str):
                        slots.append((part, "text"))
                        roles.append(m.get("role"))
    else:
        prompt = body.get("prompt")
        if isinstance(prompt, str):
            slots.append((body, "prompt"))
            roles.append(None)
        elif isinstance(prompt, list):
            for i, p in enumerate(prompt):
                if isinstance(p, str):
                    slots.append((prompt, i))
                    roles.append(None)
    return slots, roles


def _unmask_response(result: UpstreamResponse, mask_map: MaskMap) -> UpstreamResponse:
    try:
        obj = orjson.loads(result.body)
    except orjson.JSONDecodeError:
        return UpstreamResponse(result.status, mask_map.unmask(result.body.decode()).encode(), result.usage)
    for c in obj.get("choices") or ():
        msg = c.get("message")
        if isinstance(msg, dict):
            if isinstance(msg.get("content"), str):
                msg["content"] = mask_map.unmask(msg["content"])
            for call in msg.get("tool_calls") or ():
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                    fn["arguments"] = mask_map.unmask(fn["arguments"])
        if isinstance(c.get("text"), str):
            c["text"] = mask_map.unmask(c["text"])
    return UpstreamResponse(result.status, orjson.dumps(obj), result.usage)


class UnmaskingStream:
    """Wraps a ``GatewayStream``: same interface (``ctx``, ``__aiter__``, ``abandon``); content unmasked.

    What it does with ``text/event-stream``: each ``data: {json}`` event with content is re-serialised with the
    unmasked piece (possibly shorter while a placeholder prefix is held back, possibly empty); text still held
    when a choice finishes goes into that chunk; anything left at ``[DONE]`` goes into one extra chunk before it.
    Error events and the usage chunk pass through unchanged.
    """

    def __init__(self, inner: Any, mask_map: MaskMap, *, chat: bool) -> None:
        self.ctx = inner.ctx
        self._inner = inner
        self._map = mask_map
        self._field = "content" if chat else "text"
        self._chat = chat
        self._unmaskers: dict[int, StreamUnmasker] = {}
        #: Tool-call arguments stream in pieces too: one unmasker per (choice, tool call) index.
        self._tools: dict[tuple[int, int], StreamUnmasker] = {}
        self._last: dict[str, Any] | None = None

    async def abandon(self) -> None:
        await self._inner.abandon()

    def __aiter__(self):
        return self._events()

    async def _events(self):
        events = self._inner.__aiter__()
        try:
            async for ev in events:
                if ev.startswith(b"data: {"):
                    ev = self._rewrite(ev)
                elif ev == DONE_EVENT:
                    tail = self._tail()
                    if tail is not None:
                        yield tail
                yield ev
        finally:
            await events.aclose()

    def _rewrite(self, ev: bytes) -> bytes:
        obj = orjson.loads(ev[6:])
        choices = obj.get("choices")
        if not choices:
            return ev
        for c in choices:
            u = self._unmaskers.get(c.get("index", 0))
            if u is None:
                u = self._unmaskers[c.get("index", 0)] = StreamUnmasker(self._map)
            holder = c.get("delta") if self._chat else c
            if not isinstance(holder, dict):
                continue
            piece = holder.get(self._field)
            out = u.feed(piece) if isinstance(piece, str) else None
            finished = c.get("finish_reason") is not None
            if finished and u.holding:
                out = (out or "") + u.flush()
            if out is not None:
                holder[self._field] = out
            if self._chat:
                self._rewrite_tools(c.get("index", 0), holder, finished)
        self._last = obj
        return event(orjson.dumps(obj))

    def _rewrite_tools(self, choice: int, delta: dict, finished: bool) -> None:
        """``delta.tool_calls[].function.arguments`` pieces unmasked like content; what a tool call still holds
        when its choice finishes goes out in that chunk (the SDKs join argument pieces by tool-call index)."""
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                key = (choice, call.get("index", 0))
                u = self._tools.get(key) or self._tools.setdefault(key, StreamUnmasker(self._map))
                fn["arguments"] = u.feed(fn["arguments"])
        if finished:
            held = self._held_tools(choice)
            if held:
                delta["tool_calls"] = [*(calls if isinstance(calls, list) else ()), *held]

    def _held_tools(self, choice: int) -> list[dict]:
        return [
            {"index": j, "function": {"arguments": u.flush()}}
            for (c, j), u in self._tools.items()
            if c == choice and u.holding
        ]

    def _tail(self) -> bytes | None:
        held = [(i, u.flush()) for i, u in self._unmaskers.items() if u.holding]
        tools = {c: self._held_tools(c) for c in {c for c, _ in self._tools}}
        tools = {c: t for c, t in tools.items() if t}
        if (not held and not tools) or self._last is None:
            return None
        base = {k: v for k, v in self._last.items() if k not in ("choices", "usage")}
        if not self._chat:
            choices = [{"index": i, self._field: text} for i, text in held]
        else:
            deltas: dict[int, dict] = {i: {self._field: text} for i, text in held}
            for c, t in tools.items():
                deltas.setdefault(c, {})["tool_calls"] = t
            choices = [{"index": i, "delta": d} for i, d in sorted(deltas.items())]
        return event(orjson.dumps({**base, "choices": [{**c, "finish_reason": None} for c in choices]}))


class StockStream:
    """A canned SSE answer (a blocked request with ``block_with: stock``), with the stream's contract:
    ``finish`` runs exactly once, however the stream ends."""

    def __init__(self, ctx: RequestContext, events: list[bytes], finish) -> None:
        self.ctx = ctx
        self._events_list = events
        self._finish = finish
        self._done = False

    def __aiter__(self):
        return self._events()

    async def abandon(self) -> None:
        self._end(None)

    def _end(self, error: BaseException | None) -> None:
        if not self._done:
            self._done = True
            self.ctx.finished_at = time.perf_counter()
            self._finish(self.ctx, error)

    async def _events(self):
        try:
            for ev in self._events_list:
                yield ev
        finally:
            self._end(None)
