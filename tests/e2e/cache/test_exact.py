"""The exact cache through the gateway: hits, streams, signals, opt-outs and cacheability rules."""

from __future__ import annotations

import openai

from tests.e2e.cache.conftest import KEYS, ask, until

CACHE = {"scope": "key", "exact": {"ttl": 600}}


def served(replica) -> int:
    return replica.stats()["requests_received"]


def hit_after(url: str, caller: str, question: str, **kw):
    """Ask until the answer comes from the cache (the first answer is stored in the background)."""
    return until(lambda: ask(url, caller, question, **kw), "hit-exact")


def test_when_a_question_is_repeated_then_the_second_answer_is_an_exact_hit_naming_its_source(gateway, replica):
    url = gateway(CACHE)
    first = ask(url, "x", "Explain photosynthesis briefly.")
    assert first.headers["x-interlock-cache"] == "miss"
    second = hit_after(url, "x", "Explain photosynthesis briefly.")
    assert second.json()["choices"] == first.json()["choices"]
    assert second.headers["x-interlock-cache-source"] == first.headers["x-request-id"]
    assert served(replica) == 1


def test_when_a_stream_is_repeated_then_the_hit_is_a_proper_sse_stream_with_usage(gateway, replica):
    url = gateway(CACHE)
    client = openai.OpenAI(base_url=url + "/v1", api_key=KEYS["x"][0], max_retries=0)
    kw = {"model": "m", "messages": [{"role": "user", "content": "Describe the water cycle."}], "max_tokens": 8,
          "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}  # fmt: skip
    first = list(client.chat.completions.create(**kw))
    text = "".join(c.choices[0].delta.content or "" for c in first if c.choices)

    raw = until(lambda: client.chat.completions.with_raw_response.create(**kw), "hit-exact")
    chunks = list(raw.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == first[-1].usage.completion_tokens
    assert served(replica) == 1
    # A stream's answer serves a non-streaming client too.
    assert ask(url, "x", "Describe the water cycle.").json()["choices"][0]["message"]["content"] == text


def test_when_a_model_has_no_cache_then_nothing_is_cached_and_no_cache_header_is_sent(gateway, replica):
    url = gateway(CACHE)
    for _ in range(2):
        r = ask(url, "x", "Explain photosynthesis briefly.", model_name="plain")
        assert r.headers.get("x-interlock-cache") in (None, "bypass")
    assert served(replica) == 2


def test_when_the_client_opts_out_then_the_cache_is_bypassed(gateway, replica):
    url = gateway(CACHE)
    q = "What is a binary search?"
    ask(url, "x", q)
    hit_after(url, "x", q)
    for headers in ({"x-interlock-cache": "off"}, {"cache-control": "no-store"}, {"cache-control": "no-cache"}):
        assert ask(url, "x", q, headers=headers).headers["x-interlock-cache"] == "bypass"
    assert served(replica) == 4


def test_when_no_cache_is_asked_then_the_fresh_answer_is_stored(gateway, replica):
    url = gateway(CACHE)
    assert ask(url, "x", "Define recursion.", headers={"cache-control": "no-cache"}).headers["x-interlock-cache"] == (
        "bypass"
    )
    hit_after(url, "x", "Define recursion.")
    assert served(replica) == 1


def test_when_a_question_is_user_specific_or_time_sensitive_then_it_is_never_cached(gateway, replica):
    url = gateway(CACHE)
    for q in ("What's the status of my order?", "What is the weather in Oslo right now?", "Where is my parcel?"):
        for _ in range(2):
            assert ask(url, "x", q).headers["x-interlock-cache"] == "bypass"
    assert served(replica) == 6


def test_when_temperature_is_above_zero_then_it_is_cached_only_if_configured(gateway, replica):
    url = gateway(CACHE)
    for _ in range(2):
        assert ask(url, "x", "Name a colour.", temperature=0.8).headers["x-interlock-cache"] == "bypass"
    assert served(replica) == 2


def test_when_sampled_answers_are_allowed_then_temperature_above_zero_is_cached(gateway, replica):
    url = gateway({**CACHE, "cacheability": {"cache_sampled": True}})
    ask(url, "x", "Name a colour.", temperature=0.8)
    hit_after(url, "x", "Name a colour.", temperature=0.8)
    # A different temperature is a different partition.
    assert ask(url, "x", "Name a colour.", temperature=0.9).headers["x-interlock-cache"] == "miss"


def test_when_sampling_parameters_or_system_prompt_differ_then_there_is_no_hit(gateway, replica):
    url = gateway(CACHE)
    q = "List three prime numbers."
    ask(url, "x", q)
    hit_after(url, "x", q)
    assert ask(url, "x", q, max_tokens=9).headers["x-interlock-cache"] == "miss"
    assert ask(url, "x", q, response_format={"type": "json_object"}).headers["x-interlock-cache"] == "miss"
    r = ask(url, "x", q, messages=[{"role": "system", "content": "Be terse."}, {"role": "user", "content": q}])
    assert r.headers["x-interlock-cache"] == "miss"


def test_when_redis_is_down_then_requests_are_served_as_misses(gateway, replica):
    from tests.support.servers import free_port

    url = gateway(CACHE, redis={"url": f"redis://127.0.0.1:{free_port()}/0", "failure_policy": "open"})
    for _ in range(3):
        assert ask(url, "x", "Explain TCP slow start.").headers["x-interlock-cache"] == "miss"
    assert served(replica) == 3
