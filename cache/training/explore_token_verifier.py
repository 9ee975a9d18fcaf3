"""Exploration: does a *token-level* alignment verifier serve more true paraphrases at the same wrong rate?

``python -m cache.training.explore_token_verifier [--data ../shared/data/paraphrase]`` (seeded). A first run
runs MiniLM over ~27k sentences and keeps every token's last hidden state in ``/tmp/cachewt/`` (float16, 400 MB,
two to three minutes); the eleven variants with leave-one-out then take ~10 minutes on 2 shared cores (``--no-loo``
and ``--variants`` shorten it). Skips with a message when the data folder is absent. Figures and conclusion (not
shipped): the README's Caches section.

Idea (BERTScore-like, issue 10): MiniLM computes a hidden state per token before it mean-pools them into the
sentence vector. For a candidate pair, each token of each side gets its best cosine to the other side's tokens;
a changed fact ("founded" / "dissolved", "2019" / "2020", an added "not") leaves a token with no good match,
which the pooled vector blurs. Features: the sentence cosine; per side the minimum, low percentiles and mean of
those best matches over content tokens; the count of unmatched content tokens at a few levels; whether an
unmatched token is a number, a name or a negation; the lengths. A logistic regression (and, for comparison, a
small gradient-boosted tree set) learns the probability that the pair is the same question.

Same protocol as ``train_pair_verifier`` (it reuses its split, folds, near-copies, bounds and ``choose``): trained
on the tune halves, generated question pairs and near-copies only; operating point (floor, cutoff) chosen on
out-of-fold probabilities; the rules still veto first; figures on the test halves (generated pairs: out-of-fold
by family) and leave-one-source-out. The current verifier and the rules alone are measured in the same run.
Writes ``/tmp/cachewt/token-verifier.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
from pathlib import Path

import numpy as np

from cache import _lexicon as lex
from cache.semantic import DEFAULT_THRESHOLD
from cache.training import train_pair_verifier as pv
from cache.verify import signature

WORK = Path(os.environ.get("INTERLOCK_TOKEN_CACHE", "/tmp/cachewt"))
STATES_FILE = WORK / "token-states.pkl"
#: Best-match cosine under which a token counts as unmatched (several levels, each a feature).
UNMATCHED = (0.5, 0.6, 0.7)
#: Feature sets (``current``: the shipped verifier's; ``token``: alignment; ``token+sig``: alignment and the
#: signature features; ``idf``, ``idf+sig``: the same plus IDF-weighted alignment, BERTScore's weighting) and
#: models (``lr``: logistic regression; ``gbt``, ``gbt2``: gradient-boosted trees).
VARIANTS = ("current/lr", "token/lr", "token+sig/lr", "token/gbt", "token+sig/gbt", "token/gbt2", "token+sig/gbt2",
            "idf/lr", "idf+sig/lr", "idf/gbt", "idf+sig/gbt")  # fmt: skip
#: Token flags.
FUNCTION, NUMBER, ENTITY, NEGATION = 1, 2, 4, 8


def _flags(text: str, enc) -> np.ndarray:
    """Per wordpiece (without [CLS]/[SEP]): function word, number, name, negation, from the word it belongs to."""
    out = np.zeros(len(enc.ids), dtype=np.uint8)
    for t, (start, end) in enumerate(enc.offsets):
        if enc.special_tokens_mask[t]:
            continue
        # The whole word around this piece (wordpieces of one word share its flags).
        s, e = start, end
        while s > 0 and (text[s - 1].isalnum() or text[s - 1] == "'"):
            s -= 1
        while e < len(text) and (text[e].isalnum() or text[e] == "'"):
            e += 1
        word = text[s:e]
        low = word.lower().replace("'", "")
        f = 0
        if not any(c.isalnum() for c in word) or low in lex.FUNCTION_WORDS:
            f |= FUNCTION
        if word[:1].isdigit() or low in lex.NUMBER_WORDS:
            f |= NUMBER
        first = not text[:s].strip() or text[:s].rstrip()[-1:] in ".?!"
        if word[:1].isupper() and word != "I" and (not first or (word.isupper() and len(word) > 1)):
            f |= ENTITY
        if low in lex.NEGATIONS or word.lower().endswith("n't"):
            f |= NEGATION
        out[t] = f
    return out


def token_states(texts: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per text: (sentence vector float32, unit token states float16 [tokens, dim], flags), kept on disk."""
    from embeddings import load_embedder

    WORK.mkdir(parents=True, exist_ok=True)
    known = pickle.loads(STATES_FILE.read_bytes()) if STATES_FILE.exists() else {}
    todo = sorted(set(texts) - set(known))
    if todo:
        emb = load_embedder()
        tok = emb._bulk_tokenizer
        session = emb.new_session(2, spin=False)
        encs = tok.encode_batch(todo)
        order = np.argsort([len(e.ids) for e in encs], kind="stable")
        for n, start in enumerate(range(0, len(order), 32)):
            rows = order[start : start + 32]
            width = max(len(encs[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for r, i in enumerate(rows):
                ids[r, : len(encs[i].ids)] = encs[i].ids
                mask[r, : len(encs[i].ids)] = 1
            hidden = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})
            hidden = hidden[0]
            for r, i in enumerate(rows):
                h = hidden[r, : len(encs[i].ids)]
                pooled = h.mean(0)
                pooled /= np.linalg.norm(pooled)
                special = np.asarray(encs[i].special_tokens_mask, dtype=bool)
                states = h[~special]
                states = states / np.linalg.norm(states, axis=1, keepdims=True)
                flags = _flags(todo[i], encs[i])[~special]
                known[todo[i]] = (pooled.astype(np.float32), states.astype(np.float16), flags)
            if n % 100 == 0:
                print(f"token states: {start}/{len(todo)}", file=sys.stderr)
        STATES_FILE.write_bytes(pickle.dumps(known))
    return known


def _side(m: np.ndarray, flags: np.ndarray) -> list[float]:
    """Features of one side's best matches ``m`` (one per token)."""
    content = (flags & FUNCTION) == 0
    c = m[content] if content.any() else m
    srt = np.sort(c)
    out = [float(srt[0]), float(srt[min(1, len(srt) - 1)]), float(np.percentile(c, 25)), float(c.mean()),
           float(m.mean())]  # fmt: skip
    for t in UNMATCHED:
        out.append(float(np.log1p((c < t).sum())))
    low = content & (m < UNMATCHED[1])
    out += [float(((flags & k) != 0)[low].any()) for k in (NUMBER, ENTITY, NEGATION)]
    # What the worst-matched content token is.
    worst = np.flatnonzero(content)[np.argmin(m[content])] if content.any() else int(np.argmin(m))
    out += [float((flags[worst] & k) != 0) for k in (NUMBER, ENTITY, NEGATION)]
    return out


def token_features(sa, sb) -> list[float]:
    """Symmetric alignment features of two texts' ``token_states`` entries (cached ``a``, incoming ``b``)."""
    (u, ta, fa), (v, tb, fb) = sa, sb
    s = ta.astype(np.float32) @ tb.astype(np.float32).T
    xa, xb = _side(s.max(1), fa), _side(s.max(0), fb)
    lo, hi = np.minimum(xa, xb), np.maximum(xa, xb)
    na, nb = int(((fa & FUNCTION) == 0).sum()), int(((fb & FUNCTION) == 0).sum())
    return [float(u @ v), *lo, *hi, (xa[3] + xb[3]) / 2, np.log1p(min(na, nb)), np.log1p(abs(na - nb)),
            np.log1p(abs(len(fa) - len(fb))), *_order(s, fa, fb)]  # fmt: skip


def _order(s: np.ndarray, fa: np.ndarray, fb: np.ndarray) -> list[float]:
    """Whether the aligned content tokens keep their order ("25 pounds in km" / "25 km in pounds" match every
    token and swap two): the share of inverted pairs among well-matched content tokens, and among the names and
    numbers alone, from both sides."""
    out = []
    for m, f, g in ((s, fa, fb), (s.T, fb, fa)):
        j = m.argmax(1)
        ok = ((f & FUNCTION) == 0) & (m.max(1) >= UNMATCHED[2]) & ((g[j] & FUNCTION) == 0)
        for keep in (ok, ok & ((f & (NUMBER | ENTITY)) != 0)):
            pos = j[keep]
            if len(pos) < 2:
                out.append(0.0)
                continue
            inv = (pos[:, None] > pos[None, :]) & np.triu(np.ones((len(pos), len(pos)), dtype=bool), 1)
            out.append(float(inv.sum()) / (len(pos) * (len(pos) - 1) / 2))
    return [max(out[0], out[2]), max(out[1], out[3])]


def token_ids(texts: list[str]) -> dict[str, np.ndarray]:
    """Wordpiece ids of each text without [CLS]/[SEP] (aligned with ``token_states``' rows)."""
    from embeddings import load_embedder

    encs = load_embedder()._bulk_tokenizer.encode_batch(texts)
    return {
        t: np.asarray(e.ids)[~np.asarray(e.special_tokens_mask, dtype=bool)] for t, e in zip(texts, encs, strict=True)
    }


def idf_table(texts: list[str], ids: dict[str, np.ndarray]) -> dict[int, float]:
    """Inverse document frequency of each wordpiece over the *training* texts (BERTScore weighs matches by it)."""
    df: dict[int, int] = {}
    for t in texts:
        for i in set(ids[t].tolist()):
            df[i] = df.get(i, 0) + 1
    return {i: float(np.log((len(texts) + 1) / (n + 1))) for i, n in df.items()} | {-1: float(np.log(len(texts) + 1))}


def idf_features(sa, sb, ia: np.ndarray, ib: np.ndarray, idf: dict[int, float]) -> list[float]:
    """IDF-weighted recall of each side, the IDF share of its unmatched tokens, the rarest unmatched token."""
    s = sa[1].astype(np.float32) @ sb[1].astype(np.float32).T
    out = []
    for m, ids in ((s.max(1), ia), (s.max(0), ib)):
        w = np.array([idf.get(i, idf[-1]) for i in ids.tolist()])
        low = m < UNMATCHED[1]
        out.append([float(w @ m / w.sum()), float(w[low].sum() / w.sum()), float(w[low].max()) if low.any() else 0.0])
    (ra, ua, ma), (rb, ub, mb) = out
    return [min(ra, rb), max(ra, rb), min(ua, ub), max(ua, ub), max(ma, mb)]


class TokenRows:
    """Like ``train_pair_verifier.Rows``, with token features (``sig``: also the signature features)."""

    def __init__(self, pairs, states, sigs, base: pv.Rows, ids=None, idf=None) -> None:
        tok = np.array([token_features(states[a], states[b]) for a, b, *_ in pairs])
        self.token = tok
        self.idf = (
            np.array([idf_features(states[a], states[b], ids[a], ids[b], idf) for a, b, *_ in pairs]) if idf else None
        )
        self.sig = np.array([pv.features(states[a][0], states[b][0], sigs[a], sigs[b])[1:27] for a, b, *_ in pairs])
        self.base = base
        self.sim, self.vetoed, self.y, self.fold = base.sim, base.vetoed, base.y, base.fold
        self.x = tok


def variant(rows: dict[str, TokenRows], kind: str) -> None:
    for r in rows.values():
        r.x = {"token": r.token, "token+sig": np.hstack([r.token, r.sig]), "current": r.base.x}.get(kind)
        if kind.startswith("idf"):  # "idf": tokens and IDF weights; "idf+sig": and the signature features
            r.x = np.hstack([r.token, r.idf, *([r.sig] if kind == "idf+sig" else [])])


def fit_lr(parts, c: float = 0.1):
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([r.x[m & (r.sim >= pv.TRAIN_FLOOR)] for r, m in parts])
    y = np.concatenate([r.y[m & (r.sim >= pv.TRAIN_FLOOR)] for r, m in parts])
    mean, scale = x.mean(0), x.std(0) + 1e-6
    lr = LogisticRegression(C=c, max_iter=5000).fit((x - mean) / scale, y)
    return lambda z: lr.predict_proba((z - mean) / scale)[:, 1]


def fit_gbt(parts, depth: int = 3, trees: int = 150, rate: float = 0.1, leaf: int = 20):
    from sklearn.ensemble import HistGradientBoostingClassifier

    x = np.concatenate([r.x[m & (r.sim >= pv.TRAIN_FLOOR)] for r, m in parts])
    y = np.concatenate([r.y[m & (r.sim >= pv.TRAIN_FLOOR)] for r, m in parts])
    gbt = HistGradientBoostingClassifier(max_depth=depth, max_iter=trees, learning_rate=rate, min_samples_leaf=leaf,
                                         l2_regularization=1.0, random_state=pv.SEED).fit(x, y)  # fmt: skip
    return lambda z: gbt.predict_proba(z)[:, 1]


def fit_gbt_small(parts):
    """Shallower and slower-learning trees: fewer ways to fit a source's quirks."""
    return fit_gbt(parts, depth=2, trees=200, rate=0.05, leaf=50)


def train(rows, copies, fit):
    """``train_pair_verifier.train`` with another model: out-of-fold probabilities choose the operating point."""
    every = [*rows.values(), *copies.values()]
    oof = {n: np.zeros(len(r.y)) for n, r in rows.items()}
    for k in range(pv.FOLDS):
        model = fit([(r, r.fold != k) for r in every])
        for n, r in rows.items():
            if (r.fold == k).any():
                oof[n][r.fold == k] = model(r.x[r.fold == k])
    floor, cutoff = pv.choose(rows, oof)
    return fit([(r, np.ones(len(r.y), dtype=bool)) for r in every]), floor, cutoff, oof


def headline(test, gen, served_test, served_gen) -> dict:
    f = {n: pv.figures(r, served_test[n]) for n, r in test.items()}
    f["generated"] = pv.figures(gen, served_gen)
    return {
        "gptcache_served": f["gptcache"]["hit_rate"], "mrpc_served": f["mrpc"]["hit_rate"],
        "mrpc_wrong": f["mrpc"]["wrong_share"], "mrpc_n_served": f["mrpc"]["served"],
        "semantoneg_served": f["semantoneg"]["false_serves"], "cannot_served": f["cannot"]["false_serves"],
        "generated_served": f["generated"]["hit_rate"], "generated_wrong": f["generated"]["wrong_share"],
    }  # fmt: skip


def evaluate(rows, copies, test, fit, name: str, report: dict, loo: bool) -> None:
    try:
        model, floor, cutoff, oof = train(rows, copies, fit)
    except AssertionError:
        report[name] = {"no_operating_point": True}
        print(name, "no operating point meets the bounds", flush=True)
        return
    gen = rows["generated"]
    out = {"floor": floor, "cutoff": cutoff}
    out.update(headline(test, gen, {n: pv.serve(r, model(r.x), floor, cutoff) for n, r in test.items()},
                        pv.serve(gen, oof["generated"], floor, cutoff)))  # fmt: skip
    out["tradeoff"] = {}
    for c in (0.05, 0.2, 0.35, 0.5, 0.65, 0.8):
        for f in sorted({0.85, 0.88, floor, 0.93}):
            t = headline(test, gen, {n: pv.serve(r, model(r.x), f, c) for n, r in test.items()},
                         pv.serve(gen, oof["generated"], f, c))  # fmt: skip
            out["tradeoff"][f"{f:.2f}/{c}"] = [t["gptcache_served"], t["mrpc_wrong"], t["cannot_served"],
                                               t["generated_wrong"]]  # fmt: skip
    print(name, json.dumps({k: v for k, v in out.items() if k != "tradeoff"}), flush=True)
    if loo:
        out["leave_one_out"] = {}
        for held in ("gptcache", "mrpc", "semantoneg", "cannot"):
            try:
                m, f, c, _ = train({n: r for n, r in rows.items() if n != held},
                                   {n: r for n, r in copies.items() if n != held}, fit)  # fmt: skip
            except AssertionError:  # ``choose`` found no point within the bounds: nothing would be served
                out["leave_one_out"][held] = {"no_operating_point": True}
                print("  without", held, "no operating point meets the bounds", flush=True)
                continue
            r = test[held]
            out["leave_one_out"][held] = {"floor": f, "cutoff": c, **pv.figures(r, pv.serve(r, m(r.x), f, c))}
            print("  without", held, json.dumps(out["leave_one_out"][held]), flush=True)
    report[name] = out


def main() -> None:
    parser = argparse.ArgumentParser()
    shared = os.environ.get("INTERLOCK_SHARED_DATA") or Path(__file__).resolve().parents[3] / "shared/data"
    parser.add_argument("--data", default=str(Path(shared) / "paraphrase"))
    parser.add_argument("--variants", default=",".join(VARIANTS), help="features/model, comma-separated")
    parser.add_argument("--no-loo", action="store_true", help="skip leave-one-source-out (faster)")
    args = parser.parse_args()
    if not (Path(args.data) / "gptcache-qqp").is_dir():
        print(f"skipped: no paraphrase data under {args.data} (set INTERLOCK_SHARED_DATA)")
        return
    folded, copied, test_pairs = pv.load(Path(args.data))
    texts = {t for part in (folded, copied, test_pairs) for p in part.values() for a, b, *_ in p for t in (a, b)}
    states = token_states(sorted(texts))
    vec = {t: s[0] for t, s in states.items()}
    sigs = {t: signature(t) for t in texts}

    ids = token_ids(sorted(texts))
    # Document frequencies from the training texts only (tune halves, generated pairs, near-copies).
    train_texts = sorted({t for part in (folded, copied) for p in part.values() for a, b, *_ in p for t in (a, b)})
    idf = idf_table(train_texts, ids)

    def build(pairs):
        return {n: TokenRows(p, states, sigs, pv.Rows(p, vec, sigs), ids, idf) for n, p in pairs.items()}

    rows, copies, test = build(folded), build(copied), build(test_pairs)
    gen = rows["generated"]
    out = WORK / "token-verifier.json"
    report: dict = json.loads(out.read_text()) if out.exists() else {}  # variants of earlier runs are kept
    report["rules_alone"] = {}
    for floor in (0.85, 0.88, 0.9, DEFAULT_THRESHOLD):
        report["rules_alone"][floor] = headline(
            test, gen, {n: (r.sim >= floor) & ~r.vetoed for n, r in test.items()}, (gen.sim >= floor) & ~gen.vetoed
        )
        print("rules alone at", floor, json.dumps(report["rules_alone"][floor]), flush=True)
    fits = {"lr": fit_lr, "gbt": fit_gbt, "gbt2": fit_gbt_small}
    for v in args.variants.split(","):
        kind, model = v.split("/")
        for part in (rows, copies, test):
            variant(part, kind)
        evaluate(rows, copies, test, fits[model], v, report, not args.no_loo)
        out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
