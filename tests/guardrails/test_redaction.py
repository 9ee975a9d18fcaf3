"""Output masking in the library: redactions never turn into a value of the request's map, placeholders are kept,
and a streamed text split anywhere comes out as the whole text's redaction (values never leak across chunks)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardrails import Finding, MaskMap
from guardrails.redaction import StreamRedactor, check_template, redact

KEPT = frozenset({"[PERSON_1]", "[CODE_1]"})
#: Regex detectors, so what is found depends only on the text near it (NER types are not so stable).
DETECTORS = {"CODE": re.compile(r"\bORD \d{3} \d{3}\b"), "EMAIL_ADDRESS": re.compile(r"\b\w+@\w+\.org\b")}


def detect(text: str) -> list[Finding]:
    return [Finding("pii", t, m.start(), m.end(), 1.0) for t, rx in DETECTORS.items() for m in rx.finditer(text)]


def test_when_a_redaction_would_read_as_a_placeholder_of_the_request_then_it_is_a_plain_label():
    text = "ref ABC9 for you"
    out = redact(text, [Finding("keywords", "CODE_1", 4, 8, 1.0)], "[{type}]", KEPT)
    assert out == "ref [REDACTED] for you"
    mask_map = MaskMap()
    mask_map.placeholder("the user's own code", "CODE")  # [CODE_1]
    assert "the user's own code" not in mask_map.unmask(out)


def test_when_a_finding_covers_a_placeholder_then_only_the_text_beside_it_is_redacted():
    text = "Call [PERSON_1] Smith now"
    out = redact(text, [Finding("pii", "PERSON", 5, 21, 0.9)], "[{type}]", KEPT)
    assert out == "Call [PERSON_1] [PERSON] now"


@pytest.mark.parametrize("template", ["<{type}>", "[{type}] [x]", "[{other}]", "[X_1]", "{type}"])
def test_when_a_redaction_template_could_join_its_neighbours_then_it_is_refused(template):
    with pytest.raises(ValueError):
        check_template(template)


PIECES = st.sampled_from(["see", "ORD 123 456", "and", "jo@ex.org", "[PERSON_1]", ", ok", "x"])


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(PIECES, min_size=1, max_size=12), cuts=st.lists(st.integers(1, 80), max_size=30))
def test_for_any_chunking_the_streamed_redaction_equals_the_whole_ones(parts, cuts):
    text = " ".join(parts)
    chunks, pos = [], 0
    for c in sorted(set(cuts)):
        if pos < c < len(text):
            chunks.append(text[pos:c])
            pos = c
    chunks.append(text[pos:])
    r = StreamRedactor("[{type}]", hold_chars=12, placeholders=KEPT)
    out = []
    for chunk in chunks:
        r.add(chunk)
        base = max(0, r.received - r.pending - 30)  # a window reaching back before what is unsent, as the gateway's
        out.append(r.emit(detect(text[base : r.received]), base, r.received))
    out.append(r.emit(detect(text), 0, r.received, final=True))
    streamed = "".join(out)
    assert streamed == redact(text, detect(text), "[{type}]", KEPT)
    assert "456" not in streamed and "jo@" not in streamed
