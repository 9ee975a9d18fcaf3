"""The fast path: vLLM workers and any OpenAI-compatible server, over our lean pooled HTTP/1.1 client.

Bodies pass through as the client sent them (sampling parameters, ``response_format``, ``n``, ``logprobs``), with
only ``model`` rewritten to the name the upstream knows and, for streams, ``stream_options.include_usage`` forced
on so we can count tokens (the usage chunk is dropped again if the client did not ask for it).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import orjson

from gateway.config import DeploymentConfig, TimeoutConfig
from gateway.errors import (
    UpstreamError,
    UpstreamHTTPError,
    UpstreamProtocolError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.types import ROUTE_PATHS, UpstreamRequest, UpstreamResponse, Usage
from gateway.upstreams._http import HTTPPool, HTTPProtocolError, HTTPResponse
from gateway.upstreams.sse import DONE, chunk_usage, usage_from
from router.types import EngineStats


@contextlib.contextmanager
def map_errors(name: str) -> Iterator[None]:
    """The one seam where transport exceptions become ours. Order matters: TimeoutError is an OSError."""
    try:
        yield
    except UpstreamError:
        raise
    except TimeoutError as exc:
        raise UpstreamTimeout(f"upstream {name} timed out") from exc
    except HTTPProtocolError as exc:
        if exc.partial:
            raise UpstreamProtocolError(f"upstream {name} broke off its response") from exc
        raise UpstreamUnavailable(f"upstream {name} closed the connection without answering") from exc
    except OSError as exc:
        raise UpstreamUnavailable(f"cannot connect to upstream {name}: {type(exc).__name__}") from exc


def _retry_after(headers: dict[bytes, bytes]) -> float | None:
    value = headers.get(b"retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare from model servers; we fall back to our own backoff


class OpenAICompatibleUpstream:
    """One OpenAI-compatible deployment (``kind: vllm`` or ``kind: openai``)."""

    def __init__(self, config: DeploymentConfig, public_model: str, http: HTTPPool, timeouts: TimeoutConfig) -> None:
        assert config.url and config.name
        self.name = config.name
        self.kind = config.kind
        self.base_url = config.url
        self.model = config.model or public_model
        self.http = http
        url = urlsplit(config.url)
        self._tls = url.scheme == "https"
        self._host = url.hostname or "localhost"
        self._port = url.port or (443 if self._tls else 80)
        prefix = url.path.rstrip("/")
        self._targets = {route: (prefix + path).encode() for route, path in ROUTE_PATHS.items()}
        self._health_target = (prefix + ("/health" if self.kind == "vllm" else "/v1/models")).encode()
        self._metrics_target = (prefix + "/metrics").encode()
        # Built once; per request only x-request-id and traceparent are appended.
        headers = b"content-type: application/json\r\naccept: application/json, text/event-stream\r\n"
        if config.api_key is not None:
            headers += b"authorization: Bearer %s\r\n" % config.api_key.get_secret_value().encode()
        self._headers = headers
        self._timeouts = timeouts

    async def send(self, request: UpstreamRequest):
        body = request.body
        if body.get("model") != self.model:
            body = {**body, "model": self.model}
        if request.stream:
            opts = body.get("stream_options")
            if not (isinstance(opts, dict) and opts.get("include_usage")):
                body = {**body, "stream_options": {**(opts if isinstance(opts, dict) else {}), "include_usage": True}}
        headers = self._headers + b"x-request-id: %s\r\n" % request.request_id.encode()
        if request.traceparent is not None:
            headers += b"traceparent: %s\r\n" % request.traceparent.encode()
        data = orjson.dumps(body)
        target = self._targets[request.route]
        if request.stream:
            return await self._open_stream(target, headers, data)
        t = self._timeouts
        with map_errors(self.name):
            # Non-streaming answers arrive whole at the end, so only the total bounds them.
            async with asyncio.timeout(t.total):
                resp = await self.http.request(b"POST", self._host, self._port, target, headers, data, tls=self._tls)
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

    async def _open_stream(self, target: bytes, headers: bytes, data: bytes) -> SSEStream:
        t = self._timeouts
        with map_errors(self.name):
            # A stream must show its first byte within first_token and never fall silent longer than that.
            resp = await self.http.request(
                b"POST", self._host, self._port, target, headers, data, read_timeout=t.first_token, tls=self._tls
            )
            if resp.status >= 400:
                raw = await resp.read()
                raise UpstreamHTTPError(resp.status, raw, retry_after=_retry_after(resp.headers))
        ctype = resp.headers.get(b"content-type", b"")
        if b"text/event-stream" not in ctype:
            resp.close()
            raise UpstreamProtocolError(f"upstream {self.name} answered a stream with content-type {ctype!r}")
        return SSEStream(self.name, resp, time.monotonic() + t.total)

    async def _get(self, target: bytes) -> HTTPResponse | None:
        try:
            async with asyncio.timeout(self._timeouts.connect + 1):
                resp = await self.http.request(b"GET", self._host, self._port, target, self._headers, tls=self._tls)
                await resp.read()
                return resp
        except (OSError, HTTPProtocolError, RuntimeError):
            return None

    async def health(self) -> bool:
        # vLLM has /health; hosted OpenAI-compatible APIs have /v1/models.
        resp = await self._get(self._health_target)
        return resp is not None and resp.status == 200

    async def engine_stats(self) -> EngineStats | None:
        """vLLM's own load gauges from ``/metrics`` (``None`` when not a vLLM or not exposed)."""
        if self.kind != "vllm":
            return None
        try:
            async with asyncio.timeout(self._timeouts.connect + 1):
                resp = await self.http.request(b"GET", self._host, self._port, self._metrics_target, b"", tls=self._tls)
                raw = await resp.read()
        except (OSError, HTTPProtocolError, RuntimeError):
            return None
        if resp.status != 200:
            return None
        return parse_vllm_metrics(raw.decode("utf-8", "replace"))

    async def aclose(self) -> None:
        pass  # the pool belongs to the gateway


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

    def __init__(self, name: str, resp: HTTPResponse, deadline: float) -> None:
        self.name = name
        self.usage: Usage | None = None
        self._resp = resp
        self._deadline = deadline

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[bytes]:
        with map_errors(self.name):
            async for line in self._resp.iter_lines():
                if line.startswith(b"data:"):
                    payload = line[5:].strip()
                    if payload == DONE:
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
            raise UpstreamProtocolError(f"upstream {self.name} ended the stream before [DONE]")

    async def aclose(self) -> None:
        # Closing the connection (unless the response already ended) makes vLLM notice and abort the generation.
        self._resp.close()
