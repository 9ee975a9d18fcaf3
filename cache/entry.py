"""A cached answer and the invalidation filter, shared by every backend."""

from __future__ import annotations

import time
from dataclasses import dataclass

import orjson

from cache.config import SCOPES
from cache.errors import InvalidInvalidation


@dataclass(slots=True)
class Entry:
    """One answer as the client first received it (a stream is stored as the equivalent complete body)."""

    body: bytes
    """A ``chat.completion`` / ``text_completion`` JSON body."""
    source: str
    """The request id that produced it: ``x-interlock-cache-source``, so any cached answer can be audited."""
    created: float
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def dumps(self) -> bytes:
        head = orjson.dumps([self.source, self.created, self.prompt_tokens, self.completion_tokens])
        return head + b"\n" + self.body

    @classmethod
    def loads(cls, raw: bytes) -> Entry:
        head, _, body = raw.partition(b"\n")
        source, created, p, c = orjson.loads(head)
        return cls(body, source, created, p, c)


@dataclass(slots=True, frozen=True)
class Invalidation:
    """Which entries to drop: every filter left ``None`` matches everything."""

    scope: str | None = None
    owner: str | None = None
    model: str | None = None
    older_than: float | None = None
    """Seconds: only entries created longer ago than this."""
    kind: str = "all"
    """``exact``, ``semantic`` or ``all``."""

    def __post_init__(self) -> None:
        if self.scope is not None and self.scope not in SCOPES:
            raise InvalidInvalidation("scope", f"scope must be one of {', '.join(SCOPES)} (got {self.scope!r})")
        if self.owner is not None and self.scope is None:
            raise InvalidInvalidation("owner", "owner needs a scope (key, team or user) to belong to")
        if self.older_than is not None and not self.older_than >= 0:
            raise InvalidInvalidation("older_than", "older_than must be a number of seconds >= 0")
        if self.kind not in ("exact", "semantic", "all"):
            raise InvalidInvalidation("kind", f"kind must be exact, semantic or all (got {self.kind!r})")

    def matches(self, scope: str, owner: str, model: str, created: float, now: float | None = None) -> bool:
        if self.scope is not None and scope != self.scope:
            return False
        if self.owner is not None and owner != self.owner:
            return False
        if self.model is not None and model != self.model:
            return False
        return self.older_than is None or created <= (now or time.time()) - self.older_than
