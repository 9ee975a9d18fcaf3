"""Toxicity scorer (output side): the same kind of linear model as the injection detector (``_features.py``),
trained by ``guardrails/training/train_toxicity.py`` on Davidson, a Jigsaw sample and Latent Hatred (implicit,
polite-sounding hate), so it does not only react to slurs. Scores in [0, 1]."""

from __future__ import annotations

from guardrails._linear_guard import LinearModelGuard

#: No rule flags: the training scripts read this list, so it stays even while empty.
TOXICITY_RULES: list = []


class ToxicityScorer(LinearModelGuard):
    name = "toxicity"
    model_file = "toxicity.npz"
    finding_type = "TOXIC"
    rules = TOXICITY_RULES
