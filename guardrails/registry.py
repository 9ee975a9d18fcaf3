"""The explicit registries: YAML name -> implementation. Adding a guard is one file and one line here."""

from __future__ import annotations

from typing import Any, Protocol

from guardrails._injection import InjectionGuard
from guardrails._keywords import KeywordGuard
from guardrails._pii import PresidioPIIGuard
from guardrails._secrets import SecretsGuard
from guardrails._toxicity import ToxicityScorer
from guardrails.types import GuardContext, GuardResult


class Guard(Protocol):
    """One detector. ``check`` returns every candidate finding with its score; the policy applies thresholds
    and actions. CPU-heavy work must leave the event loop (``asyncio.to_thread`` or the ``EmbeddingService``)."""

    name: str
    #: The threshold used when a policy sets none (for trained models: the one chosen on held-out data).
    default_threshold: float

    def __init__(self, settings: Any = None) -> None: ...

    def load(self) -> None:
        """Load models (called once at startup, in a worker thread). Raise ``GuardFailed`` if impossible."""
        ...

    async def check(self, text: str, ctx: GuardContext) -> GuardResult: ...

    def close(self) -> None:
        """Release what ``load`` started (the PII guard's worker processes); called once at shutdown."""
        ...


GUARDS: dict[str, type[Guard]] = {
    "pii": PresidioPIIGuard,
    "secrets": SecretsGuard,
    "keywords": KeywordGuard,
    "injection": InjectionGuard,
    "toxicity": ToxicityScorer,
}
#: Guards a policy's ``input`` section may name.
INPUT_GUARDS = frozenset({"pii", "secrets", "keywords", "injection"})
#: Guards that also run on answers (``Guardrails.check(direction="output")``; scorers.SCORERS beside them).
OUTPUT_GUARDS = frozenset({"pii", "secrets", "keywords", "toxicity"})
