"""Train the injection / jailbreak detector and write guardrails/models/injection.npz.

    .venv/bin/python -m guardrails.training.train_injection [--c 4.0] [--target-fpr 0.015]

Seeded and deterministic. Fits on the ``train`` split (data.py), picks the threshold on the ``calib`` split:
the lowest that keeps false positives at most ``--target-fpr`` on benign look-alikes (mitre_frr and the
generated look-alikes) and at most ``--ordinary-fpr`` on ordinary prompts (chat sets, benign rows of the attack
sets), and prints recall / false-positive rate per source on the ``test`` split, which it never looked at.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from guardrails._injection import INJECTION_RULES
from guardrails.training.common import embed_all, featurize, fit, save, source_weights
from guardrails.training.data import load_injection

OUT = Path(__file__).resolve().parents[1] / "models" / "injection.npz"
LOOKALIKES = {"mitre_frr", "lookalike-generated"}


def per_source(rows, scores: np.ndarray, threshold: float) -> list[tuple[str, str, int, float]]:
    """(source, 'recall' | 'fpr', n, value) for each source and label present."""
    out = []
    for source in sorted({r.source for r in rows}):
        for label, what in ((1, "recall"), (0, "fpr")):
            idx = [i for i, r in enumerate(rows) if r.source == source and r.label == label]
            if idx:
                out.append((source, what, len(idx), float(np.mean(scores[idx] >= threshold))))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--c", type=float, default=1.0)
    ap.add_argument("--target-fpr", type=float, default=0.015)
    ap.add_argument("--ordinary-fpr", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    np.random.seed(args.seed)

    rows = load_injection()
    emb = embed_all([r.text for r in rows])
    x = featurize([r.text for r in rows], emb, INJECTION_RULES)
    y = np.array([r.label for r in rows])
    split = np.array([r.split for r in rows])
    tr = np.flatnonzero(split == "train")
    model = fit(x[tr], y[tr], source_weights([rows[i].source for i in tr], y[tr]), args.c, args.seed)
    scores = model.predict_proba(x)[:, 1]

    cal = np.flatnonzero(split == "calib")
    look = [i for i in cal if rows[i].source in LOOKALIKES]
    ordinary = [i for i in cal if rows[i].label == 0 and rows[i].source not in LOOKALIKES]
    threshold = max(
        float(np.quantile(scores[look], 1 - args.target_fpr)),
        float(np.quantile(scores[ordinary], 1 - args.ordinary_fpr)),
    )
    threshold = min(max(threshold, 0.05), 0.99)
    print(f"threshold {threshold:.4f} (calibration: {len(look)} look-alikes, {len(ordinary)} ordinary prompts)")

    te = np.flatnonzero(split == "test")
    print(f"{'source':22} {'metric':6} {'n':>5} {'value':>7}")
    for source, what, n, value in per_source([rows[i] for i in te], scores[te], threshold):
        print(f"{source:22} {what:6} {n:5d} {value:7.3f}")
    save(args.out, model, emb.shape[1], INJECTION_RULES, threshold, {"c": args.c, "seed": args.seed})
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
