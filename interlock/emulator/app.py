"""The emulator as a raw ASGI app: vLLM's routes plus the ``/emulator/*`` debug routes (``debug.py``).

vLLM routes (checked against ``api_server.py`` and the routers it includes): ``GET /health`` (200, empty
body; 503 when the engine is dead), ``GET /version``, ``GET /v1/models``, ``POST /v1/chat/completions``,
``POST /v1/completions``, ``POST /v1/embeddings``, ``GET /metrics``. Inference routes want
``Content-Type: application/json`` (vLLM's ``validate_json_request``); the ``X-Request-Id`` header, when
sent, becomes the response id's suffix as in vLLM's ``_base_request_id``. Unknown paths get Starlette's
``{"detail": "Not Found"}``.

An inference request is: read the body, record it, check it (``validation.py``), draw its fault, then
serve it (``generate.py`` / ``embeddings.py``) under a disconnect watch when it may wait.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson

from interlock.emulator import http, metrics
from interlock.emulator.debug import debug_routes
from interlock.emulator.embeddings import serve_embeddings
from interlock.emulator.engine import Engine
from interlock.emulator.faults import INSTANT, answer_instant_fault
from interlock.emulator.generate import serve
from interlock.emulator.options import EmulatorOptions, knobs_for
from interlock.emulator.protocol import VLLMError, request_validation_error
from interlock.emulator.validation import parse_chat, parse_completion, parse_embedding

_ID_PREFIX = {"chat": "chatcmpl-", "completions": "cmpl-", "embeddings": "embd-"}
_PARSERS = {"chat": parse_chat, "completions": parse_completion, "embeddings": parse_embedding}


class EmulatorApp:
    """ASGI callable; ``engine`` holds the state tests inspect through the debug routes."""

    def __init__(self, options: EmulatorOptions) -> None:
        self.options = options
        self.engine = Engine(options)
        self._routes: dict[str, dict[str, Any]] = {
            "/health": {"GET": self._health},
            "/version": {"GET": self._version},
            "/v1/models": {"GET": self._models},
            "/metrics": {"GET": self._metrics},
            "/v1/chat/completions": {"POST": self._route("chat")},
            "/v1/completions": {"POST": self._route("completions")},
            "/v1/embeddings": {"POST": self._route("embeddings")},
            **debug_routes(self.engine),
        }

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            methods = self._routes.get(scope["path"])
            if methods is None:
                await http.send_json(send, 404, {"detail": "Not Found"})
            elif (handler := methods.get(scope["method"])) is None:
                await http.send_json(send, 405, {"detail": "Method Not Allowed"})
            else:
                await handler(scope, receive, send)
        elif scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _health(self, scope: dict, receive: Any, send: Any) -> None:
        await http.send_bytes(send, 200 if self.engine.healthy else 503, b"")

    async def _version(self, scope: dict, receive: Any, send: Any) -> None:
        await http.send_json(send, 200, {"version": self.options.version})

    async def _models(self, scope: dict, receive: Any, send: Any) -> None:
        created = int(self.engine.created)
        permission = {
            "object": "model_permission",
            "created": created,
            "allow_create_engine": False,
            "allow_sampling": True,
            "allow_logprobs": True,
            "allow_search_indices": False,
            "allow_view": True,
            "allow_fine_tuning": False,
            "organization": "*",
            "group": None,
            "is_blocking": False,
        }
        cards = [
            {
                "id": name,
                "object": "model",
                "created": created,
                "owned_by": "vllm",
                "root": self.options.model,
                "parent": None,
                "max_model_len": self.options.max_model_len,
                "permission": [{"id": f"modelperm-{uuid.uuid4().hex}", **permission}],
            }
            for name in self.options.served_model_names
        ]
        await http.send_json(send, 200, {"object": "list", "data": cards})

    async def _metrics(self, scope: dict, receive: Any, send: Any) -> None:
        await http.send_bytes(send, 200, metrics.render(self.engine), http.TEXT)

    def _route(self, kind: str) -> Any:
        async def handle(scope: dict, receive: Any, send: Any) -> None:
            engine = self.engine
            engine.received += 1
            engine.by_route[kind] += 1
            body = await http.read_body(receive)
            if body is None:
                return
            engine.record(scope["path"], scope["headers"], body)
            engine.in_flight += 1
            try:
                status = await self._answer(kind, body, scope, receive, send)
            finally:
                engine.in_flight -= 1
            engine.by_status[status] += 1

        return handle

    def _check(self, kind: str, body: bytes, headers: list) -> tuple[Any, Any, dict, str | None]:
        """``(parsed request, knobs, body dict, X-Request-Id)``; raises ``VLLMError`` as vLLM would answer."""
        content_type, request_id = b"", None
        for name, value in headers:
            if name == b"content-type":
                content_type = value
            elif name == b"x-request-id":
                request_id = value.decode("latin-1")
        if content_type.split(b";", 1)[0].strip().lower() != b"application/json":
            raise request_validation_error("Unsupported Media Type: Only 'application/json' is allowed")
        try:
            knobs = knobs_for(self.options, headers)
        except ValueError as exc:
            raise request_validation_error(str(exc)) from exc
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise request_validation_error(f"JSON decode error: {exc}") from exc
        if not isinstance(data, dict):
            raise request_validation_error("Input should be a valid dictionary or object to extract fields from")
        return _PARSERS[kind](data, self.options), knobs, data, request_id

    async def _answer(self, kind: str, body: bytes, scope: dict, receive: Any, send: Any) -> int:
        """Serve one inference request; returns the status for the stats (0: dropped, 499: client left)."""
        engine = self.engine
        try:
            parsed, knobs, data, request_id = self._check(kind, body, scope["headers"])
            try:
                fault = engine.faults.draw(knobs.fault)
            except ValueError as exc:
                raise request_validation_error(str(exc)) from exc
        except VLLMError as exc:
            await http.send_bytes(send, exc.status, exc.body(), headers=exc.headers)
            return exc.status
        if knobs.reply is None and engine.replies and kind != "embeddings":
            knobs.reply, ttft, knobs.tool_calls = engine.replies.popleft()
            if ttft is not None:
                knobs.ttft_s = ttft
        if fault is not None and fault.kind in INSTANT:
            return await answer_instant_fault(fault, kind != "embeddings" and bool(data.get("stream")), scope, send)
        base = request_id or (data.get("request_id") if isinstance(data.get("request_id"), str) else None)
        rid = _ID_PREFIX[kind] + (base or uuid.uuid4().hex)
        # Only a request that may wait pays for a watch task; one answered at once has nothing to cancel.
        slow = knobs.ttft_s > 0 or knobs.tpot_s > 0 or fault is not None
        busy = engine.running >= self.options.max_num_seqs or engine.waiting > 0
        watch = http.DisconnectWatch(receive) if slow or busy else None
        try:
            if kind == "embeddings":
                await serve_embeddings(engine, parsed, knobs, fault, rid, scope, send, watch)
            else:
                await serve(engine, parsed, knobs, fault, rid, scope, send, watch)
        except asyncio.CancelledError:
            if watch is None or not watch.disconnected:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            engine.cancelled += 1
            return 499  # nginx's "client closed request", for the by_status stats only
        finally:
            if watch is not None:
                watch.close()
        return 200
