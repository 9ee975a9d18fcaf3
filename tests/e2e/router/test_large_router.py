"""A router with thousands of examples, through the admin API: it trains (bulk embedding on every core, sorted
by token count) and serves. Behaviour, not time: the time is measured by ``router.eval.training_time``.

Uses banking77 and chat prompts from ../shared/data (skips when absent).
"""

from __future__ import annotations

import os

import httpx
import pytest

from router.eval import DATA
from tests.e2e.router.conftest import ACCESS, ADMIN, models

pytestmark = pytest.mark.skipif(
    not (DATA / "intent" / "banking77" / "train.csv").exists(), reason=f"shared data sets absent ({DATA})"
)


def route(url: str, text: str) -> dict:
    body = {"router": "banking", "messages": [{"role": "user", "content": text}]}
    r = httpx.post(url + "/v1/route", json=body, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_when_a_router_has_thousands_of_examples_then_the_put_trains_it_and_it_serves(gateway_factory, replicas):
    from router.eval.quality import load_banking, load_far

    examples, test = load_banking()
    intents = [
        {"name": n, "examples": ex[:30], "target": {"reply": f"About {n}."}} for n, ex in sorted(examples.items())
    ]
    far = load_far(300)
    definition = {"intents": intents, "out_of_scope": {"target": {"reply": "Banking only."}, "examples": far[:200]}}
    n = sum(len(i["examples"]) for i in intents) + 200
    assert n > 2_500
    url, _ = gateway_factory(models=models(replicas), access=ACCESS)

    r = httpx.put(url + "/admin/routers/banking", json=definition, headers=ADMIN, timeout=600)

    assert r.status_code == 200, r.text
    figures = r.json()["training"]
    assert r.json()["version"] == 1 and figures["examples"] == n
    # Every example (and typo variant) embedded once, on the training session's threads, in length-sorted batches.
    assert figures["embed_texts"] == n + figures["augmented"]
    assert figures["embed_threads"] == os.cpu_count() and figures["embed_padding"] < 0.1
    listed = httpx.get(url + "/admin/routers/banking", headers=ADMIN).json()
    assert listed["serving_version"] == 1 and listed["training"]["embed_threads"] == os.cpu_count()
    queries = test[::154]  # 20 test utterances spread over the intents
    right = sum(route(url, text)["intent"] == intent for text, intent in queries)
    assert right >= 15, f"{right} of {len(queries)} routed to their intent"
    assert [route(url, text)["reason"] for text in far[250:255]] == ["out_of_scope"] * 5
    chat = httpx.post(
        url + "/v1/chat/completions",
        json={"model": "banking", "messages": [{"role": "user", "content": "my card has not arrived yet"}]},
        timeout=30,
    )
    assert chat.status_code == 200 and chat.headers["x-interlock-intent"] == "card_arrival", chat.headers
    assert chat.json()["choices"][0]["message"]["content"] == "About card_arrival."
