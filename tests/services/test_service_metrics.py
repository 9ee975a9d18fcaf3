"""Every microservice answers ``GET /metrics``: its calls by route and status, and their latency."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from services.cache.app import create_cache_app
from services.guardrails.app import GuardrailsServiceApp
from services.router.app import RouterServiceApp
from tests.support.slow_collector import SlowCollector


def _count(text: str, service: str, route: str, status: str) -> float:
    prefix = f'interlock_service_requests_total{{route="{route}",service="{service}",status="{status}"}} '
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0


async def _call(app, method: str, path: str, **kw) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
        return await client.request(method, path, **kw)


@pytest.mark.parametrize(
    ("make", "service", "method", "path", "body", "status"),
    [
        # Not started (no lifespan here): the guards are not loaded, so a scan is a 503 "starting".
        (lambda: GuardrailsServiceApp(None), "interlock-guardrails", "POST", "/scan", {"texts": [], "rules": {}}, 503),
        (lambda: RouterServiceApp(None), "interlock-router", "GET", "/routers", None, 200),
        (lambda: create_cache_app(dim=4), "interlock-cache", "POST", "/search", {"partition": "p", "vector": "x"}, 400),
    ],
)
async def test_when_a_service_answers_then_metrics_count_the_call_by_route_and_status(
    make, service, method, path, body, status
):
    app = make()
    reply = await _call(app, method, path, json=body)
    assert reply.status_code == status
    await _call(app, "GET", "/no/such/route")
    metrics = await _call(app, "GET", "/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert _count(text, service, path, str(status)) == 1
    assert _count(text, service, "other", "404") == 1  # a made-up path is never a series of its own
    assert f'interlock_service_latency_seconds_count{{route="{path}",service="{service}"}} 1.0' in text


@pytest.mark.parametrize(
    ("make", "path"), [(lambda: RouterServiceApp(None), "/routers"), (lambda: create_cache_app(dim=4), "/health")]
)
async def test_when_a_scrape_is_rendering_then_the_service_answers_other_calls_meanwhile(make, path):
    app = make()
    slow = SlowCollector()
    (app.metrics if hasattr(app, "metrics") else app.state.metrics).registry.register(slow)
    scrape = asyncio.ensure_future(_call(app, "GET", "/metrics"))
    try:
        assert await asyncio.to_thread(slow.entered.wait, 5)
        reply = await asyncio.wait_for(_call(app, "GET", path), 5)
        assert reply.status_code == 200
        assert not scrape.done()  # answered while the scrape was still rendering: the event loop was free
    finally:
        slow.release.set()
    assert "test_slow_collector 1.0" in (await scrape).text
