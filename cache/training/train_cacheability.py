"""Train the cacheability classifier: ``python -m cache.training.train_cacheability`` (seeded, ~2 s of CPU).

Logistic regression over hashed unigrams and bigrams (``cache._features``) on the generated sentences of
``cache.training.data``; writes the non-zero weights to ``cache/_cacheability.json``, which the gateway reads
with no scikit-learn at run time. Prints accuracy, precision and recall on the held-out templates.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cache._features import DIM, features
from cache.training.data import generate

OUT = Path(__file__).resolve().parent.parent / "_cacheability.json"


def _matrix(rows: list[tuple[str, int]]):
    from scipy.sparse import lil_matrix

    x = lil_matrix((len(rows), DIM), dtype=np.float32)
    for i, (text, _) in enumerate(rows):
        for f in features(text):
            x[i, f] = 1.0
    return x.tocsr(), np.array([label for _, label in rows])


def main(seed: int = 7) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, precision_score, recall_score

    train, held_out = generate(seed)
    xt, yt = _matrix(train)
    xh, yh = _matrix(held_out)
    model = LogisticRegression(C=2.0, max_iter=2000, random_state=seed).fit(xt, yt)
    pred = model.predict(xh)
    report = {
        "train": len(train),
        "held_out": len(held_out),
        "accuracy": round(float(accuracy_score(yh, pred)), 3),
        "precision_uncacheable": round(float(precision_score(yh, pred)), 3),
        "recall_uncacheable": round(float(recall_score(yh, pred)), 3),
    }
    weights = {int(i): round(float(w), 4) for i, w in enumerate(model.coef_[0]) if abs(w) >= 1e-3}
    OUT.write_text(json.dumps({"seed": seed, "bias": float(model.intercept_[0]), "weights": weights, **report}))
    return report


if __name__ == "__main__":
    print(main())
