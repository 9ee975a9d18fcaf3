"""The trained head: multinomial logistic regression on sentence embeddings, calibrated on held-out folds.

Training (``fit_head``) fits the regression once per fold to get honest out-of-fold confidences, then fits:

- a temperature ``T`` (softmax(logits / T)) minimising the out-of-fold negative log-likelihood, so a
  confidence of 0.8 is right about 80% of the time;
- a per-intent confidence threshold: the 10th percentile of that intent's correct out-of-fold confidences,
  shrunk toward a global threshold (which best separates correct from wrong out-of-fold answers) when the
  intent has few examples;
- a per-intent similarity floor: how close a query must be to the intent's nearest example. Logistic
  regression extrapolates (a query about the weather can still get 0.9 for some banking intent); the nearest
  example cannot be fooled that way.

Decisions (``Head.scores``) are numpy only: one small matrix product, a softmax and one dot product against the
winning intent's stored examples; no scikit-learn at serving time. ``to_bytes``/``from_bytes`` give the weights
that go into the database, so every replica loads the same router without retraining.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from router.intent.text import augment, correct, normalise, vocabulary

Embed = Callable[[list[str]], np.ndarray]

#: Small sets get typo variants until the training set reaches this size (see ``text.augment``).
AUGMENT_UP_TO = 3000
#: Examples kept per intent for the nearest-example check (float16): bounds a router's memory.
SUPPORT_PER_INTENT = 128
_C = 8.0  # inverse regularisation: embeddings are unit vectors, so logits need room to separate
_PRIOR = 10.0  # examples' worth of weight the global similarity floor carries for each intent
_PRIOR_ANSWERS = 20.0  # held-out answers' worth of weight the router's reliability carries for each intent
_T_PRIOR = 50.0  # held-out answers' worth of weight on T = 1 (no rescaling) when few examples are held out
#: Answer when the calibrated confidence says the answer is more likely right than wrong: a misroute and a
#: decline cost the user about the same (a wrong path to back out of, or a stock reply to rephrase after).
BREAK_EVEN = 0.5
#: Share of held-out in-scope examples whose nearest same-intent example is farther than the floor (a conformal
#: bound: about this share of in-scope queries like the examples is declined as too far from all of them; the
#: final head has one more example per intent than a fold, so fewer in practice).
FLOOR_ALPHA = 0.05


@dataclass(slots=True)
class Head:
    labels: list[str]
    """Class names; an out-of-scope class (when the definition has examples for it) is the empty string."""
    weights: np.ndarray  # (C, D) float32
    bias: np.ndarray  # (C,)
    temperature: float
    thresholds: np.ndarray  # (C,) calibrated confidence below which the intent is not trusted
    floors: np.ndarray  # (C,) nearest-example cosine below which the query is out of scope
    support: np.ndarray  # (N, D) float16, grouped by class
    starts: np.ndarray  # (C + 1,) class c's examples are support[starts[c]:starts[c + 1]]
    embedder: str = ""
    figures: dict = field(default_factory=dict)
    #: The examples' words, most frequent first: a query's typos are corrected toward them (``spelling``).
    vocabulary: list[str] = field(default_factory=list)
    _rank: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._rank = {w: i for i, w in enumerate(self.vocabulary)}

    def spelling(self, text: str) -> str | None:
        """``text`` with its typos corrected toward the examples' words, or ``None`` when it has none."""
        return correct(text, self._rank) if self._rank else None

    def scores(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        """Calibrated probabilities over ``labels`` and the best class's nearest-example cosine."""
        z = (self.weights @ x + self.bias) / self.temperature
        z = np.exp(z - z.max())
        p = z / z.sum()
        c = int(p.argmax())
        block = self.support[self.starts[c] : self.starts[c + 1]]
        sim = float((block @ x.astype(np.float16)).max()) if len(block) else 1.0
        return p, sim

    def to_bytes(self) -> bytes:
        meta = {
            "labels": self.labels,
            "temperature": self.temperature,
            "embedder": self.embedder,
            "figures": self.figures,
            "vocabulary": self.vocabulary,
        }
        buf = io.BytesIO()
        np.savez(
            buf,
            meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
            weights=self.weights,
            bias=self.bias,
            thresholds=self.thresholds,
            floors=self.floors,
            support=self.support,
            starts=self.starts,
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Head:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes())
            return cls(
                labels=meta["labels"],
                weights=z["weights"],
                bias=z["bias"],
                temperature=float(meta["temperature"]),
                thresholds=z["thresholds"],
                floors=z["floors"],
                support=z["support"],
                starts=z["starts"],
                embedder=meta.get("embedder", ""),
                figures=meta.get("figures", {}),
                vocabulary=meta.get("vocabulary", []),
            )

    @property
    def nbytes(self) -> int:
        arrays = (self.weights, self.bias, self.thresholds, self.floors, self.support, self.starts)
        return sum(a.nbytes for a in arrays)


def fit_head(classes: list[tuple[str, list[str]]], embed: Embed, *, embedder: str = "", seed: int = 0) -> Head:
    """Train on ``[(label, examples), ...]``; the out-of-scope class, when present, has the label ``""``."""
    from threadpoolctl import threadpool_limits

    # One BLAS thread for the fits: training runs beside a serving event loop (the other core is its), and on a
    # busy 2-core machine two BLAS threads that wait for each other made the fits 10-20x slower, not faster.
    with threadpool_limits(1):
        return _fit_head(classes, embed, embedder=embedder, seed=seed)


def _fit_head(classes: list[tuple[str, list[str]]], embed: Embed, *, embedder: str, seed: int) -> Head:
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    texts, labels = [], []
    for c, (_, examples) in enumerate(classes):
        for e in examples:
            texts.append(e)
            labels.append(c)
    n_orig = len(texts)
    groups = list(range(n_orig))
    # Examples are embedded as written (queries are too: the request's embedding is shared with the guards and
    # the cache); the variants are normalised and carry a typo, so the head learns that neither matters.
    extra = augment([normalise(t) for t in texts], labels, min(n_orig, AUGMENT_UP_TO - n_orig), seed)
    # Each typo variant stays in its source example's fold: a held-out example's twin must not be trained on.
    for t, i in extra:
        texts.append(t)
        labels.append(labels[i])
        groups.append(i)
    t_prep, c_prep = time.perf_counter(), time.thread_time()
    X = embed(texts)  # all at once: the embedder batches (EmbeddingService.embed_sync sorts by length)
    t_embed, c_embed = time.perf_counter(), time.thread_time()
    y = np.asarray(labels)
    g = np.asarray(groups)
    n_classes = len(classes)

    def fit(mask: np.ndarray):
        model = LogisticRegression(C=_C, max_iter=300, tol=1e-3)
        model.fit(X[mask], y[mask])
        return model

    folds = _folds(y[:n_orig], seed)
    oof_logits = np.full((n_orig, n_classes), np.nan, dtype=np.float32)
    oof_sim = np.full(n_orig, np.nan, dtype=np.float32)
    for k in range(folds.max() + 1 if folds.size else 0):
        held = np.flatnonzero(folds == k)
        if held.size == 0:
            continue
        train = ~np.isin(g, held)
        train[held] = False
        if len(np.unique(y[train])) < 2:
            continue
        model = fit(train)
        logits = np.full((held.size, n_classes), -1e4, dtype=np.float32)
        logits[:, model.classes_] = model.decision_function(X[held]).reshape(held.size, -1)
        oof_logits[held] = logits
        for c in np.unique(y[held]):
            h = held[y[held] == c]
            pool = X[train & (y == c)]
            if len(pool):
                oof_sim[h] = (X[h] @ pool.T).max(axis=1)
    t_cv = time.perf_counter()
    final = fit(np.ones(len(y), dtype=bool)) if n_classes > 1 else None
    weights = np.zeros((n_classes, X.shape[1]), dtype=np.float32)
    bias = np.zeros(n_classes, dtype=np.float32)
    if final is not None:
        coef, intercept = final.coef_, final.intercept_
        if n_classes == 2:  # scikit-learn's binary form: one row for class 1
            coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
        weights[final.classes_], bias[final.classes_] = coef, intercept
    temperature, thresholds, floors, figures = _calibrate(oof_logits, oof_sim, y[:n_orig], n_classes)
    support, starts = _support(X, y, n_classes, seed)
    t_end = time.perf_counter()
    # CPU time of this (training) thread beside the wall clock: on a shared machine the wall clock is mostly
    # waiting for a core; the embedder (one ONNX thread) and the fits (one BLAS thread) both run in this thread.
    figures.update(
        examples=n_orig,
        augmented=len(extra),
        embed_s=round(t_embed - t_prep, 3),
        embed_cpu_s=round(c_embed - c_prep, 3),
        folds_s=round(t_cv - t_embed, 3),
        fit_s=round(t_end - t_embed, 3),
        fit_cpu_s=round(time.thread_time() - c_embed, 3),
        fit_threads=1,
        train_s=round(t_end - t0, 3),
    )
    return Head(
        labels=[name for name, _ in classes],
        weights=weights,
        bias=bias,
        temperature=temperature,
        thresholds=thresholds,
        floors=floors,
        support=support,
        starts=starts,
        embedder=embedder,
        figures=figures,
        vocabulary=vocabulary([e for _, examples in classes for e in examples]),
    )


def _folds(y: np.ndarray, seed: int) -> np.ndarray:
    """Stratified fold of each example (-1: never held out, for classes with a single example)."""
    n_splits = 3 if len(y) > 3000 else 5
    rng = np.random.default_rng(seed)
    folds = np.full(len(y), -1)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        if len(idx) < 2:
            continue
        rng.shuffle(idx)
        folds[idx] = np.arange(len(idx)) % min(n_splits, len(idx))
    return folds


def _calibrate(logits: np.ndarray, sims: np.ndarray, y: np.ndarray, n: int):
    seen = ~np.isnan(logits).any(axis=1)
    if seen.sum() < 2 or n < 2:
        t = 1.0
        return t, np.full(n, BREAK_EVEN, np.float32), np.full(n, 0.2, np.float32), {"calibrated": False}
    L, yy, ss = logits[seen], y[seen], sims[seen]
    best_t, best_nll = 1.0, np.inf
    for t in np.geomspace(0.02, 5.0, 48):
        z = L / t
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        nll = -logp[np.arange(len(yy)), yy].mean()
        if nll < best_nll:
            best_t, best_nll = float(t), float(nll)
    # A handful of held-out answers, all right, would push T to zero (certainty); shrink toward T = 1 instead.
    best_t = float(np.exp((len(yy) * np.log(best_t)) / (len(yy) + _T_PRIOR)))
    z = np.exp((L - L.max(axis=1, keepdims=True)) / best_t)
    p = z / z.sum(axis=1, keepdims=True)
    pred, conf = p.argmax(axis=1), p.max(axis=1)
    correct = pred == yy
    thresholds = _thresholds(pred, conf, correct, n)
    floors = np.full(n, 0.0, dtype=np.float32)
    sim_ok = ss[~np.isnan(ss)]
    glob_floor = float(np.quantile(sim_ok, FLOOR_ALPHA)) if sim_ok.size else 0.2
    for c in range(n):
        s = ss[(yy == c) & ~np.isnan(ss)]
        own_floor = float(np.quantile(s, FLOOR_ALPHA)) if s.size else glob_floor
        floors[c] = (s.size * own_floor + _PRIOR * glob_floor) / (s.size + _PRIOR)
    figures = {
        "calibrated": True,
        "temperature": round(best_t, 4),
        "heldout_accuracy": round(float(correct.mean()), 4),
        "heldout_answered": round(float((conf >= thresholds[pred]).mean()), 4),
        "heldout_right_when_answered": round(float(correct[conf >= thresholds[pred]].mean()), 4)
        if (conf >= thresholds[pred]).any()
        else None,
        "global_threshold": BREAK_EVEN,
        "similarity_floor": round(glob_floor, 4),
    }
    return best_t, thresholds, floors, figures


def _thresholds(pred: np.ndarray, conf: np.ndarray, correct: np.ndarray, n: int) -> np.ndarray:
    """Per intent, the calibrated confidence at which its answers are right as often as wrong.

    After the temperature, a confidence p is right about p of the time over all intents, so the break-even is
    ``BREAK_EVEN`` for every intent alike. An intent whose held-out answers were right more (or less) often than
    their confidences promised gets a lower (or higher) threshold: its reliability (right answers / summed
    confidence) moves it, shrunk toward the router's own ratio by ``_PRIOR_ANSWERS`` held-out answers' worth of
    weight, so that intents with a handful of held-out answers (5 examples each, say) keep the global break-even
    instead of a threshold drawn from three numbers.
    """
    overall = float(correct.sum()) / max(float(conf.sum()), 1e-9)
    thresholds = np.empty(n, dtype=np.float32)
    for c in range(n):
        mine = pred == c
        ratio = (float(correct[mine].sum()) + _PRIOR_ANSWERS * overall) / (float(conf[mine].sum()) + _PRIOR_ANSWERS)
        thresholds[c] = BREAK_EVEN / max(ratio, 1e-3)
    return np.clip(thresholds, 0.25, 0.95)


def _support(X: np.ndarray, y: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    blocks, starts = [], [0]
    for c in range(n):
        idx = np.flatnonzero(y == c)
        if len(idx) > SUPPORT_PER_INTENT:
            idx = rng.choice(idx, SUPPORT_PER_INTENT, replace=False)
        blocks.append(X[idx].astype(np.float16))
        starts.append(starts[-1] + len(idx))
    dim = X.shape[1]
    support = np.concatenate(blocks) if blocks else np.zeros((0, dim), np.float16)
    return support, np.asarray(starts, dtype=np.int64)
