"""Run a real gateway (uvicorn + our ASGI app) on a free port, for end-to-end tests over HTTP."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

from gateway.core import Gateway
from interlock.settings import load_settings
from services.gateway.app import GatewayApp
from tests.support.servers import free_port


@contextlib.contextmanager
def running_gateway(tracing: Any = None, **settings: Any) -> Iterator[tuple[str, GatewayApp]]:
    """Start a gateway in a background thread (its own event loop); yield its base URL and the app."""
    port = free_port()
    settings.setdefault("server", {})
    settings["server"] = {**settings["server"], "port": port}
    loaded = load_settings(None, **settings)
    app = GatewayApp(loaded, Gateway(loaded, tracing=tracing) if tracing is not None else None)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("gateway did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(30)


def model(name: str, *urls: str, upstream_model: str | None = None, **extra: Any) -> dict[str, Any]:
    """A model entry with one vLLM deployment per URL, named d0, d1, ..."""
    deployments = [{"kind": "vllm", "url": u, "name": f"d{i}"} for i, u in enumerate(urls)]
    if upstream_model:
        for d in deployments:
            d["model"] = upstream_model
    return {"name": name, "deployments": deployments, **extra}
