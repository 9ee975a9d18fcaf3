"""Quality figures of the shipped guards (the README's tables):

    .venv/bin/python -m guardrails.training.evaluate [--pii] [--injection] [--toxicity] [--limit N]

- PII: per-entity precision / recall / F1, token level, on presidio-research's ``synth_dataset_v2.json``, for
  our analyzer and for Presidio's defaults (``AnalyzerEngine`` on the same spaCy model), measured the same way.
  The data set's ``STREET_ADDRESS`` and ``GPE`` count as ``LOCATION`` (Presidio's name for both).
- Injection: recall (attacks) and false-positive rate (benign) per source, on the held-out ``test`` split, as
  the guard scores (both stages: the first one's score below its cutoff, else the full model's).
- Toxicity: ROC AUC per source on the held-out split, and on HateCheck (never trained on).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter

import numpy as np

CORE = ("PERSON", "LOCATION", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS")
MORE = ("ORGANIZATION", "DATE_TIME", "US_DRIVER_LICENSE")
GOLD_NAMES = {"STREET_ADDRESS": "LOCATION", "GPE": "LOCATION"}
_TOKEN = re.compile(r"\w+|[^\w\s]")


def _labels(text: str, spans: list[tuple[int, int, str]]) -> list[str]:
    out = []
    for m in _TOKEN.finditer(text):
        label = "O"
        for start, end, type_ in spans:
            if start <= m.start() < end:
                label = type_
                break
        out.append(label)
    return out


def pii(limit: int | None) -> dict:
    from guardrails._pii import NOT_ENTITIES, build_analyzer
    from guardrails.masking import resolve_overlaps
    from guardrails.training.data import data_dir
    from guardrails.types import Finding

    data = json.loads((data_dir() / "pii" / "presidio-research" / "synth_dataset_v2.json").read_text())[:limit]
    engines = {"interlock": build_analyzer(), "presidio-defaults": build_analyzer(presidio_defaults=True)}
    types = CORE + MORE
    out = {}
    for name, engine in engines.items():
        counts = {t: Counter() for t in types}
        started = time.perf_counter()
        for item in data:
            text = item["full_text"]
            gold = [
                (s["start_position"], s["end_position"], GOLD_NAMES.get(s["entity_type"], s["entity_type"]))
                for s in item["spans"]
            ]
            if name == "interlock":
                results = engine.analyze(text, language="en", score_threshold=0.5)
                results = [r for r in results if text[r.start : r.end].lower() not in NOT_ENTITIES]
            else:
                results = engine.analyze(text, language="en")
            found = resolve_overlaps(Finding("pii", r.entity_type, r.start, r.end, r.score) for r in results)
            pred = [(f.start, f.end, f.type) for f in found]
            for g, p in zip(_labels(text, gold), _labels(text, pred), strict=True):
                for t in types:
                    if g == t and p == t:
                        counts[t]["tp"] += 1
                    elif p == t:
                        counts[t]["fp"] += 1
                    elif g == t:
                        counts[t]["fn"] += 1
        ms = (time.perf_counter() - started) / len(data) * 1000
        out[name] = {"per_type": {t: _prf(c) for t, c in counts.items()}, "ms_per_text": round(ms, 1)}
        core = sum((counts[t] for t in CORE), Counter())
        out[name]["micro_core8"] = _prf(core)
    return out


def _prf(c: Counter) -> dict:
    p = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 0.0
    r = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 3), "recall": round(r, 3), "f1": round(f, 3), "support": c["tp"] + c["fn"]}


def _scores(rows, model_path: str, rules, fast_path: str | None = None) -> np.ndarray:
    """Scores as the guard gives them: with a first stage, its score below its cutoff, else the full model's."""
    from guardrails._features import LinearTextModel
    from guardrails.training.common import embed_all

    model = LinearTextModel(model_path, rules)
    emb = embed_all([r.text for r in rows])
    scores = np.array([model.score(r.text, e) for r, e in zip(rows, emb, strict=True)])
    if fast_path is not None:
        fast = LinearTextModel(fast_path, rules)
        first = np.array([fast.score(r.text, None) for r in rows])
        scores = np.where(first < fast.threshold, first, scores)
    return scores, model.threshold


def injection() -> dict:
    from importlib import resources

    from guardrails._injection import INJECTION_RULES
    from guardrails.training.data import load_injection
    from guardrails.training.train_injection import per_source

    rows = [r for r in load_injection() if r.split == "test"]
    models = resources.files("guardrails.models")
    path, fast = str(models.joinpath("injection.npz")), str(models.joinpath("injection_fast.npz"))
    scores, threshold = _scores(rows, path, INJECTION_RULES, fast)
    return {
        "threshold": round(threshold, 4),
        "per_source": [
            {"source": s, "metric": m, "n": n, "value": round(v, 3)}
            for s, m, n, v in per_source(rows, scores, threshold)
        ],
    }


def toxicity() -> dict:
    from importlib import resources

    from sklearn.metrics import roc_auc_score

    from guardrails._toxicity import TOXICITY_RULES
    from guardrails.training.data import hatecheck_rows, load_toxicity

    rows = [r for r in load_toxicity() if r.split == "test"] + list(hatecheck_rows())
    path = str(resources.files("guardrails.models").joinpath("toxicity.npz"))
    scores, threshold = _scores(rows, path, TOXICITY_RULES)
    out = {"threshold": round(threshold, 4), "per_source": []}
    for source in sorted({r.source for r in rows}):
        idx = [i for i, r in enumerate(rows) if r.source == source]
        y = np.array([rows[i].label for i in idx])
        s = scores[idx]
        out["per_source"].append(
            {
                "source": source,
                "n": len(idx),
                "roc_auc": round(float(roc_auc_score(y, s)), 3) if len(set(y)) == 2 else None,
                "recall": round(float(np.mean(s[y == 1] >= threshold)), 3),
                "fpr": round(float(np.mean(s[y == 0] >= threshold)), 3) if (y == 0).any() else None,
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pii", action="store_true")
    ap.add_argument("--injection", action="store_true")
    ap.add_argument("--toxicity", action="store_true")
    ap.add_argument("--limit", type=int, default=None, help="first N PII sentences only")
    args = ap.parse_args()
    every = not (args.pii or args.injection or args.toxicity)
    report = {}
    if args.pii or every:
        report["pii"] = pii(args.limit)
    if args.injection or every:
        report["injection"] = injection()
    if args.toxicity or every:
        report["toxicity"] = toxicity()
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
