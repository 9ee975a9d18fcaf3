"""Deployment health: a circuit breaker per deployment (passive ejection) and active checks.

Passive: every failed call (connection error, timeout, 5xx, garbage) counts; ``failure_threshold`` in a row opens
the circuit and the deployment is ejected for ``cooldown`` seconds. Then it is half-open: exactly one trial request
goes through; success closes the circuit, failure opens it for another cooldown.
Active: a background task polls each deployment's ``/health`` every ``interval`` and, for vLLM, reads its
``/metrics`` as a load signal. A failed check marks the deployment down until a check passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from enum import StrEnum

log = logging.getLogger("interlock.health")


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Consecutive-failure breaker with a half-open trial. Times come from an injectable clock for tests."""

    def __init__(self, threshold: int, cooldown: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.clock = clock
        self.failures = 0
        self.state = BreakerState.CLOSED
        self.opened_at = 0.0
        self._trial_out = False

    def available(self) -> bool:
        """May a request be sent now? (Does not claim the half-open trial: see ``acquire``.)"""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN and self.clock() - self.opened_at >= self.cooldown:
            self.state = BreakerState.HALF_OPEN
            self._trial_out = False
        return self.state is BreakerState.HALF_OPEN and not self._trial_out

    def acquire(self) -> None:
        """Called when a request is actually sent; in half-open state it takes the one trial slot."""
        if self.state is BreakerState.HALF_OPEN:
            self._trial_out = True

    def release(self) -> None:
        """A request ended with no verdict on health (cancelled by its client): free the trial slot."""
        self._trial_out = False

    def success(self) -> None:
        self.failures = 0
        self.state = BreakerState.CLOSED
        self._trial_out = False

    def failure(self) -> None:
        self.failures += 1
        if self.state is BreakerState.HALF_OPEN or self.failures >= self.threshold:
            if self.state is not BreakerState.OPEN:
                log.warning("circuit opened after %d consecutive failures", self.failures)
            self.state = BreakerState.OPEN
            self.opened_at = self.clock()
            self._trial_out = False


class HealthMonitor:
    """Polls every deployment of every pool in the background. Holds no state of its own beyond its task."""

    def __init__(self, interval: float, pools_provider: Callable[[], list]) -> None:
        self.interval = interval
        self._pools = pools_provider
        self._task: asyncio.Task | None = None

    async def check_all(self) -> None:
        deployments = [d for pool in self._pools() for d in pool.deployments]
        await asyncio.gather(*(d.check() for d in deployments), return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await self.check_all()
            except Exception:  # a bug in one check must not end health checking for good
                log.exception("health check round failed")
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="interlock-health")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
