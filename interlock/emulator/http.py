"""Small raw-ASGI helpers: read a body, send a whole response, watch for a client disconnect."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

JSON = b"application/json"
SSE = b"text/event-stream; charset=utf-8"
TEXT = b"text/plain; version=0.0.4; charset=utf-8"


async def read_body(receive: Any) -> bytes | None:
    """The whole request body, or ``None`` if the client went away first."""
    message = await receive()
    if message["type"] == "http.disconnect":
        return None
    body = message.get("body", b"")
    if not message.get("more_body"):
        return body
    parts = [body]
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)


async def send_bytes(
    send: Any, status: int, body: bytes, content_type: bytes = JSON, headers: list | None = None
) -> None:
    out = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if headers:
        out.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Any, status: int, data: Any, headers: list | None = None) -> None:
    await send_bytes(send, status, orjson.dumps(data), JSON, headers)


async def start_stream(send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", SSE)]})


class DisconnectWatch:
    """Cancels the request's task when the client disconnects, as vLLM's ``with_cancellation`` does.

    Only started for requests that may wait (latency, queueing, hang): a request answered at once has
    nothing to cancel and should not pay for an extra task. ``close`` must run before the last send,
    since a completed response also makes ``receive`` report ``http.disconnect``.
    """

    __slots__ = ("_done", "_task", "_watcher", "disconnected")

    def __init__(self, receive: Any) -> None:
        self._task = asyncio.current_task()
        self._done = False
        self.disconnected = False
        self._watcher = asyncio.get_running_loop().create_task(self._watch(receive))

    async def _watch(self, receive: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                if not self._done and self._task is not None:
                    self.disconnected = True
                    self._task.cancel()
                return

    def close(self) -> None:
        self._done = True
        self._watcher.cancel()
