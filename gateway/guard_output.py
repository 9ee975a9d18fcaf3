"""The output step: the policy's output rules on each answer, and what follows when one trips.

Innermost step (just before the dispatcher), so a retry, a hedge or a fallback is a fresh upstream answer.

- Requests whose policy has no ``output`` section pass with three dict lookups.
- Complete answers: ``judge`` (scorers and output guards at once). ``retry`` asks again up to
  ``output_actions.retries`` times, then falls back when a ``fallback_model`` is set; ``fallback`` asks that model;
  ``hedge`` asks ``hedge_k`` times at once (or the extra tries only after ``hedge_after`` seconds without an
  answer), serves the first answer that passes every rule and cancels the rest, within a per-policy token bucket
  of hedges per minute (``guard_hedge.py``, streams too); ``escalate`` records the case masked
  (``guardrail_escalations``), posts the webhook and withholds the answer (or serves it with ``escalate_serves``);
  ``block`` and anything still failing at the end answer with the policy's stock reply or a 400
  ``guardrail_blocked`` naming the guard.
- ``mask`` (span guards): the answer served has each finding redacted (``[PHONE_NUMBER]``), the placeholders of
  the request's masked prompt left for the unmasking step (``NOTE_PLACEHOLDERS``), so the user gets their own
  values back and a redaction never unmasks into one.
- Streams: ``WindowStream`` (``guard_stream.py``) holds back the last ``hold_back_tokens`` content chunks of each
  choice and scores that choice's sent tail plus them before each chunk goes out (``n > 1``: a window, a scan
  and a redactor per choice); a trip ends the stream with an OpenAI error event.
- Findings (types, offsets, scores) join the input side's in ``ctx.notes["guardrails"]`` (the record keeps guard
  and type), the metrics and the span.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from embeddings import last_user_text
from gateway.errors import InvalidRequest, ServiceUnavailable
from gateway.guard_escalations import EscalationStore, notify
from gateway.guard_hedge import HedgeBudget, hedged, hedged_stream
from gateway.guard_models import EscalationRow
from gateway.guarding import NOTE_PLACEHOLDERS
from gateway.types import RequestContext, UpstreamResponse, Usage
from guardrails import Action, GuardContext, GuardFailed, Guardrails, GuardRule, MaskMap, PolicyConfig
from guardrails.output import PASSING, OutputVerdict, judge
from guardrails.redaction import redact
from observability.guard_output import OutputGuardMetrics
from observability.guardrails import GuardrailMetrics

#: Redaction of escalated text: PII and secrets masked whatever the policy's own rules say.
REDACT = {"pii": GuardRule(action=Action.MASK), "secrets": GuardRule(action=Action.MASK)}


def start_output_guards(gateway: Any) -> list:
    """The output step, when some policy has output rules or may get them from the admin API (else nothing is
    added to the request path)."""
    runtime: Guardrails = gateway.guardrails
    if not gateway.settings.guardrails.stored_policies and not any(p.output for p in runtime.config.policies.values()):
        return []
    return [OutputStep(runtime, gateway, gateway.guardrail_metrics)]


class OutputStep:
    span_name = "guardrails_output"

    def __init__(self, runtime: Guardrails, gateway: Any, metrics: GuardrailMetrics) -> None:
        self.runtime = runtime
        self.gateway = gateway
        self.metrics = metrics
        self.budget = HedgeBudget()
        self.out_metrics = OutputGuardMetrics(gateway.metrics.registry)
        self.escalations = EscalationStore(gateway.engine)
        #: Service mode: output scans carry the request's traceparent, so the service's spans join its trace.
        self.remote = getattr(runtime, "service", None) is not None
        gateway.guard_escalations = self.escalations  # the admin API lists and resolves through it

    async def __call__(self, ctx: RequestContext, call_next):
        if ctx.route == "embeddings":
            return await call_next(ctx)
        p = ctx.principal
        policy = self.runtime.policy_for(p.key_id, p.key_name, p.team_id, ctx.model)
        if policy is None or not policy.output:
            return await call_next(ctx)
        name = next((n for n, pol in self.runtime.config.policies.items() if pol is policy), "?")
        gctx = self._context(ctx)
        try:
            if ctx.stream:
                from gateway.guard_stream import WindowStream

                acts = policy.output_actions
                kept = placeholders(ctx)
                if acts.hedge_after is not None and _hedges(policy):
                    inner = await hedged_stream(self, ctx, policy, name)
                    return WindowStream(inner, self, policy, name, gctx, kept)
                return WindowStream(await call_next(ctx), self, policy, name, gctx, kept)
            return await self._complete(ctx, call_next, policy, name, gctx)
        except GuardFailed as exc:
            self.metrics.failure(exc.guard or "unknown")
            raise ServiceUnavailable(
                f"The output check '{exc.guard}' is unavailable and this request's policy fails closed.",
                code="guardrail_unavailable",
            ) from exc

    def _context(self, ctx: RequestContext) -> GuardContext:
        body = ctx.body
        question = last_user_text(body.get("messages") or ()) if ctx.route == "chat" else body.get("prompt")
        extra = {
            "question": question if isinstance(question, str) else "",
            "response_format": body.get("response_format"),
        }
        return GuardContext(embed=self.gateway.request_embeddings(ctx).get, extra=extra, traceparent=self._tp(ctx))

    def _tp(self, ctx: RequestContext) -> str | None:
        """The request span's ``traceparent`` for calls to the guardrails service (its spans become children)."""
        span = ctx.notes.get("otel_span") if self.remote else None
        return span.traceparent if span is not None else None

    # -- complete answers ------------------------------------------------------------------------------------

    async def _complete(self, ctx, call_next, policy: PolicyConfig, name: str, gctx: GuardContext):
        acts = policy.output_actions
        started = time.perf_counter()
        tries = {"retries": 0, "hedged": 0, "fallback": False}
        if _hedges(policy):
            result, verdict = await hedged(self, ctx, call_next, policy, name, gctx, tries)
        else:
            result = await call_next(ctx)
            verdict = await self.judge_answer(result, policy, gctx)
        while verdict.action not in PASSING:
            if verdict.action is Action.RETRY and tries["retries"] < acts.retries:
                tries["retries"] += 1
                self.metrics.trigger(verdict.decided_by.guard, verdict.decided_by.type, "retry")
                result = await call_next(ctx)
            elif verdict.action in (Action.RETRY, Action.HEDGE, Action.FALLBACK) and acts.fallback_model:
                if tries["fallback"]:
                    break
                tries["fallback"] = True
                result = await self._fallback(ctx, acts.fallback_model)
            else:
                break
            verdict = await self.judge_answer(result, policy, gctx)
        self.metrics.observe("output", time.perf_counter() - started)
        self.note(ctx, verdict, tries)
        if verdict.action in PASSING:
            return redact_response(result, verdict, acts.redaction, placeholders(ctx))
        if verdict.action is Action.ESCALATE:
            await self.escalate(ctx, policy, name, verdict, answer_text(result))
            if acts.escalate_serves:
                return redact_response(result, verdict, acts.redaction, placeholders(ctx))
        return self.blocked(ctx, policy, verdict, result.usage)

    async def judge_answer(self, result: UpstreamResponse, policy: PolicyConfig, gctx: GuardContext) -> OutputVerdict:
        """Every choice judged; the worst decides. Offsets are into choice ``i``'s text (``choice`` in the note)."""
        texts = answer_texts(result)
        verdicts = await asyncio.gather(
            *(
                judge(self.runtime, t, policy.output, gctx, timeout=policy.timeout, on_error=policy.on_error)
                for t in texts
            )
        )
        return OutputVerdict.combine(list(verdicts), keep_choices=True)

    async def _fallback(self, ctx: RequestContext, model: str) -> UpstreamResponse:
        pool = self.gateway.table.get(model)
        if pool is None:
            raise ServiceUnavailable(f"The guardrail fallback model '{model}' is not configured.")
        return await self.gateway.dispatcher.dispatch(ctx, pool, self.gateway._finish)

    # -- outcomes --------------------------------------------------------------------------------------------

    def note(self, ctx: RequestContext, verdict: OutputVerdict, extra: dict | None = None) -> None:
        """Output findings beside the input's in the request's guardrails note; metrics; span attributes."""
        findings = []
        for f, action in verdict.findings:
            self.metrics.trigger(f.guard, f.type, action.value)
            findings.append({**f.as_dict(), "action": action.value, "direction": "output"})
        for guard in verdict.failed:
            self.metrics.failure(guard)
        note = ctx.notes.get("guardrails")
        if note is None:
            note = ctx.notes["guardrails"] = {"action": "allow", "findings": [], "scores": {}}
        note["findings"] = [*note.get("findings", ()), *findings]
        note["output_action"] = verdict.action.value
        note["output_scores"] = verdict.scores
        if extra:
            note["output_tries"] = dict(extra)
        span = ctx.notes.get("otel_span")
        if span is not None:
            span.set_attribute("interlock.guardrails.output_action", verdict.action.value)
            span.set_attribute("interlock.guardrails.output_findings", [f"{x['guard']}:{x['type']}" for x in findings])

    def blocked(self, ctx: RequestContext, policy: PolicyConfig, verdict: OutputVerdict, usage: Usage | None):
        f = verdict.decided_by
        guard = f.guard if f is not None else "output"
        if policy.block_with == "stock":
            return stock_response(ctx, policy.stock_reply, usage)
        raise InvalidRequest(
            f"The answer was withheld by the guardrail '{guard}' (found {f.type if f else 'a problem'}).",
            code="guardrail_blocked",
            param=None,
        )

    async def escalate(self, ctx: RequestContext, policy: PolicyConfig, name: str, verdict, answer: str) -> str:
        """Record the case with PII and secrets masked, then post the webhook in the background."""
        question = ""
        if ctx.route == "chat":
            question = last_user_text(ctx.body.get("messages") or ())
        try:
            gctx = GuardContext(traceparent=self._tp(ctx))
            scan = await self.runtime.scan([question, answer], REDACT, gctx, timeout=5.0, on_error="closed")
            question, answer = scan.mask([question, answer], MaskMap())
        except GuardFailed:  # never store what could not be masked
            question, answer = "[withheld: masking failed]", "[withheld: masking failed]"
        findings = [{**f.as_dict(), "action": a.value} for f, a in verdict.findings]
        p = ctx.principal
        row = EscalationRow(
            id="",
            request_id=ctx.request_id,
            policy=name,
            model=ctx.model,
            key_id=p.key_id,
            team_id=p.team_id,
            findings=findings,
            question=question,
            answer=answer,
        )
        case_id = await asyncio.to_thread(self.escalations.add, row)
        ctx.notes["guardrails"]["escalation"] = case_id
        url = policy.output_actions.escalate_webhook
        if url:
            payload = {"id": case_id, "request_id": ctx.request_id, "policy": name, "model": ctx.model}
            payload["findings"] = [{k: v for k, v in x.items()} for x in findings]
            self.gateway.spawn(notify(url, payload))
        return case_id


def _hedges(policy: PolicyConfig) -> bool:
    return any(Action.HEDGE in (r.action, *r.types.values()) for r in policy.output.values())


def answer_texts(result: UpstreamResponse) -> list[str]:
    try:
        obj = orjson.loads(result.body)
    except orjson.JSONDecodeError:
        return [result.body.decode("utf-8", "replace")]
    out = []
    for c in obj.get("choices") or ():
        msg = c.get("message") if isinstance(c, dict) else None
        if isinstance(msg, dict):
            out.append(msg.get("content") if isinstance(msg.get("content"), str) else "")
        elif isinstance(c, dict):
            out.append(c.get("text") if isinstance(c.get("text"), str) else "")
    return out or [""]


def placeholders(ctx: RequestContext) -> frozenset[str]:
    """The placeholders the input side put in this request's prompt (no values): output masking keeps them."""
    return ctx.notes.get(NOTE_PLACEHOLDERS, frozenset())


def redact_response(result: UpstreamResponse, verdict: OutputVerdict, template: str, kept: frozenset[str]):
    """The answer with each choice's ``mask`` findings redacted (``guardrails/redaction.py``); as it is if none."""
    per_choice = verdict.choices or [verdict]
    if not any(v.masks() for v in per_choice):
        return result
    try:
        obj = orjson.loads(result.body)
    except orjson.JSONDecodeError:  # answer_texts judged the body as one text
        text = redact(result.body.decode("utf-8", "replace"), per_choice[0].masks(), template, kept)
        return UpstreamResponse(result.status, text.encode(), result.usage)
    holders = []  # the same walk as answer_texts, so choice i gets verdict i
    for c in obj.get("choices") or ():
        msg = c.get("message") if isinstance(c, dict) else None
        if isinstance(msg, dict):
            holders.append((msg, "content"))
        elif isinstance(c, dict):
            holders.append((c, "text"))
    for (holder, key), v in zip(holders, per_choice, strict=False):
        if isinstance(holder.get(key), str) and v.masks():
            holder[key] = redact(holder[key], v.masks(), template, kept)
    return UpstreamResponse(result.status, orjson.dumps(obj), result.usage)


def answer_text(result: UpstreamResponse) -> str:
    return "\n".join(answer_texts(result))


def stock_response(ctx: RequestContext, reply: str, usage: Usage | None) -> UpstreamResponse:
    """The policy's stock reply as a completion; ``usage`` stays the upstream's (its tokens were spent)."""
    chat = ctx.route == "chat"
    choice: dict[str, Any] = {"index": 0, "finish_reason": "stop"}
    choice |= {"message": {"role": "assistant", "content": reply}} if chat else {"text": reply}
    body = {
        "id": f"guardrail-{ctx.request_id}",
        "object": "chat.completion" if chat else "text_completion",
        "created": int(time.time()),
        "model": ctx.model,
        "choices": [choice],
    }
    return UpstreamResponse(200, orjson.dumps(body), usage)
