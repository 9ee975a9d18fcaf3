"""Decisions of a trained router: intents, out of scope, too close to call, typos, and what a replica loads."""

from __future__ import annotations

import random

import pytest

from router.intent import Head, IntentRouter, parse_definition, train
from router.intent.text import typo

CLEAR = {
    "where is my parcel, it has not come": "track_order",
    "I need to send back a dress that's too small": "return_item",
    "forgot my password, can't sign in": "reset_password",
    "are you open on saturday afternoon": "opening_hours",
    "I demand to talk to your manager about this": "complaint",
}


@pytest.mark.parametrize(("text", "intent"), CLEAR.items())
def test_when_a_query_is_clearly_one_intent_then_it_is_routed_there_with_its_target(decide, text, intent):
    d = decide(text)
    assert (d.reason, d.intent) == ("intent", intent), d
    assert d.confidence > 0.5


@pytest.mark.parametrize(
    "text",
    ["what's the boiling point of nitrogen", "recommend a good science fiction novel", "translate hello into german"],
)
def test_when_a_query_is_about_something_else_then_it_is_out_of_scope(decide, text):
    d = decide(text)
    assert (d.reason, d.intent) == ("out_of_scope", None), d
    assert d.target.reply == "I can only help with orders, returns and your account."


def test_when_a_router_has_no_out_of_scope_examples_then_calibration_alone_declines_far_queries(embedder):
    from tests.router.intent.conftest import SUPPORT

    bare = parse_definition({**SUPPORT, "out_of_scope": {"target": {"reply": "no"}}})
    router = train("bare", 1, bare, embedder.embed)
    for text in ("what's the boiling point of nitrogen", "recommend a good science fiction novel"):
        d = router.decide(embedder.embed([text])[0], text)
        assert d.reason == "out_of_scope", d


@pytest.mark.parametrize(("text", "intent"), CLEAR.items())
def test_when_users_change_case_punctuation_or_make_typos_then_a_confident_decision_does_not_flip(decide, text, intent):
    rng = random.Random(7)
    variants = [text.upper(), text + "!!!", "  " + text.replace(" ", "   ") + " ??"]
    variants += [typo(text, rng) for _ in range(6)]
    for v in variants:
        d = decide(v)
        assert d.intent == intent, (v, d)


def test_when_two_intents_are_too_close_then_the_answer_is_the_clarifying_question(embedder):
    definition = parse_definition(
        {
            "intents": [
                {
                    "name": "cancel_order",
                    "examples": ["cancel my order", "I want to cancel the order I placed", "stop my order"],
                    "target": {"reply": "order cancelled"},
                },
                {
                    "name": "cancel_subscription",
                    "examples": ["cancel my subscription", "end my monthly plan", "stop my membership"],
                    "target": {"reply": "subscription cancelled"},
                },
            ],
            "ambiguity_margin": 0.3,
        }
    )
    router = train("cancel", 1, definition, embedder.embed)
    d = router.decide(embedder.embed(["cancel"])[0], "cancel")
    assert d.reason == "ambiguous", d
    assert d.target.clarify == "Could you tell me a bit more? Do you mean cancel order or cancel subscription?" or (
        d.target.clarify == "Could you tell me a bit more? Do you mean cancel subscription or cancel order?"
    )
    assert {a for a, _ in d.alternatives} >= {"cancel_order", "cancel_subscription"}


def test_when_a_router_is_stored_and_loaded_then_it_decides_exactly_the_same(support_router, embedder):
    blob = support_router.head.to_bytes()
    loaded = IntentRouter("support", 1, support_router.definition, Head.from_bytes(blob))
    texts = [*CLEAR, "tell me about the weather", "cancel"]
    for x, text in zip(embedder.embed(texts), texts, strict=True):
        a, b = support_router.decide(x, text), loaded.decide(x, text)
        assert (a.intent, a.reason, a.target) == (b.intent, b.reason, b.target)
        assert a.confidence == pytest.approx(b.confidence)


def test_when_a_model_target_has_tiers_then_easy_queries_get_the_cheap_model(decide):
    easy = decide("where is my order")
    hard = decide(
        "My order 4411 was split into three parcels: explain why the second one shows delivered while the "
        "tracking of the third says returned to sender, compare the two carriers' records step by step, and "
        "tell me which one to claim against and why, given that I paid for express shipping on both?"
    )
    assert easy.intent == hard.intent == "track_order"
    assert (easy.model, hard.model) == ("cheap", "strong")
    assert easy.difficulty < 0.3 < hard.difficulty
