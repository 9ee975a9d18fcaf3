"""Streamed answers for feedback: relayed unchanged, their text assembled so refusals are read and opted-in
outputs stored as for complete answers. The assembler is the request's shared one (``gateway.streaming.assembler``):
when the cache also taps the stream, each event is parsed once for both. Wrapped only when the feature needs it
(implicit signals on, or content stored for the key)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from gateway.streaming import assembler as shared_assembler
from gateway.types import RequestContext


class AssembledStream:
    """``inspect(ctx, body)`` receives the equivalent complete answer as soon as its last choice chunk passed:
    before the inner stream ends, whose end runs ``ctx.on_finish`` (the signal detector reads the refusal note)."""

    def __init__(self, inner: Any, ctx: RequestContext, inspect: Callable[[RequestContext, bytes], None]) -> None:
        self.ctx = ctx
        self._inner = inner
        self._inspect = inspect

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._events()

    async def abandon(self) -> None:
        await self._inner.abandon()

    async def _events(self) -> AsyncIterator[bytes]:
        assembler = shared_assembler(self.ctx)
        done = False
        events = self._inner.__aiter__()
        try:
            async for e in events:
                if not done:
                    assembler.feed(e)
                    if assembler.finish is not None or not assembler.ok:
                        done = True
                        body = assembler.body()
                        if body is not None:
                            self._inspect(self.ctx, body)
                yield e
        finally:
            await events.aclose()
