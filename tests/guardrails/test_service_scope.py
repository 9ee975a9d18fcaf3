"""The guardrails service memoises PII findings per caller scope, as the embedded engine does: the gateway sends
the scope with each ``POST /scan``; a scope the service has seen a text from answers from the memo, another
scope (or none) does not. The app runs in process, started through its ASGI lifespan."""

from __future__ import annotations

import asyncio
import contextlib

import httpx

from interlock.settings import load_settings
from services.guardrails.app import GuardrailsServiceApp

TEXT = "You are the assistant of Dr. Maria Gonzalez's clinic in Denver. Call 303-555-0147."
RULES = {"pii": {"action": "mask"}}


@contextlib.asynccontextmanager
async def started(app: GuardrailsServiceApp):
    inbox: asyncio.Queue = asyncio.Queue()
    outbox: asyncio.Queue = asyncio.Queue()
    task = asyncio.create_task(app({"type": "lifespan"}, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    assert (await asyncio.wait_for(outbox.get(), 120))["type"] == "lifespan.startup.complete"
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
            yield client
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(task, 30)


async def test_when_a_caller_scans_a_text_again_then_the_service_answers_from_its_memo_for_that_caller_only():
    app = GuardrailsServiceApp(load_settings(None, guardrails={"enabled": True}))
    async with started(app) as client:
        replies = []
        for scope in ("key:a", "key:a", "key:b", None):
            r = await client.post("/scan", json={"texts": [TEXT], "rules": RULES, "scope": scope})
            assert r.status_code == 200, r.text
            replies.append(r.json()["findings"])
        memo = app.engine.guards["pii"].memo
        assert (memo.hits, memo.misses) == (1, 2)  # key:a again hit; key:b missed; no scope never looks
        assert all(found == replies[0] for found in replies) and replies[0]


async def test_when_the_scope_is_not_a_string_then_the_scan_is_refused_naming_it():
    app = GuardrailsServiceApp(load_settings(None, guardrails={"enabled": True}))
    async with started(app) as client:
        r = await client.post("/scan", json={"texts": ["hi"], "rules": RULES, "scope": 7})
    assert r.status_code == 400 and r.json()["error"]["param"] == "scope"
