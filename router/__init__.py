"""Routing: which replica (and, in later issues, which model, stock reply or human) serves a request.

Routers take plain dataclasses (``EndpointInfo``, ``EngineStats``, ``RouteHint``) and never see HTTP objects.
"""

from router.balancing import (
    ROUTERS,
    LeastOutstandingRouter,
    PrefixAffinityRouter,
    Router,
    load_of,
    prefix_hashes,
    stable_hash,
)
from router.types import EndpointInfo, EngineStats, RouteHint

__all__ = [
    "ROUTERS",
    "EndpointInfo",
    "EngineStats",
    "LeastOutstandingRouter",
    "PrefixAffinityRouter",
    "RouteHint",
    "Router",
    "load_of",
    "prefix_hashes",
    "stable_hash",
]
