"""The gateway service: a raw ASGI app around ``gateway.Gateway``.

Raw ASGI rather than a framework route on purpose: this is the hot path, and a framework's routing and request
models cost about half the throughput here (see the README's benchmark). It parses, calls the library, and
serialises; every error is rendered as OpenAI error JSON in ``_send_error`` and nowhere else. The admin API (a
FastAPI app: not on the hot path) is mounted under ``/admin``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

import orjson

from gateway.core import Gateway
from gateway.errors import (
    HeadersTooLarge,
    InterlockError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from gateway.ids import client_request_id
from gateway.ids import new_request_id as fresh_request_id
from gateway.requests import build_context, new_request_id, parse_body
from gateway.streaming import GatewayStream
from gateway.types import UpstreamResponse
from observability import parent_from_traceparent
from services.gateway.console import serve_console

log = logging.getLogger("interlock.service")

_MODEL_ROUTES = {
    "/v1/chat/completions": "chat",
    "/v1/completions": "completions",
    "/v1/embeddings": "embeddings",
    # Clients configured without the /v1 prefix work too (as with vLLM and LiteLLM).
    "/chat/completions": "chat",
    "/completions": "completions",
    "/embeddings": "embeddings",
}
#: Plain routes and the methods they answer: any other method gets a 405 with this ``Allow`` header.
_PLAIN_METHODS = {
    "/health": "GET, HEAD",
    "/ready": "GET, HEAD",
    "/v1/models": "GET",
    "/models": "GET",
    "/metrics": "GET",
    "/v1/route": "POST",
    "/openapi.json": "GET",
}
_JSON = b"application/json"
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class _ClientGone(Exception):
    pass


class GatewayApp:
    """ASGI entry point. ``settings`` is ``interlock.settings.Settings``."""

    def __init__(self, settings: Any, gateway: Gateway | None = None) -> None:
        self.settings = settings
        self.gateway = gateway or Gateway(settings)
        self.admin_app = None
        self._session_header = settings.affinity.session_header.lower().encode()
        self._max_body = settings.server.max_body_bytes
        self._max_headers = settings.server.max_header_bytes

    async def __call__(self, scope, receive, send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            route = _MODEL_ROUTES.get(path)
            if route is not None:
                await self._model_call(route, scope, receive, send)
                return
            try:
                _header_map(scope["headers"], self._max_headers)
            except InterlockError as exc:
                await _send_error(send, exc, new_request_id(None))
                return
            if path.startswith("/admin") and self.admin_app is not None:
                await self.admin_app({**scope, "root_path": scope.get("root_path", "") + "/admin"}, receive, send)
            else:
                await self._plain(path, scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    # -- lifespan --------------------------------------------------------------------------------------------

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # The record writer and the span exporter run in threads. With Python's default 5 ms GIL
                # switch interval a batch insert can hold up the event loop that long: a p99 latency spike on
                # every flush. Half a millisecond bounds that stall at a small cost in switching.
                sys.setswitchinterval(0.0005)
                try:
                    await self.gateway.start()
                    self.admin_app = _build_admin(self)
                    _tune_gc()
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.gateway.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- model API -------------------------------------------------------------------------------------------

    async def _model_call(self, route: str, scope, receive, send) -> None:
        headers: dict[bytes, bytes] = dict(scope["headers"])
        # Ours keys the record; the client's (echoed, searchable) may repeat or guess: it never keys anything.
        client_id = client_request_id((headers.get(b"x-request-id") or b"").decode("latin-1") or None)
        request_id = fresh_request_id()
        try:
            _header_map(scope["headers"], self._max_headers, headers)
            if scope["method"] != "POST":
                raise MethodNotAllowed(f"Use POST for {scope['path']}.", headers={"allow": "POST"})
            ctype = headers.get(b"content-type", b"")
            if not ctype.startswith(_JSON):
                raise UnsupportedMediaType(
                    "Send the body as JSON with the header 'Content-Type: application/json' "
                    f"(got {ctype.decode('latin-1') or 'no content type'!r})."
                )
            length = headers.get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self._max_body:
                raise PayloadTooLarge(f"The request body is larger than the limit of {self._max_body} bytes.")
            raw = await self._read_body(receive)
            session = headers.get(self._session_header)
            ctx = build_context(route, parse_body(raw), request_id, session.decode("latin-1") if session else None)
            ctx.client_request_id = client_id
            auth = headers.get(b"authorization")
            if auth is not None:
                ctx.authorization = auth.decode("latin-1")
            cache_control, cache_switch = headers.get(b"cache-control"), headers.get(b"x-interlock-cache")
            if cache_control is not None or cache_switch is not None:  # the client's opt-outs of the cache step
                ctx.notes["cache_request"] = ((cache_control or b"").decode("latin-1").lower(),
                                              (cache_switch or b"").decode("latin-1"))  # fmt: skip
            tp = headers.get(b"traceparent")
            if tp is not None:
                ctx.notes["otel_parent"] = parent_from_traceparent(tp.decode("latin-1"))
        except _ClientGone:
            return
        except InterlockError as exc:
            self.gateway.refused(route, request_id, client_id, headers.get(b"authorization"), exc)
            await _send_error(send, exc, request_id, client_id=client_id)
            return
        await self._serve(ctx, receive, send)

    async def _read_body(self, receive) -> bytes:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        body = message.get("body", b"")
        if not message.get("more_body", False):
            if len(body) > self._max_body:
                raise PayloadTooLarge(f"The request body is larger than the limit of {self._max_body} bytes.")
            return body
        parts = [body]
        size = len(body)
        while message.get("more_body", False):
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
                raise PayloadTooLarge(f"The request body is larger than the limit of {self._max_body} bytes.")
            parts.append(chunk)
        return b"".join(parts)

    async def _serve(self, ctx, receive, send) -> None:
        # Watch for the client going away while we wait on the upstream: cancel this task, which cancels the
        # upstream call (non-streaming) or closes the upstream stream (streaming), so vLLM stops generating.
        task = asyncio.current_task()
        state = {"done": False, "gone": False}

        def on_message(fut: asyncio.Future) -> None:
            if fut.cancelled() or state["done"]:
                return
            if fut.exception() is None and fut.result().get("type") == "http.disconnect":
                state["gone"] = True
                task.cancel()

        watcher = asyncio.ensure_future(receive())
        watcher.add_done_callback(on_message)
        try:
            result = await self.gateway.handle(ctx)
            if isinstance(result, UpstreamResponse):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": _headers(
                            ctx,
                            [(b"content-type", _JSON), (b"content-length", str(len(result.body)).encode())],
                        ),
                    }
                )
                await send({"type": "http.response.body", "body": result.body})
            else:
                await self._stream(ctx, result, send)
        except InterlockError as exc:
            if not ctx.notes.get("response_started"):
                await _send_error(send, exc, ctx.request_id, ctx.headers, client_id=ctx.client_request_id)
        except asyncio.CancelledError:
            if not state["gone"]:
                raise
            # The client left; the request is already recorded as 499. Nothing to send.
        except Exception:
            log.exception("request %s failed", ctx.request_id)
            if not ctx.notes.get("response_started"):  # else the stream just ends; the record says what failed
                error = InterlockError("The gateway failed to serve this request.")
                await _send_error(send, error, ctx.request_id, client_id=ctx.client_request_id)
        finally:
            state["done"] = True
            watcher.cancel()

    async def _stream(self, ctx, stream: GatewayStream, send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _headers(ctx, list(_SSE_HEADERS))})
        except BaseException:
            await stream.abandon()
            raise
        ctx.notes["response_started"] = True
        events = stream.__aiter__()
        try:
            async for chunk in events:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await events.aclose()  # a no-op when it ran to the end; else it closes the upstream and finishes

    # -- plain routes ----------------------------------------------------------------------------------------

    async def _guardrails_check(self, scope, receive, send) -> None:
        """``POST /v1/guardrails/check``: parsing and the answer live in ``services/gateway/guard_api.py``."""
        from services.gateway.guard_api import check

        request_id = new_request_id(None)
        try:
            if scope["method"] != "POST":
                raise MethodNotAllowed("Use POST for /v1/guardrails/check.")
            raw = await self._read_body(receive)
            auth = dict(scope["headers"]).get(b"authorization")
            answer = await check(self.gateway, raw, auth.decode("latin-1") if auth else None, request_id)
        except _ClientGone:
            return
        except InterlockError as exc:
            await _send_error(send, exc, request_id)
            return
        await _send_json(send, 200, answer)

    async def _feedback(self, scope, receive, send) -> None:
        """``POST /v1/feedback``: the work is in ``services/gateway/feedback_api.py`` and ``gateway/feedback``."""
        from services.gateway.feedback_api import submit

        request_id = new_request_id(None)
        try:
            if scope["method"] != "POST":
                raise MethodNotAllowed("Use POST for /v1/feedback.", headers={"allow": "POST"})
            raw = await self._read_body(receive)
            auth = dict(scope["headers"]).get(b"authorization")
            answer = await submit(self.gateway, raw, auth.decode("latin-1") if auth else None)
        except _ClientGone:
            return
        except InterlockError as exc:
            await _send_error(send, exc, request_id)
            return
        await _send_json(send, 200, answer)

    async def _plain(self, path: str, scope, receive, send) -> None:
        gw = self.gateway
        method = scope["method"]
        if path == "/health" and method in ("GET", "HEAD"):
            await _send_json(send, 200, {"status": "ok"})
        elif path == "/ready" and method in ("GET", "HEAD"):
            ok, checks = await gw.readiness()
            await _send_json(send, 200 if ok else 503, {"status": "ready" if ok else "not ready", **checks})
        elif path in ("/v1/feedback", "/feedback"):
            await self._feedback(scope, receive, send)
        elif path in ("/v1/guardrails/check", "/guardrails/check"):
            await self._guardrails_check(scope, receive, send)
        elif path in ("/v1/models", "/models") and method == "GET":
            auth = dict(scope["headers"]).get(b"authorization")
            try:
                await _send_json(send, 200, self._models(auth.decode("latin-1") if auth else None))
            except InterlockError as exc:
                await _send_error(send, exc, new_request_id(None))
        elif path == "/v1/route" and method == "POST" and gw.route_step is not None:
            await self._route(scope, receive, send)
        elif path == "/openapi.json" and method == "GET":
            from services.gateway.openapi import BODY  # built on first use: nothing at startup for a rare read

            await _send_raw_json(send, BODY)
        elif path == "/metrics" and method == "GET":
            body = await gw.render_metrics()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", gw.metrics.content_type.encode())],
                }
            )
            await send({"type": "http.response.body", "body": body})
        elif path.startswith("/ui") and method == "GET" and await serve_console(path, send):
            return  # the ops console's static pages (services/gateway/console.py)
        elif path in _PLAIN_METHODS:
            allow = _PLAIN_METHODS[path]
            error = MethodNotAllowed(f"Use {' or '.join(allow.split(', '))} for {path}.", headers={"allow": allow})
            await _send_error(send, error, new_request_id(None))
        else:
            await _send_error(
                send,
                NotFound(f"No route {method} {path}. The model API lives under /v1."),
                new_request_id(None),
            )

    async def _route(self, scope, receive, send) -> None:
        """``POST /v1/route``: an intent router's decision for a chat, without calling any model."""
        request_id = new_request_id(None)
        try:
            auth = dict(scope["headers"]).get(b"authorization")
            body = parse_body(await self._read_body(receive))
            result = await self.gateway.route_step.route_only(body, auth and auth.decode("latin-1"), request_id)
        except _ClientGone:
            return
        except InterlockError as exc:
            await _send_error(send, exc, request_id)
            return
        await _send_json(send, 200, result)

    def _models(self, authorization: str | None) -> dict:
        """The models this caller may use (all of them for anonymous callers when keys are not required)."""
        gw = self.gateway
        allowed = None
        if gw.access is not None:
            allowed = gw.access.authenticator.authenticate(authorization).allowed_models
        pools = gw.table.all() if gw.table else []
        return {
            "object": "list",
            "data": [
                {"id": p.name, "object": "model", "created": 0, "owned_by": "interlock"}
                for p in pools
                if allowed is None or p.name in allowed
            ]
            + [
                {"id": name, "object": "model", "created": 0, "owned_by": "interlock-router"}
                for name in sorted(gw.routers.names if gw.routers is not None else ())
                if allowed is None or name in allowed
            ],
        }


def _header_map(
    raw: list[tuple[bytes, bytes]], limit: int, headers: dict[bytes, bytes] | None = None
) -> dict[bytes, bytes]:
    """The request's headers as a dict, refusing what the HTTP server lets through: more than ``limit`` bytes of
    headers (431), or several ``Authorization`` headers (400: which one is the key? Taking the last, as a dict
    does, would let whatever proxy appends one decide)."""
    if headers is None:
        headers = dict(raw)
    size = 0
    for name, value in raw:  # a plain loop: half the cost of sum() over a generator, on every request
        size += len(name) + len(value)
    if size > limit:
        raise HeadersTooLarge(f"The request headers are larger than the limit of {limit} bytes.")
    if len(headers) != len(raw) and sum(k == b"authorization" for k, _ in raw) > 1:
        raise InvalidRequest("Send one Authorization header; this request has several.", code="duplicate_authorization")
    return headers


def _tune_gc() -> None:
    """Take what startup built (settings, price maps, SQLAlchemy, litellm when used) out of the collector's
    sight, and collect the young generation less often. Without this the collector was a quarter of the
    gateway's samples at saturation and caused its worst stalls (70-95 ms), walking long-lived objects that
    never become garbage."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def _headers(ctx, base: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    base.append((b"x-request-id", (ctx.client_request_id or ctx.request_id).encode()))
    base.append((b"x-interlock-request-id", ctx.request_id.encode()))
    if ctx.served_model:
        base.append((b"x-interlock-model", ctx.served_model.encode()))
    if ctx.upstream:
        base.append((b"x-interlock-upstream", ctx.upstream.encode()))
    for k, v in ctx.headers.items():
        base.append((k.encode(), v.encode()))
    return base


async def _send_json(send, status: int, obj: Any) -> None:
    await _send_raw_json(send, orjson.dumps(obj), status)


async def _send_raw_json(send, body: bytes, status: int = 200) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", _JSON), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _send_error(
    send, exc: InterlockError, request_id: str, extra: dict[str, str] | None = None, *, client_id: str | None = None
) -> None:
    """The one place an error becomes an HTTP response, in OpenAI's error format."""
    body = exc.body()
    headers = [
        (b"content-type", _JSON),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", (client_id or request_id).encode()),
        (b"x-interlock-request-id", request_id.encode()),
    ]
    for k, v in {**(extra or {}), **exc.headers}.items():
        headers.append((k.encode(), v.encode()))
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _build_admin(app: GatewayApp):
    """The admin API: a FastAPI app (not on the hot path) with its own credentials."""
    from services.admin.app import create_admin_app

    gateway = app.gateway
    admin = create_admin_app(lambda: gateway.access)
    admin.state.cache = lambda: gateway.cache  # DELETE /admin/cache invalidates this gateway's cache
    admin.state.routers = lambda: gateway.routers  # /admin/routers trains and serves on this gateway
    admin.state.guardrails = lambda: gateway  # /admin/escalations and /admin/policies
    return admin


def create_app(config_path: str | None = None, **overrides: Any) -> GatewayApp:
    """ASGI factory: ``uvicorn --factory services.gateway.app:create_app``."""
    from interlock.settings import load_settings

    return GatewayApp(load_settings(config_path, **overrides))


def create_app_from_env() -> GatewayApp:
    """Factory for ``interlock serve`` workers: the config path comes from ``INTERLOCK_CONFIG``."""
    import os

    return create_app(os.environ.get("INTERLOCK_CONFIG") or None)
