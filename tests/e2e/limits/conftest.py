"""Gateway processes (``interlock serve``) on real Redis and PostgreSQL in front of one emulator per module.

The emulator answers at once for ``max_tokens`` 1 and takes ``TPOT_MS`` per further token, so a test picks a
request's duration with ``max_tokens`` alone (one emulator serves fast and slow requests). Every helper
sends ``max_tokens``: the emulator would otherwise produce ``OUTPUT_TOKENS`` at ``TPOT_MS`` each.

A failing test shows the output of every gateway process it started (see ``pytest_runtest_makereport``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import sqlalchemy as sa

from interlock.emulator import EmulatorServer
from tests.support.polling import eventually
from tests.support.processes import GatewayProcess
from tests.support.servers import temporary_database

ADMIN_TOKEN = "admin-token-for-e2e"
#: Models the emulator serves; ``priced`` has prices in the gateway config, the others cost nothing.
MODELS = ["m", "other", "priced"]
PRICE_IN = 0.0001
PRICE_OUT = 0.0002
TPOT_MS = 50
OUTPUT_TOKENS = 64

_started: list[GatewayProcess] = []
#: Record journals of the gateways here, one folder per database as in production, instead of the
#: default under ``~/.cache``; removed when the session ends (one folder per xdist process: each removes its own).
_JOURNALS = (
    Path(tempfile.gettempdir()) / f"interlock-e2e-limits-journals-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """Attach the output of the gateways started so far to a failing test's report."""
    report = yield
    if report.failed:
        for gw in list(_started):
            report.sections.append((f"gateway {gw.url} (pid {gw.pid}) output", gw.output() or "(nothing)"))
    return report


@pytest.fixture(scope="session", autouse=True)
def _remove_journals() -> Iterator[None]:
    yield
    shutil.rmtree(_JOURNALS, ignore_errors=True)


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(port=0, served_model_names=MODELS, tpot_ms=TPOT_MS, output_tokens=OUTPUT_TOKENS) as e:
        yield e


@contextlib.contextmanager
def gateways(*configs: dict[str, Any]) -> Iterator[list[GatewayProcess]]:
    """Start one gateway process per config, all at once (as replicas of one deployment start)."""
    procs = [GatewayProcess(c) for c in configs]
    _started.extend(procs)
    try:
        for p in procs:
            p.launch()
        for p in procs:
            p.wait_ready()
        yield procs
    finally:
        for p in procs:
            p.cleanup()
            _started.remove(p)


def database(server_url: str):
    """A fresh PostgreSQL database on the test server (as the ``postgres_url`` fixture, any scope)."""
    return temporary_database(server_url)


@pytest.fixture(scope="module")
def module_postgres_url(postgres_server_url: str) -> Iterator[str]:
    with database(postgres_server_url) as url:
        yield url


@pytest.fixture(scope="module")
def module_redis_url(redis_server_url: str) -> str:
    """Database 15 (as ``redis_url``). Tests use fresh keys, whose counters share nothing."""
    return redis_server_url.rsplit("/", 1)[0] + "/15"


def models(emulator: EmulatorServer) -> list[dict[str, Any]]:
    deployment = [{"kind": "vllm", "url": emulator.url, "name": "emu"}]
    out: list[dict[str, Any]] = [{"name": n, "deployments": deployment} for n in MODELS]
    out[MODELS.index("priced")]["pricing"] = {"input_per_token": PRICE_IN, "output_per_token": PRICE_OUT}
    return out


def config(
    emulator: EmulatorServer,
    *,
    database_url: str,
    redis_url: str | None,
    policy: str = "closed",
    channel: str | None = None,
    keys: list[dict[str, Any]] | None = None,
    database: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Settings for one gateway: keys required, an admin token, records flushed every 0.1 s.

    Replicas of one deployment must share ``channel`` (the config bus); distinct deployments on the
    shared test Redis get distinct channels so they do not wake each other.
    """
    journal = str(_JOURNALS / hashlib.sha256(database_url.encode()).hexdigest()[:12])
    return {
        "models": models(emulator),
        "database": {"url": database_url, "flush_interval": 0.1, "journal_dir": journal, **(database or {})},
        "redis": {"url": redis_url, "failure_policy": policy},
        "health": {"interval": 1.0},
        "access": {
            "require_keys": True,
            "admin_tokens": {ADMIN_TOKEN: "admin"},
            "bus_channel": channel or f"interlock:config:{uuid.uuid4().hex}",
            "keys": keys or [],
        },
    }


# -- clients ------------------------------------------------------------------------------------------------


def admin(gw: GatewayProcess, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
    """Call the admin API with the admin token; assert the status and return the JSON (or None)."""
    r = httpx.request(
        method, gw.url + "/admin" + path, json=body, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
    )
    assert r.status_code == expect, r.text
    return r.json() if r.content else None


def create_key(gw: GatewayProcess, **spec: Any) -> dict[str, Any]:
    """``POST /admin/keys`` with a unique name; returns the created key (``key`` holds the secret)."""
    spec.setdefault("name", f"k-{uuid.uuid4().hex[:8]}")
    return admin(gw, "POST", "/keys", spec, expect=201)


def sdk(gw: GatewayProcess, key: str) -> openai.OpenAI:
    """The ``openai`` SDK against a gateway; no retries, so every refusal surfaces."""
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0, timeout=10)


def chat_body(model: str = "m", max_tokens: int = 1, content: str = "hi") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens}


def completion_body(prompt_tokens: int, max_tokens: int = 1, model: str = "m") -> dict[str, Any]:
    """A completions request whose TPM reservation equals its real usage: a prompt of token ids counts one
    token per id for the gateway's estimate and for the emulator, and the emulator produces exactly
    ``max_tokens`` (below ``OUTPUT_TOKENS``). Settling then changes nothing, however requests interleave."""
    return {"model": model, "prompt": list(range(1, prompt_tokens + 1)), "max_tokens": max_tokens}


def post(gw: GatewayProcess, key: str | None, body: dict[str, Any], route: str = "chat/completions", **kw: Any):
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{gw.url}/v1/{route}", json=body, headers=headers, timeout=kw.pop("timeout", 10), **kw)


def cost(usage: dict[str, int]) -> float:
    """What a request to ``priced`` costs at the configured prices."""
    return usage["prompt_tokens"] * PRICE_IN + usage["completion_tokens"] * PRICE_OUT


# -- the database -------------------------------------------------------------------------------------------


def records(database_url: str, key_id: str | None = None) -> list[dict[str, Any]]:
    """``request_records`` rows (of one key when given)."""
    engine = sa.create_engine(database_url)
    try:
        query = "SELECT * FROM request_records" + (" WHERE key_id = :k" if key_id else "")
        with engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(sa.text(query), {"k": key_id})]
    finally:
        engine.dispose()


def wait_records(database_url: str, key_id: str | None, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The rows once at least ``count`` are stored (or whatever is there after ``timeout``)."""
    rows: list[dict[str, Any]] = []

    def enough() -> bool:
        rows[:] = records(database_url, key_id)
        return len(rows) >= count

    eventually(enough, timeout, interval=0.1)
    return rows
