"""One emulated vLLM replica and one gateway with guardrails on, several policies attached by model name.

The emulator echoes the last user message (masked, as the gateway sent it), so its answer carries the
placeholders back and the test sees whether the gateway unmasked them.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
import uvicorn

from interlock.emulator import EmulatorServer
from interlock.settings import load_settings
from services.gateway.app import GatewayApp
from tests.support.gateway import model
from tests.support.servers import free_port

POLICIES: dict[str, Any] = {
    "mask": {"input": {"pii": {"action": "mask"}, "secrets": {"action": "mask"}, "keywords": {"action": "mask"}}},
    "block": {
        "input": {
            "injection": {"action": "block"},
            "secrets": {"action": "block"},
            "keywords": {"action": "block"},
            "pii": {"action": "mask", "types": {"US_SSN": "block"}},
        }
    },
    "stock": {"input": {"secrets": {"action": "block"}}, "block_with": "stock", "stock_reply": "Not with secrets."},
    "closed": {"input": {"pii": {"action": "mask"}}, "timeout": 0.000001},
    "open": {"input": {"pii": {"action": "mask"}}, "timeout": 0.000001, "on_error": "open"},
    "output-mask": {"output": {"pii": {"action": "mask"}}, "output_actions": {"redaction": "[{type} removed]"}},
}
MODELS = {"m-mask": "mask", "m-block": "block", "m-stock": "stock", "m-closed": "closed", "m-open": "open"}


@pytest.fixture(scope="module")
def replica() -> Iterator[EmulatorServer]:
    with EmulatorServer(port=0, served_model_names=["m"]) as server:
        yield server


@pytest.fixture(scope="module")
def guarded(replica: EmulatorServer, tmp_path_factory) -> Iterator[str]:
    """The gateway's base URL; models ``m-<policy>`` carry each policy, ``m-plain`` none."""
    db = tmp_path_factory.mktemp("guardrails") / "gw.db"
    models = [model(name, replica.url, upstream_model="m") for name in [*MODELS, "m-plain"]]
    settings = {
        "database": {"url": f"sqlite:///{db}"},
        "models": models,
        "guardrails": {
            "enabled": True,
            "keywords": {"keywords": ["Project Falcon"]},
            "policies": POLICIES,
            "attach": {"models": MODELS},
        },
    }
    with contextlib.ExitStack() as stack:
        yield stack.enter_context(_running(settings))


@contextlib.contextmanager
def _running(settings: dict[str, Any]) -> Iterator[str]:
    """Like ``tests.support.gateway.running_gateway``, with time for the guard models to load on a busy machine."""
    port = free_port()
    app = GatewayApp(load_settings(None, **settings, server={"port": port}))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 180
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("gateway did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture
def upstream(replica: EmulatorServer) -> EmulatorServer:
    replica.reset()
    return replica


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)


def post(url: str, path: str, body: Any) -> httpx.Response:
    return httpx.post(url + path, json=body, timeout=30)
