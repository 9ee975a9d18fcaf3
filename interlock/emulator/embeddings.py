"""Deterministic embeddings and vLLM's ``/v1/embeddings`` response.

Checked against vLLM's ``entrypoints/pooling/embed/protocol.py``: the response is
``{"id": "embd-...", "object": "list", "created", "model", "data": [{"index", "object": "embedding",
"embedding"}], "usage"}`` with ``completion_tokens: 0``; ``encoding_format: base64`` packs float32 in
native (here little-endian) byte order, which is what the ``openai`` SDK decodes.

A vector is seeded by a hash of its text, so the same text always maps to the same unit vector and
different texts to (almost surely) different ones. ``dimensions`` truncates and renormalises, like a
Matryoshka model.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import random
import struct
import time
import uuid
from functools import lru_cache
from typing import Any

import orjson

from interlock.emulator import http
from interlock.emulator.engine import Engine
from interlock.emulator.faults import Fault, abort_connection
from interlock.emulator.options import RequestKnobs
from interlock.emulator.protocol import usage


@lru_cache(maxsize=4096)
def embed(text: str, dim: int) -> tuple[float, ...]:
    """The unit vector of ``text`` (cached: benchmarks repeat their inputs)."""
    seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
    rng = random.Random(seed)
    vec = [rng.gauss(0.0, 1.0) for _ in range(dim)]
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return tuple(v / norm for v in vec)


def _encode(vec: tuple[float, ...], dimensions: int | None, fmt: str) -> list[float] | str:
    if dimensions is not None and dimensions < len(vec):
        cut = vec[:dimensions]
        norm = math.sqrt(sum(v * v for v in cut)) or 1.0
        vec = tuple(v / norm for v in cut)
    if fmt == "base64":
        return base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()
    return list(vec)


def embedding_response(
    model: str, texts: list[str], counts: list[int], fmt: str, dimensions: int | None, dim: int
) -> dict[str, Any]:
    data = [
        {"index": i, "object": "embedding", "embedding": _encode(embed(text, dim), dimensions, fmt)}
        for i, text in enumerate(texts)
    ]
    total = sum(counts)
    return {
        "id": f"embd-{uuid.uuid4().hex}",
        "object": "list",
        "created": int(time.time()),
        "model": model,
        "data": data,
        "usage": usage(total, 0),
    }


async def serve_embeddings(
    engine: Engine,
    parsed: tuple[str, list[str], list[int], str, int | None],
    knobs: RequestKnobs,
    fault: Fault | None,
    rid: str,
    scope: dict,
    send: Any,
    watch: http.DisconnectWatch | None,
) -> None:
    """Hold a running slot for ``ttft`` (the forward pass), then answer; ``hang``/``cut`` apply too."""
    model, texts, counts, fmt, dimensions = parsed
    started = time.perf_counter()
    tokens = sum(counts)
    try:
        await engine.admit(tokens)
    except asyncio.CancelledError:
        engine.finish(tokens, 0, "abort", started, None)
        raise
    reason = "abort"
    try:
        if fault is not None and fault.kind == "hang":
            await asyncio.Event().wait()  # until the client gives up (the watch cancels us)
        if knobs.ttft_s > 0:
            await asyncio.sleep(knobs.ttft_s)
        result = embedding_response(model, texts, counts, fmt, dimensions, engine.options.embedding_dim)
        result["id"] = rid
        payload = orjson.dumps(result)
        if watch is not None:
            watch.close()
        if fault is not None and fault.kind == "cut":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", http.JSON)]})
            await send({"type": "http.response.body", "body": payload[: len(payload) // 2], "more_body": True})
            await abort_connection(scope)
            return
        await http.send_bytes(send, 200, payload)
        reason = "stop"
    finally:
        engine.release(tokens)
        engine.finish(tokens, 0, reason, started, None)
