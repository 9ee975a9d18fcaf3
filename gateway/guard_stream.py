"""``WindowStream``: a stream's output rules over a sliding window, with a hold-back of a few tokens.

Content chunks (about one token each in vLLM and OpenAI streams) wait in a queue of ``hold_back_tokens``; before
the oldest goes out, the text already sent (its last ``window_chars``) plus every held chunk is judged by the
rules that read partial text (guards, refusal). So text that trips a rule is still held when it trips, and is
never sent. At the end, the rules that need the whole answer (empty, JSON, relevance) judge it before the held
tail and ``[DONE]`` go out. A trip ends the stream with an OpenAI error event naming the guard, then ``[DONE]``:
the ``openai`` SDK raises on it, so a stopped answer never looks complete. ``escalate`` records the case first
(``escalate_serves`` lets the stream go on). Retry, hedge and fallback cannot take back sent text, so mid-stream
they end it the same way. Whatever is still held when the stream ends (or an error event comes) is judged before
it goes: an answer shorter than the hold-back is judged too.

``mask`` (pii, secrets, keywords): each content chunk that leaves carries the redacted text that may go out by then
(``guardrails.redaction.StreamRedactor``: the last ``longest_value_chars`` characters and any value still growing wait);
the finish chunk waits for the end and carries the rest. Placeholders of the request's masked prompt are kept for
the unmasking step outside. One choice per stream (n > 1 is refused by the output step).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace
from typing import Any

import orjson

from gateway.errors import InvalidRequest, ServiceUnavailable
from gateway.guard_span_scan import SpanScan
from gateway.upstreams.sse import DONE_EVENT, event
from guardrails import Action, Finding, GuardContext, GuardFailed, PolicyConfig
from guardrails.output import PASSING, WHOLE_ANSWER, OutputVerdict, judge
from guardrails.redaction import StreamRedactor


class GuardrailTripped(InvalidRequest):
    """Thrown into the inner stream so it records the request as stopped by a guard, not as a client abort."""


class WindowStream:
    def __init__(
        self,
        inner: Any,
        step: Any,
        policy: PolicyConfig,
        name: str,
        gctx: GuardContext,
        placeholders: frozenset[str] = frozenset(),
    ) -> None:
        self.ctx = inner.ctx
        self._inner = inner
        self._step = step
        self._policy = policy
        self._name = name
        self._gctx = gctx
        acts = policy.output_actions
        self._hold, self._window = acts.hold_back_tokens, acts.window_chars
        self._partial = frozenset(policy.output) - WHOLE_ANSWER
        self._whole = bool(frozenset(policy.output) & WHOLE_ANSWER)
        self._spans = SpanScan(self._partial, acts.longest_value_chars)
        if not self._partial:  # only whole-answer rules: holding tokens back would protect nothing
            self._hold = 0
        self._escalated = False
        self._noted = False
        #: ``mask`` rules: the redactor of the answer's text (one choice; n > 1 is refused by the output step).
        self._redactor = None
        if any(Action.MASK in (r.action, *r.types.values()) for r in policy.output.values()):
            self._redactor = StreamRedactor(acts.redaction, acts.longest_value_chars, placeholders)
        self._released = 0  # characters of the answer let through the window so far
        self._masked: dict[tuple[int, int], Finding] = {}  # for the record: each window's mask findings, deduplicated
        self._last: bytes | None = None  # the last content chunk, the model for a closing one
        self._trip: Exception | None = None
        #: Measured for the bench and the record: the most chunks held at once, and the wait before the first went out.
        self.max_held = 0
        self.first_release_at: float | None = None

    async def abandon(self) -> None:
        await self._inner.abandon()

    def __aiter__(self):
        return self._events()

    async def _events(self):
        events = self._inner.__aiter__()
        held: list[tuple[bytes, str]] = []  # (event, its content text; "" for events without content)
        sent = ""  # the tail of the text already let through (at most window_chars)
        answer: list[str] = []
        verdict = OutputVerdict()
        base = 0  # where the last judged window starts in the answer (its findings' offsets are from there)
        judged = True  # every held text has been through the partial rules
        try:
            async for ev in events:
                piece = None if ev == DONE_EVENT else _content(ev)
                if piece is None:  # the end, an error event or something we cannot read: what is held goes first
                    if (held and not judged) or (self._whole and ev == DONE_EVENT):
                        whole = self._whole and ev == DONE_EVENT
                        window = "".join(answer) if whole else sent + "".join(p for _, p in held)
                        base = 0 if whole else self._released - len(sent)
                        verdict = await self._judge(window, whole=whole, start=base)
                        if verdict.action not in PASSING and await self._stop(verdict, window):
                            yield self._error_event(verdict)
                            yield DONE_EVENT
                            return
                    for h, p in held:
                        yield self._out(h, p, verdict, base, final=True)
                    held.clear()
                    tail = self._tail(verdict, base)
                    if tail is not None:
                        yield tail
                    if ev == DONE_EVENT:  # the inner stream records the request once it is past [DONE]: note first
                        self._note(verdict)
                    yield ev
                    continue
                held.append((ev, piece))
                judged = judged and not piece
                if self._redactor is not None:
                    self._redactor.add(piece)
                if self._whole:  # kept only when a whole-answer rule will read it
                    answer.append(piece)
                count = sum(1 for _, p in held if p)
                self.max_held = max(self.max_held, count)
                while held and not self._keeps(held[0][0]) and (count > self._hold or not held[0][1]):
                    if held[0][1]:  # a content chunk leaves: the window it was part of must pass first
                        window = sent + "".join(p for _, p in held)
                        base, judged = self._released - len(sent), True
                        verdict = await self._judge(window, whole=False, start=base)
                        if verdict.action not in PASSING and await self._stop(verdict, window):
                            yield self._error_event(verdict)
                            yield DONE_EVENT
                            return
                        count -= 1
                    h, p = held.pop(0)
                    sent = (sent + p)[-self._window :]
                    if self.first_release_at is None and p:
                        self.first_release_at = time.perf_counter()
                    yield self._out(h, p, verdict, base)
        except GuardFailed as exc:
            self._step.metrics.failure(exc.guard or "unknown")
            self._trip = ServiceUnavailable(
                f"The output check '{exc.guard}' is unavailable and this request's policy fails closed.",
                code="guardrail_unavailable",
            )
            yield _error_bytes(self._trip)
            yield DONE_EVENT
        finally:
            self._note(verdict)
            if self._trip is None:
                await events.aclose()
            else:  # the inner stream records the request with this error's status instead of a client abort
                with contextlib.suppress(Exception):  # it re-raises what we threw; the stream is over either way
                    await events.athrow(self._trip)

    def _note(self, verdict: OutputVerdict) -> None:
        if self._noted:
            return
        self._noted = True
        if self._masked:  # every value redacted, not only those of the last window (offsets in the answer)
            kept = [(f, a) for f, a in verdict.findings if a is not Action.MASK]
            verdict.findings = kept + [(f, Action.MASK) for f in self._masked.values()]
        self._step.note(self.ctx, verdict, {"held_back_max": self.max_held})
        self._step.out_metrics.held_back.observe(self.max_held)

    def _keeps(self, ev: bytes) -> bool:
        """A masked stream keeps its finish chunk until the end: the text still held back goes out in it."""
        return self._redactor is not None and b'"finish_reason":"' in ev.replace(b'": "', b'":"')

    def _out(self, ev: bytes, piece: str, verdict: OutputVerdict, base: int, *, final: bool = False) -> bytes:
        """The event as it goes out: as it came, or (``mask``) with the redacted text that may go now."""
        self._released += len(piece)
        r = self._redactor
        if r is None or (not piece and not (final and self._keeps(ev))):
            return ev
        self._last = ev
        masks = verdict.masks()
        for f in masks:
            self._masked.setdefault((f.start + base, f.end + base), replace(f, start=f.start + base, end=f.end + base))
        text = r.emit(masks, base, self._released if piece else r.received, final=final)
        return _with_content(ev, text)

    def _tail(self, verdict: OutputVerdict, base: int) -> bytes | None:
        """What a masked stream still holds when it ends without a chunk to carry it (no finish chunk)."""
        r = self._redactor
        if r is None or not r.pending or self._last is None:
            return None
        return _with_content(self._last, r.emit(verdict.masks(), base, r.received, final=True), finish=True)

    async def _judge(self, text: str, *, whole: bool, start: int) -> OutputVerdict:
        """The rules on ``text`` (the window from ``start`` in the answer, or the whole answer); span guards on a
        window scan only what they have not read yet (``guard_span_scan.py``)."""
        spans = self._spans
        if whole or not spans.rules:
            return await self._run(text, None if whole else self._partial)
        scan_from = spans.region(start, start + len(text))
        scan, rest = await asyncio.gather(
            self._run(text[scan_from - start :], spans.rules), self._run(text, self._partial - spans.rules)
        )
        return spans.merge(scan, scan_from, start, start + len(text), rest)

    async def _run(self, text: str, rules: frozenset[str] | None) -> OutputVerdict:
        """``rules`` (None: all of the policy's output rules) on ``text``."""
        if rules is not None and not rules:
            return OutputVerdict()
        policy = self._policy
        runtime, timeout, on_error = self._step.runtime, policy.timeout, policy.on_error
        return await judge(runtime, text, policy.output, self._gctx, timeout=timeout, on_error=on_error, only=rules)

    async def _stop(self, verdict: OutputVerdict, text: str) -> bool:
        """True when the stream must end here; escalations are recorded (once) either way."""
        if verdict.action is Action.ESCALATE and not self._escalated:
            self._escalated = True
            await self._step.escalate(self.ctx, self._policy, self._name, verdict, text)  # masked there
            if self._policy.output_actions.escalate_serves:
                return False
        if verdict.action is Action.ESCALATE and self._policy.output_actions.escalate_serves:
            return False
        f = verdict.decided_by
        self._step.out_metrics.stream_trips.labels(f.guard if f else "output").inc()
        return True

    def _error_event(self, verdict: OutputVerdict) -> bytes:
        f = verdict.decided_by
        guard, found = (f.guard, f.type) if f is not None else ("output", "a problem")
        exc = GuardrailTripped(
            f"The answer was stopped by the guardrail '{guard}' (found {found}).", code="guardrail_blocked"
        )
        self._trip = exc
        return _error_bytes(exc)


def _error_bytes(exc: Any) -> bytes:
    body = {"error": {"message": exc.message, "type": exc.type, "param": None, "code": exc.code}}
    return event(orjson.dumps(body))


def _with_content(ev: bytes, text: str, *, finish: bool = False) -> bytes:
    """``ev`` with choice 0's content (or text) replaced; ``finish``: as an extra chunk, its finish reason cleared."""
    obj = orjson.loads(ev[6:])
    for c in obj.get("choices") or ():
        d = c.get("delta")
        if isinstance(d, dict):
            d["content"] = text
        else:
            c["text"] = text
        if finish:
            c["finish_reason"] = None
    return event(orjson.dumps(obj))


def _content(ev: bytes) -> str | None:
    """The text of a chunk (choice 0's content or text; "" when it has none); None for non-chunk events."""
    if not ev.startswith(b"data: {"):
        return None
    try:
        obj = orjson.loads(ev[6:])
    except orjson.JSONDecodeError:
        return None
    if "error" in obj and "choices" not in obj:
        return None
    out = []
    for c in obj.get("choices") or ():
        if not isinstance(c, dict):
            continue
        d = c.get("delta")
        piece = d.get("content") if isinstance(d, dict) else c.get("text")
        if isinstance(piece, str):
            out.append(piece)
    return "".join(out)
