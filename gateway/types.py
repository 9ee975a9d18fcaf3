"""Request and result types shared by every step of the request path.

A leaf module: it imports nothing of ours, so every library can import it and none copies it.
Long-lived objects hold configuration; a ``RequestContext`` holds one request's state.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Route = Literal["chat", "completions", "embeddings"]

#: The upstream path for each route, as vLLM and OpenAI spell it.
ROUTE_PATHS: dict[str, str] = {
    "chat": "/v1/chat/completions",
    "completions": "/v1/completions",
    "embeddings": "/v1/embeddings",
}


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True, frozen=True)
class Limits:
    """Limits of one key or team; ``None`` means unlimited."""

    rpm: int | None = None
    tpm: int | None = None
    max_concurrency: int | None = None
    budget_daily_usd: float | None = None
    budget_monthly_usd: float | None = None


@dataclass(slots=True)
class Principal:
    """Who is calling: filled by the access step (issue 3); anonymous when keys are off."""

    key_id: str | None = None
    team_id: str | None = None
    key_name: str | None = None
    #: Model names this caller may use; ``None`` means any.
    allowed_models: frozenset[str] | None = None
    key_limits: Limits | None = None
    team_limits: Limits | None = None
    #: Opaque data the limiter wants back when the request settles (reservations).
    limit_state: Any = None
    #: Cache sections replacing models' own for this caller: the key's then the team's {model or "*": section}.
    cache: tuple[dict[str, Any], ...] | None = None


@dataclass(slots=True)
class RequestContext:
    """One request's state as it moves through the pipeline."""

    #: Ours (``gateway.ids``): the record's primary key, ``x-interlock-request-id``; never from the client.
    request_id: str
    route: Route
    body: dict[str, Any]
    model: str
    #: The client's ``x-request-id`` when it sent a sane one: echoed, forwarded upstream, searchable in records.
    client_request_id: str | None = None
    stream: bool = False
    #: The client asked for a usage chunk at the end of the stream.
    include_usage: bool = False
    session_id: str | None = None
    #: The raw ``Authorization`` header; only the access step reads it, and it is never logged or recorded.
    authorization: str | None = None
    principal: Principal = field(default_factory=Principal)
    started: float = field(default_factory=time.perf_counter)
    # Filled as the request is served:
    served_model: str | None = None
    upstream: str | None = None
    attempts: int = 0
    first_token_at: float | None = None
    finished_at: float | None = None
    usage: Usage | None = None
    status: int = 200
    error_type: str | None = None
    cost_usd: float = 0.0
    #: Explanations from steps (guards, routers) that go into the trace.
    notes: dict[str, Any] = field(default_factory=dict)
    #: Extra response headers steps want the client to see (rate-limit headers, ...).
    headers: dict[str, str] = field(default_factory=dict)
    #: Called once when the request is over (after the last stream byte, or on failure): settle limits, etc.
    on_finish: list[Any] = field(default_factory=list)


@dataclass(slots=True)
class UpstreamRequest:
    """What an ``Upstream`` is asked to do: one call, already routed to it."""

    route: Route
    body: dict[str, Any]
    stream: bool
    request_id: str
    #: W3C trace context of the upstream-call span, so the upstream's spans join our trace.
    traceparent: str | None = None


@dataclass(slots=True)
class UpstreamResponse:
    """A complete (non-streaming) answer: the JSON body exactly as the upstream sent it."""

    status: int
    body: bytes
    usage: Usage | None = None


class UpstreamStream(Protocol):
    """A streaming answer: SSE ``data:`` payloads (without the ``data: `` prefix), then ``[DONE]`` not included.

    ``usage`` is set once the upstream has sent its usage chunk. ``aclose`` releases the
    connection; closing early cancels the upstream request (vLLM aborts generation when its
    client goes away).
    """

    usage: Usage | None

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class Upstream(Protocol):
    """One deployment: a vLLM worker, any OpenAI-compatible server, or a provider through litellm."""

    name: str

    async def send(self, request: UpstreamRequest) -> UpstreamResponse | UpstreamStream:
        """Send one request. Raise ``gateway.errors.UpstreamError`` subclasses on failure.

        For ``request.stream`` the returned stream must already have received its response
        headers (so HTTP errors surface here, where they can still be retried).
        """
        ...

    async def health(self) -> bool:
        """Active health check: ``True`` when the deployment can take traffic."""
        ...

    async def aclose(self) -> None: ...
