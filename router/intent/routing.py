"""One role, two transports: ``IntentRouting.decide(name, messages, embed)``.

``LocalRouting`` decides in this process, on the request's shared embedding (``embed`` is the per-request
memo's ``get``, so the guards, the router and the cache embed the last user turn once). ``HTTPRouting`` asks the
router service (``services/router``), which embeds and decides in its own process; the gateway treats both the
same and falls back the same way when a decision cannot be had (``RouterUnavailable``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import numpy as np

from router.intent.decide import Decision, IntentRouter
from router.intent.errors import IntentRouterError, RouterNotFound, RouterUnavailable

EmbedOne = Callable[[str], Awaitable[np.ndarray]]


class IntentRouting(Protocol):
    async def decide(
        self, name: str, messages: list[Any], embed: EmbedOne | None = None, traceparent: str | None = None
    ) -> Decision:
        """The decision of router ``name`` for a chat. Raises ``RouterNotFound`` or ``RouterUnavailable``.
        ``traceparent`` (W3C) goes to a remote router so its span joins the caller's trace."""
        ...

    async def aclose(self) -> None: ...


def user_turn(messages: list[Any]) -> tuple[str, int]:
    """The last user turn's text and how many turns the conversation has."""
    text, turns = "", 0
    for m in messages:
        if isinstance(m, dict) and m.get("role") in ("user", "assistant"):
            turns += 1
            if m.get("role") == "user":
                c = m.get("content")
                if isinstance(c, str):
                    text = c
                elif isinstance(c, list):
                    text = " ".join(p["text"] for p in c if isinstance(p, dict) and isinstance(p.get("text"), str))
    return text, max(turns, 1)


class LocalRouting:
    """Routers held in this process. ``routers`` is replaced whole when a version changes (never mutated), so a
    decision in flight keeps the router it started with."""

    def __init__(self, embed: EmbedOne) -> None:
        self.routers: dict[str, IntentRouter] = {}
        self._embed = embed

    async def decide(
        self, name: str, messages: list[Any], embed: EmbedOne | None = None, traceparent: str | None = None
    ) -> Decision:
        router = self.routers.get(name)
        if router is None:
            raise RouterNotFound(f"no router named {name!r}", param="router")
        text, turns = user_turn(messages)
        embed = embed or self._embed
        decision = router.decide(await embed(text), text, turns)
        fixed = router.second_look(decision, text)
        if fixed is not None:  # a decline that a typo may have caused: decide again on the corrected words
            again = router.decide(await embed(fixed), text, turns)
            if again.reason == "intent":
                return again
        return decision

    async def aclose(self) -> None:
        return None


class HTTPRouting:
    """The router service over HTTP (``POST {url}/route``), with a short timeout: a decision is milliseconds."""

    def __init__(self, url: str, *, timeout: float = 1.0) -> None:
        import httpx

        self.url = url.rstrip("/")
        self._client = httpx.AsyncClient(timeout=timeout)

    async def decide(
        self, name: str, messages: list[Any], embed: EmbedOne | None = None, traceparent: str | None = None
    ) -> Decision:
        import httpx

        headers = {"traceparent": traceparent} if traceparent is not None else None
        try:
            r = await self._client.post(
                self.url + "/route", json={"router": name, "messages": messages}, headers=headers
            )
        except httpx.HTTPError as exc:
            raise RouterUnavailable(f"router service at {self.url}: {type(exc).__name__}") from exc
        if r.status_code == 404:
            raise RouterNotFound(f"no router named {name!r}", param="router")
        if r.status_code >= 500:
            raise RouterUnavailable(f"router service at {self.url} answered {r.status_code}")
        if r.status_code != 200:
            raise IntentRouterError(_message(r), param="messages")
        try:
            return Decision.from_json(r.json())
        except (ValueError, KeyError, TypeError) as exc:
            raise RouterUnavailable(f"router service at {self.url} sent an unreadable decision") from exc

    async def aclose(self) -> None:
        await self._client.aclose()


def _message(r) -> str:
    try:
        return str(r.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"router service answered {r.status_code}"
