"""The cache service (``services/cache``): a semantic index two gateways share over HTTP."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from interlock.emulator import EmulatorServer
from observability import Tracing
from services.cache.app import create_cache_app
from tests.e2e.cache.conftest import until
from tests.e2e.cache.test_verifier import vetoed
from tests.support.gateway import model, running_gateway
from tests.support.otlp_sink import otlp_sink
from tests.support.polling import eventually
from tests.support.servers import free_port

SERVER, CLIENT = 2, 3


@contextlib.contextmanager
def serving(app) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def service() -> Iterator[str]:
    with serving(create_cache_app()) as url:
        yield url


def ask(url: str, question: str) -> httpx.Response:
    body = {"model": "m", "messages": [{"role": "user", "content": question}], "max_tokens": 8, "temperature": 0}
    r = httpx.post(url + "/v1/chat/completions", json=body, timeout=30)
    assert r.status_code == 200, r.text
    return r


def test_when_two_gateways_share_the_cache_service_then_one_serves_what_the_other_stored(
    replica: EmulatorServer, service: str, tmp_path
):
    replica.reset()
    cache = {"scope": "global", "semantic": {"enabled": True}}
    with contextlib.ExitStack() as stack:
        a, b = (
            stack.enter_context(running_gateway(
                models=[model("m", replica.url, cache=cache)],
                database={"url": f"sqlite:///{tmp_path}/{name}.db"},
                cache={"semantic_backend": "service", "service_url": service},
            ))[0]
            for name in ("a", "b")
        )  # fmt: skip
        first = ask(a, "How do I reverse a list in Python?")
        r = until(lambda: ask(b, "How can I reverse a Python list?"), "hit-semantic")
        assert r.headers["x-interlock-cache-source"] == first.headers["x-request-id"]
        assert httpx.get(service + "/health").json()["entries"] >= 1
        # The service sends each candidate's vector: B's pair verifier refuses a one-word factual swap.
        ask(a, "Why does smoking cause lung cancer?")
        until(lambda: ask(b, "Why does smoking cause lung cancer?"), "hit-semantic")
        assert ask(b, "Why does smoking prevent lung cancer?").headers["x-interlock-cache"] == "miss"
        assert vetoed(b, "model") == 1


def test_when_the_service_gets_a_bad_vector_or_filter_then_it_is_a_400_naming_the_field(service: str):
    r = httpx.post(service + "/search", json={"partition": "p", "vector": "AAAA", "k": 1})
    assert r.status_code == 400 and r.json()["error"]["param"] == "vector"
    r = httpx.delete(service + "/entries", params={"scope": "tenant"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "scope"


def test_when_the_service_is_down_then_semantic_lookups_are_misses(replica: EmulatorServer, tmp_path):
    replica.reset()
    cache = {"scope": "global", "semantic": {"enabled": True}}
    with running_gateway(
        models=[model("m", replica.url, cache=cache)],
        database={"url": f"sqlite:///{tmp_path}/gw.db"},
        cache={"semantic_backend": "service", "service_url": f"http://127.0.0.1:{free_port()}"},
    ) as (url, _):
        assert ask(url, "How do I reverse a list in Python?").headers["x-interlock-cache"] == "miss"
        assert ask(url, "How can I reverse a Python list?").headers["x-interlock-cache"] == "miss"


def test_when_a_lookup_crosses_the_cache_service_then_its_span_joins_the_requests_trace(
    replica: EmulatorServer, tmp_path
):
    replica.reset()
    cache = {"scope": "global", "semantic": {"enabled": True}}
    trace = "5a1f00c0ffee00000000000000000042"
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(otlp_sink())
        svc = stack.enter_context(serving(create_cache_app(tracing=Tracing("interlock-cache", otlp_endpoint=sink.url))))
        url, _ = stack.enter_context(running_gateway(
            models=[model("m", replica.url, cache=cache)],
            database={"url": f"sqlite:///{tmp_path}/gw.db"},
            cache={"semantic_backend": "service", "service_url": svc},
            observability={"recorder": "thread", "otlp_endpoint": sink.url},
        ))  # fmt: skip
        body = {"model": "m", "messages": [{"role": "user", "content": "How do I reverse a list in Python?"}],
                "max_tokens": 8, "temperature": 0}  # fmt: skip
        r = httpx.post(url + "/v1/chat/completions", json=body, timeout=30,
                       headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-01"})  # fmt: skip
        assert r.status_code == 200 and r.headers["x-interlock-cache"] == "miss"

        def joined() -> list[dict]:
            return [s for s in sink.spans if s["trace_id"] == trace]

        # Each process exports in batches: wait for the three spans, then check how they link.
        assert eventually(lambda: any(s["service"] == "interlock-cache" for s in joined()), timeout=30)
        assert eventually(lambda: any(s["name"] == "interlock.cache.remote" for s in joined()), timeout=30)
        assert eventually(lambda: any(s["kind"] == SERVER and s["service"] == "interlock-gateway"
                                      for s in joined()), timeout=30)  # fmt: skip
        spans = joined()
    gateway_server = next(s for s in spans if s["service"] == "interlock-gateway" and s["kind"] == SERVER)
    client = next(s for s in spans if s["name"] == "interlock.cache.remote")
    assert client["kind"] == CLIENT and client["parent_id"] == gateway_server["span_id"]
    lookup = next(s for s in spans if s["service"] == "interlock-cache")
    assert lookup["kind"] == SERVER and lookup["name"] == "POST /search" and lookup["parent_id"] == client["span_id"]
