"""Types shared by every guard, scorer and caller of the guardrails library.

A leaf module: it imports nothing of ours, so the gateway, the check API and (later) the guardrails service can
all import it and none copies it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

Direction = Literal["input", "output"]


class Action(StrEnum):
    """What a policy does with a finding. Input policies use the first three; the output side adds the rest."""

    ALLOW = "allow"
    MASK = "mask"
    BLOCK = "block"
    RETRY = "retry"
    HEDGE = "hedge"
    FALLBACK = "fallback"
    ESCALATE = "escalate"


#: Severity order, so one text with several findings takes the strictest action.
ACTION_RANK = {Action.ALLOW: 0, Action.MASK: 1, Action.RETRY: 2, Action.HEDGE: 2, Action.FALLBACK: 3}
ACTION_RANK |= {Action.ESCALATE: 4, Action.BLOCK: 5}


@dataclass(slots=True, frozen=True)
class Finding:
    """Something a guard found: ``text[start:end]`` is of ``type`` (a Presidio entity name or a label).

    Carries offsets, never the value, so a finding may go into records and traces as it is.
    """

    guard: str
    type: str
    start: int
    end: int
    score: float

    def as_dict(self) -> dict[str, Any]:
        return {"guard": self.guard, "type": self.type, "start": self.start, "end": self.end, "score": self.score}


@dataclass(slots=True)
class GuardResult:
    """One guard's answer for one text: its candidate findings and, for classifiers, a score in [0, 1]."""

    findings: list[Finding] = field(default_factory=list)
    score: float | None = None


@dataclass(slots=True)
class GuardContext:
    """What a guard may use besides the text. ``embed`` returns the text's shared MiniLM embedding (the
    per-request memo in the gateway), so guards, router and cache embed each prompt once."""

    embed: Callable[[str], Awaitable[Any]] | None = None
    #: Free-form per-call data (the request's ``response_format`` for output scorers, the question, ...).
    extra: dict[str, Any] = field(default_factory=dict)
    #: W3C ``traceparent`` of the caller's span: a remote engine sends it, so the service's span joins the trace.
    traceparent: str | None = None
    #: Whose texts these are (the caller's key, else its team): guards may memoise per scope, never across.
    #: ``None``: nothing is memoised.
    scope: str | None = None
    #: ``await offload(fn, *args)`` runs a module-level function in the guard worker processes (``pii.workers``),
    #: for GIL-heavy work that would delay the event loop even from a thread. Set by ``Guardrails.scan``.
    offload: Callable[..., Awaitable[Any]] | None = None


@dataclass(slots=True)
class Verdict:
    """The decision for one text (or one request's texts): what to do, what was found, the masked text."""

    action: Action
    findings: list[Finding]
    scores: dict[str, float]
    text: str | None = None
    #: The guard whose finding decided a block (named in the client's error).
    blocked_by: str | None = None
