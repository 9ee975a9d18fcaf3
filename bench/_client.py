"""The Python load client: latency at a fixed concurrency, streaming time to first token, and a saturation
fallback for machines without ``wrk``.

One aiohttp session with keep-alive per run, ``concurrency`` workers taking requests from a shared count, so
``requests`` is the total. Every loop stops at its count or at ``time_limit`` seconds, whichever comes first
(``truncated`` says which). The garbage collector is paused during a run so the client's own pauses do not
land in either target's figures.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable

import aiohttp
import orjson

JSON_HEADERS = {"content-type": "application/json"}


def percentiles(samples: list[float], points: tuple[float, ...] = (50, 90, 99)) -> dict[str, float]:
    """Nearest-rank percentiles of ``samples`` (seconds), in milliseconds, plus mean and max."""
    if not samples:
        return {}
    ordered = sorted(samples)
    out = {f"p{p:g}": ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))] for p in points}
    out["mean"] = sum(ordered) / len(ordered)
    out["max"] = ordered[-1]
    return {k: round(v * 1000, 3) for k, v in out.items()}


async def _workers(
    concurrency: int, requests: int, time_limit: float, one: Callable[[aiohttp.ClientSession], Awaitable[None]]
) -> tuple[int, float, bool]:
    issued = 0
    deadline = time.monotonic() + time_limit
    connector = aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=60)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def worker() -> None:
            nonlocal issued
            while issued < requests and time.monotonic() < deadline:
                issued += 1
                await one(session)

        gc.collect()
        gc.disable()
        started = time.perf_counter()
        try:
            await asyncio.gather(*(worker() for _ in range(concurrency)))
        finally:
            elapsed = time.perf_counter() - started
            gc.enable()
    return issued, elapsed, issued < requests


async def latency(
    url: str, body: bytes, concurrency: int, requests: int, time_limit: float, headers: dict | None = None
) -> dict:
    """Non-streaming POSTs; each latency is from sending the request to having read the whole body."""
    samples: list[float] = []
    errors: dict[str, int] = {}

    async def one(session: aiohttp.ClientSession) -> None:
        t0 = time.perf_counter()
        try:
            async with session.post(url, data=body, headers=headers or JSON_HEADERS) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            return
        if status == 200:
            samples.append(time.perf_counter() - t0)
        else:
            errors[str(status)] = errors.get(str(status), 0) + 1

    issued, elapsed, truncated = await _workers(concurrency, requests, time_limit, one)
    return {
        "concurrency": concurrency,
        "requests": issued,
        "ok": len(samples),
        "errors": errors,
        "truncated": truncated,
        "requests_per_s": round(len(samples) / elapsed, 1) if elapsed else 0.0,
        "latency_ms": percentiles(samples),
    }


def _has_content(line: bytes) -> bool:
    if not line.startswith(b"data:"):
        return False
    data = line[5:].strip()
    if data == b"[DONE]" or not data:
        return False
    event = orjson.loads(data)
    choices = event.get("choices") or []
    return bool(choices and (choices[0].get("delta") or {}).get("content"))


async def streaming(
    url: str, body: bytes, concurrency: int, requests: int, time_limit: float, headers: dict | None = None
) -> dict:
    """Streaming POSTs: time to the first chunk with non-empty ``delta.content``, and to the end of the stream."""
    ttft: list[float] = []
    total: list[float] = []
    errors: dict[str, int] = {}

    async def one(session: aiohttp.ClientSession) -> None:
        t0 = time.perf_counter()
        first = None
        try:
            async with session.post(url, data=body, headers=headers or JSON_HEADERS) as response:
                if response.status != 200:
                    await response.read()
                    errors[str(response.status)] = errors.get(str(response.status), 0) + 1
                    return
                async for line in response.content:
                    if first is None and _has_content(line):
                        first = time.perf_counter() - t0
        except (aiohttp.ClientError, TimeoutError) as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            return
        if first is None:
            errors["no_content"] = errors.get("no_content", 0) + 1
            return
        ttft.append(first)
        total.append(time.perf_counter() - t0)

    issued, _elapsed, truncated = await _workers(concurrency, requests, time_limit, one)
    return {
        "concurrency": concurrency,
        "requests": issued,
        "ok": len(ttft),
        "errors": errors,
        "truncated": truncated,
        "ttft_ms": percentiles(ttft),
        "stream_ms": percentiles(total),
    }


async def saturate(url: str, body: bytes, concurrency: int, duration: float, headers: dict | None = None) -> dict:
    """Throughput without wrk: as many requests as ``concurrency`` workers get through in ``duration`` seconds.

    The client is Python on one core, so above a few thousand requests/s it measures itself, not the target.
    """
    result = await latency(url, body, concurrency, requests=10_000_000, time_limit=duration, headers=headers)
    return {
        "tool": "python-aiohttp",
        "connections": concurrency,
        "duration_s": duration,
        "requests": result["requests"],
        "requests_per_s": result["requests_per_s"],
        "non_2xx": sum(v for k, v in result["errors"].items() if k.isdigit()),
        "socket_errors": sum(v for k, v in result["errors"].items() if not k.isdigit()),
        "latency_ms": result["latency_ms"],
    }
