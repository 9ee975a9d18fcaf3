"""Toxicity scorer (output side): the same kind of linear model as the injection detector (``_features.py``),
trained by ``guardrails/training/train_toxicity.py`` on Davidson, a Jigsaw sample and Latent Hatred (implicit,
polite-sounding hate), so it does not only react to slurs. Scores in [0, 1]."""

from __future__ import annotations

from importlib import resources
from typing import Any

from guardrails._features import LinearTextModel
from guardrails.errors import GuardFailed
from guardrails.types import Finding, GuardContext, GuardResult

TOXICITY_RULES: list = []


class ToxicityScorer:
    name = "toxicity"

    def __init__(self, settings: Any = None) -> None:
        self.model_path = getattr(settings, "model_path", None)
        self._model: LinearTextModel | None = None
        self.default_threshold = 0.5

    def load(self) -> None:
        if self._model is None:
            path = self.model_path or resources.files("guardrails.models").joinpath("toxicity.npz")
            try:
                self._model = LinearTextModel(str(path), TOXICITY_RULES)
            except (OSError, KeyError, ValueError) as exc:
                raise GuardFailed(f"the toxicity model could not be loaded: {exc}", guard=self.name) from exc
            self.default_threshold = self._model.threshold

    async def check(self, text: str, ctx: GuardContext) -> GuardResult:
        if self._model is None:
            self.load()
        if not text.strip():
            return GuardResult(score=0.0)
        if ctx.embed is None:
            raise GuardFailed("the toxicity scorer needs the shared embedder", guard=self.name)
        score = round(self._model.score(text, await ctx.embed(text)), 4)
        return GuardResult([Finding(self.name, "TOXIC", 0, len(text), score)], score)
