"""Plain data that routers decide on. No HTTP objects: routers are tested with these dataclasses alone."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class EngineStats:
    """A replica's own view of its load, scraped from vLLM's ``/metrics``."""

    running: float = 0.0
    waiting: float = 0.0
    kv_cache_usage: float = 0.0
    """0..1"""
    scraped_at: float = 0.0
    """``time.monotonic()`` of the scrape; stale stats are ignored."""


@dataclass(slots=True, eq=False)
class EndpointInfo:
    """One replica as a router sees it. The pool keeps one per deployment and updates it in place."""

    name: str
    weight: float = 1.0
    healthy: bool = True
    in_flight: int = 0
    """Requests this gateway has outstanding on the replica."""
    max_concurrency: int | None = None
    stats: EngineStats | None = None


@dataclass(slots=True)
class RouteHint:
    """What a router may use besides load: affinity keys derived from the request.

    ``prefix_hashes`` are cumulative hashes of the prompt's leading blocks (shortest first):
    two requests share ``prefix_hashes[i]`` exactly when their first ``i + 1`` blocks are equal.
    ``session`` pins a conversation when the client sends a session header.
    """

    prefix_hashes: list[int] = field(default_factory=list)
    session: str | None = None
