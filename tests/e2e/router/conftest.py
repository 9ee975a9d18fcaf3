"""Gateways in front of emulated vLLM replicas, with intent routers defined through the admin API."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from interlock.emulator import EmulatorServer
from tests.router.intent.conftest import SUPPORT
from tests.support.servers import free_port

ADMIN = {"Authorization": "Bearer admin-token-for-tests"}
ACCESS = {"admin_tokens": {"admin-token-for-tests": "admin"}}


@pytest.fixture(scope="module")
def replicas() -> Iterator[list[EmulatorServer]]:
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(EmulatorServer(port=0, served_model_names=["m"])) for _ in range(2)]


def models(replicas) -> list[dict]:
    """``strong`` and ``cheap`` (each on its own emulator, serving upstream model ``m``) and ``big``."""
    return [
        {"name": "strong", "deployments": [{"kind": "vllm", "url": replicas[0].url, "model": "m", "name": "s"}]},
        {"name": "cheap", "deployments": [{"kind": "vllm", "url": replicas[1].url, "model": "m", "name": "c"}]},
        {"name": "big", "deployments": [{"kind": "vllm", "url": replicas[0].url, "model": "m", "name": "b"}]},
    ]


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict]]]:
    """A webhook receiver: its URL and the events it got."""
    events: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            events.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", events
    server.shutdown()
    server.server_close()


__all__ = ["ACCESS", "ADMIN", "SUPPORT", "models"]


@pytest.fixture
def gateway_factory(tmp_path):
    """``gateway_factory(models=[...], **settings)`` starts a gateway and returns ``(url, app)``."""
    from tests.support.gateway import running_gateway

    with contextlib.ExitStack() as stack:

        def start(**settings):
            settings.setdefault("database", {"url": f"sqlite:///{tmp_path}/gw.db"})
            settings.setdefault("health", {"interval": 0.2, "failure_threshold": 2, "cooldown": 0.5})
            # Records in a thread: no recorder process to wait for (its start is not what these tests are about).
            settings.setdefault("observability", {"recorder": "thread"})
            return stack.enter_context(running_gateway(**settings))

        yield start
