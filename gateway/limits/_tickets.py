"""Admission tickets: a busy key's next request admitted ahead of time, so it waits for no Redis round trip.

The one EVALSHA of ``admit`` is most of what limits add to a request (a quarter of a millisecond at p50 and a
wider tail, since the gateway sleeps and wakes once more). A ticket takes that trip in the background: after a
key's request is admitted, the limiter admits one more for it, for real, in Redis (a window member, a token
and a cost reservation, a concurrency slot), and keeps it here. The key's next request on this replica takes
the ticket and is in without asking Redis; taking it asks for the next one.

Nothing is ever admitted that Redis did not admit, so limits stay exact: a ticket counts in every total
while it waits. Its price is the other way round: a waiting ticket holds room another replica's request
might have had. So a ticket is only granted far from every limit (Redis checks it against the limits scaled
by ``share``, a half by default) and lives ``ttl`` seconds unused before it is handed back (``cancel``: out
of the window, slot and reservation freed). Near a limit every request takes the exact path.

A ticket reserves ``headroom`` times the estimate of the request that asked for it, so the next request fits
it even if it is somewhat larger; a request that does not fit takes the exact path and leaves the ticket.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

#: What the limiter gives the store: admit a ticket (``None`` when refused or Redis failed) and cancel one.
Acquire = Callable[[tuple[Any, ...], int, float], Awaitable[Any]]
Cancel = Callable[[Any], Awaitable[None]]


@dataclass(slots=True)
class Ticket:
    admission: Any  # limiter.Admission, admitted in Redis and not used yet
    tokens: int
    usd: float
    taken_at: float  # loop time when Redis admitted it


class Tickets:
    """At most one waiting ticket per set of levels (a key and its team) on this replica."""

    def __init__(self, acquire: Acquire, cancel: Cancel, *, ttl: float, headroom: float, cooldown: float) -> None:
        self._acquire = acquire
        self._cancel = cancel
        self.ttl = ttl
        self.headroom = headroom
        self.cooldown = cooldown  # seconds without asking again after a refusal (near a limit, Redis down)
        self._held: dict[tuple[Any, ...], Ticket] = {}
        self._asking: set[tuple[Any, ...]] = set()
        self._quiet_until: dict[tuple[Any, ...], float] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._closed = False
        #: Counters for ``/ready``: requests admitted on a ticket, tickets handed back unused.
        self.used = 0
        self.returned = 0

    @property
    def held(self) -> int:
        return len(self._held)

    def take(self, levels: tuple[Any, ...], tokens: int, usd: float) -> Ticket | None:
        """The waiting ticket for ``levels`` if this request fits it, else None (the sweeper retires stale ones)."""
        ticket = self._held.get(levels)
        if ticket is None or tokens > ticket.tokens or usd > ticket.usd:
            return None
        del self._held[levels]
        self.used += 1
        return ticket

    def want(self, levels: tuple[Any, ...], tokens: int, usd: float) -> None:
        """Ask Redis for a ticket in the background, unless one waits, is being asked for, or was refused
        lately."""
        if self._closed or levels in self._held or levels in self._asking:
            return
        loop = asyncio.get_running_loop()
        quiet = self._quiet_until.get(levels)
        if quiet is not None:
            if loop.time() < quiet:
                return
            del self._quiet_until[levels]
        self._asking.add(levels)
        self._spawn(self._ask(levels, int(tokens * self.headroom) + 1, usd * self.headroom))

    async def _ask(self, levels: tuple[Any, ...], tokens: int, usd: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            admission = await self._acquire(levels, tokens, usd)
        finally:
            self._asking.discard(levels)
        if admission is None:
            self._quiet_until[levels] = loop.time() + self.cooldown
            if len(self._quiet_until) > 10_000:  # many keys near their limits: forget the oldest refusals
                self._quiet_until.pop(next(iter(self._quiet_until)))
            return
        if self._closed:  # granted while the limiter was closing: hand it straight back
            await self._cancel(admission)
            return
        self._held[levels] = Ticket(admission, tokens, usd, loop.time())
        if self._sweeper is None:
            self._sweeper = asyncio.ensure_future(self._sweep())

    async def _sweep(self) -> None:
        """Hand back tickets unused for ``ttl`` (so they wait ``ttl`` to 1.5 ``ttl``). One sweeping task, not a
        timer per ticket: a timer made and cancelled per request piles cancelled handles into the loop's heap,
        whose periodic clean-up showed as a wider p99 at concurrency 1."""
        loop = asyncio.get_running_loop()
        try:
            while self._held:
                await asyncio.sleep(self.ttl / 2)
                cutoff = loop.time() - self.ttl
                for levels, ticket in [(lv, t) for lv, t in self._held.items() if t.taken_at <= cutoff]:
                    del self._held[levels]
                    self._spawn(self._hand_back(ticket))
        finally:
            self._sweeper = None

    async def _hand_back(self, ticket: Ticket) -> None:
        await self._cancel(ticket.admission)
        self.returned += 1  # counted once Redis has it back (or gave up trying: the lease then frees it)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Hand every waiting ticket back and wait for the calls in flight (before the connection closes)."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        held, self._held = list(self._held.values()), {}
        for ticket in held:
            self._spawn(self._cancel(ticket.admission))
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
