"""The semantic cache through the gateway: streamed hits, and what it must not serve."""

from __future__ import annotations

import openai

from tests.e2e.cache.conftest import KEYS, ask, until

CACHE = {"scope": "key", "semantic": {"enabled": True}}


def test_when_a_streaming_client_asks_in_other_words_then_the_hit_is_streamed_with_similarity(gateway, replica):
    url = gateway(CACHE)
    first = ask(url, "x", "Explain how photosynthesis works.").json()["choices"][0]["message"]["content"]
    client = openai.OpenAI(base_url=url + "/v1", api_key=KEYS["x"][0], max_retries=0)
    kw = {"model": "m", "messages": [{"role": "user", "content": "How does photosynthesis work?"}],
          "max_tokens": 8, "temperature": 0, "stream": True}  # fmt: skip
    raw = until(lambda: client.chat.completions.with_raw_response.create(**kw), "hit-semantic")
    assert float(raw.headers["x-interlock-cache-similarity"]) > 0.9
    chunks = list(raw.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == first
    assert all(c.usage is None for c in chunks)  # the client did not ask for usage
    assert replica.stats()["requests_received"] == 1


def test_when_the_model_has_only_an_exact_cache_then_other_words_are_a_miss(gateway):
    url = gateway({"scope": "key"})
    ask(url, "x", "Explain how photosynthesis works.")
    until(lambda: ask(url, "x", "Explain how photosynthesis works."), "hit-exact")
    assert ask(url, "x", "How does photosynthesis work?").headers["x-interlock-cache"] == "miss"
