"""``GET /metrics`` does not stall the gateway's requests: the registry is rendered off the event loop, scrapes that
come together share one render, and with ``observability.metrics_cache_seconds`` a body is served again that long."""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
import pytest

from interlock.emulator import EmulatorServer
from tests.support.gateway import model, running_gateway
from tests.support.slow_collector import SlowCollector

CHAT = {"model": "m", "max_tokens": 4, "messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture(scope="module")
def worker() -> Iterator[EmulatorServer]:
    with EmulatorServer(port=0, served_model_names=["m"], output_tokens=4) as w:
        yield w


@pytest.fixture
def gateway(worker, tmp_path):
    def start(cache_seconds: float):
        settings = {
            "models": [model("m", worker.url)],
            "database": {"url": f"sqlite:///{tmp_path}/scrape.db"},
            "observability": {"metrics_cache_seconds": cache_seconds},
        }
        return running_gateway(**settings)

    return start


def requests_total(text: str) -> float:
    lines = [line for line in text.splitlines() if line.startswith("interlock_requests_total{")]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


def test_when_a_scrape_is_rendering_then_a_request_is_answered_meanwhile_and_other_scrapes_share_the_render(gateway):
    with gateway(cache_seconds=0) as (url, app), ThreadPoolExecutor(1) as pool:
        slow = SlowCollector()
        app.gateway.metrics.registry.register(slow)
        first = pool.submit(httpx.get, url + "/metrics", timeout=20)
        assert slow.entered.wait(10)
        second = http.client.HTTPConnection(urlsplit(url).hostname, urlsplit(url).port, timeout=20)
        second.request("GET", "/metrics")  # sent now, read below: it arrives while the render runs
        started = time.monotonic()
        try:
            # Answered after the loop took the second scrape in (its bytes came first), while the first renders.
            answer = httpx.post(url + "/v1/chat/completions", json=CHAT, timeout=5)
            assert answer.status_code == 200 and time.monotonic() - started < 5
            assert not first.done()  # the request was answered while the scrape was still rendering
        finally:
            slow.release.set()
        bodies = [first.result().text, second.getresponse().read().decode()]
        second.close()
        assert all("test_slow_collector 1.0" in b for b in bodies)
        assert slow.calls == 1  # the second scrape waited for the first one's render instead of starting its own
        assert requests_total(httpx.get(url + "/metrics").text) == 1  # without a cache, every later scrape is fresh


def test_when_scrapes_come_within_the_cache_time_then_they_get_the_same_body_and_a_fresh_one_after(gateway):
    with gateway(cache_seconds=0.5) as (url, _):
        assert httpx.post(url + "/v1/chat/completions", json=CHAT).status_code == 200
        first = httpx.get(url + "/metrics").content
        assert requests_total(first.decode()) == 1
        assert httpx.post(url + "/v1/chat/completions", json=CHAT).status_code == 200
        assert httpx.get(url + "/metrics").content == first  # within 0.5 s: the same body, not rendered again
        time.sleep(0.6)
        assert requests_total(httpx.get(url + "/metrics").text) == 2
