"""Child processes of the benchmark: started pinned to a core, waited for, and always stopped.

Every process the benchmark starts is registered with one ``Processes`` stack and stopped in reverse order
when the stack closes, on a normal exit, an error, Ctrl-C or SIGTERM alike. Each child gets its own process
group so that stopping it also stops anything it forked (LiteLLM's uvicorn, for one), and only that.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


class StartupError(RuntimeError):
    """A child did not become ready; the message names it and ends with the tail of its log."""


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1 (for servers that only take a port number)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pin_self(cpu: int) -> None:
    """Pin this process (the client and everything it starts without an explicit core) to ``cpu``."""
    os.sched_setaffinity(0, {cpu})


def pinned(cmd: list[str], cpu: int) -> list[str]:
    """``cmd`` prefixed with ``taskset`` so that every thread of the child, not just its first, is pinned."""
    taskset = shutil.which("taskset")
    if taskset is None:
        raise RuntimeError("taskset (util-linux) is needed to pin processes to a core")
    return [taskset, "-c", str(cpu), *cmd]


def _log_tail(path: Path, lines: int = 25) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


class Child:
    """One started process and the file its output goes to."""

    def __init__(self, name: str, popen: subprocess.Popen, log_path: Path) -> None:
        self.name = name
        self.popen = popen
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self) -> str:
        return _log_tail(self.log_path)

    def stop(self, timeout: float = 8.0) -> None:
        """SIGINT first (uvicorn then shuts down cleanly and flushes), then SIGTERM, then SIGKILL."""
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
            if self.popen.poll() is not None:
                return
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)  # its own group (start_new_session): only what we started
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(wait)


class Processes:
    """The stack of everything started; a context manager that stops all of it on the way out."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._children: list[Child] = []
        self._stoppers: list[object] = []  # objects with .stop() started through another API (the emulator)
        self._old_term = self._old_int = None

    def __enter__(self) -> Processes:
        # SIGTERM becomes KeyboardInterrupt so the same unwinding as Ctrl-C stops the children; SIGINT too,
        # even when the shell that started us in the background had it ignored.
        self._old_term = signal.signal(signal.SIGTERM, _raise_interrupt)
        self._old_int = signal.signal(signal.SIGINT, signal.default_int_handler)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop_all()
        finally:
            signal.signal(signal.SIGTERM, self._old_term or signal.SIG_DFL)
            signal.signal(signal.SIGINT, self._old_int or signal.SIG_DFL)

    def start(
        self,
        name: str,
        cmd: list[str],
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        pass_fds: tuple[int, ...] = (),
    ) -> Child:
        log_path = self.log_dir / f"{name}.log"
        log = log_path.open("wb")
        popen = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            pass_fds=pass_fds,
        )
        log.close()  # the child has its own descriptor
        child = Child(name, popen, log_path)
        self._children.append(child)
        return child

    def adopt(self, stoppable: object) -> None:
        """Register something with a ``stop()`` method (e.g. ``EmulatorServer``) to be stopped with the rest."""
        self._stoppers.append(stoppable)

    def stop(self, child: Child) -> None:
        child.stop()
        if child in self._children:
            self._children.remove(child)

    def stop_all(self) -> None:
        while self._children:
            self._children.pop().stop()
        while self._stoppers:
            with contextlib.suppress(Exception):
                self._stoppers.pop().stop()  # type: ignore[attr-defined]


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def wait_http(child: Child, host: str, port: int, path: str, timeout: float) -> None:
    """Poll ``GET path`` until it answers 200, the child exits, or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if child.popen.poll() is not None:
            raise StartupError(f"{child.name} exited with code {child.popen.returncode}:\n{child.log_tail()}")
        conn = http.client.HTTPConnection(host, port, timeout=2)
        try:
            conn.request("GET", path)
            status = conn.getresponse().status
            if status == 200:
                return
            last = f"status {status}"
        except (OSError, http.client.HTTPException) as exc:
            last = repr(exc)
        finally:
            conn.close()
        time.sleep(0.1)
    raise StartupError(f"{child.name} not ready on :{port}{path} after {timeout}s ({last}):\n{child.log_tail()}")
