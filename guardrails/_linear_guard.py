"""The guard around a shipped ``LinearTextModel`` (``_features.py``): the injection detector and the toxicity
scorer differ only in their model file, rule flags and finding type, so loading, errors and scoring live here.

The embedding comes from the request's shared memo (``GuardContext.embed``), computed off the event loop by the
``EmbeddingService``. The rest, the text's features (hashed n-grams, ~0.15 ms vectorised for 50 words, and the rule
flags' regexes, ~0.15 ms) and the first stage's score, holds the GIL: it runs in the guard worker processes
(``GuardContext.offload``, ``pii.workers``), where it leaves the event loop alone, and in a thread when there are
none (``workers: 0``, scripts). Only the second stage's dot products (~20 µs, after the embedding) run on the loop.

A guard may ship a first stage (``fast_file``): the same kind of model without the embedding. Below its cutoff
the guard answers with that score and never asks for the embedding, which is most of its cost (~13 ms of CPU
for a 50-word prompt). The cutoff was chosen on held-out data against the shipped model (its training script
says how), so a custom ``model_path`` without its own ``fast_model_path`` runs without a first stage.
"""

from __future__ import annotations

import asyncio
import importlib
import re
from importlib import resources
from typing import Any, ClassVar

import numpy as np

from guardrails._features import LinearTextModel, text_features
from guardrails.errors import GuardFailed
from guardrails.types import Finding, GuardContext, GuardResult

Features = tuple[np.ndarray, np.ndarray, np.ndarray]
#: In a guard worker process: the first stages it has loaded, by ``LinearModelGuard.stage_spec``.
_stages: dict[tuple[str, str, str | None], tuple[LinearTextModel | None, list]] = {}


def first_stage(fast: LinearTextModel | None, rules: list, text: str) -> tuple[float | None, Features | None]:
    """``(score, None)`` when the first stage clears ``text`` (below its cutoff), else ``(None, features)`` for the
    second stage; with no first stage, always the features."""
    features = text_features(text, rules)
    if fast is not None:
        score = fast.score(text, None, features)
        if score < fast.threshold:  # the threshold of a first stage is its cutoff
            return score, None
    return None, features


def first_stage_in_worker(spec: tuple[str, str, str | None], text: str) -> tuple[float | None, Features | None]:
    """``first_stage`` in a guard worker process (``GuardContext.offload``): the guard class's rules and its first
    stage's file are loaded there once (121 KiB), on the first text."""
    loaded = _stages.get(spec)
    if loaded is None:
        module, name, fast_path = spec
        rules = getattr(importlib.import_module(module), name).rules
        loaded = _stages[spec] = (LinearTextModel(fast_path, rules) if fast_path else None, rules)
    return first_stage(loaded[0], loaded[1], text)


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
        #: What a worker process needs to run this guard's first stage: (module, class, first stage's file).
        self.stage_spec = (
            type(self).__module__,
            type(self).__qualname__,
            None if self.fast_path is None else str(self.fast_path),
        )

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
        # Both stages read the same n-grams and rule flags (same hashing, same rules): computed once, off the loop.
        if ctx.offload is not None:
            score, features = await ctx.offload(first_stage_in_worker, self.stage_spec, text)
        else:
            score, features = await asyncio.to_thread(first_stage, self._fast, self.rules, text)
        if features is not None:
            if ctx.embed is None:
                raise GuardFailed(f"the {self.name} model needs the shared embedder", guard=self.name)
            score = self._model.score(text, await ctx.embed(text), features)
        score = round(score, 4)
        return GuardResult([Finding(self.name, self.finding_type, 0, len(text), score)], score)
