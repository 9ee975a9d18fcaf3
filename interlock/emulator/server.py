"""Run the emulator: ``run`` serves in this process; ``EmulatorServer`` starts one for tests and benchmarks.

``EmulatorServer`` binds the listening socket itself (so ``port=0`` works and the port is known before
the server starts), then hands it to a child process (default: no shared event loop or GIL with the
caller) or to a thread, and returns once ``/health`` answers.

Uvicorn runs with uvloop and httptools, access log off. Its httptools protocol is subclassed only to put
the connection's transport into the ASGI scope, so ``reset`` and ``cut`` faults can drop a connection
the way a crashed server does, without an ASGI error.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Literal

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from interlock.emulator.app import EmulatorApp
from interlock.emulator.faults import TRANSPORT_KEY
from interlock.emulator.options import EmulatorOptions


class _Protocol(HttpToolsProtocol):
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope[TRANSPORT_KEY] = self.transport  # type: ignore[literal-required]


def _server(options: EmulatorOptions) -> uvicorn.Server:
    config = uvicorn.Config(
        EmulatorApp(options),
        host=options.host,
        port=options.port,
        loop="uvloop",
        http=_Protocol,
        lifespan="on",
        log_level=options.log_level,
        access_log=False,
        # vLLM's keep-alive (TIMEOUT_KEEP_ALIVE = 5 s), so pooled clients meet the same idle closes.
        timeout_keep_alive=5,
        timeout_graceful_shutdown=1,
        backlog=4096,
    )
    return uvicorn.Server(config)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(4096)
    return sock


def run(options: EmulatorOptions, fd: int | None = None) -> None:
    """Serve until SIGINT/SIGTERM; on an inherited listening socket when ``fd`` is given."""
    server = _server(options)
    if fd is None:
        server.run()
    else:
        server.run(sockets=[socket.socket(fileno=fd)])


class EmulatorServer:
    """A vLLM emulator for tests and benchmarks; a context manager.

    ``EmulatorServer(port=0, ttft_ms=20, ...)`` takes any ``EmulatorOptions`` field as a keyword.
    ``url`` is ``http://host:port`` (``base_url`` adds ``/v1`` for the ``openai`` SDK) once started.
    """

    __test__ = False

    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        *,
        mode: Literal["process", "thread"] = "process",
        startup_timeout: float = 15.0,
        **options: Any,
    ) -> None:
        self.options = EmulatorOptions(host=host, port=port, **options)
        self.mode = mode
        self.startup_timeout = startup_timeout
        self.url: str = ""
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None
        self._server: uvicorn.Server | None = None

    @property
    def port(self) -> int:
        return self.options.port

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def start(self) -> EmulatorServer:
        sock = _bind(self.options.host, self.options.port)
        self.options.port = sock.getsockname()[1]
        host = f"[{self.options.host}]" if ":" in self.options.host else self.options.host
        self.url = f"http://{host}:{self.options.port}"
        if self.mode == "process":
            command = [sys.executable, "-m", "interlock.emulator", "--fd", str(sock.fileno())]
            command += ["--options", json.dumps(self.options.to_dict()), "--parent-pid", str(os.getpid())]
            self._proc = subprocess.Popen(command, pass_fds=(sock.fileno(),), stdin=subprocess.DEVNULL)
            sock.close()  # the child holds its own copy
        else:
            self._server = _server(self.options)
            self._thread = threading.Thread(
                target=self._server.run, kwargs={"sockets": [sock]}, name="interlock-emulator", daemon=True
            )
            self._thread.start()
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"emulator exited with code {self._proc.returncode} during startup")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if self._call("GET", "/health")[0] == 200:
                    return
            time.sleep(0.02)
        raise TimeoutError(f"emulator at {self.url} not healthy after {self.startup_timeout}s")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
            self._proc = None
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(5)
            self._server = self._thread = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- debug-route helpers for tests -------------------------------------------------------------

    def _call(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(self.options.host, self.options.port, timeout=5)
        try:
            payload = None if body is None else json.dumps(body).encode()
            headers = {"content-type": "application/json"} if payload is not None else {}
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def _json(self, method: str, path: str, body: Any = None) -> Any:
        status, raw = self._call(method, path, body)
        if status != 200:
            raise RuntimeError(f"{method} {path} answered {status}: {raw[:200]!r}")
        return json.loads(raw)

    def recorded_requests(self) -> list[dict[str, Any]]:
        """Request bodies received, oldest first: ``[{"time", "path", "headers", "body"}]``."""
        return self._json("GET", "/emulator/requests")

    def stats(self) -> dict[str, Any]:
        return self._json("GET", "/emulator/stats")

    def script_faults(self, fault: str, count: int = 1) -> dict[str, Any]:
        """Make the next ``count`` inference requests fail with ``fault`` (see ``faults.py``)."""
        return self._json("POST", "/emulator/faults", {"fault": fault, "count": count})

    def script_replies(self, *replies: str | dict[str, Any]) -> dict[str, Any]:
        """The next inference requests answer exactly these texts, in order (``{"text", "ttft_ms"}`` to delay one;
        ``{"choices": [text, ...]}``: a text per choice of an ``n > 1`` request)."""
        return self._json("POST", "/emulator/replies", {"replies": list(replies)})

    def clear_faults(self) -> dict[str, Any]:
        return self._json("DELETE", "/emulator/faults")

    def set_healthy(self, healthy: bool) -> None:
        self._json("POST", "/emulator/health", {"healthy": healthy})

    def reset(self) -> dict[str, Any]:
        """Counters, records, scripted faults and health back to the start."""
        return self._json("POST", "/emulator/reset")

    def metrics(self) -> str:
        return self._call("GET", "/metrics")[1].decode()
