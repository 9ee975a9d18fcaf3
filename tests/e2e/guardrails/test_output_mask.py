"""Output ``mask`` through the gateway's HTTP API against the emulator: PII, secrets and code names the model wrote
are redacted in answers, whole and streamed (a value split across chunks never goes out, for any split the
emulator's word tokens allow, also when the chunks of several choices interleave), while the placeholders of the
request's own masked prompt still turn back into the user's values. The emulator's scripted replies play the model
(they may hold the placeholders it was sent)."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator

import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interlock.emulator import EmulatorServer
from tests.e2e.guardrails.conftest import _running, client
from tests.support.gateway import model
from tests.support.polling import eventually

EMAIL = "ana.lima@example.com"
PROMPT = f"My address is {EMAIL}: who should I call about the delivery?"
MASKING = {"pii": {"action": "mask"}, "secrets": {"action": "mask"}, "keywords": {"action": "mask"}}
#: A code the input side masks as ``[CODE_1]``, and a type whose redaction would read ``[CODE_1]`` too.
CODES = {"CODE": r"\bC-\d{4}\b", "CODE_1": r"\bK-\d{4}\b"}
POLICIES = {
    "omask": {"input": {"pii": {"action": "mask"}}, "output": MASKING},
    "omask-stream": {
        "input": {"pii": {"action": "mask"}},
        "output": MASKING,
        "output_actions": {"hold_back_tokens": 1, "longest_value_chars": 24},
    },
    # pattern-found values only (NER types are recorded, not masked): what a window finds is what the whole finds
    "omask-patterns": {
        "input": {"pii": {"action": "mask"}},
        "output": {**MASKING, "pii": {"action": "allow", "types": {"EMAIL_ADDRESS": "mask"}}},
        "output_actions": {"hold_back_tokens": 1, "longest_value_chars": 24},
    },
    "omask-codes": {"input": {"keywords": {"action": "mask"}}, "output": {"keywords": {"action": "mask"}}},
    "oblock-late": {"output": {"keywords": {"action": "block"}}, "output_actions": {"hold_back_tokens": 1}},
    "omask-label": {"output": {"keywords": {"action": "mask"}}, "output_actions": {"redaction": "[REDACTED]"}},
}


@pytest.fixture(scope="module")
def replica() -> Iterator[EmulatorServer]:
    with EmulatorServer(port=0, served_model_names=["m"]) as server:
        yield server


@pytest.fixture(scope="module")
def gateway_url(replica: EmulatorServer, tmp_path_factory) -> Iterator[str]:
    attach = {f"m-{name}": name for name in POLICIES}
    db = tmp_path_factory.mktemp("guard-output-mask") / "gw.db"
    settings_ = {
        "database": {"url": f"sqlite:///{db}"},
        "models": [model(name, replica.url, upstream_model="m") for name in attach],
        "access": {"admin_tokens": {"admin-token-for-tests": "admin"}},
        "guardrails": {
            "enabled": True,
            "keywords": {"keywords": ["Project Falcon"], "regexes": {"ORDER": r"ORD \d{3} \d{3}", **CODES}},
            "policies": POLICIES,
            "attach": {"models": attach},
        },
    }
    with contextlib.ExitStack() as stack:
        yield stack.enter_context(_running(settings_))


@pytest.fixture
def upstream(replica: EmulatorServer) -> EmulatorServer:
    replica.reset()
    return replica


def ask(url: str, name: str, text: str = PROMPT) -> str:
    reply = client(url).chat.completions.create(model=name, messages=[{"role": "user", "content": text}])
    return reply.choices[0].message.content


def ask_stream(url: str, name: str, text: str = PROMPT) -> str:
    stream = client(url).chat.completions.create(model=name, messages=[{"role": "user", "content": text}], stream=True)
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def test_when_the_model_writes_a_phone_number_then_it_is_masked_and_the_users_own_email_comes_back(
    gateway_url, upstream
):
    upstream.script_replies("Write to [EMAIL_ADDRESS_1] or call Bob on 415-555-0100 about Project Falcon.")
    text = ask(gateway_url, "m-omask")
    sent = upstream.recorded_requests()[0]["body"]["messages"][0]["content"]
    assert EMAIL not in sent and "[EMAIL_ADDRESS_1]" in sent  # the input side masked it
    assert EMAIL in text  # the placeholder the model repeated is the user's own value again
    assert "415-555-0100" not in text and "[PHONE_NUMBER]" in text
    assert "Falcon" not in text and "[KEYWORD]" in text


def test_when_the_answer_streams_then_the_client_gets_the_same_masked_text(gateway_url, upstream):
    reply = "Write to [EMAIL_ADDRESS_1] or call Bob on 415-555-0100 about Project Falcon."
    upstream.script_replies(reply, reply)
    assert ask_stream(gateway_url, "m-omask-stream") == ask(gateway_url, "m-omask")


def test_when_a_redaction_would_read_as_the_users_placeholder_then_it_never_unmasks_into_their_value(
    gateway_url, upstream
):
    upstream.script_replies("Your code is [CODE_1]; the other one is K-9999.")
    text = ask(gateway_url, "m-omask-codes", "my code is C-1234")
    assert "[CODE_1]" in upstream.recorded_requests()[0]["body"]["messages"][0]["content"]
    assert text == "Your code is C-1234; the other one is [REDACTED]."


def test_when_a_secret_is_in_the_answer_then_it_is_masked(gateway_url, upstream):
    key = "sk-proj-" + "A1b2C3d4" * 4
    upstream.script_replies(f"Use the key {key} in the header.")
    text = ask(gateway_url, "m-omask")
    assert key not in text and "[OPENAI_API_KEY]" in text


def test_when_the_policy_sets_a_redaction_label_then_it_replaces_the_value(gateway_url, upstream):
    upstream.script_replies("We start Project Falcon on Monday.", "We start Project Falcon on Monday.")
    assert ask(gateway_url, "m-omask-label", "plan?") == "We start [REDACTED] on Monday."
    assert ask_stream(gateway_url, "m-omask-label", "plan?") == "We start [REDACTED] on Monday."


def ask_choices(url: str, name: str, n: int, *, stream: bool, text: str = PROMPT) -> list[str]:
    """Each choice's text, by index: the SDK's message, or the concatenation of its streamed deltas."""
    messages = [{"role": "user", "content": text}]
    if not stream:
        reply = client(url).chat.completions.create(model=name, messages=messages, n=n)
        return [c.message.content for c in sorted(reply.choices, key=lambda c: c.index)]
    out = [""] * n
    for chunk in client(url).chat.completions.create(model=name, messages=messages, n=n, stream=True):
        for c in chunk.choices:
            out[c.index] += c.delta.content or ""
    return out


#: Two choices with different values, lengths and word splits: the emulator interleaves their tokens one by one.
CHOICES = [
    "Write to [EMAIL_ADDRESS_1] about ORD 123 456 today.",
    "Call jo.doe@example.org or see Project Falcon soon, and mail [EMAIL_ADDRESS_1] the plan.",
]


def test_when_a_masked_stream_has_several_choices_then_each_is_masked_and_unmasked_on_its_own(gateway_url, upstream):
    upstream.script_replies({"choices": CHOICES}, {"choices": CHOICES})
    streamed = ask_choices(gateway_url, "m-omask-patterns", 2, stream=True)
    whole = ask_choices(gateway_url, "m-omask-patterns", 2, stream=False)
    assert (
        streamed
        == whole
        == [
            f"Write to {EMAIL} about [ORDER] today.",
            f"Call [EMAIL_ADDRESS] or see [KEYWORD] soon, and mail {EMAIL} the plan.",
        ]
    )


def test_when_a_masked_stream_of_several_choices_reports_usage_then_the_usage_chunk_still_comes_last(
    gateway_url, upstream
):
    upstream.script_replies({"choices": CHOICES})
    chunks = list(
        client(gateway_url).chat.completions.create(
            model="m-omask-patterns",
            messages=[{"role": "user", "content": PROMPT}],
            n=2,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].usage is not None and not chunks[-1].choices  # held text of both choices went out before it
    assert all(c.choices for c in chunks[:-1])
    texts = ["", ""]
    for chunk in chunks[:-1]:
        texts[chunk.choices[0].index] += chunk.choices[0].delta.content or ""
    assert texts[1] == f"Call [EMAIL_ADDRESS] or see [KEYWORD] soon, and mail {EMAIL} the plan."


def test_when_a_blocked_value_is_split_across_one_choices_chunks_then_the_other_choices_chunks_between_do_not_hide_it(
    gateway_url, upstream
):
    # choice 0's "Project" and " Falcon" arrive with choice 1's " all" between them: one window per choice sees it
    upstream.script_replies({"choices": ["then Project Falcon starts", "ok all fine here"]})
    stream = client(gateway_url).chat.completions.create(
        model="m-oblock-late", messages=[{"role": "user", "content": "hi"}], stream=True, n=2
    )
    sent = ["", ""]
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            for c in chunk.choices:
                sent[c.index] += c.delta.content or ""
    assert "keywords" in str(info.value.message)
    assert "Falcon" not in sent[0] and sent[0].startswith("then")


def test_when_a_long_stream_masks_early_values_then_the_record_keeps_them_without_the_text(gateway_url, upstream):
    upstream.script_replies("Mail jo.doe@example.org soon. " + "ok " * 160)  # the email leaves the 400-char window
    stream = client(gateway_url).chat.completions.create(
        model="m-omask-stream", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text.startswith("Mail [EMAIL_ADDRESS] soon.")
    request_id = stream.response.headers["x-interlock-request-id"]
    admin = {"Authorization": "Bearer admin-token-for-tests"}

    def record() -> str | None:
        r = httpx.get(f"{gateway_url}/admin/console/requests/{request_id}", headers=admin)
        return r.text if r.status_code == 200 else None

    kept = eventually(record)
    assert "pii:EMAIL_ADDRESS" in kept and "jo.doe" not in kept


def test_when_a_blocked_value_comes_late_in_a_long_stream_then_the_incremental_scan_still_stops_it(
    gateway_url, upstream
):
    # span guards scan only the new text plus longest_value_chars: a code name split over two chunks 600 chars in
    upstream.script_replies("ok " * 200 + "then Project Falcon starts")
    text = ""
    stream = client(gateway_url).chat.completions.create(
        model="m-oblock-late", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
    assert "keywords" in str(info.value.message)
    assert text.startswith("ok ok") and len(text) > 500 and "Project" not in text


WORDS = st.sampled_from(["Call", "me", "at", "or", "see", "the", "plan", "soon.", "today,", "ok"])
#: Values whose detectors are patterns (NER types may change with the context a window gives them, so the policy
#: masks none): three word tokens, two, the user's own placeholder, one.
VALUES = st.sampled_from(["ORD 123 456", "Project Falcon", "[EMAIL_ADDRESS_1]", "jo.doe@example.org"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(st.one_of(WORDS, VALUES), min_size=1, max_size=14))
def test_for_any_split_a_streamed_value_never_leaks_and_the_text_equals_the_whole_answers(gateway_url, replica, parts):
    replica.reset()
    reply = " ".join(parts)
    replica.script_replies(reply, reply)
    streamed = ask_stream(gateway_url, "m-omask-patterns")
    whole = ask(gateway_url, "m-omask-patterns")
    assert streamed == whole
    for leaked in ("456", "Falcon", "jo.doe"):
        assert leaked not in streamed
    assert ("[EMAIL_ADDRESS_1]" in reply) == (EMAIL in streamed)


def _pieces(text: str, cuts: list[int]) -> list[str]:
    """``text`` cut at the given offsets: the pieces the emulator streams, one per chunk."""
    bounds = [0, *sorted({c % (len(text) + 1) for c in cuts}), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds) if b > a]


CHOICE = st.tuples(
    st.lists(st.one_of(WORDS, VALUES), min_size=1, max_size=8), st.lists(st.integers(1, 200), max_size=12)
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(choices=st.lists(CHOICE, min_size=2, max_size=3))
def test_for_any_chunking_of_interleaved_choices_each_streamed_choice_equals_its_whole_answer(
    gateway_url, replica, choices
):
    # each choice cut anywhere (a value or the user's placeholder split across its chunks), the choices' chunks
    # interleaved one by one: every choice must still come out as the non-streamed answer's choice does
    replica.reset()
    replies = [" ".join(parts) for parts, _ in choices]
    pieces = [_pieces(reply, cuts) for reply, (_, cuts) in zip(replies, choices, strict=True)]
    replica.script_replies({"choices": pieces}, {"choices": replies})
    streamed = ask_choices(gateway_url, "m-omask-patterns", len(replies), stream=True)
    whole = ask_choices(gateway_url, "m-omask-patterns", len(replies), stream=False)
    assert streamed == whole
    for reply, text in zip(replies, streamed, strict=True):
        for leaked in ("456", "Falcon", "jo.doe"):
            assert leaked not in text
        assert ("[EMAIL_ADDRESS_1]" in reply) == (EMAIL in text)
