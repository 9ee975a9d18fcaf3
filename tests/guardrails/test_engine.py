"""``Scan.mask``: a value masked in one text of a request is masked wherever it appears in the others."""

from __future__ import annotations

from guardrails import Action, Finding, MaskMap, Scan


def test_when_a_value_is_found_in_one_message_then_it_is_masked_in_every_message_as_a_whole_word():
    texts = ["You help Ana Lima.", "I am Ana Lima", "Banana Lima-Ana? no: Ana Lima!"]
    scan = Scan([[], [(Finding("pii", "PERSON", 5, 13, 0.9), Action.MASK)], []])
    assert scan.mask(texts, MaskMap()) == [
        "You help [PERSON_1].",
        "I am [PERSON_1]",
        "Banana Lima-Ana? no: [PERSON_1]!",
    ]


def test_when_a_finding_is_only_allowed_then_it_stays_in_clear():
    scan = Scan([[(Finding("pii", "DATE_TIME", 0, 6, 0.9), Action.ALLOW)]])
    assert scan.mask(["Monday it is"], MaskMap()) == ["Monday it is"]
