"""``Guardrails``: the guards of one process, the policies, and the decision for a text or a request.

Guards run concurrently (one task per guard and text); CPU work inside them runs in the PII guard's worker
processes (work that holds the GIL: ``GuardContext.offload``, which ``scan`` fills in), in the ``EmbeddingService``
or in threads, so the event loop only awaits. A guard that raises or times out (a dead worker process included) is
``failed``: the policy's ``on_error`` decides (``closed`` raises ``GuardFailed``, ``open`` carries on and reports it).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import Any

from guardrails.config import GuardrailsConfig, GuardRule, PolicyConfig
from guardrails.errors import GuardFailed, GuardrailError, GuardTimeout
from guardrails.masking import MaskMap
from guardrails.redaction import redact
from guardrails.registry import GUARDS, Guard
from guardrails.types import ACTION_RANK, Action, Finding, GuardContext, GuardResult, Verdict

#: Roles whose text a guard reads (``None``: a completions prompt). The injection detector skips system and
#: assistant turns: the application wrote those, and "You are a strict reviewer..." is not an attack.
GUARD_ROLES: dict[str, frozenset[str | None]] = {"injection": frozenset({"user", "tool", "function", None})}
#: Guards whose first job in the worker processes decides what follows (the injection detector's first stage: the
#: embedding or not; the toxicity scorer's features, then the embedding) start before the others: the workers take
#: jobs in order, and queued behind spaCy that job held a suspect prompt's embedding back until spaCy was done
#: (52 vs 28 ms wall p50 with the worker on a core of its own, ``bench/guardrails_bench.py``).
STARTS_FIRST = frozenset({"injection", "toxicity"})
#: Actions for the check API without a policy: every guard of the direction, shipped thresholds.
DEFAULT_ACTIONS = {"pii": Action.MASK, "secrets": Action.MASK, "keywords": Action.MASK}
DEFAULT_ACTIONS |= {"injection": Action.BLOCK, "toxicity": Action.BLOCK}
DIRECTION_GUARDS = {
    "input": ("pii", "secrets", "keywords", "injection"),
    "output": ("pii", "secrets", "keywords", "toxicity"),
}


@dataclass(slots=True)
class Scan:
    """The outcome for a list of texts: findings per text (each with the action it gets), scores, failures."""

    findings: list[list[tuple[Finding, Action]]]
    scores: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    action: Action = Action.ALLOW
    blocked_by: Finding | None = None

    def mask(self, texts: list[str], mask_map: MaskMap) -> list[str]:
        """``texts`` with every finding whose action is ``mask`` replaced by its placeholder. A value masked in
        one text is masked wherever else it appears in the request (as a whole word): a name the NER saw in the
        user's turn is hidden in the system prompt too, under the same placeholder."""
        best: dict[str, Finding] = {}
        for text, found in zip(texts, self.findings, strict=True):
            for f, action in found:
                value = text[f.start : f.end]
                if (
                    action is Action.MASK
                    and len(value.strip()) > 1
                    and (value not in best or f.score > best[value].score)
                ):
                    best[value] = f
        out = []
        for text, found in zip(texts, self.findings, strict=True):
            spans = [f for f, a in found if a is Action.MASK]
            for value, f in best.items():
                start = text.find(value)
                while start >= 0:
                    end = start + len(value)
                    if (start == 0 or not text[start - 1].isalnum()) and (end == len(text) or not text[end].isalnum()):
                        spans.append(Finding(f.guard, f.type, start, end, f.score))
                    start = text.find(value, start + 1)
            out.append(mask_map.mask(text, spans) if spans else text)
        return out


class Guardrails:
    """Built once per process from the ``guardrails`` settings section; ``load()`` at startup (in a thread)."""

    def __init__(self, config: GuardrailsConfig) -> None:
        self.config = config
        self.guards: dict[str, Guard] = {name: cls(getattr(config, name, None)) for name, cls in GUARDS.items()}
        a = config.attach
        self._by_key, self._by_team, self._by_model = a.keys, a.teams, a.models
        self._default = config.policies[a.default] if a.default else None
        #: True when some request may need guards: the gateway adds its step only then.
        self.attached = bool(a.keys or a.teams or a.models or a.default)

    def load(self) -> None:
        for guard in self.guards.values():
            guard.load()

    def close(self) -> None:
        """Stop what ``load`` started (the PII worker processes). Blocking: ``aclose`` from a loop."""
        for guard in self.guards.values():
            guard.close()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def health(self) -> dict[str, object]:
        """What ``/ready`` reports: the PII worker processes (``pii.workers``), when there are any."""
        pool = self._pool()
        return {"pii_workers": pool.health()} if pool is not None else {}

    def _pool(self) -> Any:
        """The PII guard's worker processes (started by its ``load``), which other guards' heavy work may use."""
        return getattr(self.guards.get("pii"), "pool", None)

    def policy(self, name: str) -> PolicyConfig | None:
        return self.config.policies.get(name)

    def policy_for(
        self, key_id: str | None, key_name: str | None, team_id: str | None, model: str
    ) -> PolicyConfig | None:
        """The most specific attached policy: key (id or name), then team, then model, then the default."""
        name = None
        if key_id is not None:
            name = self._by_key.get(key_id) or (key_name and self._by_key.get(key_name))
        if name is None and team_id is not None:
            name = self._by_team.get(team_id)
        if name is None:
            name = self._by_model.get(model)
        return self.config.policies[name] if name else self._default

    async def scan(
        self,
        texts: list[str],
        rules: dict[str, GuardRule],
        ctx: GuardContext,
        *,
        roles: list[str | None] | None = None,
        timeout: float = 2.0,
        on_error: str = "closed",
    ) -> Scan:
        pool = self._pool()
        if pool is not None and ctx.offload is None:
            ctx = replace(ctx, offload=pool.run)
        jobs: list[tuple[str, int]] = []
        coros = []
        for name in rules:
            allowed = GUARD_ROLES.get(name)
            for i, text in enumerate(texts):
                if text and (allowed is None or roles is None or roles[i] in allowed):
                    jobs.append((name, i))
                    coros.append(self.guards[name].check(text, ctx))
        order = sorted(range(len(coros)), key=lambda k: jobs[k][0] not in STARTS_FIRST)  # stable: else as listed
        started = {k: asyncio.ensure_future(coros[k]) for k in order}
        tasks = [started[k] for k in range(len(coros))]
        scan = Scan([[] for _ in texts], {name: 0.0 for name in rules})
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for t in pending:
                t.cancel()
            for (name, i), task in zip(jobs, tasks, strict=True):
                if task in pending:
                    scan.failed[name] = "timeout"
                elif task.exception() is not None:
                    exc = task.exception()
                    scan.failed[name] = exc.message if isinstance(exc, GuardrailError) else type(exc).__name__
                else:
                    self._apply(scan, name, i, task.result(), rules[name])
        if scan.failed and on_error == "closed":
            name, why = next(iter(scan.failed.items()))
            cls = GuardTimeout if why == "timeout" else GuardFailed
            raise cls(f"the guard '{name}' failed ({why}) and the policy fails closed", guard=name)
        return scan

    def _apply(self, scan: Scan, name: str, i: int, result: GuardResult, rule: GuardRule) -> None:
        guard = self.guards[name]
        threshold = rule.threshold if rule.threshold is not None else guard.default_threshold
        top = result.score if result.score is not None else max((f.score for f in result.findings), default=0.0)
        scan.scores[name] = max(scan.scores.get(name, 0.0), top)
        for f in result.findings:
            if f.score < threshold:
                continue
            action = rule.types.get(f.type, rule.action)
            scan.findings[i].append((f, action))
            if ACTION_RANK[action] > ACTION_RANK[scan.action]:
                scan.action = action
                if action is Action.BLOCK:
                    scan.blocked_by = f

    async def check(self, text: str, direction: str, policy: PolicyConfig | None, ctx: GuardContext) -> Verdict:
        """The check API: one text, the policy's rules for ``direction`` (or every guard of it, shipped
        thresholds, when ``policy`` is None). Raises ``GuardFailed`` when a guard fails and the policy is closed."""
        if policy is None:
            rules = {name: GuardRule(action=DEFAULT_ACTIONS[name]) for name in DIRECTION_GUARDS[direction]}
            timeout, on_error = 5.0, "closed"
        else:
            rules = policy.input if direction == "input" else policy.output
            rules = {n: r for n, r in rules.items() if n in self.guards}
            timeout, on_error = policy.timeout, policy.on_error
        scan = await self.scan([text], rules, ctx, timeout=timeout, on_error=on_error)
        masked = text
        if scan.action is Action.MASK and direction == "output" and policy is not None:  # as the gateway serves it
            masks = [f for f, a in scan.findings[0] if a is Action.MASK]
            masked = redact(text, masks, policy.output_actions.redaction)
        elif scan.action is Action.MASK:
            masked = scan.mask([text], MaskMap())[0]
        blocked = scan.blocked_by
        return Verdict(
            action=scan.action,
            findings=[f for f, _ in scan.findings[0]],
            scores=scan.scores,
            text=masked,
            blocked_by=blocked.guard if blocked else None,
        )
