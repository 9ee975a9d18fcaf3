"""Output policies through the gateway's HTTP API: block, stock reply, retry, fallback, hedge, escalate (with its
webhook and the admin API), and a stream stopped mid-way by a guard. The emulator's scripted replies make a first
answer bad (a refusal, a code name) and the next one good."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import openai
import pytest

from interlock.emulator import EmulatorServer
from tests.e2e.guardrails.conftest import _running, client
from tests.support.gateway import model
from tests.support.polling import eventually

ADMIN = {"Authorization": "Bearer admin-token-for-tests"}
REFUSAL = "I'm sorry, but I can't help with that."
GOOD = "Paris is the capital of France."


class Webhook:
    """A tiny local HTTP server that keeps what is posted to it."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.server.shutdown()


@pytest.fixture(scope="module")
def replica() -> Iterator[EmulatorServer]:
    with EmulatorServer(port=0, served_model_names=["m"]) as server:
        yield server


@pytest.fixture(scope="module")
def gateway_url(replica: EmulatorServer, webhook: Webhook, tmp_path_factory) -> Iterator[str]:
    refusal = {"refusal": {"action": "block"}}
    policies = {
        "block": {"output": refusal},
        "stock": {"output": refusal, "block_with": "stock", "stock_reply": "Let me get someone to help."},
        "retry": {"output": {"refusal": {"action": "retry"}}, "output_actions": {"retries": 2}},
        "fallback": {"output": {"refusal": {"action": "fallback"}}, "output_actions": {"fallback_model": "m-plain"}},
        "hedge": {"output": {"refusal": {"action": "hedge"}}, "output_actions": {"hedge_k": 2}},
        "hedge-late": {
            "output": {"refusal": {"action": "hedge"}},
            "output_actions": {"hedge_k": 2, "hedge_after": 0.2},
        },
        "hedge-poor": {
            "output": {"refusal": {"action": "hedge"}},
            "output_actions": {"hedge_k": 3, "hedge_budget_per_minute": 1},
        },
        "escalate": {
            "output": {"refusal": {"action": "escalate"}},
            "output_actions": {"escalate_webhook": webhook.url},
        },
        "stream-escalate": {
            "output": {"keywords": {"action": "escalate"}},
            "output_actions": {"hold_back_tokens": 4},
        },
        "stream-json": {"output": {"json": {"action": "block"}}},
        "stream": {
            "output": {"keywords": {"action": "block"}, "refusal": {"action": "block"}},
            "output_actions": {"hold_back_tokens": 4},
        },
    }
    attach = {f"m-{name}": name for name in policies}
    db = tmp_path_factory.mktemp("guard-output") / "gw.db"
    settings = {
        "database": {"url": f"sqlite:///{db}"},
        "models": [model(name, replica.url, upstream_model="m") for name in [*attach, "m-plain"]],
        "access": {"admin_tokens": {"admin-token-for-tests": "admin"}},
        "guardrails": {
            "enabled": True,
            "keywords": {"keywords": ["Project Falcon"]},
            "policies": policies,
            "attach": {"models": attach},
        },
    }
    with contextlib.ExitStack() as stack:
        yield stack.enter_context(_running(settings))


@pytest.fixture
def upstream(replica: EmulatorServer) -> EmulatorServer:
    replica.reset()
    return replica


def ask(url: str, name: str, text: str = "What is the capital of France?") -> Any:
    return client(url).chat.completions.create(model=name, messages=[{"role": "user", "content": text}])


def received(replica: EmulatorServer) -> int:
    return replica.stats()["requests_received"]


def test_when_the_answer_is_a_refusal_and_the_policy_blocks_then_a_400_names_the_scorer(gateway_url, upstream):
    upstream.script_replies(REFUSAL)
    with pytest.raises(openai.BadRequestError) as info:
        ask(gateway_url, "m-block")
    assert info.value.code == "guardrail_blocked"
    assert "'refusal'" in info.value.message


def test_when_the_policy_blocks_with_a_stock_reply_then_the_client_gets_it(gateway_url, upstream):
    upstream.script_replies(REFUSAL)
    answer = ask(gateway_url, "m-stock")
    assert answer.choices[0].message.content == "Let me get someone to help."


def test_when_the_first_answer_fails_and_the_policy_retries_then_the_second_is_served(gateway_url, upstream):
    upstream.script_replies(REFUSAL, GOOD)
    assert ask(gateway_url, "m-retry").choices[0].message.content == GOOD
    assert received(upstream) == 2


def test_when_every_retry_fails_then_the_answer_is_blocked_after_the_retries(gateway_url, upstream):
    upstream.script_replies(REFUSAL, REFUSAL, REFUSAL, GOOD)
    with pytest.raises(openai.BadRequestError):
        ask(gateway_url, "m-retry")
    assert received(upstream) == 3  # the first try and 2 retries


def test_when_the_answer_fails_and_the_policy_falls_back_then_the_fallback_model_answers(gateway_url, upstream):
    upstream.script_replies(REFUSAL, GOOD)
    assert ask(gateway_url, "m-fallback").choices[0].message.content == GOOD
    assert received(upstream) == 2


def test_when_hedging_then_the_first_answer_that_passes_is_served_and_the_slow_one_cancelled(gateway_url, upstream):
    # Both tries start at once; the first to arrive upstream is a fast refusal, the second a slower good answer.
    upstream.script_replies(REFUSAL, {"text": GOOD, "ttft_ms": 300})
    assert ask(gateway_url, "m-hedge").choices[0].message.content == GOOD
    assert received(upstream) == 2
    upstream.reset()
    upstream.script_replies(GOOD, {"text": REFUSAL, "ttft_ms": 5000})
    assert ask(gateway_url, "m-hedge").choices[0].message.content == GOOD
    assert eventually(lambda: upstream.stats()["cancelled"] == 1)


def test_when_hedging_after_a_ttft_then_a_second_try_starts_only_for_a_slow_first(gateway_url, upstream):
    upstream.script_replies(GOOD)
    assert ask(gateway_url, "m-hedge-late").choices[0].message.content == GOOD
    assert received(upstream) == 1  # answered before hedge_after: no extra load
    upstream.reset()
    upstream.script_replies({"text": GOOD, "ttft_ms": 5000}, "Rome is the capital of Italy.")
    assert ask(gateway_url, "m-hedge-late").choices[0].message.content == "Rome is the capital of Italy."
    assert received(upstream) == 2
    assert eventually(lambda: upstream.stats()["cancelled"] == 1)


def test_when_a_stream_is_slower_than_the_hedge_ttft_then_a_second_try_serves_it(gateway_url, upstream):
    upstream.script_replies({"text": GOOD, "ttft_ms": 5000}, "Rome is the capital of Italy.")
    stream = client(gateway_url).chat.completions.create(
        model="m-hedge-late", messages=[{"role": "user", "content": "capital?"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Rome is the capital of Italy."
    assert received(upstream) == 2
    assert eventually(lambda: upstream.stats()["cancelled"] == 1)
    # the request finished exactly once (the losing try neither recorded it nor released its slot twice)
    assert eventually(lambda: "interlock_in_flight_requests 0.0" in httpx.get(gateway_url + "/metrics").text)


def test_when_the_hedge_budget_is_spent_then_requests_are_sent_once(gateway_url, upstream):
    upstream.script_replies(GOOD, GOOD, GOOD)
    assert ask(gateway_url, "m-hedge-poor").choices[0].message.content == GOOD  # the burst of 1 extra try
    assert received(upstream) == 2
    upstream.reset()
    upstream.script_replies(GOOD)
    assert ask(gateway_url, "m-hedge-poor").choices[0].message.content == GOOD
    assert received(upstream) == 1  # no budget left this minute


def test_when_an_output_rule_trips_then_the_record_keeps_guard_and_type_not_text(
    gateway_url, upstream, tmp_path_factory
):
    upstream.script_replies(REFUSAL)
    with pytest.raises(openai.BadRequestError) as info:
        ask(gateway_url, "m-block")
    request_id = info.value.response.headers["x-interlock-request-id"]
    record = eventually(lambda: _record(gateway_url, request_id))
    assert record is not None and "refusal:refusal" in json.dumps(record)


def _record(url: str, request_id: str) -> dict | None:
    r = httpx.get(f"{url}/admin/console/requests/{request_id}", headers=ADMIN)
    return r.json() if r.status_code == 200 else None


def test_when_an_answer_is_escalated_then_it_is_recorded_masked_notified_and_resolvable(gateway_url, upstream, webhook):
    upstream.script_replies("I'm sorry, I can't share john.smith@example.com with you, John Smith.")
    with pytest.raises(openai.BadRequestError) as info:
        ask(gateway_url, "m-escalate")
    assert info.value.code == "guardrail_blocked"
    cases = httpx.get(gateway_url + "/admin/escalations", params={"status": "open"}, headers=ADMIN).json()
    case = cases[0]
    assert case["policy"] == "escalate" and case["status"] == "open"
    assert case["request_id"] == info.value.response.headers["x-interlock-request-id"]
    assert [f["guard"] for f in case["findings"]] == ["refusal"]
    assert "john.smith@example.com" not in case["answer"] and "[EMAIL_ADDRESS_1]" in case["answer"]
    assert eventually(lambda: any(h["id"] == case["id"] for h in webhook.received))
    hook = next(h for h in webhook.received if h["id"] == case["id"])
    assert hook["request_id"] == case["request_id"] and "john" not in json.dumps(hook).lower()
    r = httpx.post(
        gateway_url + f"/admin/escalations/{case['id']}/resolve", json={"resolution": "handled"}, headers=ADMIN
    )
    assert r.status_code == 200 and r.json()["status"] == "resolved"
    assert httpx.post(gateway_url + "/admin/escalations/nope/resolve", json={}, headers=ADMIN).status_code == 404


def test_when_a_guard_trips_mid_stream_then_the_text_is_not_sent_and_an_error_event_names_it(gateway_url, upstream):
    upstream.script_replies("The plan is fine and we start work on Project Falcon next week as agreed")
    text = ""
    stream = client(gateway_url).chat.completions.create(
        model="m-stream", messages=[{"role": "user", "content": "plan?"}], stream=True
    )
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
    assert "keywords" in str(info.value.message)
    assert text.startswith("The plan") and "Falcon" not in text and "Project" not in text


def test_when_a_stream_trips_an_escalate_rule_then_it_stops_and_the_case_holds_the_masked_window(gateway_url, upstream):
    upstream.script_replies("Mail jane.roe@example.com about Project Falcon before Friday please")
    stream = client(gateway_url).chat.completions.create(
        model="m-stream-escalate", messages=[{"role": "user", "content": "plan?"}], stream=True
    )
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass
    cases = httpx.get(gateway_url + "/admin/escalations", headers=ADMIN).json()
    case = next(c for c in cases if c["policy"] == "stream-escalate")
    assert [f["guard"] for f in case["findings"]] == ["keywords"]
    assert "jane.roe@example.com" not in case["answer"] and "[EMAIL_ADDRESS_1]" in case["answer"]


def test_when_a_streamed_answer_breaks_the_requested_json_then_it_ends_with_an_error_not_done(gateway_url, upstream):
    upstream.script_replies("this is not JSON at all")
    stream = client(gateway_url).chat.completions.create(
        model="m-stream-json",
        messages=[{"role": "user", "content": "give me JSON"}],
        response_format={"type": "json_object"},
        stream=True,
    )
    with pytest.raises(openai.APIError) as info:
        for _ in stream:
            pass
    assert "'json'" in str(info.value.message)
    upstream.script_replies('{"ok": true}')
    stream = client(gateway_url).chat.completions.create(
        model="m-stream-json",
        messages=[{"role": "user", "content": "give me JSON"}],
        response_format={"type": "json_object"},
        stream=True,
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == '{"ok": true}'


def test_when_a_stream_passes_then_every_token_arrives_in_order(gateway_url, upstream):
    upstream.script_replies("One two three four five six seven eight nine ten.")
    stream = client(gateway_url).chat.completions.create(
        model="m-stream", messages=[{"role": "user", "content": "count"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "One two three four five six seven eight nine ten."


def test_when_a_whole_stream_fits_in_the_hold_back_then_it_is_still_judged(gateway_url, upstream):
    # 3 content chunks, hold_back_tokens 4: no chunk ever left the window before [DONE], so the end must judge it
    upstream.script_replies("Project Falcon starts")
    text = ""
    stream = client(gateway_url).chat.completions.create(
        model="m-stream", messages=[{"role": "user", "content": "plan?"}], stream=True
    )
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
    assert "keywords" in str(info.value.message) and "Falcon" not in text
