"""A trained router: its definition, its head and its version; ``decide`` turns one embedding into a decision.

calibrated p over intents (+ an out-of-scope class when the definition has examples for it)
best class is out-of-scope, or the query is farther from its examples than the fitted floor  -> out_of_scope
the two best intents are within ``ambiguity_margin`` and together clear the threshold          -> ambiguous
the best intent is below its own fitted threshold                                              -> out_of_scope
otherwise                                                                                       -> intent
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from router.intent.definition import RouterDefinition, Target
from router.intent.head import Head, fit_head
from router.intent.tiers import difficulty, pick_model

Reason = Literal["intent", "out_of_scope", "ambiguous"]


@dataclass(slots=True)
class Decision:
    router: str
    version: int
    intent: str | None
    confidence: float
    target: Target
    reason: Reason
    alternatives: list[tuple[str, float]] = field(default_factory=list)
    similarity: float = 0.0
    difficulty: float | None = None
    #: The model a model target resolves to after cost tiers (``None`` for other targets).
    model: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``POST /v1/route`` answer."""
        out: dict[str, Any] = {
            "router": self.router,
            "version": self.version,
            "intent": self.intent,
            "confidence": round(self.confidence, 4),
            "target": self.target.public(),
            "alternatives": [{"intent": n, "confidence": round(c, 4)} for n, c in self.alternatives],
            "reason": self.reason,
        }
        if self.model is not None:
            out["model"] = self.model
            out["difficulty"] = self.difficulty
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Decision:
        return cls(
            router=data["router"],
            version=int(data["version"]),
            intent=data["intent"],
            confidence=float(data["confidence"]),
            target=Target.model_validate(data["target"]),
            reason=data["reason"],
            alternatives=[(a["intent"], float(a["confidence"])) for a in data.get("alternatives", [])],
            difficulty=data.get("difficulty"),
            model=data.get("model"),
        )


@dataclass(slots=True)
class IntentRouter:
    name: str
    version: int
    definition: RouterDefinition
    head: Head
    _targets: list[Target] = field(default_factory=list)

    def __post_init__(self) -> None:
        by_name = {i.name: i.target for i in self.definition.intents}
        self._targets = [by_name.get(label, self.definition.out_of_scope.target) for label in self.head.labels]

    def decide(self, vector: np.ndarray, text: str = "", turns: int = 1) -> Decision:
        head, labels = self.head, self.head.labels
        p, sim = head.scores(vector)
        order = np.argsort(-p)
        c1 = int(order[0])
        c2 = int(order[1]) if len(order) > 1 else None
        p1 = float(p[c1])
        p2 = float(p[c2]) if c2 is not None else 0.0
        alts = [(labels[int(c)], float(p[c])) for c in order[:4] if labels[int(c)] and int(c) != c1][:3]
        oos = self.definition.out_of_scope.target
        if labels[c1] == "" or sim < head.floors[c1]:
            return self._out(oos, p1, alts, sim, text, turns, intent=None)
        close = c2 is not None and labels[c2] != "" and p1 - p2 < self.definition.ambiguity_margin
        if close and p1 + p2 >= head.thresholds[c1]:
            names = [labels[c1], labels[c2]]
            ask = next((i.clarify for i in self.definition.intents if i.name == names[0] and i.clarify), None)
            question = ask or self.definition.clarify.format(options=" or ".join(n.replace("_", " ") for n in names))
            alts = [(labels[c1], p1), *[a for a in alts if a[0] != labels[c1]]][:3]
            return Decision(self.name, self.version, None, p1, Target(clarify=question), "ambiguous", alts, sim)
        if p1 < head.thresholds[c1]:
            return self._out(oos, p1, alts, sim, text, turns, intent=None)
        return self._out(self._targets[c1], p1, alts, sim, text, turns, intent=labels[c1])

    def _out(self, target: Target, conf: float, alts, sim: float, text: str, turns: int, *, intent: str | None):
        reason: Reason = "intent" if intent is not None else "out_of_scope"
        d = Decision(self.name, self.version, intent, conf, target, reason, alts, sim)
        if target.model is not None:
            d.difficulty = difficulty(text, turns) if target.tiers else None
            d.model = pick_model(target, d.difficulty) if d.difficulty is not None else target.model
        return d

    def second_look(self, first: Decision, text: str) -> str | None:
        """The query with its typos corrected, when ``first`` declined or asked to clarify and the query has a
        word the examples do not use that is one slip from one they do (else ``None``). Deciding again on it
        keeps a typo from flipping a decision; a confident decision is never second-guessed, so a query costs a
        second embedding only when it was declined and has such a word."""
        if first.reason == "intent":
            return None
        return self.head.spelling(text)

    @property
    def figures(self) -> dict:
        return self.head.figures


def train(
    name: str, version: int, definition: RouterDefinition, embed: Callable[[list[str]], np.ndarray], embedder: str = ""
) -> IntentRouter:
    """Fit the head (blocking, CPU: run it in a thread). Out-of-scope examples become a class of their own."""
    classes = [(i.name, i.examples) for i in definition.intents]
    if definition.out_of_scope.examples:
        classes.append(("", definition.out_of_scope.examples))
    return IntentRouter(name, version, definition, fit_head(classes, embed, embedder=embedder))
