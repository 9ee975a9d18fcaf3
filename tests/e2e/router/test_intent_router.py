"""The intent router through the gateway's HTTP API: every target kind, clarify, tiers, context length,
``POST /v1/route``, ``/v1/models``, metrics, handoffs, and bad definitions."""

from __future__ import annotations

import copy

import httpx
import openai
import pytest

from tests.e2e.router.conftest import ACCESS, ADMIN, SUPPORT, models
from tests.support.polling import eventually


def chat(url: str, text: str, **kw) -> httpx.Response:
    body = {"model": "support", "max_tokens": 8, "messages": [{"role": "user", "content": text}], **kw}
    return httpx.post(url + "/v1/chat/completions", json=body, timeout=30)


@pytest.fixture
def routed(gateway_factory, replicas, webhook):
    url, app = gateway_factory(
        models=models(replicas),
        access=ACCESS,
        router={
            "handoff": {"webhook_url": webhook[0]},
            "models": {
                "cheap": {"context_window": 300},
                "strong": {"context_window": 400},
                "big": {"context_window": 4000},
            },
        },
    )
    r = httpx.put(url + "/admin/routers/support", json=SUPPORT, headers=ADMIN, timeout=120)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1 and r.json()["training"]["examples"] == 43
    return url, app


def test_when_a_query_matches_a_model_intent_then_the_tier_model_answers_and_headers_say_why(routed, replicas):
    url, _ = routed
    r = chat(url, "where is my order")
    assert r.status_code == 200, r.text
    h = r.headers
    assert (h["x-interlock-router"], h["x-interlock-intent"], h["x-interlock-route-target"]) == (
        "support",
        "track_order",
        "model:cheap",
    )
    assert h["x-interlock-model"] == "cheap" and h["x-interlock-upstream"] == "c"
    assert h["x-interlock-context"] == "fits"
    hard = chat(
        url,
        "My order 4411 was split into three parcels: explain why the second one shows delivered while the tracking "
        "of the third says returned to sender, and compare the two carriers' records step by step?",
    )
    assert hard.headers["x-interlock-route-target"] == "model:strong", hard.headers


@pytest.mark.parametrize(
    ("text", "intent", "target", "content"),
    [
        ("I forgot my password and can't sign in", "reset_password", "reply", "Use 'Forgot password'"),
        ("I'd like to send back the shoes I bought", "return_item", "url", "https://help.example.com/returns"),
        ("what's the boiling point of nitrogen", "-", "reply", "I can only help with orders"),
    ],
)
def test_when_the_target_is_a_stock_answer_then_it_comes_back_as_a_chat_completion_without_a_model(
    routed, replicas, text, intent, target, content
):
    url, _ = routed
    before = [r.stats()["requests_received"] for r in replicas]
    r = chat(url, text)
    assert r.status_code == 200, r.text
    assert (r.headers["x-interlock-intent"], r.headers["x-interlock-route-target"]) == (intent, target)
    body = r.json()
    assert body["object"] == "chat.completion" and body["model"] == "support"
    assert content in body["choices"][0]["message"]["content"]
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    stream = client.chat.completions.create(model="support", messages=[{"role": "user", "content": text}], stream=True)
    assert content in "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert [r.stats()["requests_received"] for r in replicas] == before


def test_when_two_intents_are_too_close_then_the_user_gets_the_clarifying_question(gateway_factory, replicas):
    url, _ = gateway_factory(models=models(replicas), access=ACCESS)
    definition = {
        "intents": [
            {"name": "cancel_order", "examples": ["cancel my order", "stop my order"], "target": {"reply": "o"}},
            {
                "name": "cancel_subscription",
                "examples": ["cancel my subscription", "end my plan"],
                "target": {"reply": "s"},
            },
        ],
        "ambiguity_margin": 0.3,
        "clarify": "Which one: {options}?",
    }
    assert httpx.put(url + "/admin/routers/cancel", json=definition, headers=ADMIN, timeout=60).status_code == 200
    r = httpx.post(
        url + "/v1/chat/completions", json={"model": "cancel", "messages": [{"role": "user", "content": "cancel"}]}
    )
    assert r.headers["x-interlock-route-target"] == "clarify" and r.headers["x-interlock-route-reason"] == "ambiguous"
    assert r.json()["choices"][0]["message"]["content"].startswith("Which one: cancel ")


def test_when_the_target_is_a_human_then_the_handoff_is_recorded_listed_and_the_webhook_called(routed, webhook):
    url, _ = routed
    r = (
        chat(url, "this is unacceptable, let me talk to a manager", extra_headers=None)
        if False
        else chat(url, "this is unacceptable, let me talk to a manager")
    )
    assert r.headers["x-interlock-route-target"] == "human:complaints"
    assert r.json()["choices"][0]["message"]["content"] == "A colleague will contact you today."
    request_id = r.headers["x-request-id"]
    listed = eventually(
        lambda: [h for h in httpx.get(url + "/admin/handoffs", headers=ADMIN).json() if h["webhook"] == "sent"]
    )
    assert listed[0]["id"] == request_id and listed[0]["queue"] == "complaints" and listed[0]["intent"] == "complaint"
    event = webhook[1][0]
    assert (event["request_id"], event["queue"], event["router"]) == (request_id, "complaints", "support")
    assert "messages" not in event  # the conversation leaves only when the admin says so


def test_when_admins_try_their_intents_then_v1_route_answers_without_calling_a_model(routed, replicas):
    url, _ = routed
    before = [r.stats()["requests_received"] for r in replicas]
    r = httpx.post(
        url + "/v1/route",
        json={"router": "support", "messages": [{"role": "user", "content": "what time do you close today"}]},
    )
    assert r.status_code == 200, r.text
    d = r.json()
    assert (d["intent"], d["reason"], d["target"]) == (
        "opening_hours",
        "intent",
        {"reply": "We are open 9am to 6pm, Monday to Saturday."},
    )
    assert 0 < d["confidence"] <= 1 and all(set(a) == {"intent", "confidence"} for a in d["alternatives"])
    oos = httpx.post(
        url + "/v1/route", json={"router": "support", "messages": [{"role": "user", "content": "recommend a novel"}]}
    ).json()
    assert (oos["intent"], oos["reason"]) == (None, "out_of_scope")
    missing = httpx.post(url + "/v1/route", json={"router": "nope", "messages": [{"role": "user", "content": "x"}]})
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "router"
    assert [r.stats()["requests_received"] for r in replicas] == before
    assert "support" in {m["id"] for m in httpx.get(url + "/v1/models").json()["data"]}
    metrics = httpx.get(url + "/metrics").text
    assert 'interlock_router_decisions_total{intent="opening_hours",router="support",target="reply"}' in metrics


def test_when_the_prompt_does_not_fit_the_target_then_a_larger_model_takes_it_and_says_so(routed):
    url, _ = routed
    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": "word " * 120} for i in range(6)]
    body = {
        "model": "support",
        "max_tokens": 8,
        "messages": [*history, {"role": "user", "content": "where is my order"}],
    }
    r = httpx.post(url + "/v1/chat/completions", json=body, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["x-interlock-context"].startswith("upgraded; from=cheap")
    assert r.headers["x-interlock-route-target"] == "model:big" and r.headers["x-interlock-model"] == "big"


def test_when_truncation_is_the_policy_then_oldest_turns_go_and_the_header_says_how_many(gateway_factory, replicas):
    url, _ = gateway_factory(
        models=models(replicas),
        access=ACCESS,
        router={
            "models": {"cheap": {"context_window": 300}, "strong": {"context_window": 300}},
            "on_overflow": ["truncate"],
        },
    )
    assert httpx.put(url + "/admin/routers/support", json=SUPPORT, headers=ADMIN, timeout=120).status_code == 200
    system = {"role": "system", "content": "be brief"}
    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": "word " * 120} for i in range(4)]
    body = {
        "model": "support",
        "max_tokens": 8,
        "messages": [system, *history, {"role": "user", "content": "where is my order"}],
    }
    r = httpx.post(url + "/v1/chat/completions", json=body, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["x-interlock-context"].startswith("truncated; dropped_turns=")
    huge = {"model": "support", "max_tokens": 8, "messages": [{"role": "user", "content": "where is my order " * 400}]}
    refused = httpx.post(url + "/v1/chat/completions", json=huge, timeout=30)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "context_length_exceeded"


@pytest.mark.parametrize(
    ("change", "param"),
    [
        (lambda d: d["intents"][1].update(examples=[]), "intents[1].examples"),
        (lambda d: d["intents"][2].update(name="track_order"), "intents[2].name"),
        (lambda d: d["intents"][0]["target"].update(model="gpt-nope"), "intents[0].target.model"),
    ],
)
def test_when_a_definition_is_bad_then_400_names_the_field_and_the_old_version_keeps_serving(routed, change, param):
    url, _ = routed
    bad = copy.deepcopy(SUPPORT)
    change(bad)
    r = httpx.put(url + "/admin/routers/support", json=bad, headers=ADMIN, timeout=60)
    assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text
    assert chat(url, "where is my order").headers["x-interlock-intent"] == "track_order"
    assert httpx.get(url + "/admin/routers/support", headers=ADMIN).json()["version"] == 1


def test_when_a_router_is_deleted_then_its_name_is_unknown_again(routed):
    url, _ = routed
    assert httpx.delete(url + "/admin/routers/support", headers=ADMIN).status_code == 204
    assert chat(url, "where is my order").status_code == 404
    assert httpx.get(url + "/admin/routers/support", headers=ADMIN).status_code == 404


def test_when_a_key_may_use_a_router_then_models_lists_it_and_other_keys_neither_see_nor_use_it(
    gateway_factory, replicas
):
    url, _ = gateway_factory(models=models(replicas), access={**ACCESS, "require_keys": True})
    assert httpx.put(url + "/admin/routers/support", json=SUPPORT, headers=ADMIN, timeout=120).status_code == 200

    def key(allowed: list[str]) -> dict:
        r = httpx.post(url + "/admin/keys", json={"name": "-".join(allowed), "allowed_models": allowed}, headers=ADMIN)
        assert r.status_code == 201, r.text
        return {"Authorization": f"Bearer {r.json()['key']}"}

    app, other = key(["support"]), key(["strong"])
    assert [m["id"] for m in httpx.get(url + "/v1/models", headers=app).json()["data"]] == ["support"]
    assert "support" not in {m["id"] for m in httpx.get(url + "/v1/models", headers=other).json()["data"]}
    body = {"model": "support", "max_tokens": 4, "messages": [{"role": "user", "content": "where is my order"}]}
    assert httpx.post(url + "/v1/chat/completions", json=body, headers=app, timeout=30).status_code == 200
    refused = httpx.post(url + "/v1/chat/completions", json=body, headers=other, timeout=30)
    assert refused.status_code == 403 and refused.json()["error"]["param"] == "model"
    routed = {"router": "support", "messages": body["messages"]}
    assert httpx.post(url + "/v1/route", json=routed, headers=other).status_code == 403
    assert httpx.post(url + "/v1/route", json=routed).status_code == 401


def test_when_a_request_is_routed_then_its_record_carries_the_decision_without_the_prompt(routed, tmp_path):
    import sqlalchemy as sa

    url, _ = routed
    assert chat(url, "what are your opening hours").status_code == 200
    assert chat(url, "where is my order").status_code == 200
    engine = sa.create_engine(f"sqlite:///{tmp_path}/gw.db")

    def rows() -> list:
        with engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT model, served_model, details FROM request_records")))

    found = eventually(lambda: len(rows()) >= 2 and rows(), timeout=15)
    engine.dispose()
    by_model = {r[0]: r for r in found}
    assert "router=support" in by_model["support"][2] and "intent=opening_hours" in by_model["support"][2]
    assert "target=reply" in by_model["support"][2] and "opening hours" not in by_model["support"][2]
    assert "intent=track_order" in by_model["cheap"][2] and "target=model:cheap" in by_model["cheap"][2]


def test_when_a_router_is_defined_in_yaml_then_it_serves_from_startup_and_lists_in_the_admin_api(
    gateway_factory, replicas
):
    url, _ = gateway_factory(models=models(replicas), access=ACCESS, router={"routers": {"support": SUPPORT}})
    d = httpx.post(
        url + "/v1/route", json={"router": "support", "messages": [{"role": "user", "content": "reset my password"}]}
    ).json()
    assert (d["intent"], d["version"]) == ("reset_password", 1)
    listed = httpx.get(url + "/admin/routers", headers=ADMIN).json()
    assert [(r["name"], r["source"], r["serving_version"]) for r in listed] == [("support", "yaml", 1)]
