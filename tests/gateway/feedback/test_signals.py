"""Implicit feedback signals (gateway/feedback/signals.py) on request sequences, with an injected clock."""

from __future__ import annotations

import pytest

from gateway.feedback.signals import SignalDetector, is_refusal
from gateway.types import Principal, RequestContext

Q = {"role": "user", "content": "What is the capital of Australia?"}
A = {"role": "assistant", "content": "Sydney."}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ctx(rid: str, *messages: dict, status: int = 200, stream: bool = False, key: str = "k1", **notes):
    c = RequestContext(rid, "chat", {"messages": list(messages)}, "m", stream=stream)
    c.principal = Principal(key_id=key)
    c.status = status
    c.notes.update(notes)
    return c


@pytest.fixture
def detector():
    clock = Clock()
    d = SignalDetector(window=600, abandon_after=60, similarity=0.8, clock=clock)
    d.clock_ = clock
    return d


def seen(signals) -> list[tuple[str, str, str | None]]:
    return [(s.kind, s.turn.request_id, s.related_request_id) for s in signals]


@pytest.mark.parametrize(
    ("second", "expected"),
    [
        ((Q,), [("regeneration", "r1", "r2")]),
        ((Q, A, {"role": "user", "content": "No, I meant Austria."}), [("rephrase", "r1", "r2")]),
        ((Q, A, {"role": "user", "content": "What is the capital of Australia??"}), [("rephrase", "r1", "r2")]),
        (({"role": "user", "content": "What is the capital of Australia, please?"},), [("rephrase", "r1", "r2")]),
        ((Q, A, {"role": "user", "content": "Thanks. And its population?"}), []),
        (({"role": "user", "content": "Write a poem about the sea."},), []),
    ],
    ids=["same-again", "correction", "similar-next-turn", "edited-question", "new-question", "new-topic"],
)
def test_when_a_second_request_follows_then_the_first_gets_the_expected_signal(detector, second, expected):
    assert detector.observe(ctx("r1", Q)) == []
    assert seen(detector.observe(ctx("r2", *second))) == expected


def test_when_another_key_sends_the_same_conversation_then_it_is_not_a_regeneration(detector):
    detector.observe(ctx("r1", Q, key="k1"))
    assert detector.observe(ctx("r2", Q, key="k2")) == []


def test_when_the_repeat_comes_after_the_window_then_it_is_not_a_regeneration(detector):
    detector.observe(ctx("r1", Q))
    detector.clock_.now += 601
    assert detector.observe(ctx("r2", Q)) == []


def test_when_a_stream_is_left_after_its_first_token_then_it_is_an_early_termination(detector):
    c = ctx("r1", Q, status=499, stream=True)
    c.first_token_at = 1.0
    assert seen(detector.observe(c)) == [("early_termination", "r1", None)]
    before_first_token = ctx("r2", {"role": "user", "content": "other"}, status=499, stream=True)
    assert detector.observe(before_first_token) == []  # nothing had arrived: not a reaction to an answer


def test_when_a_bad_answer_gets_no_next_turn_then_it_is_abandoned_after_abandon_after(detector):
    detector.observe(ctx("r1", Q, refusal=True))
    detector.observe(ctx("ok", {"role": "user", "content": "fine question"}))
    detector.clock_.now += 59
    assert detector.sweep() == []
    detector.clock_.now += 2
    assert seen(detector.sweep()) == [("abandonment", "r1", None)]
    assert detector.sweep() == []  # once


def test_when_a_bad_answer_gets_a_next_turn_then_it_is_not_abandoned(detector):
    detector.observe(ctx("r1", Q, status=500))
    detector.observe(ctx("r2", Q, A, {"role": "user", "content": "Thanks. And its population?"}))
    detector.clock_.now += 61
    assert [s.turn.request_id for s in detector.sweep()] == []


@pytest.mark.parametrize(
    ("choice", "refused"),
    [
        ({"message": {"content": "I'm sorry, but I can't help with that."}}, True),
        ({"message": {"content": "I cannot assist with this request."}}, True),
        ({"message": {"content": None, "refusal": "No."}}, True),
        ({"message": {"content": "..."}, "finish_reason": "content_filter"}, True),
        ({"message": {"content": "Sorry for the wait: here is the answer."}}, False),
        ({"message": {"content": "Canberra."}}, False),
    ],
)
def test_when_an_answer_is_read_then_refusals_are_recognised(choice, refused):
    assert is_refusal({"choices": [choice]}) is refused


def test_when_two_texts_are_compared_then_similarity_is_the_dice_coefficient_of_their_bigram_multisets():
    import random
    from collections import Counter

    import numpy as np

    from gateway.feedback.signals import similar, sketch

    def reference(a: bytes, b: bytes) -> float:  # the definition, by counting
        ca, cb = Counter(np.frombuffer(a, np.uint16).tolist()), Counter(np.frombuffer(b, np.uint16).tolist())
        total = sum(ca.values()) + sum(cb.values())
        return 2 * sum((ca & cb).values()) / total if total and ca and cb else 0.0

    rnd = random.Random(7)
    for _ in range(2000):  # few letters: many repeated bigrams, the case a set-based shortcut would get wrong
        x, y = ("".join(rnd.choice("ab cé") for _ in range(rnd.randint(0, 80))) for _ in range(2))
        assert similar(sketch(x), sketch(y)) == pytest.approx(reference(sketch(x), sketch(y)))
    assert similar(sketch("aaaa"), sketch("aa")) == pytest.approx(2 * 1 / 4)  # "aa" x3 against "aa" x1
