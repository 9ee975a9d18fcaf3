"""Verification of semantic near hits through the gateway: the rules and the learned pair verifier decide which
near hit is served (the real MiniLM embedder, the shipped ``cache/_pair_verifier.npz``)."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.e2e.cache.conftest import ask, until

CACHE = {"scope": "key", "semantic": {"enabled": True}}


def vetoed(url: str, reason: str) -> float:
    text = httpx.get(url + "/metrics").text
    m = re.search(rf'interlock_cache_vetoed_near_hits_total\{{model="m",reason="{reason}"\}} (\S+)', text)
    return float(m.group(1)) if m else 0.0


def stored(url: str, question: str) -> None:
    ask(url, "x", question)
    until(lambda: ask(url, "x", question), "hit-exact")  # answers are stored in the background


def test_when_a_near_question_is_a_true_paraphrase_then_it_is_served(gateway):
    url = gateway(CACHE)
    first = ask(url, "x", "How do I reverse a list in Python?")
    r = until(lambda: ask(url, "x", "How can I reverse a Python list?"), "hit-semantic")
    assert r.headers["x-interlock-cache-source"] == first.headers["x-request-id"]


@pytest.mark.parametrize(
    ("cached", "asked", "reason"),
    [
        # One word that turns the fact around, which no rule lists: the learned verifier refuses it.
        ("Why does smoking cause lung cancer?", "Why does smoking prevent lung cancer?", "model"),
        ("How does aspirin thin the blood?", "How does aspirin thicken the blood?", "model"),
        ("Explain how photosynthesis works in 3 steps.", "Explain how photosynthesis works in 5 steps.", "numbers"),
        ("Does sorted() return a copy of the list?", "Does sorted() not return a copy of the list?", "negation"),
    ],
)
def test_when_a_near_question_changes_a_number_a_negation_or_one_factual_word_then_it_is_not_served(
    gateway, cached, asked, reason
):
    url = gateway(CACHE)
    stored(url, cached)
    assert ask(url, "x", asked).headers["x-interlock-cache"] == "miss"
    assert vetoed(url, reason) == 1  # a near hit was there, and this is why it was refused


def test_when_the_learned_verifier_is_off_then_the_rules_alone_serve_a_one_word_factual_swap(gateway):
    url = gateway({"scope": "key", "semantic": {"enabled": True, "learned_verifier": False}})
    stored(url, "Why does smoking cause lung cancer?")
    assert ask(url, "x", "Why does smoking prevent lung cancer?").headers["x-interlock-cache"] == "hit-semantic"


def test_when_a_model_sets_its_own_threshold_then_near_hits_below_it_are_not_candidates(gateway):
    url = gateway({"scope": "key", "semantic": {"enabled": True, "threshold": 0.99}})
    stored(url, "How do I reverse a list in Python?")  # the paraphrase below is 0.98 similar
    assert ask(url, "x", "How can I reverse a Python list?").headers["x-interlock-cache"] == "miss"
    assert vetoed(url, "model") == 0
