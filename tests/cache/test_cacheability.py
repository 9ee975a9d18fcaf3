"""Which requests may be cached: sampling, user-specific and time-sensitive questions, personal data."""

from __future__ import annotations

import pytest

from cache import Classifier, ResponseCache
from cache.cacheability import query_reason, sampling_reason
from cache.config import CacheabilityConfig, ModelCacheConfig
from cache.exact import MemoryExactStore

CFG = CacheabilityConfig()
CLASSIFIER = Classifier()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"temperature": 0}, None),
        ({}, "temperature>0"),  # unset means 1 for OpenAI and vLLM
        ({"temperature": 0.7}, "temperature>0"),
        ({"temperature": 0, "n": 2}, "n>1"),
        ({"temperature": 0, "logprobs": True}, "logprobs"),
    ],
)
def test_when_sampling_makes_answers_vary_then_the_request_is_not_cached(body, reason):
    assert sampling_reason(body, CFG) == reason


def test_when_sampled_answers_are_allowed_then_temperature_is_no_obstacle():
    assert sampling_reason({"temperature": 0.7}, CacheabilityConfig(cache_sampled=True)) is None


@pytest.mark.parametrize(
    ("query", "cacheable"),
    [
        ("What's the status of my order?", False),
        ("Where is my package?", False),
        ("What is the weather in Oslo right now?", False),
        ("What are today's headlines?", False),
        ("Is the bridge open right now?", False),
        ("What are my upcoming meetings?", False),
        ("Explain photosynthesis.", True),
        ("How do I reset my password in Linux?", True),
        ("What is the boiling point of water at sea level?", True),
        ("Write a haiku about autumn.", True),
        ("What is the capital of Australia?", True),
    ],
)
def test_when_a_question_depends_on_who_asks_or_when_then_it_is_not_cacheable(query, cacheable):
    assert (query_reason(query, CFG, CLASSIFIER) is None) is cacheable


def test_when_rules_and_classifier_are_off_then_every_question_is_cacheable():
    off = CacheabilityConfig(rules=False, classifier=False)
    assert query_reason("What's the status of my order?", off, CLASSIFIER) is None


@pytest.mark.parametrize(
    ("scope", "pii_found", "text", "stored"),
    [
        ("global", False, "Write to jane.doe@example.com", False),
        ("team", False, "Call me at +1 415 555 0100", False),
        ("global", True, "Summarise this letter", False),  # the PII guard found something
        ("key", True, "Summarise this letter", True),  # not a shared scope
        ("global", False, "Summarise this letter", True),
    ],
)
def test_when_personal_data_is_found_then_it_never_enters_a_shared_scope(scope, pii_found, text, stored):
    cache = ResponseCache(MemoryExactStore(), None, CLASSIFIER)
    body = {"messages": [{"role": "user", "content": text}], "temperature": 0}
    plan = cache.plan("chat", body, "m", ModelCacheConfig(scope=scope), key_id="k", team_id="t")
    cache.check_query(plan, pii_found)
    assert plan.store is stored


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("What's the status of my order?", "user_specific"),
        ("Did I pay the invoice?", "user_specific"),
        ("What is the weather in Oslo right now?", "time_sensitive"),
        ("Explain photosynthesis.", None),
    ],
)
def test_when_only_the_rules_judge_then_they_name_the_reason(query, reason):
    assert query_reason(query, CacheabilityConfig(classifier=False), None) == reason


@pytest.mark.parametrize(
    ("query", "uncacheable"),
    [("What are my upcoming meetings?", True), ("Who won the game last night?", True), ("Define recursion.", False)],
)
def test_when_only_the_classifier_judges_then_it_catches_wordings_the_rules_miss(query, uncacheable):
    reason = query_reason(query, CacheabilityConfig(rules=False), CLASSIFIER)
    assert (reason == "classifier") is uncacheable
