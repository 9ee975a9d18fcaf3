"""Table-driven tests of the span guards: secrets, keywords and PII (Presidio with our recognizers)."""

from __future__ import annotations

import asyncio

import pytest

from guardrails import GuardConfigError, GuardContext
from guardrails._keywords import KeywordGuard
from guardrails._pii import PresidioPIIGuard
from guardrails._secrets import SecretsGuard
from guardrails.config import KeywordsGuardConfig


def _found(guard, text: str) -> set[tuple[str, str]]:
    result = asyncio.run(guard.check(text, GuardContext()))
    return {(f.type, text[f.start : f.end]) for f in result.findings if f.score >= guard.default_threshold}


SECRETS = [
    ("key sk-proj-abcdefghijklmnopqrstuvwxyz012345", ("OPENAI_API_KEY", "sk-proj-abcdefghijklmnopqrstuvwxyz012345")),
    ("sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWx", ("ANTHROPIC_API_KEY", "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWx")),
    ("aws AKIAIOSFODNN7EXAMPLE here", ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")),
    ("token ghp_0123456789abcdefghijABCDEFGHIJklmnop", ("GITHUB_TOKEN", "ghp_0123456789abcdefghijABCDEFGHIJklmnop")),
    ("AIzaSyA1234567890abcdefghijklmnopqrstuv", ("GOOGLE_API_KEY", "AIzaSyA1234567890abcdefghijklmnopqrstuv")),
    ("xoxb-1234567890-abcdefghij", ("SLACK_TOKEN", "xoxb-1234567890-abcdefghij")),
    ("sk_live_abcdefghijklmnop1234", ("STRIPE_KEY", "sk_live_abcdefghijklmnop1234")),
    ("hf_abcdefghijklmnopqrstuvwxyzABCDEF", ("HUGGINGFACE_TOKEN", "hf_abcdefghijklmnopqrstuvwxyzABCDEF")),
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
        ("PRIVATE_KEY", "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----"),
    ),
    (
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        ("JWT", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"),
    ),
    ("Authorization: Bearer abcdefghijklmnopqrstuvwx12", ("BEARER_TOKEN", "abcdefghijklmnopqrstuvwx12")),
    ("postgres://admin:hunter2secret@db.internal:5432/app", ("URL_PASSWORD", "hunter2secret")),
    ("password = Tr0ub4dor&3", ("PASSWORD", "Tr0ub4dor&3")),
]


@pytest.mark.parametrize(("text", "expected"), SECRETS)
def test_when_a_text_holds_a_secret_then_the_secrets_guard_finds_its_span(text, expected):
    assert expected in _found(SecretsGuard(), text)


@pytest.mark.parametrize(
    "text",
    ["how do I rotate my OpenAI key?", "the skeleton key of the castle", "see https://example.com/a:b", "ask-me"],
)
def test_when_a_text_only_talks_about_secrets_then_nothing_is_found(text):
    assert _found(SecretsGuard(), text) == set()


KEYWORDS = KeywordsGuardConfig(keywords=["Project Falcon", "bluebird"], regexes={"TICKET": r"\bJIRA-\d+\b"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("status of project falcon?", {("KEYWORD", "project falcon")}),
        ("Bluebird ships in JIRA-1234", {("KEYWORD", "Bluebird"), ("TICKET", "JIRA-1234")}),
        ("bluebirds are birds", set()),
        ("nothing here", set()),
    ],
)
def test_when_admin_keywords_and_regexes_are_set_then_matches_are_found_on_word_boundaries(text, expected):
    assert _found(KeywordGuard(KEYWORDS), text) == expected


def test_when_an_admin_regex_is_invalid_then_the_error_names_it():
    with pytest.raises(GuardConfigError, match=r"regexes\.BAD"):
        KeywordGuard(KeywordsGuardConfig(regexes={"BAD": "(unclosed"}))


@pytest.fixture(scope="module")
def pii() -> PresidioPIIGuard:
    guard = PresidioPIIGuard()
    guard.load()
    return guard


PII = [
    ("Contact jane.doe@example.org today", ("EMAIL_ADDRESS", "jane.doe@example.org")),
    ("Call 212-555-0199 after six", ("PHONE_NUMBER", "212-555-0199")),
    ("Card 4111 1111 1111 1111 expires", ("CREDIT_CARD", "4111 1111 1111 1111")),
    ("IBAN GB82 WEST 1234 5698 7654 32 please", ("IBAN_CODE", "GB82 WEST 1234 5698 7654 32")),
    ("my ssn is 536-80-4398", ("US_SSN", "536-80-4398")),
    ("server at 192.168.10.24 is down", ("IP_ADDRESS", "192.168.10.24")),
    ("Please ask Mr. Okonkwo about it", ("PERSON", "Okonkwo")),
    ("Hi, my name is Ana Lima", ("PERSON", "Ana Lima")),
    ("Ship it to 42 Baker Street, London", ("LOCATION", "42 Baker Street, London")),
    (
        "Send it to 6750 Koskikatu 25 Apt. 864\nArtilleros\n, CO\n Uruguay 64677",
        ("LOCATION", "6750 Koskikatu 25 Apt. 864\nArtilleros\n, CO\n Uruguay 64677"),
    ),
    ("I moved to Hammarvägen 15 last year", ("LOCATION", "Hammarvägen 15")),
    ("She flew from Uruguay yesterday", ("LOCATION", "Uruguay")),
]


@pytest.mark.parametrize(("text", "expected"), PII)
def test_when_a_text_holds_personal_data_then_the_pii_guard_finds_it_with_presidio_names(pii, text, expected):
    assert expected in _found(pii, text)


def test_when_a_text_has_no_personal_data_then_the_pii_guard_finds_nothing_above_threshold(pii):
    assert {t for t, _ in _found(pii, "how do I sort a list quickly?")} == set()


def _score(guard, text: str, type_: str) -> float:
    result = asyncio.run(guard.check(text, GuardContext()))
    return max((f.score for f in result.findings if f.type == type_), default=0.0)


@pytest.mark.parametrize(
    ("bare", "with_context", "type_"),
    [
        ("the value 192.168.1.1", "Server IP: 192.168.1.1", "IP_ADDRESS"),
        ("the number 536-22-8726", "my SSN is 536-22-8726", "US_SSN"),
    ],
)
def test_when_a_context_word_precedes_a_value_then_its_score_rises(pii, bare, with_context, type_):
    # The trimmed spaCy pipeline has no lemmatizer: Presidio's context words match on lower-cased token text.
    assert _score(pii, with_context, type_) > _score(pii, bare, type_) > 0


@pytest.mark.parametrize(
    "text", ["When: 2000-04-16 11:30", "Here's my SSN: 460-89-9847", "The restaurant is at 370 3911 Elm"]
)
def test_when_digits_only_look_like_a_phone_then_no_phone_number_is_found(pii, text):
    assert "PHONE_NUMBER" not in {t for t, _ in _found(pii, text)}
