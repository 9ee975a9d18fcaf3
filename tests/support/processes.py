"""Real gateway processes (``interlock serve``) for end-to-end tests that need several replicas, signals or
crashes: things an in-thread gateway (``tests.support.gateway``) cannot show.

    with GatewayProcess({"models": [...], "redis": {"url": redis_url}}) as gw:
        httpx.get(gw.url + "/health")
        gw.stop()            # SIGTERM, then wait for a clean exit

The settings dict is written to a YAML file in a private temporary folder; the process's output goes to a
log file there, and ``output()`` returns it so a failing test can show why a gateway died.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.servers import free_port

#: Runs the ``interlock`` CLI with the test interpreter, so it works wherever the package is importable
#: (a venv, CI) without relying on the console script being on PATH.
_CLI = [sys.executable, "-c", "from interlock.cli import main; main()"]


class GatewayStartFailed(RuntimeError):
    """The gateway exited or did not answer ``/health`` in time; the message holds its output."""


class GatewayProcess:
    """One ``interlock serve`` process on 127.0.0.1; a context manager (started on enter, stopped on exit).

    ``config`` is the settings tree as a dict (``server.port`` is set from ``port``, a free one when
    ``None``). ``url`` is ``http://127.0.0.1:<port>``. ``env``: extra environment variables (the caller's
    ``INTERLOCK_*``, ``DATABASE_URL`` and ``REDIS_URL`` are not passed on: the file is the configuration).
    """

    __test__ = False

    def __init__(
        self,
        config: dict[str, Any],
        port: int | None = None,
        *,
        startup_timeout: float = 30.0,
        log_level: str = "warning",
        env: dict[str, str] | None = None,
    ) -> None:
        self.config = config
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.startup_timeout = startup_timeout
        self.log_level = log_level
        self.env = env or {}
        self.proc: subprocess.Popen | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="interlock-gw-"))
        self.config_path = self._dir / "interlock.yaml"
        self.log_path = self._dir / "gateway.log"
        self._log = None
        self._launched_at = 0.0

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> GatewayProcess:
        """Launch the process and return once ``/health`` answers 200; raise ``GatewayStartFailed`` if not."""
        self.launch()
        return self.wait_ready()

    def launch(self) -> GatewayProcess:
        """Write the settings file and start the process without waiting (to start replicas together)."""
        config = {**self.config, "server": {**self.config.get("server", {}), "host": "127.0.0.1", "port": self.port}}
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        # The settings file is the whole configuration: overrides from the caller's environment (which
        # beat the file) must not leak in. ``env`` adds some back on purpose.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("INTERLOCK_") and k not in ("DATABASE_URL", "REDIS_URL")
        }
        env.update(self.env)
        command = [*_CLI, "serve", "--config", str(self.config_path), "--port", str(self.port)]
        command += ["--log-level", self.log_level]
        self.proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=env
        )
        self._launched_at = time.monotonic()
        return self

    def wait_ready(self) -> GatewayProcess:
        """Wait until ``/health`` answers 200 (``startup_timeout`` from launch); raise ``GatewayStartFailed``."""
        assert self.proc is not None, "launch() first"
        deadline = self._launched_at + self.startup_timeout
        with httpx.Client(timeout=0.5) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise GatewayStartFailed(f"gateway exited with {self.proc.returncode}:\n{self.output()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(self.url + "/health").status_code == 200:
                        return self
                time.sleep(0.05)
        self.kill()
        raise GatewayStartFailed(f"gateway did not answer /health within {self.startup_timeout}s:\n{self.output()}")

    @property
    def alive(self) -> bool:
        """The process is running (started and not exited)."""
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        """Send ``sig`` (SIGTERM: graceful shutdown) and wait up to ``timeout`` s; SIGKILL if it hangs.
        Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._close_log()
        return self.proc.returncode

    def kill(self) -> int | None:
        """SIGKILL: the process dies at once, as in a crash or an OOM kill. Its children (the recorder)
        live on, as they do when the kernel's OOM killer picks the gateway."""
        return self.stop(signal.SIGKILL, timeout=10.0)

    def children(self) -> list[int]:
        """Pids of the processes this gateway started (its recorder), from ``/proc``."""
        if self.proc is None:
            return []
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError, IndexError), open(f"/proc/{entry}/stat") as f:
                    # The command name is in parentheses and may hold spaces: the ppid follows the last ')'.
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                        found.append(int(entry))
        return found

    def kill_all(self) -> int | None:
        """SIGKILL the gateway and its children at once, as when its container or machine is killed."""
        for pid in self.children():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return self.kill()

    def output(self, tail: int = 8000) -> str:
        """The last ``tail`` characters the process printed (stdout and stderr)."""
        if self._log is not None:
            self._log.flush()
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except FileNotFoundError:
            return ""

    def cleanup(self) -> None:
        """Stop the process if it runs (SIGTERM, SIGKILL after 10 s) and remove its temporary folder."""
        self.stop(timeout=10.0)
        shutil.rmtree(self._dir, ignore_errors=True)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> GatewayProcess:
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        return f"GatewayProcess(url={self.url!r}, pid={self.pid}, alive={self.alive})"
