"""The PII guard's worker process (``guardrails.pii.workers``) through the gateway's HTTP API, against the emulator:
started with the gateway, reported by ``/ready``, and killed mid-traffic: the requests it was analysing follow the
policy's ``on_error`` (closed: a 503, never the prompt upstream unmasked; open: served), none gets a 500, and the
worker is rebuilt and masks again."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from interlock.emulator import EmulatorServer
from tests.e2e.guardrails.conftest import _running
from tests.support.gateway import model
from tests.support.polling import eventually

NAME, EMAIL = "Ana Lima", "ana.lima@example.com"
POLICIES = {
    # A long timeout: requests that arrive while the worker is rebuilt wait for it instead of timing out.
    "closed": {"input": {"pii": {"action": "mask"}}, "timeout": 60},
    "open": {"input": {"pii": {"action": "mask"}}, "timeout": 60, "on_error": "open"},
}


@pytest.fixture(scope="module")
def upstream() -> Iterator[EmulatorServer]:
    with EmulatorServer(port=0, served_model_names=["m"], record_requests=5000) as server:
        yield server


def _settings(upstream: EmulatorServer, db) -> dict:
    return {
        "database": {"url": f"sqlite:///{db}"},
        "models": [model(name, upstream.url, upstream_model="m") for name in ("m-closed", "m-open")],
        "guardrails": {
            "enabled": True,
            "pii": {"workers": 1},
            "policies": POLICIES,
            "attach": {"models": {"m-closed": "closed", "m-open": "open"}},
        },
    }


@pytest.fixture(scope="module")
def gateway(upstream: EmulatorServer, tmp_path_factory) -> Iterator[str]:
    with _running(_settings(upstream, tmp_path_factory.mktemp("pii-workers") / "gw.db")) as url:
        yield url


def _workers(url: str) -> dict:
    return httpx.get(url + "/ready", timeout=10).json()["pii_workers"]


def _traffic_while_killing(url: str, model_name: str) -> tuple[list[tuple[int, dict, str]], int]:
    """Six clients send prompts with a name and an e-mail address until the worker, killed once a few answers are
    in, has been replaced and served some more; returns (status, body, the text sent) of every request, in the
    order they were answered, and how many had been answered at the kill. A long prompt sent just before the kill
    (about 1 s of spaCy, within the emulator's context) makes sure the worker dies with work in it, whatever the
    machine's load."""
    (pid,) = _workers(url)["alive"]
    results: list[tuple[int, dict, str]] = []
    stop = threading.Event()

    def send(http: httpx.Client, text: str) -> None:
        body = {"model": model_name, "messages": [{"role": "user", "content": text}], "max_tokens": 24}
        r = http.post("/v1/chat/completions", json=body)
        results.append((r.status_code, r.json(), text))

    def client(n: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            i = 0
            while not stop.is_set():
                send(http, f"I am {NAME}, mail {EMAIL} (client {n}, request {i})")
                i += 1

    def long_prompt() -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            send(http, f"My colleague {NAME} lives in Denver and writes from {EMAIL}. " * 300)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    try:
        assert eventually(lambda: len(results) >= 12, timeout=60)
        threads.append(threading.Thread(target=long_prompt))
        threads[-1].start()
        time.sleep(0.3)  # the short prompts ahead of it take milliseconds: it is in the worker now
        killed_at = len(results)
        os.kill(pid, signal.SIGKILL)
        assert eventually(lambda: (a := _workers(url)["alive"]) and a != [pid], timeout=120)
        assert eventually(lambda: len(results) >= killed_at + 24, timeout=120)
    finally:
        stop.set()
        for t in threads:
            t.join(120)
    return results, killed_at


@pytest.mark.timeout(600)
def test_when_the_gateway_starts_then_its_pii_worker_is_up_and_reported_by_ready(gateway):
    ready = httpx.get(gateway + "/ready", timeout=10).json()
    assert ready["pii_workers"]["workers"] == 1 and len(ready["pii_workers"]["alive"]) == 1
    assert ready["pii_workers"]["alive"][0] != os.getpid()  # a process of its own, before any request


@pytest.mark.timeout(600)
def test_when_the_pii_worker_dies_and_the_policy_fails_closed_then_nothing_goes_upstream_unmasked(gateway, upstream):
    upstream.reset()
    restarts = _workers(gateway)["restarts"]
    results, killed_at = _traffic_while_killing(gateway, "m-closed")
    statuses = {status for status, _, _ in results}
    assert statuses <= {200, 503}, statuses  # never a 500
    refused = [body for status, body, _ in results if status == 503]
    assert refused and all(b["error"]["code"] == "guardrail_unavailable" for b in refused)
    assert [status for status, _, text in results if len(text) > 10_000] == [503]  # the prompt the worker died on
    assert {s for s, _, _ in results[:killed_at]} == {200} and results[-1][0] == 200  # rebuilt, it serves again
    sent = [r["body"]["messages"][0]["content"] for r in upstream.recorded_requests()]
    assert len(sent) == len(results) - len(refused)
    assert all(NAME not in s and EMAIL not in s and "[PERSON_1]" in s for s in sent)
    served = [body["choices"][0]["message"]["content"] for status, body, _ in results if status == 200]
    assert all(EMAIL in answer for answer in served)  # unmasked for the client, before and after the crash
    assert _workers(gateway)["restarts"] == restarts + 1


@pytest.mark.timeout(600)
def test_when_the_pii_worker_dies_and_the_policy_fails_open_then_every_request_is_served(gateway, upstream):
    upstream.reset()
    before = _failures(gateway)
    results, _ = _traffic_while_killing(gateway, "m-open")
    assert {status for status, _, _ in results} == {200}
    sent = [r["body"]["messages"][0]["content"] for r in upstream.recorded_requests()]
    unguarded = [s for s in sent if EMAIL in s]
    # The ones in the dead worker (the long prompt among them) went unmasked, as open means; the rest were masked.
    assert any(len(s) > 10_000 for s in unguarded) and len(unguarded) < len(sent), (len(unguarded), len(sent))
    assert _failures(gateway) == before + len(unguarded), (_failures(gateway), before, len(unguarded))


def _failures(url: str) -> float:
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        if line.startswith('interlock_guardrail_failures_total{guard="pii"}'):
            return float(line.split()[-1])
    return 0.0


@pytest.mark.timeout(600)
def test_when_the_gateway_stops_then_its_pii_worker_is_gone(upstream, tmp_path):
    with _running(_settings(upstream, tmp_path / "gw.db")) as url:
        (pid,) = _workers(url)["alive"]
        os.kill(pid, 0)  # alive
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped and reaped by the gateway's shutdown, not left behind
