"""Rate limits, concurrency limits and spend budgets per key and team, exact across replicas.

All state lives in Redis and every decision is one Lua script (``lua/admit.lua``), so replicas share
one count and no request slips between a check and its update. On the request path: ``admit`` (one
EVALSHA) before the upstream call, ``settle`` or ``release`` (one EVALSHA, off the response path)
after it. A key far from its limits gets its next admission ahead of time, in the background: a ticket
(``_tickets.py``), so its requests usually wait for no round trip at all. See ``AGENTS.md`` in this
folder for the algorithms and why.

A principal without limits never touches Redis. When Redis is unreachable, ``failure_policy`` decides:
``open`` lets requests in unmetered, ``closed`` refuses them with 503; either way after at most
``timeout`` seconds, and for ``probe_interval`` after a failure without asking Redis at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
from dataclasses import dataclass, field
from typing import Literal

from gateway.errors import ServiceUnavailable
from gateway.limits._calendar import Periods
from gateway.limits._guard import RedisGuard, RedisUnavailable
from gateway.limits._keys import Level, levels_of
from gateway.limits._messages import headers, refusal
from gateway.limits._reconcile import ReconcileFailed, Reconciler, SpendSource
from gateway.limits._resp import RespClient
from gateway.limits._scripts import AdmitReply, Scripts
from gateway.limits._tickets import Tickets
from gateway.types import Principal, Usage

log = logging.getLogger("interlock.limits")

#: Spend counters outlive their period by a day, so a request admitted before midnight can still settle.
_GRACE = 86400


@dataclass(slots=True)
class Admission:
    """A request that was let in. Hand it back to ``settle`` or ``release`` (once; later calls do nothing)."""

    request_id: str
    estimated_tokens: int
    #: USD reserved against the budgets at admission, as sent to Redis ('' when nothing was reserved).
    reserved_usd: str = ""
    #: ``x-ratelimit-*`` headers for the response (empty when the caller has no rate limits).
    headers: dict[str, str] = field(default_factory=dict)
    #: Let in without any check because Redis was unreachable and the failure policy is ``open``.
    unmetered: bool = False
    levels: tuple[Level, ...] = ()
    #: Redis server time of the admission: the cost is booked to that UTC day and month.
    admitted_at: float = 0.0
    #: Admitted on a ticket: ``admitted_at`` is the time of use, and settle moves the window member to it.
    stamped: bool = False
    done: bool = False


class Limiter:
    """Checks and books limits in Redis; see the module docstring. One per process, built in the lifespan."""

    def __init__(
        self,
        redis_url: str | None,
        *,
        timeout: float = 0.25,
        failure_policy: Literal["open", "closed"] = "closed",
        reconcile: SpendSource | None = None,
        lease: float = 60.0,
        probe_interval: float = 1.0,
        log_interval: float = 30.0,
        reconcile_timeout: float = 5.0,
        tickets: bool = False,
        ticket_ttl: float = 1.0,
        ticket_share: float = 0.5,
        ticket_headroom: float = 2.0,
        settle_delay: float = 0.0,
    ) -> None:
        """``reconcile(key_id, team_id, since) -> float`` (sync or async) returns the USD spent since a UTC
        datetime, from the request records; it rebuilds budget counters after Redis lost them. ``lease``:
        seconds a concurrency slot survives without renewal (the slots of a crashed replica free
        themselves after it). ``tickets``: admit a key's next request ahead of time (``_tickets.py``),
        granted only while every limit scaled by ``ticket_share`` holds, reserving ``ticket_headroom``
        times the estimate, handed back after ``ticket_ttl`` seconds unused. All calls share one pipelined
        connection (``_resp.py``); a settle waits up to ``settle_delay`` seconds to ride on the next call."""
        self._url = redis_url
        self._policy = failure_policy
        self._lease = lease
        self._settle_delay = settle_delay
        self._guard = RedisGuard(timeout, probe_interval=probe_interval, log_interval=log_interval)
        self._reconciler = Reconciler(reconcile, self._guard, timeout=reconcile_timeout, grace=_GRACE)
        self._client: RespClient | None = None
        self._scripts: Scripts | None = None
        # Request ids (members of the window and slot sets) must be unique across replicas: a random
        # prefix per limiter and a counter, far cheaper than fresh random bytes per request.
        self._id_prefix = secrets.token_hex(6) + "-"
        self._ids = itertools.count()
        # Concurrency slots held by requests in flight on this replica: 'conc' key -> request ids.
        self._inflight: dict[str, set[str]] = {}
        self._task: asyncio.Task[None] | None = None
        #: Admissions let through unchecked by the ``open`` policy (a counter for metrics).
        self.unmetered = 0
        self._share = ticket_share
        self._tickets = (
            Tickets(self._take_ticket, self._cancel, ttl=ticket_ttl, headroom=ticket_headroom, cooldown=1.0)
            if tickets
            else None
        )

    @property
    def enabled(self) -> bool:
        """False without a Redis URL: every request is admitted and nothing is counted."""
        return self._url is not None

    @property
    def healthy(self) -> bool:
        """Redis answered the last call (always true when limits are off). For ``/ready`` and metrics."""
        return self._guard.healthy

    @property
    def failures(self) -> int:
        """Redis calls that failed or timed out since start (a counter for metrics)."""
        return self._guard.failures

    def status(self) -> dict[str, object]:
        """A summary for ``/ready``."""
        return {
            "enabled": self.enabled,
            "healthy": self.healthy,
            "failure_policy": self._policy,
            "failures": self.failures,
            "unmetered": self.unmetered,
            "tickets": None
            if self._tickets is None
            else {"waiting": self._tickets.held, "used": self._tickets.used, "returned": self._tickets.returned},
        }

    async def start(self) -> None:
        """Connect and load the scripts. Redis being down is not an error here: the policy applies."""
        if self._url is None:
            return
        t = self._guard.timeout
        # One connection, pipelined: a burst needs no pool to queue for. A connection silent for a few
        # timeouts while replies are due is dropped (a black-holed peer never resets it); the guard's
        # ``timeout`` bounds each call regardless.
        self._client = client = RespClient(
            self._url, connect_timeout=t, read_timeout=max(4 * t, 1.0), coalesce=self._settle_delay
        )
        self._scripts = scripts = Scripts(client)
        with contextlib.suppress(RedisUnavailable):
            await self._guard.call(lambda: scripts.load(client))
        self._task = asyncio.create_task(self._maintain(), name="interlock-limits")

    async def aclose(self) -> None:
        if self._tickets is not None and self._scripts is not None:
            await self._tickets.aclose()  # hand waiting tickets back while the connection is open
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._client is not None:
            self._scripts = None
            await self._client.aclose()
            self._client = None

    async def admit(
        self, principal: Principal, model: str, estimated_tokens: int, estimated_cost: float = 0.0
    ) -> Admission:
        """Let a request in or raise ``RateLimited`` / ``BudgetExceeded`` (429) or, with Redis down and
        policy ``closed``, ``ServiceUnavailable`` (503). ``estimated_tokens`` is reserved against TPM,
        ``estimated_cost`` (USD) against the budgets, until ``settle`` books the real numbers."""
        request_id = self._id_prefix + format(next(self._ids), "x")
        levels = levels_of(principal) if self._scripts is not None else ()
        if not levels:
            return Admission(request_id, estimated_tokens)
        cost = estimated_cost if estimated_cost > 0 and any(lv.has_budget for lv in levels) else 0.0
        tickets = self._tickets
        if tickets is not None:
            ticket = tickets.take(levels, estimated_tokens, cost)
            if ticket is not None:  # admitted by Redis ahead of time: no round trip for this request
                adm = ticket.admission
                adm.admitted_at += asyncio.get_running_loop().time() - ticket.taken_at
                adm.stamped = True
                tickets.want(levels, estimated_tokens, cost)
                return adm
        # Formatted once: the reservation's member in Redis is ``<request id>:<this text>``.
        usd = f"{cost:.12f}" if cost else ""
        est = (estimated_tokens, usd)
        try:
            reply = await self._admit(levels, request_id, est, skip_epoch=False)
            if reply.status == "reconcile":
                try:
                    await self._reconciler.rebuild([levels[i] for i in reply.missing], reply, self._scripts)
                except ReconcileFailed as exc:
                    if self._policy == "closed":
                        raise ServiceUnavailable(
                            f"budgets cannot be checked: {exc}", headers={"retry-after": "1"}
                        ) from exc
                reply = await self._admit(levels, request_id, est, skip_epoch=True)
        except RedisUnavailable as exc:
            if self._policy == "closed":
                raise ServiceUnavailable(
                    "rate limits and budgets cannot be checked: Redis is unreachable",
                    headers={"retry-after": "1"},
                ) from exc
            self.unmetered += 1
            return Admission(request_id, estimated_tokens, unmetered=True)
        if reply.status == "deny":
            raise refusal(reply, levels[reply.level or 0], model, estimated_tokens, estimated_cost)
        if tickets is not None and _far_from_limits(reply, self._share):
            tickets.want(levels, estimated_tokens, cost)
        return self._admitted(levels, request_id, est, reply)

    def _admitted(
        self, levels: tuple[Level, ...], request_id: str, est: tuple[int, str], reply: AdmitReply
    ) -> Admission:
        """The admission Redis granted; its slots and reservations are renewed while it is in flight."""
        usd = est[1]
        for level in levels:
            if level.has_slot:
                self._inflight.setdefault(level.base + "conc", set()).add(request_id)
            if usd and level.has_budget:
                self._inflight.setdefault(level.base + "resv", set()).add(f"{request_id}:{usd}")
        return Admission(request_id, est[0], usd, headers=headers(reply), levels=levels, admitted_at=reply.now)

    async def _take_ticket(self, levels: tuple[Level, ...], tokens: int, cost: float) -> Admission | None:
        """Admit a request that has not arrived yet, against the limits scaled by the ticket share."""
        if self._scripts is None:
            return None
        request_id = self._id_prefix + format(next(self._ids), "x")
        est = (tokens, f"{cost:.12f}" if cost else "")
        try:
            reply = await self._admit(levels, request_id, est, skip_epoch=False, share=self._share)
        except RedisUnavailable:
            return None
        except Exception:  # a background call: log, never let it escape into the loop's handler
            log.exception("admission ticket failed")
            return None
        return self._admitted(levels, request_id, est, reply) if reply.status == "ok" else None

    async def _cancel(self, admission: Admission) -> None:
        """Hand an unused ticket back: as if it had never been admitted."""
        await self._finish(admission, 0, 0.0, cancel=True)

    async def _admit(
        self,
        levels: tuple[Level, ...],
        request_id: str,
        est: tuple[int, str],
        *,
        skip_epoch: bool,
        share: float = 1.0,
    ) -> AdmitReply:
        args: list[str | int | float] = [
            request_id,
            est[0],
            self._lease,
            "1" if skip_epoch else "0",
            est[1] or "0",
            repr(share),
        ]
        for level in levels:
            args.extend(level.args())
        script = self._scripts.admit  # type: ignore[union-attr]
        # The client bounds the call (``_resp.py``: per-call deadlines), cheaper than ``asyncio.timeout``.
        timeout = self._guard.timeout
        raw = await self._guard.call(lambda: script([lv.base for lv in levels], args, timeout), timed=False)
        return AdmitReply.parse(raw)

    async def settle(self, admission: Admission, usage: Usage, cost_usd: float) -> None:
        """Book what the request really used: its tokens replace the reservation, its cost is added to
        the budgets, its concurrency slot is freed. Call it off the response path (a task is fine). Never
        raises: if Redis is down the slot frees itself when its lease ends, and the cost, still in the
        request records, reaches the budget counters at their next rebuild."""
        await self._finish(admission, usage.total_tokens, cost_usd)

    async def release(self, admission: Admission) -> None:
        """For a request that failed before its usage was known: free the slot, drop the reservation."""
        await self._finish(admission, 0, 0.0)

    async def _finish(self, adm: Admission, tokens: int, cost: float, *, cancel: bool = False) -> None:
        if adm.done or adm.unmetered or not adm.levels or self._scripts is None:
            adm.done = True
            return
        adm.done = True
        reserved = adm.reserved_usd
        for level in adm.levels:
            if level.has_slot:
                self._forget(level.base + "conc", adm.request_id)
            if reserved and level.has_budget:
                self._forget(level.base + "resv", f"{adm.request_id}:{reserved}")
        periods = Periods.at(adm.admitted_at)
        args: list[str | int] = [
            adm.request_id,
            adm.estimated_tokens,
            max(0, tokens),
            f"{max(0.0, cost):.12f}",
            periods.day,
            periods.month,
            periods.day_end + _GRACE,
            periods.month_end + _GRACE,
            reserved or "0",
            f"{adm.admitted_at:.6f}" if adm.stamped else "",
            "1" if cancel else "0",
        ]
        for level in adm.levels:
            budget = "1" if reserved and level.has_budget else "0"
            args.extend(("1" if level.windowed else "0", "1" if level.has_slot else "0", budget))
        # Deferred (``_resp.py``): sent with the other commands of this loop iteration, or up to ``settle_delay``
        # seconds later with the next admission.
        script = self._scripts.settle
        with contextlib.suppress(RedisUnavailable):
            await self._guard.call(lambda: script.later(keys=[lv.base for lv in adm.levels], args=args), timed=False)

    def _forget(self, key: str, member: str) -> None:
        """This replica no longer renews ``member`` of ``key`` (its request ended)."""
        members = self._inflight.get(key)
        if members is not None:
            members.discard(member)
            if not members:
                del self._inflight[key]

    async def _maintain(self) -> None:
        """Background: probe Redis while it is down; renew the leases of slots in flight."""
        tick = min(self._guard.probe_interval, self._lease / 3)
        loop = asyncio.get_running_loop()
        last_renew = loop.time()
        while True:
            await asyncio.sleep(tick)
            try:
                if not self._guard.healthy:
                    await self._guard.call(self._ping)
                if self._inflight and loop.time() - last_renew >= self._lease / 3:
                    last_renew = loop.time()
                    await self._guard.call(self._renew)
            except RedisUnavailable:
                pass
            except Exception:  # the loop must outlive any surprise
                log.exception("limits maintenance failed")

    async def _ping(self) -> None:
        await self._client.execute("PING")  # type: ignore[union-attr]

    async def _renew(self) -> None:
        script = self._scripts.renew  # type: ignore[union-attr]
        # Pipelined on the one connection: all keys in one round trip.
        # A reservation set's running total ('resvsum') lives as long as the set.
        await asyncio.gather(
            *(
                script(keys=[key, key + "sum"] if key.endswith("resv") else [key], args=[self._lease, *ids])
                for key, ids in list(self._inflight.items())
            )
        )


def _far_from_limits(reply: AdmitReply, share: float) -> bool:
    """Whether the headers' numbers leave room for a ticket, so a key near its limits does not ask Redis
    twice per request (Redis checks every limit, concurrency and budgets too, when asked for one)."""
    for limit, left in ((reply.req_limit, reply.req_remaining), (reply.tok_limit, reply.tok_remaining)):
        if limit is not None and left is not None and left < limit * (1 - share):
            return False
    return True
