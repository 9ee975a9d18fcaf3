"""Features of the shipped classifiers (injection, toxicity), the same at training and at run time.

A text becomes three blocks: its MiniLM embedding (the shared one, 384 floats), hashed character n-grams
(3-5 grams, crc32 into ``HASH_DIM`` buckets, log counts, L2-normalised) and a few rule flags. The model is a
logistic regression over them: ``score = sigmoid(w_emb . emb + sum(w_hash[i] * v_i) + w_rules . rules + b)``,
stored as an ``.npz`` of numpy arrays and scored with numpy alone (no scikit-learn at run time).
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

HASH_DIM = 1 << 16
NGRAMS = (3, 4, 5)
#: Long texts (pasted jailbreak templates) are featurised from their head and tail.
MAX_CHARS = 2000
_SPACE = re.compile(r"\s+")


def char_ngrams(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Sparse hashed n-grams: (indices, values), values L2-normalised."""
    if len(text) > MAX_CHARS:
        text = text[: MAX_CHARS // 2] + " " + text[-MAX_CHARS // 2 :]
    t = " " + _SPACE.sub(" ", text.lower()).strip() + " "
    counts: Counter[int] = Counter()
    crc = zlib.crc32
    for n in NGRAMS:
        for i in range(len(t) - n + 1):
            counts[crc(t[i : i + n].encode()) & (HASH_DIM - 1)] += 1
    if not counts:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    idx = np.fromiter(counts.keys(), np.int64, len(counts))
    val = np.log1p(np.fromiter(counts.values(), np.float32, len(counts)))
    val /= np.linalg.norm(val)
    return idx, val


def rule_flags(text: str, rules: list[tuple[str, re.Pattern[str]]]) -> np.ndarray:
    return np.fromiter((1.0 if p.search(text) else 0.0 for _, p in rules), np.float32, len(rules))


class LinearTextModel:
    """A logistic regression over (embedding, hashed n-grams, rule flags), loaded from an ``.npz``."""

    def __init__(self, path: str | Path, rules: list[tuple[str, re.Pattern[str]]]) -> None:
        with np.load(path) as data:
            self.w_emb = data["w_emb"].astype(np.float32)
            self.w_hash = data["w_hash"].astype(np.float32)
            self.w_rules = data["w_rules"].astype(np.float32)
            self.bias = float(data["bias"])
            self.threshold = float(data["threshold"])
            self.rule_names = [str(n) for n in data["rule_names"]]
        if self.rule_names != [n for n, _ in rules]:
            raise ValueError(f"{path}: trained with rules {self.rule_names}, the code has {[n for n, _ in rules]}")
        self.rules = rules

    def features(self, text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The text's hashed n-grams and rule flags: computed once, scored by both stages of a cascade."""
        idx, val = char_ngrams(text)
        flags = rule_flags(text, self.rules) if self.rules else np.zeros(0, np.float32)
        return idx, val, flags

    def logit(self, text: str, embedding: np.ndarray | None, features=None) -> float:
        idx, val, flags = features if features is not None else self.features(text)
        z = self.bias
        if embedding is not None and self.w_emb.size:
            z += float(np.dot(self.w_emb, embedding))
        if idx.size:
            z += float(np.dot(self.w_hash[idx], val))
        if flags.size:
            z += float(np.dot(self.w_rules, flags))
        return z

    def score(self, text: str, embedding: np.ndarray | None, features=None) -> float:
        return float(1.0 / (1.0 + np.exp(-self.logit(text, embedding, features))))
