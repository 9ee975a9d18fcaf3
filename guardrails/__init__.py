"""Guardrails: input guards (PII, secrets, keywords, injection), masking with a reverse map, and policies.

A library: it never imports ``gateway/`` or FastAPI. The gateway runs it as a pipeline step
(``gateway/guarding.py``); ``POST /v1/guardrails/check`` calls ``Guardrails.check``.

    Guard (registry.GUARDS)  pii: PresidioPIIGuard | secrets: SecretsGuard | keywords: KeywordGuard
                             | injection: InjectionGuard
    Guardrails (engine)      the guards of a process, its policies, ``scan`` and ``check``
    MaskMap, StreamUnmasker  placeholders for one request, and their undoing in answers and streams
    GuardrailsConfig         the ``guardrails`` settings section (policies with ``input``/``output`` sections)

Errors (``errors.py``): GuardrailError > GuardConfigError | GuardFailed > GuardTimeout | GuardBlocked.
"""

from guardrails.config import GuardrailsConfig, GuardRule, PolicyConfig
from guardrails.engine import Guardrails, Scan
from guardrails.errors import GuardBlocked, GuardConfigError, GuardFailed, GuardrailError, GuardTimeout
from guardrails.masking import MaskMap, StreamUnmasker
from guardrails.registry import GUARDS, Guard
from guardrails.types import Action, Finding, GuardContext, GuardResult, Verdict

__all__ = [
    "GUARDS",
    "Action",
    "Finding",
    "Guard",
    "GuardBlocked",
    "GuardConfigError",
    "GuardContext",
    "GuardFailed",
    "GuardResult",
    "GuardRule",
    "GuardTimeout",
    "GuardrailError",
    "Guardrails",
    "GuardrailsConfig",
    "MaskMap",
    "PolicyConfig",
    "Scan",
    "StreamUnmasker",
    "Verdict",
]
