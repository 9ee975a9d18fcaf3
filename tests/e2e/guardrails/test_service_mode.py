"""``guardrails.mode: service``: the gateway calls ``interlock guardrails serve`` through the same interface as the
embedded engine. The service is killed mid-traffic: fail-closed gateways answer 503 in OpenAI's format and send
nothing upstream (so nothing unmasked); fail-open ones serve and count it; ``/ready`` reports the service."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from interlock.emulator import EmulatorServer
from tests.e2e.guardrails.conftest import _running, client
from tests.support.gateway import model
from tests.support.polling import eventually
from tests.support.servers import free_port

EMAIL = "jane.roe@example.com"
POLICIES = {"mask": {"input": {"pii": {"action": "mask"}}}}


@pytest.fixture(scope="module")
def replica() -> Iterator[EmulatorServer]:
    with EmulatorServer(port=0, served_model_names=["m"]) as server:
        yield server


@contextlib.contextmanager
def guard_service(folder: Path) -> Iterator[subprocess.Popen]:
    """``interlock guardrails serve`` in its own process, ready (its models loaded) before it is handed over."""
    port = free_port()
    config = folder / "service.yaml"
    config.write_text(yaml.safe_dump({"guardrails": {"enabled": True}}))
    command = [sys.executable, "-c", "from interlock.cli import main; main()", "guardrails", "serve"]
    command += ["--config", str(config), "--port", str(port), "--host", "127.0.0.1", "--log-level", "warning"]
    proc = subprocess.Popen(command, env={**os.environ}, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(url + "/ready", timeout=1).status_code == 200
        return False

    try:
        assert eventually(ready, timeout=240), "the guardrails service did not become ready"
        proc.url = url  # type: ignore[attr-defined]
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


@contextlib.contextmanager
def gateway(replica: EmulatorServer, service_url: str, on_error: str, folder: Path) -> Iterator[str]:
    settings = {
        "database": {"url": f"sqlite:///{folder}/gw-{on_error}.db"},
        "models": [model("m", replica.url)],
        "guardrails": {
            "enabled": True,
            "mode": "service",
            "service": {"url": service_url, "timeout": 2.0, "on_error": on_error},
            "policies": POLICIES,
            "attach": {"models": {"m": "mask"}},
        },
    }
    with _running(settings) as url:
        yield url


def ask(url: str) -> str:
    reply = client(url).chat.completions.create(
        model="m", messages=[{"role": "user", "content": f"Please write to {EMAIL} today."}]
    )
    return reply.choices[0].message.content


def sent_upstream(replica: EmulatorServer) -> str:
    return str([r["body"] for r in replica.recorded_requests()])


def test_when_the_service_guards_then_masking_works_as_embedded(replica, tmp_path):
    with guard_service(tmp_path) as service, gateway(replica, service.url, "closed", tmp_path) as url:
        replica.reset()
        assert EMAIL in ask(url)  # the emulator echoes the masked prompt; the gateway unmasks the answer
        assert EMAIL not in sent_upstream(replica) and "[EMAIL_ADDRESS_1]" in sent_upstream(replica)
        assert httpx.get(url + "/ready").json()["guardrails_service"] is True
        checked = httpx.post(url + "/v1/guardrails/check", json={"text": f"write to {EMAIL}", "policy": "mask"})
        assert checked.status_code == 200 and EMAIL not in checked.json()["text"]
        assert "EMAIL_ADDRESS" in [f["type"] for f in checked.json()["findings"]]
        bad = httpx.post(service.url + "/scan", json={"texts": "x", "rules": {}})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "texts"


def test_when_the_service_dies_mid_traffic_and_the_gateway_fails_closed_then_503_and_nothing_unmasked_leaves(
    replica, tmp_path
):
    with guard_service(tmp_path) as service, gateway(replica, service.url, "closed", tmp_path) as url:
        replica.reset()
        results: list = []
        stop = threading.Event()

        def traffic() -> None:
            while not stop.is_set():
                try:
                    results.append("ok" if EMAIL in ask(url) else "not unmasked")
                except openai.APIStatusError as exc:
                    results.append((exc.status_code, exc.code))

        sender = threading.Thread(target=traffic)
        sender.start()
        try:
            assert eventually(lambda: len(results) >= 3)
            service.kill()
            service.wait(10)
            killed_at = len(results)
            assert eventually(lambda: len(results) >= killed_at + 3)
        finally:
            stop.set()
            sender.join(30)
        assert set(results) <= {"ok", (503, "guardrail_unavailable")}
        assert results[0] == "ok" and results[-1] == (503, "guardrail_unavailable")
        assert EMAIL not in sent_upstream(replica)
        ready = httpx.get(url + "/ready")
        assert ready.status_code == 503 and ready.json()["guardrails_service"] is False


def test_when_the_service_dies_and_the_gateway_fails_open_then_requests_are_served_and_counted(replica, tmp_path):
    with guard_service(tmp_path) as service, gateway(replica, service.url, "open", tmp_path) as url:
        service.kill()
        service.wait(10)
        replica.reset()
        for _ in range(3):
            assert ask(url)
        assert replica.stats()["requests_received"] == 3
        metrics = httpx.get(url + "/metrics").text
        assert 'interlock_guardrail_failures_total{guard="service"} 3.0' in metrics
        assert httpx.get(url + "/ready").json()["guardrails_service"] is False
