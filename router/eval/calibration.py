"""Calibration of the intent router, per source, on several held-out splits: the fast companion of ``quality``.

    .venv/bin/python -m router.eval.calibration [--k 5 10 all] [--splits 3] [--cache PATH]

The same ``train`` and ``IntentRouter.decide`` the gateway runs, without HTTP, with every text embedded once and
kept in a cache file (the embedder is most of the cost; a calibration change then takes seconds to measure).
For each k and each split (a different tenth of banking77's intents held out of training: ``HOLD_EVERY`` intents
apart, starting at the split's offset), it reports per source:

- ``in_scope``: test utterances of trained intents; ``accuracy`` (a decline or a clarifying question counts
  wrong), ``declined`` (out of scope), ``clarify`` (ambiguous), ``wrong`` (another intent);
- ``near``: test utterances of the held-out banking intents (unseen intents of the same domain);
- ``chat``: 300 chat prompts (AlpacaEval, MT-bench); ``short``: 300 short benign queries from deepset's prompt
  injection set (label 0, at most 200 characters: searches, questions, requests from any domain);
  for the out-of-scope sources, ``declined`` counts ``intent: null`` (out of scope or a clarifying question).

- ``flips``: of 200 confident right decisions, the share that change when the query is upper-cased, re-punctuated
  or gets one typo (``text.typo``: swapped, dropped, doubled or neighbouring-key letter).

Averages over splits are printed as a table. Nothing here is tuned to banking; the splits show how much the
figures move with the intents a router happens to be given.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

import numpy as np

from router.eval import DATA
from router.eval.quality import HOLD_EVERY, banking_definition, load_banking, load_far


def load_short(n: int = 300) -> list[str]:
    out = []
    for name in ("train.jsonl", "test.jsonl"):
        for line in (DATA / "injection" / "deepset-prompt-injections" / name).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row.get("label") == 0 and 0 < len(row["text"]) <= 200:
                out.append(row["text"])
    random.Random(0).shuffle(out)
    return out[:n]


class CachedEmbed:
    """``embed(texts)`` that computes each distinct text once and keeps the vectors in a file between runs."""

    def __init__(self, path: Path) -> None:
        from embeddings import load_embedder

        self.path = path
        self.embedder = load_embedder()
        self.vectors: dict[str, np.ndarray] = {}
        if path.exists():
            with np.load(path, allow_pickle=False) as z:
                self.vectors = dict(zip(z["texts"].tolist(), z["vectors"], strict=True))
        self.dirty = False

    def __call__(self, texts: list[str]) -> np.ndarray:
        missing = sorted({t for t in texts if t not in self.vectors}, key=len)
        for i in range(0, len(missing), 64):
            batch = missing[i : i + 64]
            for t, v in zip(batch, self.embedder.embed(batch), strict=True):
                self.vectors[t] = v
            self.dirty = True
        return np.stack([self.vectors[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)

    def save(self) -> None:
        if self.dirty:
            texts = list(self.vectors)
            np.savez(self.path, texts=np.asarray(texts), vectors=np.stack([self.vectors[t] for t in texts]))
            self.dirty = False


def run(embed: CachedEmbed, k: int | None, offset: int, train, test, sources: dict[str, list[str]]) -> dict:
    from router.intent import parse_definition
    from router.intent import train as train_router

    raw, held = banking_definition(train, k, offset)
    definition = parse_definition(raw)
    t0 = time.perf_counter()
    router = train_router("calibration", 1, definition, embed)
    train_s = time.perf_counter() - t0

    def decide(texts: list[str]) -> list:
        # As ``LocalRouting.decide``: a decline with a correctable typo is decided again on the corrected words.
        X = embed(texts)
        out = []
        for x, t in zip(X, texts, strict=True):
            d = router.decide(x, t)
            fixed = router.second_look(d, t)
            if fixed is not None:
                again = router.decide(embed([fixed])[0], t)
                d = again if again.reason == "intent" else d
            out.append(d)
        return out

    ins = [(t, c) for t, c in test if c not in held]
    got = got_in = decide([t for t, _ in ins])
    out = {
        "in_scope": {
            "accuracy": _share(d.intent == c for d, (_, c) in zip(got, ins, strict=True)),
            "declined": _share(d.reason == "out_of_scope" for d in got),
            "clarify": _share(d.reason == "ambiguous" for d in got),
            "wrong": _share(d.intent is not None and d.intent != c for d, (_, c) in zip(got, ins, strict=True)),
        }
    }
    for name, texts in {"near": [t for t, c in test if c in held], **sources}.items():
        got = decide(texts)
        out[name] = {
            "declined": _share(d.intent is None for d in got),
            "clarify": _share(d.reason == "ambiguous" for d in got),
        }
    out["flips"] = _flips(decide, ins, got_in, offset)
    out["train_s"] = round(train_s, 2)
    out["figures"] = router.figures
    return out


def _flips(decide, ins, got, seed: int, n: int = 200) -> dict:
    """Of ``n`` confident in-scope decisions (right, confidence >= 0.8), the share whose decision (intent, or a
    decline) changes when the query is upper-cased, loses its punctuation and gains "??", or gets one typo."""
    from router.intent.text import typo

    rng = random.Random(seed)
    sure = [(t, d.intent) for (t, c), d in zip(ins, got, strict=True) if d.intent == c and d.confidence >= 0.8]
    sure = rng.sample(sure, min(n, len(sure)))
    variants = {
        "upper": [t.upper() for t, _ in sure],
        "punctuation": [t.rstrip(".?!") + " ??" for t, _ in sure],
        "typo": [typo(t, rng) for t, _ in sure],
    }
    return {k: _share(d.intent != i for d, (_, i) in zip(decide(v), sure, strict=True)) for k, v in variants.items()}


def _share(flags) -> float:
    flags = list(flags)
    return round(sum(flags) / max(1, len(flags)), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", nargs="+", default=["5", "10", "all"])
    parser.add_argument("--splits", type=int, default=3, help="held-out splits per k (offsets 0, 3, 6, ...)")
    parser.add_argument("--cache", default="/tmp/interlock-router-embeddings.npz")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if not (DATA / "intent" / "banking77" / "train.csv").exists():
        raise SystemExit(f"skipped: {DATA}/intent/banking77 is not here (the shared data sets are absent)")
    train, test = load_banking()
    sources = {"chat": load_far(), "short": load_short()}
    embed = CachedEmbed(Path(args.cache))
    offsets = [(3 * i) % HOLD_EVERY for i in range(args.splits)]
    rows = []
    try:
        for k in args.k:
            runs = [run(embed, None if k == "all" else int(k), o, train, test, sources) for o in offsets]
            embed.save()
            for o, r in zip(offsets, runs, strict=True):
                print(json.dumps({"k": k, "offset": o, **r}), flush=True)
            rows.append((k, runs))
    finally:
        embed.save()
    head = "| k | in-scope accuracy | declined | clarify | wrong | near declined | chat declined | short declined |"
    print("\n" + head + " flips: upper | punctuation | typo |")
    print("| --- " * 11 + "|")
    for k, runs in rows:
        cells = [("in_scope", "accuracy"), ("in_scope", "declined"), ("in_scope", "clarify"), ("in_scope", "wrong")]
        cells += [("near", "declined"), ("chat", "declined"), ("short", "declined")]
        cells += [("flips", "upper"), ("flips", "punctuation"), ("flips", "typo")]
        means = [statistics.fmean(r[src][key] for r in runs) for src, key in cells]
        print(f"| {k} | " + " | ".join(f"{v:.3f}" for v in means) + " |")
    if args.out:
        Path(args.out).write_text(json.dumps([{"k": k, "runs": runs} for k, runs in rows], indent=2))


if __name__ == "__main__":
    main()
