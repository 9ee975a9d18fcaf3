"""A gateway with a cache in front of one emulated vLLM replica, and callers with their own keys and teams."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from interlock.emulator import EmulatorServer
from tests.support.gateway import model, running_gateway

ADMIN = "admin-token-cache-tests"
#: Callers: two keys of team A, one key of team B.
KEYS = {
    "x": ("sk-il-cachetestxxxxxxxxxxxxxxxx", "team-a"),
    "y": ("sk-il-cachetestyyyyyyyyyyyyyyyy", "team-a"),
    "z": ("sk-il-cachetestzzzzzzzzzzzzzzzz", "team-b"),
}


@pytest.fixture(scope="module")
def replica() -> Iterator[EmulatorServer]:
    with EmulatorServer(port=0, served_model_names=["m"]) as server:
        yield server


def settings(replica: EmulatorServer, cache: dict[str, Any] | None, tmp: Any, **extra: Any) -> dict[str, Any]:
    """Keys required; model ``m`` with ``cache``; model ``plain`` with none."""
    return {
        "models": [model("m", replica.url, cache=cache), model("plain", replica.url, upstream_model="m")],
        "database": {"url": f"sqlite:///{tmp}/gw.db"},
        "access": {
            "require_keys": True,
            "admin_tokens": {ADMIN: "admin"},
            "teams": [{"name": "team-a"}, {"name": "team-b"}],
            "keys": [{"name": n, "key": k, "team": t} for n, (k, t) in KEYS.items()],
        },
        **extra,
    }


@pytest.fixture
def gateway(replica: EmulatorServer, tmp_path):
    """``gateway(cache={...}, **settings)`` -> base URL of a started gateway (stopped after the test)."""
    with contextlib.ExitStack() as stack:

        def start(cache: dict[str, Any] | None = None, **extra: Any) -> str:
            replica.reset()
            url, _ = stack.enter_context(running_gateway(**settings(replica, cache, tmp_path, **extra)))
            return url

        yield start


def ask(
    url: str, caller: str, question: str, *, headers: dict[str, str] | None = None, model_name: str = "m", **body: Any
) -> httpx.Response:
    payload = {"model": model_name, "messages": [{"role": "user", "content": question}], "max_tokens": 8,
               "temperature": 0, **body}  # fmt: skip
    r = httpx.post(
        url + "/v1/chat/completions",
        json=payload,
        headers={"authorization": f"Bearer {KEYS[caller][0]}", **(headers or {})},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r


def admin(url: str, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, url + "/admin" + path, headers={"authorization": f"Bearer {ADMIN}"}, timeout=30, **kw)


def until(call: Any, outcome: str, timeout: float = 10.0) -> Any:
    """Repeat ``call`` until its response's ``x-interlock-cache`` is ``outcome`` (answers are stored in the
    background, just after the response); returns that response."""
    deadline = time.monotonic() + timeout
    while True:
        r = call()
        if r.headers.get("x-interlock-cache") == outcome or time.monotonic() > deadline:
            assert r.headers.get("x-interlock-cache") == outcome, dict(r.headers)
            return r
        time.sleep(0.05)
