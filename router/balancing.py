"""Replica balancing: least outstanding requests, weights, and prefix affinity on a bounded-load ring.

Why prefix affinity: vLLM keeps the KV cache of recent prompt prefixes (automatic prefix caching). Sending
requests that share a leading prompt (a system prompt, the earlier turns of a conversation) to the same replica
turns their prefill into a cache hit. Pure hashing would pile a popular system prompt onto one replica, so the
ring is bounded (Mirrokni et al., "Consistent Hashing with Bounded Loads"): a replica already above
``load_factor`` times the mean load is skipped, and the key spills to the next replica on the ring.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol

from router.types import EndpointInfo, RouteHint

#: vLLM stats older than this are ignored (the scraper died or the replica stopped answering /metrics).
STATS_MAX_AGE = 15.0


def load_of(e: EndpointInfo, now: float | None = None) -> float:
    """Outstanding work on a replica, per unit of weight.

    Our own in-flight count is exact and immediate; the replica's ``waiting`` queue (from its /metrics) adds
    the load other gateway replicas put on it. A replica with a nearly full KV cache is about to preempt, so
    it counts as busier than its queue says.
    """
    load = float(e.in_flight)
    s = e.stats
    if s is not None and ((now or time.monotonic()) - s.scraped_at) < STATS_MAX_AGE:
        load += s.waiting
        if s.kv_cache_usage > 0.9:
            load += s.running * (s.kv_cache_usage - 0.9) * 10
    return load / e.weight


def _available(e: EndpointInfo) -> bool:
    return e.healthy and (e.max_concurrency is None or e.in_flight < e.max_concurrency)


class Router(Protocol):
    """Picks one replica among candidates. Returns ``None`` when none can take the request."""

    async def choose(self, candidates: Sequence[EndpointInfo], hint: RouteHint) -> EndpointInfo | None: ...


class LeastOutstandingRouter:
    """The replica with the least outstanding work per weight; ties rotate so idle replicas share evenly."""

    def __init__(self) -> None:
        self._turn = 0

    async def choose(self, candidates: Sequence[EndpointInfo], hint: RouteHint) -> EndpointInfo | None:
        return self.pick(candidates)

    def pick(self, candidates: Sequence[EndpointInfo]) -> EndpointInfo | None:
        best: EndpointInfo | None = None
        best_load = math.inf
        n = len(candidates)
        self._turn = (self._turn + 1) % max(n, 1)
        now = time.monotonic()
        for i in range(n):
            e = candidates[(i + self._turn) % n]
            if not _available(e):
                continue
            load = load_of(e, now) + 1.0 / e.weight  # +1: the request being placed, so weights split idle ties
            if load < best_load:
                best, best_load = e, load
        return best


def stable_hash(data: bytes) -> int:
    """Same value in every process (Python's ``hash`` is salted per process, which would split replicas)."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


class _Ring:
    """A consistent-hash ring with virtual nodes proportional to weight."""

    VNODES = 64

    def __init__(self, candidates: Sequence[EndpointInfo]) -> None:
        points: list[tuple[int, int]] = []
        for idx, e in enumerate(candidates):
            for v in range(max(1, round(self.VNODES * e.weight))):
                points.append((stable_hash(f"{e.name}#{v}".encode()), idx))
        points.sort()
        self.hashes = [p[0] for p in points]
        self.owners = [p[1] for p in points]

    def walk(self, key: int):
        """Candidate indexes in ring order from ``key``, each once."""
        seen: set[int] = set()
        start = bisect.bisect(self.hashes, key)
        n = len(self.owners)
        for i in range(n):
            idx = self.owners[(start + i) % n]
            if idx not in seen:
                seen.add(idx)
                yield idx


class PrefixAffinityRouter:
    """Prefix (or session) affinity on a bounded-load consistent-hash ring.

    1. A session header pins by its value on the ring.
    2. Otherwise the longest prompt prefix seen recently picks the replica that served it (an LRU map from
       prefix hash to replica), so turn N+1 of a conversation lands where turn N warmed the cache.
    3. Otherwise the first prompt block picks a place on the ring: the same system prompt, the same replica,
       in every gateway process.
    A replica above the load bound, unhealthy or full is skipped; the ring order gives the next choice.
    """

    def __init__(self, load_factor: float = 1.25, memory: int = 100_000) -> None:
        self.load_factor = load_factor
        self.memory = memory
        self._seen: OrderedDict[int, str] = OrderedDict()
        self._ring: _Ring | None = None
        self._ring_names: tuple[str, ...] = ()
        self._fallback = LeastOutstandingRouter()

    async def choose(self, candidates: Sequence[EndpointInfo], hint: RouteHint) -> EndpointInfo | None:
        if len(candidates) == 1:
            return candidates[0] if _available(candidates[0]) else None
        if hint.session is None and not hint.prefix_hashes:
            return self._fallback.pick(candidates)
        now = time.monotonic()
        healthy = [e for e in candidates if _available(e)]
        if not healthy:
            return None
        total = sum(load_of(e, now) for e in healthy)
        # ceil(c * (L + 1) / n): the bound counts the request being placed, so it is never below 1.
        bound = math.ceil(self.load_factor * (total + 1) / len(healthy))

        def fits(e: EndpointInfo) -> bool:
            return _available(e) and load_of(e, now) + 1 <= bound

        chosen: EndpointInfo | None = None
        if hint.session is None:
            by_name = {e.name: e for e in candidates}
            for h in reversed(hint.prefix_hashes):
                name = self._seen.get(h)
                if name is not None and (e := by_name.get(name)) is not None and fits(e):
                    chosen = e
                    break
        if chosen is None:
            key = stable_hash(hint.session.encode()) if hint.session is not None else hint.prefix_hashes[0]
            ring = self._ring_for(candidates)
            for idx in ring.walk(key):
                if fits(candidates[idx]):
                    chosen = candidates[idx]
                    break
            if chosen is None:  # everyone is above the bound: least loaded wins
                chosen = self._fallback.pick(candidates)
        if chosen is not None and hint.session is None:
            self._remember(hint.prefix_hashes, chosen.name)
        return chosen

    def _ring_for(self, candidates: Sequence[EndpointInfo]) -> _Ring:
        names = tuple(e.name for e in candidates)
        if self._ring is None or names != self._ring_names:
            # Built over all replicas, healthy or not: when one fails only its keys move.
            self._ring, self._ring_names = _Ring(candidates), names
        return self._ring

    def _remember(self, hashes: list[int], name: str) -> None:
        seen = self._seen
        for h in hashes:
            seen[h] = name
            seen.move_to_end(h)
        while len(seen) > self.memory:
            seen.popitem(last=False)


def prefix_hashes(text: str, block_chars: int, max_chars: int) -> list[int]:
    """Cumulative hashes of the leading ``block_chars`` blocks of ``text`` (up to ``max_chars``).

    Only whole blocks count, so a conversation's later turns reproduce its earlier turns' hashes. A text shorter
    than one block hashes whole (short prompts have little cache to reuse, but still get a stable place).
    """
    raw = text[:max_chars].encode("utf-8", "surrogatepass")
    if len(raw) < block_chars:
        return [stable_hash(raw)]
    h = hashlib.blake2b(digest_size=8)
    out: list[int] = []
    for start in range(0, len(raw) - block_chars + 1, block_chars):
        h.update(raw[start : start + block_chars])
        out.append(int.from_bytes(h.copy().digest(), "big"))
    return out


#: Registry: YAML ``routing:`` names to router classes.
ROUTERS: dict[str, type] = {
    "least_outstanding": LeastOutstandingRouter,
    "prefix_affinity": PrefixAffinityRouter,
}
