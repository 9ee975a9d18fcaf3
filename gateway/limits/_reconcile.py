"""Rebuild spend counters from the database after Redis lost them (restart, flush, eviction).

Each level (a key, a team) with a budget has a marker key ``<base>epoch``. ``admit.lua`` answers
"reconcile" when a marker is missing; then the current UTC day's and month's spend are summed from the
request records and written by ``reconcile.lua``, which sets the marker in the same step. Only the first
replica to get there writes (the marker acts as SET NX); others find it and just retry their admit.
Within a replica, concurrent requests of one level share a single rebuild.

What can be off: costs of requests that ended within the record writer's flush interval before the
rebuild and that Redis did not see either; the counter never goes below what the database holds.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from gateway.limits._guard import RedisGuard
from gateway.limits._keys import Level

if TYPE_CHECKING:
    from gateway.limits._scripts import AdmitReply, Scripts

log = logging.getLogger("interlock.limits")

#: ``(key_id, team_id, since) -> USD`` spent since a UTC datetime; one of the ids is None. Sync (run in
#: a thread) or async. ``gateway.db.spend_since`` bound to an engine fits.
SpendSource = Callable[[str | None, str | None, datetime], float | Awaitable[float]]

#: The marker outlives any counter it vouches for (a month plus grace); on expiry the rebuild is harmless.
_MARKER_TTL = 40 * 86400


class ReconcileFailed(Exception):
    """The database could not be read, so budget counters could not be rebuilt."""


class Reconciler:
    """See the module docstring."""

    def __init__(self, source: SpendSource | None, guard: RedisGuard, *, timeout: float, grace: int) -> None:
        self._source = source
        self._guard = guard
        self._timeout = timeout
        self._grace = grace
        self._running: dict[str, asyncio.Task[None]] = {}
        # A database that just failed is not asked again for a while (per level), so an outage does not
        # turn every request into a query.
        self._failed_at: dict[str, float] = {}

    async def rebuild(self, levels: list[Level], reply: AdmitReply, scripts: Scripts | None) -> None:
        """Rebuild every level in ``levels``; raises ``ReconcileFailed`` or ``RedisUnavailable``."""
        for level in levels:
            failed = self._failed_at.get(level.base)
            if failed is not None and time.monotonic() - failed < self._guard.probe_interval:
                raise ReconcileFailed(f"spend of {level.kind} {level.label!r} could not be read recently")
            task = self._running.get(level.base)
            if task is None:
                task = asyncio.create_task(self._rebuild(level, reply, scripts))
                self._running[level.base] = task
                task.add_done_callback(lambda t, base=level.base: self._done(base, t))
            await asyncio.shield(task)

    def _done(self, base: str, task: asyncio.Task[None]) -> None:
        self._running.pop(base, None)
        # Retrieved here too, in case every waiter was cancelled: no "exception never retrieved" noise.
        if not task.cancelled():
            task.exception()

    async def _rebuild(self, level: Level, reply: AdmitReply, scripts: Scripts | None) -> None:
        key_id, team_id = (level.id, None) if level.kind == "key" else (None, level.id)
        periods = reply.periods
        day = month = 0.0
        if self._source is not None:
            try:
                async with asyncio.timeout(self._timeout):
                    day = await self._spend(key_id, team_id, periods.day_start)
                    month = await self._spend(key_id, team_id, periods.month_start)
            except Exception as exc:
                self._failed_at[level.base] = time.monotonic()
                log.error("cannot rebuild spend of %s %r from the database: %r", level.kind, level.label, exc)
                raise ReconcileFailed(f"spend of {level.kind} {level.label!r} cannot be read") from exc
        self._failed_at.pop(level.base, None)
        args = [
            periods.day,
            periods.month,
            f"{day:.12f}",
            f"{month:.12f}",
            periods.day_end + self._grace,
            periods.month_end + self._grace,
            _MARKER_TTL,
        ]
        script = scripts.reconcile  # type: ignore[union-attr]
        rebuilt = await self._guard.call(lambda: script(keys=[level.base], args=args))
        if rebuilt:
            log.info("rebuilt spend of %s %r: day $%.4f, month $%.4f", level.kind, level.label, day, month)

    async def _spend(self, key_id: str | None, team_id: str | None, since_epoch: int) -> float:
        since = datetime.fromtimestamp(since_epoch, UTC)
        source = self._source
        if inspect.iscoroutinefunction(source):
            return float(await source(key_id, team_id, since))
        result = await asyncio.to_thread(source, key_id, team_id, since)  # type: ignore[arg-type]
        if inspect.isawaitable(result):
            result = await result
        return float(result)  # type: ignore[arg-type]
