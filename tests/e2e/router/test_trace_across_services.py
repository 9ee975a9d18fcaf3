"""One request, one trace across processes: the gateway's spans, the router service's span (``router.mode:
service``) and the upstream's traceparent share a trace id, each linked to its parent."""

from __future__ import annotations

import uuid

import httpx

from tests.e2e.router.conftest import ACCESS, ADMIN, SUPPORT, models
from tests.e2e.router.test_replicas import route, router_service
from tests.support.otlp_sink import otlp_sink
from tests.support.polling import eventually
from tests.support.servers import free_port

SERVER, CLIENT = 2, 3


def test_when_a_request_crosses_the_router_service_then_its_span_joins_the_gateways_trace(
    replicas, redis_url, tmp_path, gateway_factory
):
    port = free_port()
    with otlp_sink() as sink:
        shared = {
            "database": {"url": f"sqlite:///{tmp_path}/shared.db"},
            "redis": {"url": redis_url},
            "access": {**ACCESS, "bus_channel": f"interlock:test:{uuid.uuid4().hex}"},
            "observability": {"recorder": "thread", "otlp_endpoint": sink.url},
        }
        url, _ = gateway_factory(
            models=models(replicas), router={"mode": "service", "service_url": f"http://127.0.0.1:{port}"}, **shared
        )
        assert httpx.put(url + "/admin/routers/support", json=SUPPORT, headers=ADMIN, timeout=120).status_code == 200
        with router_service(shared, port):
            assert eventually(lambda: route(url, "where is my order").get("intent") == "track_order", timeout=60)
            trace = "5a1f00c0ffee00000000000000000011"
            r = httpx.post(
                url + "/v1/chat/completions",
                json={
                    "model": "support",
                    "max_tokens": 4,
                    "messages": [{"role": "user", "content": "where is my order"}],
                },
                headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-01"},
                timeout=30,
            )
            assert r.status_code == 200 and r.headers["x-interlock-route-target"] == "model:cheap"

            def joined() -> list[dict]:
                return [s for s in sink.spans if s["trace_id"] == trace]

            # The router service's span arrives when its exporter's batch is sent: wait for it, then look.
            assert eventually(lambda: any(s["service"] == "interlock-router" for s in joined()), timeout=30)
            assert eventually(lambda: any(s["kind"] == SERVER and s["service"] == "interlock-gateway"
                                          for s in joined()), timeout=30)  # fmt: skip
    spans = joined()
    gateway_server = next(s for s in spans if s["service"] == "interlock-gateway" and s["kind"] == SERVER)
    assert gateway_server["parent_id"] == "00f067aa0ba902b7"
    router_client = next(s for s in spans if s["name"] == "interlock.router.remote")
    assert router_client["kind"] == CLIENT and router_client["parent_id"] == gateway_server["span_id"]
    router_server = next(s for s in spans if s["service"] == "interlock-router")
    assert router_server["kind"] == SERVER and router_server["parent_id"] == router_client["span_id"]
    upstream = next(s for s in spans if s["kind"] == CLIENT and s["name"] != "interlock.router.remote")
    assert upstream["parent_id"] == gateway_server["span_id"]
    # The replica got the upstream span as its parent: a vLLM behind it continues the same trace.
    sent = replicas[1].recorded_requests()[-1]["headers"]["traceparent"]
    assert sent == f"00-{trace}-{upstream['span_id']}-01"
