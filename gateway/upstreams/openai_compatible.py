"""The fast path: vLLM workers and any OpenAI-compatible server through one pooled aiohttp session.

Bodies pass through as the client sent them (sampling parameters, ``response_format``, ``n``, ``logprobs``), with
only ``model`` rewritten to the name the upstream knows and, for streams, ``stream_options.include_usage`` forced
on so we can count tokens (the usage chunk is dropped again if the client did not ask for it).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator

import aiohttp
import orjson
from yarl import URL

from gateway.config import DeploymentConfig, TimeoutConfig
from gateway.errors import (
    UpstreamError,
    UpstreamHTTPError,
    UpstreamProtocolError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.types import ROUTE_PATHS, UpstreamRequest, UpstreamResponse, Usage
from gateway.upstreams.sse import DONE, chunk_usage, usage_from
from router.types import EngineStats

_JSON = {"content-type": "application/json"}


@contextlib.contextmanager
def map_errors(name: str) -> Iterator[None]:
    """The one seam where aiohttp's and asyncio's exceptions become ours."""
    try:
        yield
    except UpstreamError:
        raise
    except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
        raise UpstreamTimeout(f"upstream {name} timed out") from exc
    except aiohttp.ClientConnectorError as exc:
        raise UpstreamUnavailable(f"cannot connect to upstream {name}") from exc
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientOSError) as exc:
        raise UpstreamProtocolError(f"upstream {name} closed the connection mid-response") from exc
    except aiohttp.ClientError as exc:
        raise UpstreamProtocolError(f"upstream {name} failed: {type(exc).__name__}") from exc


def _retry_after(headers) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare from model servers; we fall back to our own backoff


class OpenAICompatibleUpstream:
    """One OpenAI-compatible deployment (``kind: vllm`` or ``kind: openai``)."""

    def __init__(
        self,
        config: DeploymentConfig,
        public_model: str,
        session: aiohttp.ClientSession,
        timeouts: TimeoutConfig,
    ) -> None:
        assert config.url and config.name
        self.name = config.name
        self.kind = config.kind
        self.base_url = config.url
        self.model = config.model or public_model
        self.session = session
        self._headers = dict(_JSON)
        if config.api_key is not None:
            self._headers["authorization"] = f"Bearer {config.api_key.get_secret_value()}"
        self._timeouts = timeouts
        # Non-streaming answers arrive whole at the end, so only the total bounds them; a stream must show its
        # first byte within first_token and never fall silent longer than that.
        self._t_plain = aiohttp.ClientTimeout(total=timeouts.total, sock_connect=timeouts.connect)
        self._t_stream = aiohttp.ClientTimeout(
            total=None, sock_connect=timeouts.connect, sock_read=timeouts.first_token
        )
        # Parsed once: aiohttp would otherwise parse the URL string on every request.
        self._urls = {route: URL(self.base_url + path) for route, path in ROUTE_PATHS.items()}

    async def send(self, request: UpstreamRequest):
        body = request.body
        if body.get("model") != self.model:
            body = {**body, "model": self.model}
        if request.stream:
            opts = body.get("stream_options")
            if not (isinstance(opts, dict) and opts.get("include_usage")):
                body = {
                    **body,
                    "stream_options": {**(opts if isinstance(opts, dict) else {}), "include_usage": True},
                }
        headers = {**self._headers, "x-request-id": request.request_id}
        if request.traceparent is not None:
            headers["traceparent"] = request.traceparent
        url = self._urls[request.route]
        data = orjson.dumps(body)
        if request.stream:
            return await self._open_stream(url, data, headers)
        with map_errors(self.name):
            async with self.session.post(url, data=data, headers=headers, timeout=self._t_plain) as resp:
                raw = await resp.read()
                if resp.status >= 400:
                    raise UpstreamHTTPError(resp.status, raw, retry_after=_retry_after(resp.headers))
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise UpstreamProtocolError(f"upstream {self.name} answered with invalid JSON") from exc
        if not isinstance(obj, dict):
            raise UpstreamProtocolError(f"upstream {self.name} answered with a JSON {type(obj).__name__}")
        return UpstreamResponse(resp.status, raw, usage_from(obj))

    async def _open_stream(self, url: str, data: bytes, headers: dict) -> SSEStream:
        with map_errors(self.name):
            resp = await self.session.post(url, data=data, headers=headers, timeout=self._t_stream)
        if resp.status >= 400:
            with map_errors(self.name):
                raw = await resp.read()
            resp.release()
            raise UpstreamHTTPError(resp.status, raw, retry_after=_retry_after(resp.headers))
        ctype = resp.headers.get("content-type", "")
        if "text/event-stream" not in ctype:
            resp.close()
            raise UpstreamProtocolError(f"upstream {self.name} answered a stream with content-type {ctype!r}")
        return SSEStream(self.name, resp, time.monotonic() + self._timeouts.total)

    async def health(self) -> bool:
        # vLLM has /health; hosted OpenAI-compatible APIs have /v1/models.
        path = "/health" if self.kind == "vllm" else "/v1/models"
        timeout = aiohttp.ClientTimeout(total=self._timeouts.connect + 1)
        try:
            async with self.session.get(self.base_url + path, headers=self._headers, timeout=timeout) as r:
                await r.read()
                return r.status == 200
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False

    async def engine_stats(self) -> EngineStats | None:
        """vLLM's own load gauges from ``/metrics`` (``None`` when not a vLLM or not exposed)."""
        if self.kind != "vllm":
            return None
        timeout = aiohttp.ClientTimeout(total=self._timeouts.connect + 1)
        try:
            async with self.session.get(self.base_url + "/metrics", timeout=timeout) as r:
                if r.status != 200:
                    return None
                text = await r.text()
        except (aiohttp.ClientError, TimeoutError, OSError):
            return None
        return parse_vllm_metrics(text)

    async def aclose(self) -> None:
        pass  # the session belongs to the gateway


#: vLLM gauge names across versions (v0 called KV usage gpu_cache_usage_perc; v1 kv_cache_usage_perc).
_GAUGES = {
    "vllm:num_requests_running": "running",
    "vllm:num_requests_waiting": "waiting",
    "vllm:kv_cache_usage_perc": "kv_cache_usage",
    "vllm:gpu_cache_usage_perc": "kv_cache_usage",
}


def parse_vllm_metrics(text: str) -> EngineStats:
    """Sum vLLM's load gauges over their label sets (one worker may serve under several model names)."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("vllm:"):
            continue
        name = line.partition("{")[0] if "{" in line else line.partition(" ")[0]
        field = _GAUGES.get(name)
        if field is None:
            continue
        try:
            value = float(line.rsplit(" ", 1)[1])
        except (ValueError, IndexError):
            continue
        values[field] = values.get(field, 0.0) + value
    return EngineStats(
        running=values.get("running", 0.0),
        waiting=values.get("waiting", 0.0),
        kv_cache_usage=values.get("kv_cache_usage", 0.0),
        scraped_at=time.monotonic(),
    )


class SSEStream:
    """An upstream stream: yields each event's ``data`` payload; raises ours on garbage or a cut stream."""

    def __init__(self, name: str, resp: aiohttp.ClientResponse, deadline: float) -> None:
        self.name = name
        self.usage: Usage | None = None
        self._resp = resp
        self._deadline = deadline

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[bytes]:
        content = self._resp.content
        with map_errors(self.name):
            while True:
                line = await content.readline()
                if not line:
                    raise UpstreamProtocolError(f"upstream {self.name} ended the stream before [DONE]")
                if line.startswith(b"data:"):
                    payload = line[5:].strip()
                    if payload == DONE:
                        self._resp.release()  # whole body read: the connection goes back to the pool
                        return
                    if payload[:1] != b"{":
                        raise UpstreamProtocolError(f"upstream {self.name} sent a malformed stream event")
                    usage = chunk_usage(payload)
                    if usage is not None:
                        self.usage = usage
                    yield payload
                elif line.strip() and not line.startswith((b":", b"event:", b"id:", b"retry:")):
                    raise UpstreamProtocolError(f"upstream {self.name} sent a malformed stream line")
                if time.monotonic() > self._deadline:
                    raise UpstreamTimeout(f"upstream {self.name} stream exceeded the total timeout")

    async def aclose(self) -> None:
        # Closing (not releasing) the connection makes vLLM notice and abort the generation.
        if not self._resp.closed:
            self._resp.close()
        await asyncio.sleep(0)
