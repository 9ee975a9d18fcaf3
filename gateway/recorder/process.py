"""The gateway's side of its recorder: start it, feed it spans, read its reports, restart it if it dies.

``RecorderProcess`` runs ``python -m gateway.recorder`` (``main.py``) as a child of this gateway process.
On the request path it costs one list append per span (``add_span``); a task moves the spans into the
child's stdin every ``span_interval`` as one write. The child runs at idle priority, so under full load it
reads little until the load eases. The bytes waiting here for its pipe say how far behind it is: past
``behind_bytes`` the share of new traces that are recorded at all (``keep_ratio``, given to ``on_keep_ratio``:
the gateway's ``Tracing``) is halved each interval, and once the child took everything it grows back. So under
sustained load spans are sampled in proportion to what the child can export, whole traces at a time, and
counted (``Tracing.shed``), instead of most being dropped after they were made. ``max_buffered`` (64 MiB) is
the last resort: beyond it spans are dropped and counted, because traces must never cost requests. Request
records do not pass through here at all: they are in the journal on disk, which the child reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

import orjson

log = logging.getLogger("interlock.recorder")

_TOTALS = ("written", "rejected", "errors", "spans", "spans_dropped")
#: The least share of traces kept while the recorder is behind: a trickle still shows what is going on.
MIN_KEEP_RATIO = 1 / 1024


class RecorderProcess:
    """One recorder child; ``settings`` is ``main.Settings`` as a dict. ``on_progress(written, rejected)``
    receives how many more journaled rows the child wrote and refused since its last report."""

    def __init__(
        self,
        settings: dict[str, Any],
        on_progress: Callable[[int, int], None] | None = None,
        *,
        on_keep_ratio: Callable[[float], None] | None = None,
        span_interval: float = 0.25,
        behind_bytes: int = 4 * 1024 * 1024,
        max_buffered: int = 64 * 1024 * 1024,
        restart_delay: float = 1.0,
    ) -> None:
        self.settings = settings
        self._on_progress = on_progress
        self._on_keep_ratio = on_keep_ratio
        self._span_interval = span_interval
        self._behind = behind_bytes
        self._max_buffered = max_buffered
        #: Share of new traces to record (see the module docstring).
        self.keep_ratio = 1.0
        self._restart_delay = restart_delay
        self._spans: list[bytes] = []
        self._proc: asyncio.subprocess.Process | None = None
        self._pipe: asyncio.WriteTransport | None = None  # the child's stdin
        self._tasks: list[asyncio.Task] = []
        self._closing = False
        self._ready = asyncio.Event()
        self._last = dict.fromkeys(_TOTALS, 0)  # the running child's last report
        #: Totals over every child this gateway ran: rows written and refused, failed batches, spans
        #: exported and dropped (by the child, or here when it could not keep up), restarts.
        self.totals = dict.fromkeys(_TOTALS, 0)
        self.restarts = 0

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self) -> None:
        await self._spawn()
        self._tasks = [
            asyncio.create_task(self._supervise(), name="interlock-recorder"),
            asyncio.create_task(self._pump_spans(), name="interlock-recorder-spans"),
        ]

    async def wait_ready(self, timeout: float) -> bool:
        """Wait until the child has started (its imports and database engine cost ~0.5 s of CPU, which
        would otherwise land on the first requests); ``False`` if it did not within ``timeout``."""
        try:
            async with asyncio.timeout(timeout):
                await self._ready.wait()
        except TimeoutError:
            log.warning("recorder not ready after %.0fs; records wait in the journal meanwhile", timeout)
            return False
        return True

    def add_span(self, encoded: bytes) -> None:
        """Hot path: one OTLP/JSON-encoded span for the collector."""
        self._spans.append(encoded)

    async def aclose(self, timeout: float = 10.0) -> None:
        """Hand over the last spans, close the child's input and wait for it to finish (the gateway has
        released its journal by now, so the child ships what is left and exits)."""
        self._closing = True
        self._send_spans()
        if self._pipe is not None:
            self._pipe.close()  # after what is buffered is written
        for task in self._tasks[1:]:
            task.cancel()
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(*self._tasks, return_exceptions=True)
        except TimeoutError:
            log.warning("recorder still shipping after %.0fs; it finishes on its own", timeout)
            for task in self._tasks:
                task.cancel()

    async def _spawn(self) -> None:
        # Our own pipe for its stdin, so it can be widened (asyncio's subprocess pipes do not expose theirs).
        read_fd, write_fd = os.pipe()
        try:
            _widen(write_fd)
            # Settings (a database password among them) go through the pipe, never the command line.
            os.write(write_fd, orjson.dumps(self.settings, option=orjson.OPT_APPEND_NEWLINE))
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "gateway.recorder",
                stdin=read_fd,
                stdout=asyncio.subprocess.PIPE,
                # The gateway's process group and session, on purpose: with autogroup scheduling (most
                # desktop and many server kernels) a new session is a scheduling group with a full share of
                # the CPU of its own, and the child's lower priority would count only inside it. A Ctrl-C
                # to the group is ignored by the child (main.py): the gateway says when it ends.
            )
        except BaseException:
            os.close(write_fd)
            raise
        finally:
            os.close(read_fd)
        os.set_blocking(write_fd, False)
        loop = asyncio.get_running_loop()
        self._pipe, _ = await loop.connect_write_pipe(asyncio.BaseProtocol, os.fdopen(write_fd, "wb", buffering=0))
        self._last = dict.fromkeys(_TOTALS, 0)

    async def _supervise(self) -> None:
        while True:
            proc = self._proc
            assert proc is not None and proc.stdout is not None
            async for line in proc.stdout:
                with contextlib.suppress(ValueError, TypeError):
                    self._progress(orjson.loads(line))
                self._ready.set()
            code = await proc.wait()
            if self._closing:
                return
            self.restarts += 1
            if self._pipe is not None:
                self._pipe.abort()  # its reader is gone; what was buffered for it is lost with it
            log.warning("recorder exited with code %s; restarting it (records wait in the journal)", code)
            await asyncio.sleep(self._restart_delay)
            if self._closing:
                return
            with contextlib.suppress(OSError):
                await self._spawn()
                continue
            log.error("recorder could not be started; trying again")

    def _progress(self, report: dict[str, int]) -> None:
        delta = {k: max(0, int(report.get(k, 0)) - self._last[k]) for k in _TOTALS}
        self._last = {k: int(report.get(k, 0)) for k in _TOTALS}
        for k, v in delta.items():
            self.totals[k] += v
        if self._on_progress is not None and (delta["written"] or delta["rejected"]):
            self._on_progress(delta["written"], delta["rejected"])

    async def _pump_spans(self) -> None:
        while True:
            await asyncio.sleep(self._span_interval)
            self._send_spans()

    def _send_spans(self) -> None:
        pipe = self._pipe
        if pipe is not None and not pipe.is_closing():
            self._pace(pipe.get_write_buffer_size())
        spans = self._spans
        if not spans:
            return
        self._spans = []
        if pipe is None or pipe.is_closing() or not self.running:
            self.totals["spans_dropped"] += len(spans)
            return
        if pipe.get_write_buffer_size() > self._max_buffered:
            self.totals["spans_dropped"] += len(spans)  # the child is not keeping up
            return
        spans.append(b"")
        pipe.write(b"\n".join(spans))

    def _pace(self, waiting: int) -> None:
        """Halve the share of traces kept while more than ``behind_bytes`` wait for the child; grow it back by a
        quarter each interval once nothing waits (a few seconds from the floor to all)."""
        ratio = self.keep_ratio
        if waiting > self._behind:
            ratio = max(ratio / 2, MIN_KEEP_RATIO)
        elif waiting == 0 and ratio < 1.0:
            ratio = min(1.0, ratio * 1.25)
        if ratio != self.keep_ratio:
            self.keep_ratio = ratio
            if self._on_keep_ratio is not None:
                self._on_keep_ratio(ratio)


def _widen(fd: int) -> None:
    """A 1 MiB pipe (the most an unprivileged process may ask for by default) instead of 64 KiB: a quarter
    second of spans then goes in one write and wakes the child once."""
    import fcntl

    with contextlib.suppress(OSError, AttributeError):  # not Linux, or a lower limit: 64 KiB works too
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)
