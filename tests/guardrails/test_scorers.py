"""Output scorers, table-driven: a score in [0, 1] (1 = bad) and a verdict for each answer."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from guardrails import GuardContext
from guardrails.scorers import SCORERS

SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "p",
        "schema": {"type": "object", "required": ["name"], "properties": {"age": {"type": "integer"}}},
    },
}


def _score(name: str, answer: str, **extra):
    return asyncio.run(SCORERS[name](answer, GuardContext(extra=extra)))


@pytest.mark.parametrize(
    ("name", "answer", "extra", "failed"),
    [
        ("empty", "", {}, True),
        ("empty", "  \n", {}, True),
        ("empty", "Paris.", {}, False),
        ("json", '{"a": 1', {"response_format": {"type": "json_object"}}, True),
        ("json", "[1, 2]", {"response_format": {"type": "json_object"}}, True),
        ("json", '{"a": 1}', {"response_format": {"type": "json_object"}}, False),
        ("json", '{"age": 3}', {"response_format": SCHEMA}, True),
        ("json", '{"name": "x", "age": "old"}', {"response_format": SCHEMA}, True),
        ("json", '{"name": "x", "age": 3}', {"response_format": SCHEMA}, False),
        ("json", "not json at all", {}, False),
        ("refusal", "I'm sorry, but I can't help with that.", {}, True),
        ("refusal", "As an AI language model, I cannot browse the internet.", {}, True),
        ("refusal", "I cannot stress enough how good this is: here is the recipe.", {}, False),
        ("refusal", "Unfortunately, I am unable to provide that information.", {}, True),
        ("refusal", "Sure! Here is the recipe you asked for.", {}, False),
    ],
)
def test_when_an_answer_is_scored_then_the_verdict_matches(name, answer, extra, failed):
    result = _score(name, answer, **extra)
    assert result.failed is failed and 0.0 <= result.score <= 1.0


def test_when_question_and_answer_are_unrelated_then_relevance_fails():
    vectors = {"What is the capital of France?": np.array([1.0, 0.0]), "Bananas are yellow.": np.array([0.0, 1.0])}

    async def embed(text: str):
        return vectors[text]

    ctx = GuardContext(embed=embed, extra={"question": "What is the capital of France?"})
    assert asyncio.run(SCORERS["relevance"]("Bananas are yellow.", ctx)).failed
    vectors["Paris is."] = np.array([0.9, 0.1])
    assert not asyncio.run(SCORERS["relevance"]("Paris is.", ctx)).failed
