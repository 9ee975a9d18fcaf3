"""The output side of a policy: how its actions behave (``OutputActions``) and the verdict on one answer (``judge``).

A policy's ``output`` section maps scorers (``scorers.SCORERS``) and output guards (toxicity, pii, secrets,
keywords) to an action; ``judge`` runs them all at once on an answer and returns the strictest action any of them
asks for, with the findings (offsets and scores, never text). What the gateway then does with ``retry``,
``fallback``, ``hedge``, ``block`` and ``escalate`` is configured per policy in ``output_actions``; ``mask``
(pii, secrets, keywords only: they report spans) redacts the findings (``redaction.py``) and serves the answer:

    output:
      refusal: {action: retry}
      toxicity: {action: block, threshold: 0.8}
      json: {action: fallback}
    output_actions: {retries: 2, fallback_model: gpt-4o-mini, hedge_k: 2, hedge_budget_per_minute: 30}
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, field_validator

from guardrails.errors import GuardFailed, GuardTimeout
from guardrails.redaction import check_template
from guardrails.scorers import SCORERS
from guardrails.types import ACTION_RANK, Action, Finding, GuardContext

if TYPE_CHECKING:
    from guardrails.config import GuardRule, PolicyConfig
    from guardrails.engine import Guardrails

#: Output rules that report spans, so ``mask`` can redact them (``redaction.py``); scorers judge the whole text.
MASKING_GUARDS = frozenset({"pii", "secrets", "keywords"})
#: Verdicts under which an answer may be served as it is.
PASSING = frozenset({Action.ALLOW, Action.MASK})
#: Scorers that need the whole answer: on a stream they run once it has ended, before its last tokens go out.
WHOLE_ANSWER = frozenset({"empty", "json", "relevance"})


class OutputActions(BaseModel):
    """How the output actions of one policy behave."""

    model_config = ConfigDict(extra="forbid")

    retries: int = Field(2, ge=0, le=5)
    """``retry``: new answers asked for at most this many times; then ``fallback_model`` if set, else a block."""
    fallback_model: str | None = None
    """``fallback`` (and ``retry`` once out of retries): the model (as clients name it) asked instead."""
    hedge_k: int = Field(2, ge=2, le=4)
    """``hedge``: answers asked for at once; the first that passes every output rule is served, the rest cancelled."""
    hedge_after: float | None = Field(None, gt=0)
    """``hedge``: seconds; set, the extra tries start only when the first has not answered by then (a slow
    first answer); unset, all ``hedge_k`` start together."""
    hedge_budget_per_minute: float = Field(30, ge=0)
    """``hedge``: extra tries this policy may start per minute on one replica (a token bucket, burst of the same
    size); past it requests are sent once. Caps the load hedging adds."""
    escalate_webhook: str | None = None
    """``escalate``: URL that gets a POST ``{"id", "request_id", "policy", "findings"}`` for each new case."""
    escalate_serves: bool = False
    """``escalate``: serve the answer after recording the case (true), or withhold it as ``block`` does (false)."""
    hold_back_tokens: int = Field(8, ge=0, le=256)
    """Streams: content chunks (about a token each) held back so text that trips a guard is never sent."""
    window_chars: int = Field(400, ge=20, le=8000)
    """Streams: characters of already-sent text scored together with the held-back tokens."""
    redaction: str = "[{type}]"
    """``mask``: what replaces a finding in the answer; one bracketed label, ``{type}`` its entity type."""
    longest_value_chars: int = Field(64, ge=0, le=4000)
    """Streams: the longest value (entity, key, code name) pii, secrets and keywords promise to see whole. With
    ``mask``, this many characters are kept back so a value split across chunks is recognised before any of it is
    sent; each chunk's scan reads the new text plus this many characters before it. A longer value (a PEM key)
    may be missed or have its start sent."""

    @field_validator("redaction")
    @classmethod
    def _redaction(cls, value: str) -> str:
        return check_template(value)


@dataclass(slots=True)
class OutputVerdict:
    action: Action = Action.ALLOW
    findings: list[tuple[Finding, Action]] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    #: The rule whose finding decided the action (named in errors and escalations).
    decided_by: Finding | None = None
    failed: dict[str, str] = field(default_factory=dict)
    #: An answer with several choices: each one's verdict (offsets are into that choice's text).
    choices: list[OutputVerdict] = field(default_factory=list)

    def masks(self) -> list[Finding]:
        return [f for f, a in self.findings if a is Action.MASK]

    @classmethod
    def combine(cls, verdicts: list[OutputVerdict], *, keep_choices: bool = False) -> OutputVerdict:
        """One verdict for an answer's choices: every finding and failure, each score's highest, the strictest
        action (and what decided it). ``keep_choices`` keeps each choice's own verdict in ``choices``."""
        out = cls(choices=list(verdicts) if keep_choices else [])
        for v in verdicts:
            out.findings.extend(v.findings)
            out.failed.update(v.failed)
            for k, s in v.scores.items():
                out.scores[k] = max(out.scores.get(k, 0.0), s)
            if ACTION_RANK[v.action] > ACTION_RANK[out.action]:
                out.action, out.decided_by = v.action, v.decided_by
        return out


def check_output_rules(policy: PolicyConfig) -> None:
    """``ValueError`` naming the field for output rules the gateway cannot carry out."""
    for name, rule in policy.output.items():
        for where, action in [("action", rule.action), *((f"types.{t}", a) for t, a in rule.types.items())]:
            if action is Action.MASK and name not in MASKING_GUARDS:
                raise ValueError(f"output.{name}.{where}: '{name}' scores the whole text and cannot mask it")
            if action is Action.FALLBACK and not policy.output_actions.fallback_model:
                raise ValueError(f"output.{name}.{where}: 'fallback' needs output_actions.fallback_model")


async def judge(
    runtime: Guardrails | None,
    text: str,
    rules: dict[str, GuardRule],
    ctx: GuardContext,
    *,
    timeout: float,
    on_error: str,
    only: frozenset[str] | None = None,
    skip: frozenset[str] = frozenset(),
) -> OutputVerdict:
    """Every rule of ``rules`` (restricted to ``only``, without ``skip``) on ``text``, concurrently.

    A scorer or guard that raises or times out follows ``on_error`` like an input guard: ``closed`` raises
    ``GuardFailed`` (the answer must not be served unchecked), ``open`` carries on and reports it."""
    names = [n for n in rules if n not in skip and (only is None or n in only)]
    scorer_names = [n for n in names if n in SCORERS]
    guard_rules = {n: rules[n] for n in names if n not in SCORERS}
    verdict = OutputVerdict()
    jobs = [asyncio.ensure_future(asyncio.wait_for(SCORERS[n](text, ctx), timeout)) for n in scorer_names]
    scan_job = None
    if guard_rules and runtime is not None:
        scan_job = asyncio.ensure_future(runtime.scan([text], guard_rules, ctx, timeout=timeout, on_error=on_error))
    for name, job in zip(scorer_names, jobs, strict=True):
        try:
            score = await job
        except TimeoutError:
            verdict.failed[name] = "timeout"
            continue
        except Exception as exc:  # a scorer's bug is this answer's failure to be checked, never a 500
            verdict.failed[name] = type(exc).__name__
            continue
        rule = rules[name]
        failed = score.failed if rule.threshold is None else score.score >= rule.threshold
        verdict.scores[name] = score.score
        if failed:
            _take(verdict, Finding(name, name, 0, len(text), score.score), rule.types.get(name, rule.action))
    if scan_job is not None:
        scan = await scan_job  # raises GuardFailed itself when a guard fails and the policy is closed
        verdict.scores.update(scan.scores)
        verdict.failed.update(scan.failed)
        for f, action in scan.findings[0]:
            _take(verdict, f, action)
    if verdict.failed and on_error == "closed":
        name, why = next(iter(verdict.failed.items()))
        cls = GuardTimeout if why == "timeout" else GuardFailed
        raise cls(f"the output check '{name}' failed ({why}) and the policy fails closed", guard=name)
    return verdict


def _take(verdict: OutputVerdict, finding: Finding, action: Action) -> None:
    verdict.findings.append((finding, action))
    if ACTION_RANK[action] > ACTION_RANK[verdict.action]:
        verdict.action, verdict.decided_by = action, finding
