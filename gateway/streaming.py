"""The stream the client receives: SSE events relayed from the upstream, with our bookkeeping around it.

- Events pass through byte for byte; the usage chunk we asked for is dropped when the client did not ask for it.
- A stream that breaks after tokens reached the client ends with an OpenAI-format error event and ``[DONE]``:
  the ``openai`` SDK raises ``APIError`` on it, so a truncated answer never looks like a complete 200.
- When the client goes away, the generator is closed: we close the upstream connection, which makes vLLM abort
  the generation, and the request is recorded as cancelled (499).
- Whatever happens, ``finish`` runs once: in-flight counts, breaker, span, limits settlement, record.
- Steps that read a stream's text (the cache stores it, feedback reads refusals) share one ``assembler(ctx)``:
  each event is parsed once however many of them tap the stream.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

from cache.responses import StreamAssembler
from gateway.errors import InterlockError, UpstreamError, UpstreamProtocolError
from gateway.types import RequestContext, UpstreamStream
from gateway.upstreams.sse import DONE_EVENT, event, is_usage_only

#: Status recorded for a request whose client disconnected (nginx's convention).
CLIENT_CLOSED = 499
#: ``ctx.notes`` key of the request's ``SharedAssembler``.
ASSEMBLER = "stream_assembler"


class SharedAssembler(StreamAssembler):
    """A ``StreamAssembler`` every tap of one request's stream feeds: steps wrap the stream one inside another and
    each relays the same event object, so an event fed again right after itself was parsed already (the JSON
    parse is the cost of assembling; with the cache and feedback both on it was paid twice per event)."""

    __slots__ = ("_last",)

    def __init__(self, chat: bool) -> None:
        super().__init__(chat)
        self._last: bytes | None = None

    def feed(self, event: bytes) -> None:
        if event is self._last:  # relayed by the tap inside this one, which fed it
            return
        self._last = event
        _parse(self, event)


_parse = StreamAssembler.feed  # called directly: ``super()`` costs ~0.1 µs an event


def assembler(ctx: RequestContext) -> SharedAssembler:
    """The request's shared assembler (made by the first tap that asks)."""
    found = ctx.notes.get(ASSEMBLER)
    if found is None:
        found = ctx.notes[ASSEMBLER] = SharedAssembler(ctx.route == "chat")
    return found


class GatewayStream:
    """An async iterator of SSE event bytes for the client. ``finish(ctx, error)`` is called exactly once."""

    def __init__(
        self,
        ctx: RequestContext,
        upstream: UpstreamStream,
        rest: AsyncIterator[bytes],
        prefetched: list[bytes],
        finish: Callable[[RequestContext, BaseException | None], Any],
    ) -> None:
        self.ctx = ctx
        self._upstream = upstream
        self._rest = rest
        self._prefetched = prefetched
        self._finish = finish
        self._started = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        self._started = True
        return self._events()

    async def abandon(self) -> None:
        """The response was never sent (client gone before the first byte): close and finish all the same."""
        if self._started:
            return
        self._started = True
        self.ctx.finished_at = time.perf_counter()
        self.ctx.status, self.ctx.error_type = CLIENT_CLOSED, "client_closed"
        await self._upstream.aclose()
        self._finish(self.ctx, None)

    async def _events(self) -> AsyncIterator[bytes]:
        ctx = self.ctx
        keep_usage = ctx.include_usage
        error: BaseException | None = None
        completed = False
        try:
            for payload in self._prefetched:
                if keep_usage or not is_usage_only(payload):
                    yield event(payload)
            async for payload in self._rest:
                if keep_usage or not is_usage_only(payload):
                    yield event(payload)
            completed = True
            yield DONE_EVENT
        except UpstreamError as exc:
            error = exc
            yield error_event(exc)
            yield DONE_EVENT
        except BaseException as exc:  # client gone (GeneratorExit / CancelledError) or a bug: still finish
            error = exc
            raise
        finally:
            ctx.finished_at = time.perf_counter()
            ctx.usage = self._upstream.usage or ctx.usage
            if not completed:
                await self._upstream.aclose()
                if isinstance(error, InterlockError):
                    ctx.status, ctx.error_type = error.status, error.type
                else:  # the client went away (or a bug): nothing more was sent
                    ctx.status, ctx.error_type = CLIENT_CLOSED, "client_closed"
            self._finish(ctx, error)


def error_event(exc: InterlockError) -> bytes:
    if isinstance(exc, UpstreamError) and not isinstance(exc, UpstreamProtocolError):
        message = f"The upstream stream failed after it had started: {exc.message}"
    else:
        message = f"The upstream stream broke off after it had started ({exc.message})."
    return event(
        orjson.dumps(
            {
                "error": {
                    "message": message,
                    "type": exc.type,
                    "param": None,
                    "code": exc.code or "stream_interrupted",
                }
            }
        )
    )
