"""Shared by the training scripts: featurising rows, fitting the logistic regression, writing the ``.npz``."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np

from guardrails._features import HASH_DIM, char_ngrams, rule_flags

CACHE = Path("/tmp/interlock-guardrails-embeddings.npz")


def embed_all(texts: list[str]) -> np.ndarray:
    """MiniLM embeddings of ``texts`` (the packaged int8 model), cached on local disk between runs."""
    from embeddings import load_embedder

    keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
    cached: dict[str, np.ndarray] = {}
    if CACHE.exists():
        with np.load(CACHE) as data:
            cached = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))
    missing = [t for k, t in zip(keys, texts, strict=True) if k not in cached]
    if missing:
        embedder = load_embedder()
        missing.sort(key=len)  # similar lengths per batch: less padding
        print(f"embedding {len(missing)} texts ...", flush=True)
        for i in range(0, len(missing), 32):
            batch = missing[i : i + 32]
            for t, v in zip(batch, embedder.embed(batch), strict=True):
                cached[hashlib.sha1(t.encode()).hexdigest()] = v
            if i % 1024 == 0:
                print(f"  {i}/{len(missing)}", flush=True)
                np.savez(CACHE, keys=np.array(list(cached)), vectors=np.stack(list(cached.values())))
        np.savez(CACHE, keys=np.array(list(cached)), vectors=np.stack(list(cached.values())))
    return np.stack([cached[k] for k in keys]).astype(np.float32)


def featurize(texts: list[str], emb: np.ndarray, rules: list[tuple[str, re.Pattern[str]]]):
    from scipy import sparse

    rows, cols, vals = [], [], []
    for i, t in enumerate(texts):
        idx, val = char_ngrams(t)
        rows.append(np.full(idx.size, i))
        cols.append(idx)
        vals.append(val)
    hashed = sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(len(texts), HASH_DIM)
    )
    flags = np.stack([rule_flags(t, rules) for t in texts]) if rules else np.zeros((len(texts), 0), np.float32)
    return sparse.hstack([sparse.csr_matrix(emb), hashed, sparse.csr_matrix(flags)]).tocsr()


def fit(x, y: np.ndarray, weights: np.ndarray, c: float, seed: int):
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=3000, solver="liblinear", random_state=seed)
    model.fit(x, y, sample_weight=weights)
    return model


def save(path: Path, model, dim: int, rules, threshold: float, meta: dict) -> None:
    w = model.coef_[0].astype(np.float32)
    np.savez_compressed(
        path,
        w_emb=w[:dim],
        w_hash=w[dim : dim + HASH_DIM].astype(np.float16),
        w_rules=w[dim + HASH_DIM :],
        bias=np.float32(model.intercept_[0]),
        threshold=np.float32(threshold),
        rule_names=np.array([n for n, _ in rules]),
        meta=np.array(repr(meta)),
    )


def source_weights(sources: list[str], labels: np.ndarray) -> np.ndarray:
    """Each (source, label) group weighs the same in total, capped so tiny groups do not dominate."""
    groups: dict[tuple[str, int], int] = {}
    for s, y in zip(sources, labels, strict=True):
        groups[(s, int(y))] = groups.get((s, int(y)), 0) + 1
    mean = len(sources) / len(groups)
    return np.array(
        [min(3.0, mean / groups[(s, int(y))]) ** 0.5 for s, y in zip(sources, labels, strict=True)], np.float32
    )
