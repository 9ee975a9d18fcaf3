"""Whether Redis answers, and a circuit so a dead Redis costs nothing per request.

A connection failure opens the circuit at once; timeouts only after ``failure_threshold`` in a row, since one
slow answer on a busy machine (a burst queueing behind Lua scripts) says little about Redis being down.
While open, calls are short-circuited (the failure policy applies at once) until ``probe_interval``
has passed; then one caller (or the background probe) tries again. "redis unreachable" is logged at
most once per ``log_interval``; recovery is logged once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from gateway.limits._resp import RespError

log = logging.getLogger("interlock.limits")

T = TypeVar("T")

#: What counts as "Redis is unreachable": connection and protocol errors, server errors (OOM, READONLY,
#: LOADING), and our own timeout.
FAILURES = (RespError, OSError, TimeoutError)


class RedisUnavailable(Exception):
    """Redis did not answer in time, failed, or is short-circuited after a recent failure."""


class RedisGuard:
    """Runs Redis calls under a timeout and tracks health; see the module docstring."""

    def __init__(
        self,
        timeout: float,
        *,
        probe_interval: float = 1.0,
        log_interval: float = 30.0,
        failure_threshold: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout = timeout
        self.failure_threshold = failure_threshold
        self._consecutive = 0
        self.probe_interval = probe_interval
        self.log_interval = log_interval
        self.clock = clock
        self.healthy = True
        #: Redis calls that failed or timed out (a counter for metrics).
        self.failures = 0
        self._retry_at = 0.0
        self._logged_at: float | None = None

    def _may_try(self) -> bool:
        if self.healthy:
            return True
        now = self.clock()
        if now < self._retry_at:
            return False
        # This caller is the probe; everyone else keeps short-circuiting until it reports.
        self._retry_at = now + self.probe_interval
        return True

    async def call(self, fn: Callable[[], Awaitable[T]], *, timed: bool = True) -> T:
        """Run one Redis call; raise ``RedisUnavailable`` on failure, timeout or an open circuit.

        ``timed=False`` for background calls nobody waits on: the connection's read timeout still bounds them,
        and the ``asyncio.timeout`` they skip costs ~13 µs of CPU, a tenth of what a settle costs."""
        if not self._may_try():
            raise RedisUnavailable("redis unreachable (circuit open)")
        try:
            if timed:
                async with asyncio.timeout(self.timeout):
                    result = await fn()
            else:
                result = await fn()
        except FAILURES as exc:
            self._failed(exc)
            raise RedisUnavailable(f"redis unreachable: {type(exc).__name__}: {exc}") from exc
        self._consecutive = 0
        if not self.healthy:
            self.healthy = True
            self._logged_at = None
            log.warning("redis reachable again; limits are enforced")
        return result

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        self._consecutive += 1
        if isinstance(exc, TimeoutError) and self.healthy and self._consecutive < self.failure_threshold:
            return  # one slow call: this request follows the policy, the circuit stays closed
        self.healthy = False
        now = self.clock()
        self._retry_at = now + self.probe_interval
        if self._logged_at is None or now - self._logged_at >= self.log_interval:
            self._logged_at = now
            log.error(
                "redis unreachable (%s: %s); limits follow the failure policy until it returns",
                type(exc).__name__,
                exc,
            )
