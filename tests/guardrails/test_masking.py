"""Masking with a reverse map, and the streaming unmasker's property: for any chunking of any answer, the
concatenation of what it emits equals the unmasking of the whole answer (so no value leaks, none is lost); per
choice, when several choices' chunks interleave over the request's one map."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from guardrails import Finding, MaskMap, StreamUnmasker


def _map(*pairs: tuple[str, str]) -> MaskMap:
    m = MaskMap()
    for value, type_ in pairs:
        m.placeholder(value, type_)
    return m


def test_when_the_same_value_appears_twice_then_it_gets_the_same_placeholder():
    m = MaskMap()
    a = m.mask("Ana met Bo", [Finding("pii", "PERSON", 0, 3, 0.9), Finding("pii", "PERSON", 8, 10, 0.9)])
    b = m.mask("Bo called Ana", [Finding("pii", "PERSON", 0, 2, 0.9), Finding("pii", "PERSON", 10, 13, 0.9)])
    assert a == "[PERSON_1] met [PERSON_2]"
    assert b == "[PERSON_2] called [PERSON_1]"
    assert m.unmask(b) == "Bo called Ana"


def test_when_findings_overlap_then_their_union_is_masked_with_the_best_type():
    m = MaskMap()
    text = "mail john.smith@example.com now"
    found = [Finding("pii", "URL", 5, 12, 0.5), Finding("pii", "EMAIL_ADDRESS", 5, 27, 0.9)]
    assert m.mask(text, found) == "mail [EMAIL_ADDRESS_1] now"


def test_when_the_model_invents_a_placeholder_then_it_is_left_as_it_is():
    m = _map(("Ana", "PERSON"))
    assert m.unmask("[PERSON_1] and [PERSON_7]") == "Ana and [PERSON_7]"


def test_when_a_placeholder_is_split_across_chunks_then_the_stream_emits_the_value_once_complete():
    u = StreamUnmasker(_map(("Ana Lima", "PERSON")))
    emitted = [u.feed("Hi [PER"), u.feed("SON_"), u.feed("1], bye ["), u.flush()]
    assert emitted == ["Hi ", "", "Ana Lima, bye ", "["]


def test_when_a_bracket_cannot_start_a_placeholder_then_it_is_not_held_back():
    u = StreamUnmasker(_map(("Ana", "PERSON")))
    assert u.feed("a list [1, 2]") == "a list [1, 2]"
    assert u.holding == 0


_VALUES = [("Ana Lima", "PERSON"), ("ana@example.com", "EMAIL_ADDRESS"), ("Paris", "LOCATION"), ("x]y[z", "KEYWORD")]
_pieces = st.lists(
    st.sampled_from(["[PERSON_1]", "[EMAIL_ADDRESS_1]", "[LOCATION_1]", "[KEYWORD_1]", "[PERSON_2]", "[", "]", "_"])
    | st.text(alphabet="[]_PERSONLOCAI1 2ab", max_size=6),
    max_size=25,
)


@settings(max_examples=400, deadline=None)
@given(pieces=_pieces, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=30))
def test_when_an_answer_is_streamed_in_any_chunks_then_the_emitted_text_equals_the_unmasked_whole(pieces, cuts):
    m = _map(*_VALUES)
    answer = "".join(pieces)
    bounds = sorted({0, len(answer), *(c for c in cuts if c <= len(answer))})
    u = StreamUnmasker(m)
    emitted = "".join(u.feed(answer[a:b]) for a, b in itertools.pairwise(bounds)) + u.flush()
    assert emitted == m.unmask(answer)


@settings(max_examples=150, deadline=None)
@given(
    answers=st.lists(st.tuples(_pieces, st.lists(st.integers(0, 400), max_size=20)), min_size=2, max_size=4),
    order=st.randoms(use_true_random=False),
)
def test_when_several_choices_stream_interleaved_then_each_emits_its_own_unmasked_whole(answers, order):
    """An ``n > 1`` stream: one unmasker per choice over the request's one map, the choices' chunks in any order."""
    m = _map(*_VALUES)
    texts = ["".join(pieces) for pieces, _ in answers]
    queue = []
    for i, (text, (_, cuts)) in enumerate(zip(texts, answers, strict=True)):
        bounds = sorted({0, len(text), *(c for c in cuts if c <= len(text))})
        queue.append([(i, text[a:b]) for a, b in itertools.pairwise(bounds)])
    unmaskers = [StreamUnmasker(m) for _ in texts]
    emitted = [""] * len(texts)
    while any(queue):  # a random choice's next chunk each time: every interleaving is reachable
        i, piece = order.choice([q for q in queue if q]).pop(0)
        emitted[i] += unmaskers[i].feed(piece)
    for i, u in enumerate(unmaskers):
        emitted[i] += u.flush()
    assert emitted == [m.unmask(t) for t in texts]


def test_when_findings_overlap_partly_then_no_part_of_either_is_left_in_clear():
    m = MaskMap()
    text = "Ana Lima Street 5"  # a person read in the first words, a street in the last ones
    found = [Finding("pii", "PERSON", 0, 8, 0.9), Finding("pii", "LOCATION", 4, 17, 0.8)]
    assert m.mask(text, found) == "[LOCATION_1]"
    assert m.unmask("[LOCATION_1]") == text
