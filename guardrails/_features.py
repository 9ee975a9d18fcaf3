"""Features of the shipped classifiers (injection, toxicity), the same at training and at run time.

A text becomes three blocks: its MiniLM embedding (the shared one, 384 floats), hashed character n-grams
(3-5 grams, crc32 into ``HASH_DIM`` buckets, log counts, L2-normalised) and a few rule flags. The model is a
logistic regression over them: ``score = sigmoid(w_emb . emb + sum(w_hash[i] * v_i) + w_rules . rules + b)``,
stored as an ``.npz`` of numpy arrays and scored with numpy alone (no scikit-learn at run time).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

HASH_DIM = 1 << 16
NGRAMS = (3, 4, 5)
#: Long texts (pasted jailbreak templates) are featurised from their head and tail.
MAX_CHARS = 2000
_SPACE = re.compile(r"\s+")


def _crc_table() -> np.ndarray:
    """zlib's CRC-32 (reflected polynomial 0xEDB88320) one byte at a time, as a lookup table."""
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(0xEDB88320), table >> 1).astype(np.uint32)
    return table


_CRC = _crc_table()


def _hashes(t: str) -> np.ndarray:
    """``zlib.crc32(t[i : i + n].encode()) & (HASH_DIM - 1)`` for every n of ``NGRAMS`` and every i, in that order,
    computed for all positions at once: a Python loop of crc32 calls took ~0.8 ms for a 50-word prompt, this ~0.1."""
    data = t.encode()
    b = np.frombuffer(data, np.uint8)
    if len(data) == len(t):  # ASCII (character i is byte i): an n+1-gram's CRC goes on from its n-gram's
        return _ascii_hashes(b)
    # where each character's UTF-8 bytes start: code points past 0x7F, 0x7FF and 0xFFFF take 2, 3 and 4 bytes
    cp = np.frombuffer(t.encode("utf-32-le"), np.uint32)
    width = 1 + (cp > 0x7F).astype(np.int64) + (cp > 0x7FF) + (cp > 0xFFFF)
    starts = np.concatenate(([0], np.cumsum(width)))
    parts = []
    for n in NGRAMS:
        m = len(t) - n + 1
        if m <= 0:
            continue
        begin = starts[:m]
        length = starts[n : n + m] - begin
        crc = np.full(m, 0xFFFFFFFF, np.uint32)
        for k in range(int(length.max())):
            step = _CRC[(crc ^ b[np.minimum(begin + k, len(b) - 1)]) & 0xFF] ^ (crc >> 8)
            crc = np.where(k < length, step, crc)
        parts.append(crc)
    return _finish(parts)


def _ascii_hashes(b: np.ndarray) -> np.ndarray:
    crc = np.full(len(b), 0xFFFFFFFF, np.uint32)
    parts = []
    for k in range(max(NGRAMS)):
        m = len(b) - k  # n-grams of k + 1 bytes that fit
        if m <= 0:
            break
        crc = _CRC[(crc[:m] ^ b[k:]) & 0xFF] ^ (crc[:m] >> 8)
        if k + 1 in NGRAMS:
            parts.append(crc)
    return _finish(parts)


def _finish(parts: list[np.ndarray]) -> np.ndarray:
    if not parts:
        return np.zeros(0, np.uint32)
    return (np.concatenate(parts) ^ np.uint32(0xFFFFFFFF)) & np.uint32(HASH_DIM - 1)


def char_ngrams(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Sparse hashed n-grams: (indices, values), values L2-normalised.

    Indices come in the order of their first n-gram (3-grams left to right, then 4-grams, then 5-grams), as the
    trained models were scored with: the same order makes the same float sums, so scores are the same to the bit."""
    if len(text) > MAX_CHARS:
        text = text[: MAX_CHARS // 2] + " " + text[-MAX_CHARS // 2 :]
    t = " " + _SPACE.sub(" ", text.lower()).strip() + " "
    hashes = _hashes(t)
    if not hashes.size:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    uniq, first, counts = np.unique(hashes, return_index=True, return_counts=True)
    order = np.argsort(first, kind="stable")
    idx = uniq[order].astype(np.int64)
    val = np.log1p(counts[order].astype(np.float32))
    val /= np.linalg.norm(val)
    return idx, val


def rule_flags(text: str, rules: list[tuple[str, re.Pattern[str]]]) -> np.ndarray:
    return np.fromiter((1.0 if p.search(text) else 0.0 for _, p in rules), np.float32, len(rules))


def text_features(text: str, rules: list[tuple[str, re.Pattern[str]]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The text's hashed n-grams and rule flags: computed once, scored by both stages of a cascade."""
    idx, val = char_ngrams(text)
    flags = rule_flags(text, rules) if rules else np.zeros(0, np.float32)
    return idx, val, flags


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
        return text_features(text, self.rules)

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
