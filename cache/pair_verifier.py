"""The learned pair verifier: is a near hit (the incoming question against a cached one) the same question?

It reads only what the index keeps: the two MiniLM vectors ``u`` and ``v`` and the two ``verify.Signature``
(hashed tokens, never text). Features: the cosine, how the change from ``u`` to ``v`` is spread over the
coordinates, every rule of ``verify.py`` that fires, and counts from the signatures (content words only one side
has, word overlap, numbers, names, negations). A logistic regression (numpy at run time, a few µs) turns them
into the probability that the cached answer answers the incoming question.

The weights and the operating point (``floor``: the similarity a candidate needs; ``cutoff``: the probability
to serve; ``hard``: rules that still veto on their own) ship in ``_pair_verifier.npz``, written by ``python -m
cache.training.train_pair_verifier`` (seeded; the operating point chosen on pairs it did not train on).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cache.verify import Signature, differences

#: Rule names in feature order (``verify.differences`` yields these).
REASONS = ("numbers", "negation", "entities", "dates", "comparison", "quantifier", "antonym", "polarity", "order",
           "added")  # fmt: skip
MODEL_FILE = Path(__file__).with_name("_pair_verifier.npz")
#: The veto reason a refusal of the model is counted under (``interlock_cache_vetoed_near_hits_total``).
MODEL_REASON = "model"


def _jaccard(x: frozenset, y: frozenset) -> float:
    union = len(x | y)
    return len(x & y) / union if union else 1.0


def signature_features(a: Signature, b: Signature, reasons: set[str]) -> list[float]:
    """Symmetric counts from two signatures (the cached and the incoming question weigh the same)."""
    only_a, only_b = len(a.content - b.content), len(b.content - a.content)
    ent_a, ent_b = len(a.entities - b.words), len(b.entities - a.words)
    return [
        *(1.0 if r in reasons else 0.0 for r in REASONS),
        _jaccard(a.content, b.content),
        _jaccard(a.words, b.words),
        np.log1p(min(only_a, only_b)),
        np.log1p(max(only_a, only_b)),
        np.log1p(min(len(a.content), len(b.content))),
        np.log1p(abs(len(a.words) - len(b.words))),
        1.0 if (a.numbers or b.numbers) and a.numbers == b.numbers else 0.0,
        1.0 if bool(a.numbers) != bool(b.numbers) else 0.0,
        float(min(abs(a.negations - b.negations), 2)),
        float(min(ent_a, ent_b)),
        float(max(ent_a, ent_b)),
        1.0 if a.entities and a.entities == b.entities else 0.0,
    ]


def features(u: np.ndarray, v: np.ndarray, a: Signature, b: Signature, reasons: set[str] | None = None) -> np.ndarray:
    """The cosine, the signature features, and how the change between the vectors is spread: its largest
    coordinates (a one-word swap moves a few directions far) against its total (a rewording moves many a little).
    The raw coordinates are left out: with them the model learnt the training sources' topics, not meaning."""
    if reasons is None:
        reasons = set(differences(a, b))
    d = np.abs(u - v)
    top = np.partition(d, len(d) - 20)[-20:]
    top.sort()
    head = [float(u @ v), *signature_features(a, b, reasons)]
    return np.array([*head, top[-1], top[-5:].mean(), top.mean(), d.sum()], dtype=np.float32)


class PairVerifier:
    """Loads ``_pair_verifier.npz``; ``check`` answers why a candidate is not served, or ``None`` to serve it."""

    def __init__(self, path: Path | None = None) -> None:
        with np.load(path or MODEL_FILE, allow_pickle=False) as data:
            self.mean, self.scale = data["mean"], data["scale"]
            self.weights, self.bias = data["weights"], float(data["bias"])
            meta = json.loads(str(data["meta"]))
        self.floor: float = meta["floor"]
        """Similarity a candidate needs before the model is asked (``semantic.threshold`` replaces it)."""
        self.cutoff: float = meta["cutoff"]
        self.hard: frozenset[str] = frozenset(meta["hard"])
        self.meta = meta

    def probability(self, x: np.ndarray) -> float:
        z = float((x - self.mean) / self.scale @ self.weights) + self.bias
        return 1.0 / (1.0 + np.exp(-max(-50.0, min(50.0, z))))

    def check(self, u: np.ndarray, v: np.ndarray, a: Signature, b: Signature) -> str | None:
        """The first hard rule that fires, else ``"model"`` when the probability is under the cutoff, else None."""
        reasons = set(differences(a, b))
        hard = next((r for r in REASONS if r in reasons and r in self.hard), None)
        if hard is not None:
            return hard
        return MODEL_REASON if self.probability(features(u, v, a, b, reasons)) < self.cutoff else None
