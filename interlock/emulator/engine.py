"""The emulated engine's state: the scheduler (running / waiting), KV usage, counters and debug records.

The scheduler works like vLLM's at the level a router sees: at most ``max_num_seqs`` requests run at
once and the rest wait in FIFO order. KV usage counts, for each running request, its prompt tokens plus
the output tokens it will produce (reserved when it starts running), over ``kv_cache_tokens``.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections import Counter, deque
from typing import Any

import orjson

from interlock.emulator.faults import FaultPlan
from interlock.emulator.options import EmulatorOptions

# vLLM's buckets (v1/metrics/loggers.py) for time to first token and end-to-end latency, in seconds.
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
                20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)  # fmt: skip
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
               480.0, 960.0, 1920.0, 7680.0)  # fmt: skip
FINISH_REASONS = ("stop", "length", "abort", "error")


class Histogram:
    """A cumulative-bucket histogram, rendered in Prometheus text format by ``metrics.py``."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.count += 1


class Engine:
    """Long-lived state of one emulator process; handlers hold it, requests change it."""

    def __init__(self, options: EmulatorOptions) -> None:
        self.options = options
        self.created = time.time()
        self.faults = FaultPlan(options.faults, options.fault_rate, options.fault_seed)
        self.healthy = True
        self._queue: deque[asyncio.Future] = deque()
        # Live state: changes only as requests start and settle, never by ``reset``.
        self.running = 0
        self.waiting = 0
        self.kv_tokens = 0
        self.in_flight = 0
        self.reset()

    def reset(self) -> None:
        """Forget counters, records and scripted faults (requests in flight still settle normally)."""
        self.prompt_tokens_total = 0
        self.generation_tokens_total = 0
        self.finished: Counter[str] = Counter({reason: 0 for reason in FINISH_REASONS})
        self.ttft = Histogram(TTFT_BUCKETS)
        self.e2e = Histogram(E2E_BUCKETS)
        self.received = 0
        self.cancelled = 0
        self.by_route: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()
        self.recent: deque[tuple[float, str, list, bytes]] = deque(maxlen=self.options.record_requests)
        self.faults.clear()
        self.faults.injected = 0
        #: Scripted answers for the next inference requests: ``(text, or a text per choice, ttft in seconds or
        #: None, tool calls or None)``, oldest first.
        self.replies: deque[tuple[str | list[str | list[str]], float | None, list | None]] = deque()

    # -- scheduler -------------------------------------------------------------------------------

    async def admit(self, tokens: int) -> None:
        """Wait for a running slot (FIFO), then reserve ``tokens`` of KV cache."""
        if self.running < self.options.max_num_seqs and not self._queue:
            self.running += 1
        else:
            fut = asyncio.get_running_loop().create_future()
            self._queue.append(fut)
            self.waiting += 1
            try:
                await fut
            except asyncio.CancelledError:
                if fut.cancelled():
                    if fut in self._queue:
                        self._queue.remove(fut)
                else:  # the slot was handed to us as we were cancelled: pass it on
                    self._hand_over()
                raise
            finally:
                self.waiting -= 1
        self.kv_tokens += tokens

    def release(self, tokens: int) -> None:
        self.kv_tokens -= tokens
        self._hand_over()

    def _hand_over(self) -> None:
        while self._queue:
            fut = self._queue.popleft()
            if not fut.done():
                fut.set_result(None)  # the slot moves to the waiter: ``running`` stays the same
                return
        self.running -= 1

    @property
    def kv_usage(self) -> float:
        return min(1.0, self.kv_tokens / self.options.kv_cache_tokens) if self.options.kv_cache_tokens else 0.0

    # -- accounting --------------------------------------------------------------------------------

    def finish(self, prompt: int, generated: int, reason: str, started: float, first_token: float | None) -> None:
        self.prompt_tokens_total += prompt
        self.generation_tokens_total += generated
        self.finished[reason] += 1
        now = time.perf_counter()
        if first_token is not None:
            self.ttft.observe(first_token - started)
        self.e2e.observe(now - started)

    def record(self, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.recent.append((time.time(), path, headers, body))

    def recorded(self) -> list[dict[str, Any]]:
        """The recorded requests, oldest first, with bodies parsed back to JSON where they are JSON."""
        out = []
        for at, path, headers, raw in self.recent:
            try:
                body: Any = orjson.loads(raw)
            except orjson.JSONDecodeError:
                body = raw.decode("utf-8", "replace")
            out.append(
                {
                    "time": at,
                    "path": path,
                    "headers": {k.decode("latin-1"): v.decode("latin-1") for k, v in headers},
                    "body": body,
                }
            )
        return out

    def stats(self) -> dict[str, Any]:
        return {
            "requests_received": self.received,
            "in_flight": self.in_flight,
            "running": self.running,
            "waiting": self.waiting,
            "cancelled": self.cancelled,
            "finished": dict(self.finished),
            "by_route": dict(self.by_route),
            "by_status": {str(k): v for k, v in self.by_status.items()},
            "prompt_tokens": self.prompt_tokens_total,
            "generation_tokens": self.generation_tokens_total,
            "faults": self.faults.snapshot(),
            "healthy": self.healthy,
        }
