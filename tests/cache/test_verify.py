"""Verification of near hits: differences that change the question veto; wording alone does not."""

from __future__ import annotations

import pytest

from cache import signature, veto


@pytest.mark.parametrize(
    ("a", "b", "reason"),
    [
        ("What is the capital of France?", "what's france's capital", None),
        ("How do I reverse a list in Python?", "How can I reverse a Python list?", None),
        ("Flights to Paris in July", "Flights to Paris in June", "dates"),
        ("How do I reverse the 2 lists?", "How do I reverse the lists?", None),
        ("Which is bigger, a cat or a dog?", "Which is larger, a dog or a cat?", None),
        ("The plan was effective.", "The plan was ineffective.", "negation"),
        ("Who founded Apple?", "Who was the founder of Apple Inc?", None),
        ("Is 5 bigger than 3?", "Is 5 bigger than 4?", "numbers"),
        ("Is the bug fixed?", "Is the bug not fixed?", "negation"),
        ("I don't like it", "I do like it", "negation"),
        ("Who founded Apple?", "Who founded Microsoft?", "entities"),
        ("Which is bigger, a cat or a dog?", "Which is smaller, a cat or a dog?", "comparison"),
        ("How do I buy shares?", "How do I sell shares?", "antonym"),
        ("I am guilty.", "I am innocent.", "antonym"),
    ],
)
def test_when_two_questions_are_compared_then_only_meaningful_differences_veto(a, b, reason):
    assert veto(signature(a), signature(b)) == reason
    assert veto(signature(b), signature(a)) == reason


def test_when_a_signature_is_stored_then_it_round_trips_without_the_text():
    s = signature("Who founded Apple in 1976?")
    data = s.to_json()
    assert "Apple" not in repr(data) and type(s).from_json(data) == s
