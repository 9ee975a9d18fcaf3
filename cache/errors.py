"""The cache library's errors (``gateway.cache_step`` translates them at one seam)::

CacheError
├── CacheUnavailable     a backend (Redis, PostgreSQL) failed or timed out: the request goes on as a miss
└── InvalidInvalidation  an invalidation request names no valid filter; ``field`` says which one is wrong
"""

from __future__ import annotations


class CacheError(Exception):
    pass


class CacheUnavailable(CacheError):
    def __init__(self, backend: str, reason: str) -> None:
        super().__init__(f"{backend} cache unavailable: {reason}")
        self.backend = backend


class InvalidInvalidation(CacheError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
