"""``guardrails.mode: service`` in one trace: the guardrails service's span of a scan is the child of the gateway's
client span for it, and both share the request's trace id with the upstream try."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import yaml

from interlock.emulator import EmulatorServer
from tests.e2e.guardrails.conftest import _running
from tests.support.gateway import model
from tests.support.otlp_sink import otlp_sink
from tests.support.polling import eventually
from tests.support.servers import free_port

SERVER, CLIENT = 2, 3


@contextlib.contextmanager
def guard_service(folder: Path, otlp_endpoint: str):
    port = free_port()
    config = folder / "service.yaml"
    config.write_text(
        yaml.safe_dump({"guardrails": {"enabled": True}, "observability": {"otlp_endpoint": otlp_endpoint}})
    )
    command = [sys.executable, "-c", "from interlock.cli import main; main()", "guardrails", "serve"]
    command += ["--config", str(config), "--port", str(port), "--host", "127.0.0.1", "--log-level", "warning"]
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(url + "/ready", timeout=1).status_code == 200
        return False

    try:
        assert eventually(ready, timeout=240), "the guardrails service did not become ready"
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def traced_request(tmp_path: Path, guardrails: dict, trace: str) -> Callable[[str], list[dict]]:
    """One chat request with ``traceparent`` through a gateway whose guards run in the guardrails service (both
    exporting to one OTLP sink); returns the spans of that trace by service once both services have sent theirs."""
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(otlp_sink())
        replica = stack.enter_context(EmulatorServer(port=0, served_model_names=["m"]))
        service_url = stack.enter_context(guard_service(tmp_path, sink.url))
        settings = {
            "database": {"url": f"sqlite:///{tmp_path}/gw.db"},
            "models": [model("m", replica.url)],
            "observability": {"recorder": "thread", "otlp_endpoint": sink.url},
            "guardrails": {
                "enabled": True,
                "mode": "service",
                "service": {"url": service_url, "timeout": 5.0},
                **guardrails,
            },
        }
        with _running(settings) as url:
            r = httpx.post(
                url + "/v1/chat/completions",
                json={"model": "m", "max_tokens": 3, "messages": [{"role": "user", "content": "hello there"}]},
                headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-01"},
                timeout=30,
            )
            assert r.status_code == 200, r.text

            def joined(service: str) -> list[dict]:
                return [s for s in sink.spans if s["trace_id"] == trace and s["service"] == service]

            assert eventually(lambda: joined("interlock-guardrails"), timeout=30)
            assert eventually(lambda: any(s["kind"] == SERVER for s in joined("interlock-gateway")), timeout=30)
    return joined


def test_when_a_request_is_scanned_by_the_guardrails_service_then_its_span_joins_the_gateways_trace(tmp_path):
    mask = {"policies": {"mask": {"input": {"pii": {"action": "mask"}}}}, "attach": {"models": {"m": "mask"}}}
    joined = traced_request(tmp_path, mask, "6b2f00c0ffee00000000000000000022")
    gateway = joined("interlock-gateway")
    server = next(s for s in gateway if s["kind"] == SERVER)
    scan_call = next(s for s in gateway if s["name"] == "interlock.guardrails.remote")
    assert scan_call["kind"] == CLIENT and scan_call["parent_id"] == server["span_id"]
    (service_span,) = joined("interlock-guardrails")
    assert service_span["kind"] == SERVER and service_span["parent_id"] == scan_call["span_id"]
    upstream = next(s for s in gateway if s["kind"] == CLIENT and s is not scan_call)
    assert upstream["parent_id"] == server["span_id"]


def test_when_an_answer_is_judged_by_the_guardrails_service_then_its_span_joins_the_requests_trace(tmp_path):
    # Output rules only: every scan the service sees is of the answer.
    out = {
        "policies": {"out": {"output": {"keywords": {"action": "block"}}}},
        "keywords": {"keywords": ["Project Falcon"]},
        "attach": {"models": {"m": "out"}},
    }
    joined = traced_request(tmp_path, out, "6b2f00c0ffee00000000000000000033")
    server = next(s for s in joined("interlock-gateway") if s["kind"] == SERVER)
    (service_span,) = joined("interlock-guardrails")
    assert service_span["kind"] == SERVER and service_span["parent_id"] == server["span_id"]
