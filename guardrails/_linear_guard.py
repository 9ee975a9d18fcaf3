"""The guard around a shipped ``LinearTextModel`` (``_features.py``): the injection detector and the toxicity
scorer differ only in their model file, rule flags and finding type, so loading, errors and scoring live here.

The embedding comes from the request's shared memo (``GuardContext.embed``), computed off the event loop by the
``EmbeddingService``; the rest (n-gram hashing, a dot product) takes well under a millisecond and runs in a
worker thread only for long texts.

A guard may ship a first stage (``fast_file``): the same kind of model without the embedding. Below its cutoff
the guard answers with that score and never asks for the embedding, which is most of its cost (~13 ms of CPU
for a 50-word prompt). The cutoff was chosen on held-out data against the shipped model (its training script
says how), so a custom ``model_path`` without its own ``fast_model_path`` runs without a first stage.
"""

from __future__ import annotations

import asyncio
import re
from importlib import resources
from typing import Any, ClassVar

from guardrails._features import LinearTextModel
from guardrails.errors import GuardFailed
from guardrails.types import Finding, GuardContext, GuardResult

#: Above this many characters the n-gram hashing costs enough to leave the event loop.
LONG_TEXT = 4000


class LinearModelGuard:
    """Scores a whole text in [0, 1]; its one finding spans the text. Subclasses set the class attributes."""

    name: ClassVar[str]
    model_file: ClassVar[str]  # in the package ``guardrails.models``
    finding_type: ClassVar[str]
    rules: ClassVar[list[tuple[str, re.Pattern[str]]]] = []
    fast_file: ClassVar[str | None] = None

    def __init__(self, settings: Any = None) -> None:
        self.model_path = getattr(settings, "model_path", None)
        self.fast_path = getattr(settings, "fast_model_path", None)
        if self.fast_path is None and self.model_path is None and self.fast_file and getattr(settings, "cascade", True):
            self.fast_path = resources.files("guardrails.models").joinpath(self.fast_file)
        self._model: LinearTextModel | None = None
        self._fast: LinearTextModel | None = None
        self.default_threshold = 0.5

    def load(self) -> None:
        if self._model is None:
            path = self.model_path or resources.files("guardrails.models").joinpath(self.model_file)
            self._model = self._load(path)
            self.default_threshold = self._model.threshold
        if self._fast is None and self.fast_path is not None:
            self._fast = self._load(self.fast_path)

    def close(self) -> None:
        pass

    def _load(self, path: Any) -> LinearTextModel:
        try:
            return LinearTextModel(str(path), self.rules)
        except (OSError, KeyError, ValueError) as exc:
            raise GuardFailed(f"the {self.name} model could not be loaded: {exc}", guard=self.name) from exc

    async def check(self, text: str, ctx: GuardContext) -> GuardResult:
        if self._model is None:
            self.load()
        if not text.strip():
            return GuardResult(score=0.0)
        long = len(text) > LONG_TEXT
        # Both stages read the same n-grams and rule flags (same hashing, same rules): computed once.
        features = await asyncio.to_thread(self._model.features, text) if long else self._model.features(text)
        score = self._fast.score(text, None, features) if self._fast is not None else None
        if score is None or score >= self._fast.threshold:  # the threshold of a first stage is its cutoff
            if ctx.embed is None:
                raise GuardFailed(f"the {self.name} model needs the shared embedder", guard=self.name)
            score = self._model.score(text, await ctx.embed(text), features)
        score = round(score, 4)
        return GuardResult([Finding(self.name, self.finding_type, 0, len(text), score)], score)
