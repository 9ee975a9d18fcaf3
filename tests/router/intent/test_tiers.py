"""Cost tiers: the difficulty estimate orders queries the way a person would."""

from __future__ import annotations

import pytest

from router.intent import Target, difficulty, pick_model


@pytest.mark.parametrize(
    ("easy", "hard"),
    [
        ("hi", "Prove that the square root of 2 is irrational, step by step."),
        (
            "what time is it in Paris?",
            "Write a Python function that merges k sorted lists:\n```python\ndef merge(lists):",
        ),
        (
            "translate 'thank you' into Spanish",
            "Compare Raft and Paxos and explain the trade-offs for a 5-node cluster",
        ),
    ],
)
def test_when_a_query_is_harder_then_its_difficulty_is_higher(easy, hard):
    assert difficulty(easy) < difficulty(hard)


def test_when_tiers_are_configured_then_the_first_covering_tier_wins_else_the_strong_model():
    t = Target(model="big", tiers=[{"model": "tiny", "max_difficulty": 0.2}, {"model": "mid", "max_difficulty": 0.5}])
    assert [pick_model(t, s) for s in (0.1, 0.2, 0.4, 0.9)] == ["tiny", "tiny", "mid", "big"]
