"""Across processes: a router retrained through one gateway serves on another without a restart, and
``router.mode: service`` keeps answering (through the fallback model) while the router service is killed."""

from __future__ import annotations

import contextlib
import copy
import signal
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path

import httpx
import yaml

from tests.e2e.router.conftest import ACCESS, ADMIN, SUPPORT, models
from tests.support.polling import eventually
from tests.support.processes import GatewayProcess
from tests.support.servers import free_port


def route(url: str, text: str) -> dict:
    body = {"router": "support", "messages": [{"role": "user", "content": text}]}
    r = httpx.post(url + "/v1/route", json=body, timeout=10)
    return r.json() if r.status_code == 200 else {"status": r.status_code}


def test_when_a_router_is_retrained_through_one_gateway_then_another_process_serves_the_new_version(
    replicas, redis_url, tmp_path
):
    shared = {
        "models": models(replicas),
        "database": {"url": f"sqlite:///{tmp_path}/shared.db"},
        "redis": {"url": redis_url},
        "access": {**ACCESS, "bus_channel": f"interlock:test:{uuid.uuid4().hex}"},
    }
    with GatewayProcess(shared, startup_timeout=60) as a, GatewayProcess(shared, startup_timeout=60) as b:
        assert httpx.put(a.url + "/admin/routers/support", json=SUPPORT, headers=ADMIN, timeout=120).status_code == 200
        first = eventually(lambda: route(b.url, "what time do you close today").get("version") == 1, timeout=10)
        assert first
        assert route(b.url, "what time do you close today")["intent"] == "opening_hours"
        changed = copy.deepcopy(SUPPORT)
        changed["intents"][3]["target"] = {"reply": "Now open around the clock."}
        assert httpx.put(a.url + "/admin/routers/support", json=changed, headers=ADMIN, timeout=120).status_code == 200
        assert eventually(lambda: route(b.url, "what time do you close today").get("version") == 2, timeout=10)
        r = httpx.post(
            b.url + "/v1/chat/completions",
            json={"model": "support", "messages": [{"role": "user", "content": "what time do you close today"}]},
        )
        assert r.json()["choices"][0]["message"]["content"] == "Now open around the clock."


@contextlib.contextmanager
def router_service(config: dict, port: int):
    folder = Path(tempfile.mkdtemp(prefix="interlock-router-"))
    path = folder / "interlock.yaml"
    path.write_text(yaml.safe_dump(config))
    log = open(folder / "router.log", "ab")  # noqa: SIM115 - closed below
    cmd = [sys.executable, "-c", "from interlock.cli import main; main()", "router", "serve", "--config", str(path)]
    proc = subprocess.Popen([*cmd, "--port", str(port), "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        log.close()


def test_when_the_router_service_is_killed_mid_traffic_then_requests_go_to_the_fallback_model(
    replicas, redis_url, tmp_path, gateway_factory
):
    port = free_port()
    shared = {
        "database": {"url": f"sqlite:///{tmp_path}/shared.db"},
        "redis": {"url": redis_url},
        "access": {**ACCESS, "bus_channel": f"interlock:test:{uuid.uuid4().hex}"},
    }
    url, _ = gateway_factory(
        models=models(replicas),
        router={"mode": "service", "service_url": f"http://127.0.0.1:{port}", "fallback_model": "strong"},
        **shared,
    )
    assert httpx.put(url + "/admin/routers/support", json=SUPPORT, headers=ADMIN, timeout=120).status_code == 200
    with router_service(shared, port) as service:
        assert eventually(lambda: route(url, "where is my order").get("intent") == "track_order", timeout=60)
        outcomes: list[tuple[int, str]] = []
        stop = threading.Event()

        def traffic() -> None:
            with httpx.Client(timeout=10) as client:
                while not stop.is_set():
                    r = client.post(
                        url + "/v1/chat/completions",
                        json={
                            "model": "support",
                            "max_tokens": 4,
                            "messages": [{"role": "user", "content": "where is my order"}],
                        },
                    )
                    outcomes.append((r.status_code, r.headers.get("x-interlock-route-target", "")))

        sender = threading.Thread(target=traffic)
        sender.start()
        try:
            assert eventually(lambda: len(outcomes) >= 3, timeout=30)
            service.kill()
            service.wait(10)
            seen = len(outcomes)
            assert eventually(lambda: len(outcomes) >= seen + 5, timeout=30)
        finally:
            stop.set()
            sender.join(30)
    assert {status for status, _ in outcomes} == {200}, outcomes
    targets = [t for _, t in outcomes]
    assert targets[0] == "model:cheap" and targets[-1] == "fallback:strong", targets
