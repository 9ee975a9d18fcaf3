"""Train a classifier's fast first stage and write guardrails/models/<guard>_fast.npz.

    .venv/bin/python -m guardrails.training.train_fast --guard injection|toxicity [--max-lost 0.01]

The MiniLM embedding is most of a classifier's cost (~0.2 ms of CPU per token: ~13 ms for 50 words). The first
stage is the same logistic regression without it (hashed character n-grams and the rule flags, well under a
millisecond); when its score is below a cutoff, the guard answers with it and skips the embedding.

Seeded and deterministic. Fits on the ``train`` split; the cutoff is chosen on the ``calib`` split: the highest
(never above the shipped model's threshold) that lets through at most ``--max-lost`` of the calibration
positives the shipped model catches. Prints, on held-out data it never looked at (the ``test`` split, and
HateCheck for toxicity), the shipped model alone beside the cascade per source, and how many texts skip the
embedding.
"""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

import numpy as np

from guardrails._features import LinearTextModel
from guardrails.training.common import embed_all, featurize, fit, save, source_weights

MODELS = Path(__file__).resolve().parents[1] / "models"


def _guard(name: str):
    """(rows, rules): every row of the guard's data with its split; HateCheck rows are held out as 'hatecheck'."""
    from guardrails.training.data import Row

    if name == "injection":
        from guardrails._injection import INJECTION_RULES
        from guardrails.training.data import load_injection

        return load_injection(), INJECTION_RULES
    from guardrails._toxicity import TOXICITY_RULES
    from guardrails.training.data import hatecheck_rows, load_toxicity

    check = [Row(r.text, r.label, r.source, "hatecheck") for r in hatecheck_rows()]
    return load_toxicity() + check, TOXICITY_RULES


def report(rows, y, held: np.ndarray, full: np.ndarray, cascade: np.ndarray, threshold: float) -> None:
    from sklearn.metrics import roc_auc_score

    print(f"{'source':22} {'n':>5}  {'metric':8} {'shipped':>8} {'cascade':>8}")
    for source in sorted({rows[i].source for i in held}):
        idx = np.array([i for i in held if rows[i].source == source])
        for label, metric in ((1, "recall"), (0, "fp rate")):
            part = idx[y[idx] == label]
            if part.size:
                before, after = np.mean(full[part] >= threshold), np.mean(cascade[part] >= threshold)
                print(f"{source:22} {part.size:5d}  {metric:8} {before:8.3f} {after:8.3f}")
        if len(set(y[idx])) == 2:
            before, after = roc_auc_score(y[idx], full[idx]), roc_auc_score(y[idx], cascade[idx])
            print(f"{source:22} {idx.size:5d}  {'ROC AUC':8} {before:8.3f} {after:8.3f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--guard", choices=("injection", "toxicity"), default="injection")
    ap.add_argument("--c", type=float, default=1.0)
    ap.add_argument("--max-lost", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    out = args.out or MODELS / f"{args.guard}_fast.npz"
    np.random.seed(args.seed)

    rows, rules = _guard(args.guard)
    texts = [r.text for r in rows]
    emb = embed_all(texts)
    shipped = LinearTextModel(str(resources.files("guardrails.models").joinpath(f"{args.guard}.npz")), rules)
    full = np.array([shipped.score(t, e) for t, e in zip(texts, emb, strict=True)])

    x = featurize(texts, np.zeros((len(rows), 0), np.float32), rules)
    y = np.array([r.label for r in rows])
    split = np.array([r.split for r in rows])
    tr = np.flatnonzero(split == "train")
    model = fit(x[tr], y[tr], source_weights([rows[i].source for i in tr], y[tr]), args.c, args.seed)
    fast = model.predict_proba(x)[:, 1]

    cal = np.flatnonzero(split == "calib")
    caught = [i for i in cal if y[i] == 1 and full[i] >= shipped.threshold]
    cutoff = min(float(np.quantile(fast[caught], args.max_lost)), shipped.threshold)
    print(f"cutoff {cutoff:.4f} ({len(caught)} calibration positives caught by the shipped model)")

    held = np.flatnonzero((split == "test") | (split == "hatecheck"))
    cascade = np.where(fast < cutoff, fast, full)
    skipped = fast[held] < cutoff
    print(f"held-out texts that skip the embedding: {skipped.mean():.3f} of {held.size}")
    print(f"  negatives: {skipped[y[held] == 0].mean():.3f}, positives: {skipped[y[held] == 1].mean():.3f}")
    report(rows, y, held, full, cascade, shipped.threshold)
    meta = {"guard": args.guard, "c": args.c, "seed": args.seed, "max_lost": args.max_lost}
    save(out, model, 0, rules, cutoff, meta)
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
