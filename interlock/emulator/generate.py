"""Serve one chat or completions request: queue for a slot, wait out the latency, send, account.

Timing follows vLLM's order: the response headers of a stream go out at once; the first chunk (chat's
role chunk together with the first token) arrives ``ttft`` after the request got a running slot, then
one token step every ``tpot``. Steps are scheduled against absolute deadlines so long streams do not
drift, and with ``tpot = 0`` nothing sleeps between tokens: all ready chunks go out in one write.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from interlock.emulator import http
from interlock.emulator.engine import Engine
from interlock.emulator.faults import Fault, abort_connection
from interlock.emulator.generation import generate
from interlock.emulator.options import RequestKnobs
from interlock.emulator.responses import Choice, Formatter
from interlock.emulator.validation import GenerationRequest


def plan(req: GenerationRequest, knobs: RequestKnobs) -> list[Choice]:
    choices = []
    for prompt_index, source in enumerate(req.sources):
        for i in range(req.n):
            out = generate(
                source,
                index=i,
                want=knobs.output_tokens,
                limit=req.limits[prompt_index],
                seed=req.seed,
                reply=knobs.reply[i % len(knobs.reply)] if isinstance(knobs.reply, list) else knobs.reply,
                stop=req.stop,
                include_stop=req.include_stop,
                ignore_eos=req.ignore_eos,
                min_tokens=req.min_tokens,
                continuation=req.kind == "completions",
                tool_calls=knobs.tool_calls if req.kind == "chat" else None,
            )
            index = prompt_index * req.n + i
            choices.append(Choice(index, prompt_index, out, req.echo_texts[prompt_index]))
    return choices


async def _sleep_until(deadline: float) -> None:
    delay = deadline - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)


class _Cut(Exception):
    """Raised inside a send loop when a ``cut`` fault's budget of token chunks is spent."""


@dataclass(slots=True)
class _Send:
    """One request's sending state: what to send, when, and whether a fault cuts it short."""

    fmt: Formatter
    choices: list[Choice]
    knobs: RequestKnobs
    fault: Fault | None
    admitted: float
    scope: dict
    send: Any
    watch: http.DisconnectWatch | None
    first_token: float | None = None

    async def whole(self) -> None:
        knobs, choices = self.knobs, self.choices
        steps = max((c.out.steps for c in choices), default=0)
        delay = knobs.ttft_s + knobs.tpot_s * max(0, steps - 1)
        if delay > 0:
            await _sleep_until(self.admitted + delay)
        self.first_token = self.admitted + knobs.ttft_s
        for c in choices:
            c.sent = c.out.steps
        body = self.fmt.body(choices)
        if self.fault is not None and self.fault.kind == "cut":
            headers = [(b"content-type", http.JSON), (b"content-length", str(len(body)).encode())]
            await self.send({"type": "http.response.start", "status": 200, "headers": headers})
            await self.send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
            await self._cut()
        self._close_watch()
        await http.send_bytes(self.send, 200, body)

    async def stream(self) -> None:
        knobs, choices, fmt = self.knobs, self.choices, self.fmt
        await http.start_stream(self.send)
        budget = self.fault.after_tokens if self.fault is not None and self.fault.kind == "cut" else None
        if budget == 0:
            await self._cut()
        steps = max(1, max((c.out.steps for c in choices), default=0))
        pending: list[bytes] = []
        for step in range(steps):
            if (knobs.ttft_s if step == 0 else knobs.tpot_s) > 0:
                if pending:
                    await self._flush(pending)
                await _sleep_until(self.admitted + knobs.ttft_s + knobs.tpot_s * step)
            if step == 0:
                self.first_token = time.perf_counter()
                pending.extend(fmt.role_chunks(choices))
            for c in choices:
                if step < c.out.steps or (step == 0 and not c.out.steps):
                    pending.append(fmt.token_chunk(c, step))
                    if budget is not None:
                        budget -= 1
                        if budget == 0:
                            await self._flush(pending)
                            await self._cut()
        self._close_watch()
        pending.append(fmt.tail(choices))
        await self.send({"type": "http.response.body", "body": b"".join(pending), "more_body": False})

    async def _flush(self, pending: list[bytes]) -> None:
        await self.send({"type": "http.response.body", "body": b"".join(pending), "more_body": True})
        pending.clear()

    def _close_watch(self) -> None:
        # Before the last send: a completed response also makes ``receive`` report a disconnect.
        if self.watch is not None:
            self.watch.close()

    async def _cut(self) -> None:
        self._close_watch()  # the drop is ours: it must not count as a client cancellation
        await abort_connection(self.scope)
        raise _Cut


async def serve(
    engine: Engine,
    req: GenerationRequest,
    knobs: RequestKnobs,
    fault: Fault | None,
    rid: str,
    scope: dict,
    send: Any,
    watch: http.DisconnectWatch | None,
) -> None:
    """Generate and send the response; always settles the engine's accounting, even when cancelled."""
    choices = plan(req, knobs)
    prompt = sum(req.prompt_tokens)
    started = time.perf_counter()
    reserve = prompt + sum(c.out.steps for c in choices)
    try:
        await engine.admit(reserve)
    except asyncio.CancelledError:  # the client left while queued: vLLM counts an aborted request
        engine.finish(prompt, 0, "abort", started, None)
        raise
    sender = _Send(
        Formatter(req, rid, int(time.time())), choices, knobs, fault, time.perf_counter(), scope, send, watch
    )
    reason = "abort"
    try:
        if fault is not None and fault.kind == "hang":
            await asyncio.Event().wait()  # until the client gives up (the watch cancels us)
        await (sender.stream() if req.stream else sender.whole())
        reason = _overall_reason(choices)
    except _Cut:
        pass
    finally:
        engine.release(reserve)
        engine.finish(prompt, sum(c.sent for c in choices), reason, started, sender.first_token)


def _overall_reason(choices: list[Choice]) -> str:
    # vLLM counts a request once; with n > 1 any choice cut by length makes it a "length" request.
    return "length" if any(c.out.finish_reason == "length" for c in choices) else "stop"
