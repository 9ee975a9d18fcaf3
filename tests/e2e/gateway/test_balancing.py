"""Replica choice through real HTTP: spread under load, prefix affinity, session pinning, vLLM's load gauges."""

from __future__ import annotations

import concurrent.futures
import threading
import time

import httpx

from interlock.emulator import EmulatorServer
from tests.e2e.gateway.conftest import served
from tests.support.gateway import model

SYSTEM = "You are the support assistant of a regional bank. Answer briefly and politely. " * 12


def ask(url: str, content: str, system: str | None = None, **kw) -> httpx.Response:
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": content}]
    r = httpx.post(url + "/v1/chat/completions", json={"model": "m", "messages": messages, "max_tokens": 4}, **kw)
    assert r.status_code == 200, r.text
    return r


def test_when_requests_overlap_then_least_outstanding_spreads_them_over_replicas(gateway):
    with (
        EmulatorServer(port=0, served_model_names=["m"], ttft_ms=150) as a,
        EmulatorServer(port=0, served_model_names=["m"], ttft_ms=150) as b,
    ):
        url, _ = gateway(models=[model("m", a.url, b.url, routing="least_outstanding")])
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: ask(url, f"question {i}"), range(8)))
        assert served([a, b]) == [4, 4]


def test_when_weights_differ_then_traffic_follows_them(fresh, gateway):
    m = model("m", fresh[0].url, fresh[1].url, routing="least_outstanding")
    m["deployments"][0]["weight"] = 3
    url, _ = gateway(models=[m])
    for i in range(40):
        ask(url, f"q{i}")
    # Sequential requests: every replica is idle, and weights break the tie 3:1 in turn.
    a, b = served(fresh)[:2]
    assert a + b == 40 and a > b


def test_when_prompts_share_a_system_prompt_then_they_go_to_the_same_replica(fresh, gateway):
    url, _ = gateway(models=[model("m", *(r.url for r in fresh))])
    upstreams = {ask(url, f"question {i}?", SYSTEM).headers["x-interlock-upstream"] for i in range(12)}
    assert len(upstreams) == 1
    others = {
        ask(url, "hi", f"Different assistant number {i}. " * 40).headers["x-interlock-upstream"] for i in range(12)
    }
    assert len(others) > 1  # different prefixes still spread


def test_when_a_conversation_continues_then_each_turn_goes_where_the_last_one_went(fresh, gateway):
    url, _ = gateway(models=[model("m", *(r.url for r in fresh))])
    history = [{"role": "user", "content": "Tell me about otters, at length please. " * 20}]
    where = set()
    for turn in range(5):
        body = {"model": "m", "messages": history, "max_tokens": 8}
        r = httpx.post(url + "/v1/chat/completions", json=body)
        where.add(r.headers["x-interlock-upstream"])
        history = [*history, r.json()["choices"][0]["message"], {"role": "user", "content": f"And then {turn}? " * 30}]
    assert len(where) == 1


def test_when_a_session_header_is_sent_then_it_pins_the_conversation(fresh, gateway):
    url, _ = gateway(models=[model("m", *(r.url for r in fresh))])
    for session in ("alice", "bob", "carol"):
        ups = {
            ask(url, f"unrelated question {i}", headers={"x-session-id": session}).headers["x-interlock-upstream"]
            for i in range(6)
        }
        assert len(ups) == 1


def test_when_vllm_reports_a_queue_then_new_requests_avoid_that_replica(gateway):
    with (
        EmulatorServer(port=0, served_model_names=["m"], max_num_seqs=1, tpot_ms=100) as busy,
        EmulatorServer(port=0, served_model_names=["m"]) as idle,
    ):
        url, _ = gateway(models=[model("m", busy.url, idle.url, routing="least_outstanding")], health={"interval": 0.1})
        # Another gateway's traffic (sent directly) fills the busy replica and queues behind it.
        body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 40}
        stop = threading.Event()
        threads = [
            threading.Thread(target=lambda: httpx.post(busy.url + "/v1/chat/completions", json=body, timeout=30))
            for _ in range(3)
        ]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 5
        while "vllm:num_requests_waiting{" not in busy.metrics() or busy.stats()["waiting"] < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.4)  # a few scrape intervals
        for i in range(6):
            assert ask(url, f"q{i}").headers["x-interlock-upstream"] == "d1"
        stop.set()
        for t in threads:
            t.join(30)
