"""The shipped pair verifier (``cache/_pair_verifier.npz``): it loads, its weights fit the features serving
computes, and the fast path serving uses scores exactly as the trained form does."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cache import signature
from cache.pair_verifier import MODEL_FILE, MODEL_REASON, REASONS, PairVerifier, features
from cache.verify import differences


def unit(rng: np.random.Generator, dim: int) -> np.ndarray:
    v = rng.standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def test_when_the_shipped_model_loads_then_its_shape_fits_the_features_and_the_embedder():
    pv = PairVerifier()
    with np.load(MODEL_FILE, allow_pickle=False) as data:
        n = len(data["weights"])
        assert data["mean"].shape == data["scale"].shape == (n,) and data["bias"].shape == ()
    u, v = unit(np.random.default_rng(1), pv.dim), unit(np.random.default_rng(2), pv.dim)
    assert pv.dim == 384 and n == len(features(u, v, signature("a b"), signature("a c")))
    assert 0.5 <= pv.floor < 1 and 0 < pv.cutoff < 1 and pv.hard <= set(REASONS)
    assert MODEL_FILE.stat().st_size < 64 * 1024  # a small file, like the other models here


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("How do I reverse a list in Python?", "How can I reverse a Python list?"),
        ("Who founded Apple?", "Who sold it?"),
    ],
)
def test_when_a_pair_is_scored_then_serving_agrees_with_the_trained_form(a, b):
    pv = PairVerifier()
    rng = np.random.default_rng(3)
    u = unit(rng, pv.dim)
    v = u + 0.3 * unit(rng, pv.dim)
    v /= np.linalg.norm(v)
    sa, sb = signature(a), signature(b)
    with np.load(MODEL_FILE, allow_pickle=False) as data:
        z = float((features(u, v, sa, sb) - data["mean"]) / data["scale"] @ data["weights"] + data["bias"])
    assert pv.probability(u, v, sa, sb, set(differences(sa, sb))) == pytest.approx(1 / (1 + math.exp(-z)), abs=1e-5)


@pytest.fixture(scope="module")
def embed():
    from embeddings import load_embedder

    embedder = load_embedder()
    return lambda a, b: embedder.embed([a, b])


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("How do I reverse a list in Python?", "How can I reverse a Python list?", None),
        ("Why does smoking cause lung cancer?", "Why does smoking prevent lung cancer?", MODEL_REASON),
        ("How do I reverse 2 lists in Python?", "How do I reverse 3 lists in Python?", "numbers"),  # rules first
    ],
)
def test_when_a_near_hit_is_checked_then_rules_veto_first_and_the_model_refuses_a_reversed_fact(embed, a, b, expected):
    u, v = embed(a, b)
    assert PairVerifier().check(u, v, signature(a), signature(b)) == expected


def test_when_vectors_come_from_another_embedder_then_the_verifier_does_not_apply():
    pv = PairVerifier()
    assert pv.fits(np.zeros(pv.dim, dtype=np.float32)) and not pv.fits(np.zeros(2, dtype=np.float32))
