"""Requests the gateway refuses itself are records and metrics too, on SQLite and on a real PostgreSQL.

Ops must see bad clients and refused callers: each refusal (400, 405, 413, 415, 401, 403, 404, 429) is a row
with its status, its error type and the key when the request carried a valid one, and a count in
``interlock_requests_total``.
"""

from __future__ import annotations

import re
import time

import httpx

from tests.e2e.gateway.conftest import stored_records
from tests.support.gateway import model, running_gateway

KEY = "sk-il-refusals-test-key-0123456789abcdef"
JSON = {"content-type": "application/json"}
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}


def counted(metrics: str, status: int) -> float:
    """``interlock_requests_total`` summed over routes and models for one status."""
    pattern = re.compile(r"^interlock_requests_total\{[^}]*status=\"" + str(status) + r"\"[^}]*\} (\S+)$", re.M)
    return sum(float(v) for v in pattern.findall(metrics))


def test_when_the_gateway_refuses_requests_then_each_is_recorded_and_counted(fresh, database_url, redis_url):
    settings = {
        "models": [model("m", fresh[0].url), model("other", fresh[0].url)],
        "database": {"url": database_url, "flush_interval": 0.1},
        "redis": {"url": redis_url},
        "server": {"max_body_bytes": 2048},
        "access": {
            "require_keys": True,
            "keys": [{"name": "refusals", "key": KEY, "allowed_models": ["m"], "limits": {"rpm": 1}}],
            "bus_channel": f"interlock:config:refusals:{time.monotonic_ns()}",
        },
    }
    with running_gateway(**settings) as (url, _app):
        chat = url + "/v1/chat/completions"
        auth = {"authorization": f"Bearer {KEY}", "x-request-id": "same-client-id"}
        sent = {
            200: httpx.post(chat, json=BODY, headers=auth),
            400: httpx.post(chat, content=b"{not json", headers={**auth, **JSON}),
            405: httpx.get(chat, headers=auth),
            413: httpx.post(chat, json={**BODY, "pad": "x" * 4096}, headers=auth),
            415: httpx.post(chat, content=b"{}", headers={**auth, "content-type": "text/plain"}),
            401: httpx.post(chat, json=BODY, headers={"authorization": "Bearer sk-il-" + "0" * 32}),
            403: httpx.post(chat, json={**BODY, "model": "other"}, headers=auth),
            404: httpx.post(chat, json={**BODY, "model": "ghost"}, headers=auth),
            429: httpx.post(chat, json=BODY, headers=auth),  # the key's one request per minute is spent
        }
        assert {status: r.status_code for status, r in sent.items()} == {s: s for s in sent}
        metrics = httpx.get(url + "/metrics").text

    found = {r["status"]: r for r in stored_records(database_url, len(sent))}
    assert sorted(found) == sorted(sent)
    assert all(found[s]["client_request_id"] == "same-client-id" for s in sent if s != 401)
    key_id = found[200]["key_id"]
    assert key_id is not None
    for status, r in sent.items():
        row = found[status]
        assert row["id"] == r.headers["x-interlock-request-id"]
        assert row["route"] == "chat" and row["cost_usd"] == 0.0
        if status != 200:
            assert row["error_type"] == r.json()["error"]["type"], status
        # The key is known for every refusal that carried a valid one, refused before parsing or after.
        assert row["key_id"] == (None if status == 401 else key_id), status
    for status in sent:
        assert counted(metrics, status) >= 1, status
