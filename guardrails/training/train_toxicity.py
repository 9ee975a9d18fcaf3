"""Train the toxicity scorer and write guardrails/models/toxicity.npz.

    .venv/bin/python -m guardrails.training.train_toxicity [--c 2.0]

Seeded and deterministic. Fits on the ``train`` split of Davidson, Latent Hatred (implicit hate) and a Jigsaw
sample (data.py); the threshold is the one that maximises F1 on the ``calib`` split; ROC AUC is reported per
source on the ``test`` split and on HateCheck, which it never trains on.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from guardrails._toxicity import TOXICITY_RULES
from guardrails.training.common import embed_all, featurize, fit, save, source_weights
from guardrails.training.data import hatecheck_rows, load_toxicity

OUT = Path(__file__).resolve().parents[1] / "models" / "toxicity.npz"


def main() -> None:
    from sklearn.metrics import f1_score, roc_auc_score

    ap = argparse.ArgumentParser()
    ap.add_argument("--c", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    rows = load_toxicity()
    check = list(hatecheck_rows())
    texts = [r.text for r in rows + check]
    emb = embed_all(texts)
    x = featurize(texts, emb, TOXICITY_RULES)
    y = np.array([r.label for r in rows + check])
    split = np.array([r.split for r in rows] + ["hatecheck"] * len(check))
    sources = [r.source for r in rows + check]
    tr = np.flatnonzero(split == "train")
    model = fit(x[tr], y[tr], source_weights([sources[i] for i in tr], y[tr]), args.c, args.seed)
    scores = model.predict_proba(x)[:, 1]
    cal = np.flatnonzero(split == "calib")
    grid = np.linspace(0.05, 0.95, 91)
    threshold = float(max(grid, key=lambda t: f1_score(y[cal], scores[cal] >= t)))
    print(f"threshold {threshold:.2f} (max F1 on calibration)")
    for source in sorted(set(sources)):
        idx = [i for i in range(len(y)) if sources[i] == source and split[i] in ("test", "hatecheck")]
        if len(set(y[idx])) == 2:
            auc = roc_auc_score(y[idx], scores[idx])
            recall = np.mean(scores[idx][y[idx] == 1] >= threshold)
            print(f"{source:14} n={len(idx):5d} ROC AUC {auc:.3f}  recall@threshold {recall:.3f}")
    save(args.out, model, emb.shape[1], TOXICITY_RULES, threshold, {"c": args.c, "seed": args.seed})
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
