"""The token-alignment exploration (``cache/training/explore_token_verifier.py``): its features see what they
claim to see, on hand-made token states (no model), and it skips clearly without the shared data."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from cache.training import explore_token_verifier as tv


def states(*rows: list[float], flags: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = np.asarray(rows, dtype=np.float32)
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    pooled = t.mean(0) / np.linalg.norm(t.mean(0))
    return pooled, t.astype(np.float16), np.asarray(flags, dtype=np.uint8)


# Three orthogonal "tokens": x, y, z; the fourth row of ``changed`` matches nothing on the other side.
X, Y, Z, W = [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]
BASE = states(X, Y, Z, flags=[0, 0, tv.NUMBER])


# Layout of ``token_features``: the cosine, then per-side features (``_side``, 14 each) taken as the lower of the two
# sides, then as the higher, then lengths and order. In ``_side``: 0 the worst match, 5-7 unmatched content tokens
# at each level, 8 an unmatched number, 11 the worst-matched token is a number.
LO = slice(1, 15)


def test_when_both_sides_are_the_same_tokens_then_every_token_is_matched():
    f = tv.token_features(BASE, BASE)
    assert f[0] == pytest.approx(1.0) and f[LO][0] == 1.0
    assert f[LO][5:8] == [0.0, 0.0, 0.0] and f[LO][8] == 0.0


def test_when_a_number_is_replaced_then_it_is_unmatched_and_the_worst_token_is_a_number():
    changed = states(X, Y, W, flags=[0, 0, tv.NUMBER])
    lo = tv.token_features(BASE, changed)[LO]
    assert lo[0] == 0.0 and lo[5:8] == [pytest.approx(np.log1p(1))] * 3
    assert lo[8] == 1.0 and lo[11] == 1.0


def test_when_two_tokens_swap_places_then_the_order_feature_sees_it():
    swapped = states(X, Z, Y, flags=[0, tv.NUMBER, 0])
    same = tv.token_features(BASE, BASE)
    f = tv.token_features(BASE, swapped)
    assert same[-2] == 0.0 and f[-2] > 0.0  # inverted share of aligned content tokens


def test_when_the_unmatched_token_is_rare_then_the_idf_features_weigh_it():
    changed = states(X, Y, W, flags=[0, 0, tv.NUMBER])
    ids = {"a": np.array([1, 2, 3]), "b": np.array([1, 2, 4]), "c": np.array([5])}
    idf = tv.idf_table(["a", "b", "c"], ids) | {3: 5.0, 4: 5.0}  # 1 and 2 in two texts of three; 3 and 4 rare
    recall_lo, recall_hi, share_lo, share_hi, rarest = tv.idf_features(BASE, changed, ids["a"], ids["b"], idf)
    assert rarest == 5.0 and share_lo == share_hi == pytest.approx(5.0 / (5.0 + 2 * idf[1]))
    assert recall_lo == recall_hi == pytest.approx(2 * idf[1] / (5.0 + 2 * idf[1]))


def test_when_the_shared_data_is_absent_then_it_skips_with_a_message(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["explore", "--data", str(tmp_path / "nowhere")])
    tv.main()
    assert "skipped: no paraphrase data" in capsys.readouterr().out
