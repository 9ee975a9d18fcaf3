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
the unmasking step outside.

Several choices (``n > 1``): each choice index has its own window, hold-back queue, incremental scan and redactor
(``guard_stream_choice.ChoiceWindow``), as if it were a stream of its own; its events go out in their order, and
the choices' events interleave as they come. An event carrying several choices is split into one per choice (the
SDKs merge chunks by index). Events of no choice (the usage chunk) wait behind held text and go out at the end. A
trip in any choice ends the whole stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson

from gateway.errors import InvalidRequest, ServiceUnavailable
from gateway.guard_stream_choice import ChoiceWindow, Stop, split_event
from gateway.upstreams.sse import DONE_EVENT, event
from guardrails import Action, GuardContext, GuardFailed, PolicyConfig
from guardrails.output import WHOLE_ANSWER, OutputVerdict, judge


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
        self.hold, self.window = acts.hold_back_tokens, acts.window_chars
        self.partial = frozenset(policy.output) - WHOLE_ANSWER
        self.whole = bool(frozenset(policy.output) & WHOLE_ANSWER)
        if not self.partial:  # only whole-answer rules: holding tokens back would protect nothing
            self.hold = 0
        #: ``mask`` rules: each choice gets a redactor of its text (``ChoiceWindow``).
        self.masks = any(Action.MASK in (r.action, *r.types.values()) for r in policy.output.values())
        self.placeholders = placeholders
        self._choices: dict[int, ChoiceWindow] = {}
        self._escalated = False
        self._noted = False
        self._trip: Exception | None = None
        #: Measured for the bench and the record: the most chunks one choice held at once, and the wait before the
        #: first went out.
        self.max_held = 0
        self.first_release_at: float | None = None

    async def abandon(self) -> None:
        await self._inner.abandon()

    def __aiter__(self):
        return self._events()

    def _choice(self, index: int) -> ChoiceWindow:
        w = self._choices.get(index)
        if w is None:
            w = self._choices[index] = ChoiceWindow(self)
        return w

    async def _events(self):
        events = self._inner.__aiter__()
        later: list[bytes] = []  # events of no choice behind held text (the usage chunk): they go out at the end
        try:
            async for ev in events:
                parts = None if ev == DONE_EVENT else split_event(ev)
                if parts is None:  # the end, an error event or something we cannot read: what is held goes first
                    done = ev == DONE_EVENT
                    windows = [self._choices[i] for i in sorted(self._choices)]
                    # every choice's last window (or whole answer) judged at once, then each checked in turn
                    verdicts = await asyncio.gather(*(w.last_verdict(done) for w in windows))
                    for judged in verdicts:
                        if judged is not None:
                            await self.check(*judged)
                    for w in windows:
                        for out in w.flush():
                            yield out
                    for out in later:
                        yield out
                    later.clear()
                    if done:  # the inner stream records the request once it is past [DONE]: note first
                        self._note()
                    yield ev
                    continue
                if not parts:
                    if any(w.held for w in self._choices.values()):
                        later.append(ev)
                    else:
                        yield ev
                    continue
                for index, part, piece in parts:
                    async for out in self._choice(index).add(part, piece):
                        yield out
        except Stop as stop:
            yield self._error_event(stop.verdict)
            yield DONE_EVENT
        except GuardFailed as exc:
            self._step.metrics.failure(exc.guard or "unknown")
            self._trip = ServiceUnavailable(
                f"The output check '{exc.guard}' is unavailable and this request's policy fails closed.",
                code="guardrail_unavailable",
            )
            yield _error_bytes(self._trip)
            yield DONE_EVENT
        finally:
            self._note()
            if self._trip is None:
                await events.aclose()
            else:  # the inner stream records the request with this error's status instead of a client abort
                with contextlib.suppress(Exception):  # it re-raises what we threw; the stream is over either way
                    await events.athrow(self._trip)

    def _note(self) -> None:
        """Every choice's findings in one verdict for the record (offsets into that choice's text)."""
        if self._noted:
            return
        self._noted = True
        verdict = OutputVerdict.combine([self._choices[i].recorded() for i in sorted(self._choices)])
        self._step.note(self.ctx, verdict, {"held_back_max": self.max_held})
        self._step.out_metrics.held_back.observe(self.max_held)

    async def check(self, verdict: OutputVerdict, text: str) -> None:
        """Raises ``Stop`` when ``verdict`` (on ``text``) ends the stream; escalations are recorded once either way."""
        if verdict.action in (Action.ALLOW, Action.MASK):
            return
        if verdict.action is Action.ESCALATE and not self._escalated:
            self._escalated = True
            await self._step.escalate(self.ctx, self._policy, self._name, verdict, text)  # masked there
        if verdict.action is Action.ESCALATE and self._policy.output_actions.escalate_serves:
            return
        f = verdict.decided_by
        self._step.out_metrics.stream_trips.labels(f.guard if f else "output").inc()
        raise Stop(verdict)

    async def run(self, text: str, rules: frozenset[str] | None) -> OutputVerdict:
        """``rules`` (None: all of the policy's output rules) on ``text``."""
        if rules is not None and not rules:
            return OutputVerdict()
        policy = self._policy
        runtime, timeout, on_error = self._step.runtime, policy.timeout, policy.on_error
        return await judge(runtime, text, policy.output, self._gctx, timeout=timeout, on_error=on_error, only=rules)

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
