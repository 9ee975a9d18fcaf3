"""The learned pair verifier: is a near hit (the incoming question against a cached one) the same question?

It reads only what the index keeps: the two MiniLM vectors ``u`` and ``v`` and the two ``verify.Signature``
(hashed tokens, never text). Features: the classic sentence-pair head (the cosine, ``|u - v|``: which directions
of meaning moved, ``u * v``: which are shared), how the change is spread over the coordinates, every rule of
``verify.py`` that fires, and counts from the signatures (content words only one side has, word overlap,
numbers, names, negations). A logistic regression (numpy at run time, tens of µs) turns them into the
probability that the cached answer answers the incoming question.

The weights and the operating point (``floor``: the similarity a candidate needs; ``cutoff``: the probability
to serve; ``hard``: rules that still veto on their own) ship in ``_pair_verifier.npz``, written by ``python -m
cache.training.train_pair_verifier`` (seeded; the operating point chosen on pairs it did not train on).
"""

from __future__ import annotations

import json
import math
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
        math.log1p(min(only_a, only_b)),
        math.log1p(max(only_a, only_b)),
        math.log1p(min(len(a.content), len(b.content))),
        math.log1p(abs(len(a.words) - len(b.words))),
        1.0 if (a.numbers or b.numbers) and a.numbers == b.numbers else 0.0,
        1.0 if bool(a.numbers) != bool(b.numbers) else 0.0,
        float(min(abs(a.negations - b.negations), 2)),
        float(min(ent_a, ent_b)),
        float(max(ent_a, ent_b)),
        1.0 if a.entities and a.entities == b.entities else 0.0,
    ]


def _spread(d: np.ndarray) -> list[float]:
    """How the change ``|u - v|`` is spread: its largest coordinates (a one-word swap moves a few directions far)
    against its total (a rewording moves many a little)."""
    top = np.partition(d, len(d) - 20)[-20:].tolist()  # plain floats: numpy's per-call cost dominates at 20
    top.sort()
    return [top[-1], sum(top[-5:]) / 5, sum(top) / 20, float(d.sum())]


def features(u: np.ndarray, v: np.ndarray, a: Signature, b: Signature, reasons: set[str] | None = None) -> np.ndarray:
    """The training form: the cosine, the signature features, the spread of the change, then ``|u - v|`` and
    ``u * v`` (which directions moved, which are shared)."""
    if reasons is None:
        reasons = set(differences(a, b))
    d = np.abs(u - v)
    head = [float(u @ v), *signature_features(a, b, reasons), *_spread(d)]
    return np.concatenate([np.asarray(head, dtype=np.float32), d, u * v])


class PairVerifier:
    """Loads ``_pair_verifier.npz``; ``check`` answers why a candidate is not served, or ``None`` to serve it."""

    def __init__(self, path: Path | None = None) -> None:
        with np.load(path or MODEL_FILE, allow_pickle=False) as data:
            mean, scale, weights, bias = data["mean"], data["scale"], data["weights"], float(data["bias"])
            meta = json.loads(str(data["meta"]))
        self.floor: float = meta["floor"]
        """Similarity a candidate needs before the model is asked (``semantic.threshold`` replaces it)."""
        self.cutoff: float = meta["cutoff"]
        """Probability a candidate needs to be served."""
        self.hard: frozenset[str] = frozenset(meta["hard"])
        """Rules that veto on their own, whatever the model says."""
        self.dim: int = meta["dim"]
        """The embedder's dimension it was trained on: vectors of another embedder are left to the rules."""
        self.meta = meta
        # The standardisation folded into the weights once, so a check is three dot products.
        w = (weights / scale).astype(np.float32)
        self._bias = bias - float(mean / scale @ weights)
        n = len(w) - 2 * self.dim
        self._w_head, self._w_diff, self._w_prod = w[:n].tolist(), w[n : n + self.dim], w[n + self.dim :]

    def fits(self, vector: np.ndarray) -> bool:
        return vector.shape == (self.dim,)

    def probability(self, u: np.ndarray, v: np.ndarray, a: Signature, b: Signature, reasons: set[str]) -> float:
        """The probability that the answer cached for one question answers the other (the same as the logistic
        regression on ``features``, without building them)."""
        d = np.abs(u - v)
        head = [float(u @ v), *signature_features(a, b, reasons), *_spread(d)]
        z = sum(x * w for x, w in zip(head, self._w_head, strict=True))
        z += float(d @ self._w_diff) + float((u * v) @ self._w_prod) + self._bias
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def check(self, u: np.ndarray, v: np.ndarray, a: Signature, b: Signature) -> str | None:
        """The first hard rule that fires, else ``"model"`` when the probability is under the cutoff, else None."""
        reasons = set(differences(a, b))
        hard = next((r for r in REASONS if r in reasons and r in self.hard), None)
        if hard is not None:
            return hard
        return MODEL_REASON if self.probability(u, v, a, b, reasons) < self.cutoff else None
