"""Embedding off the event loop, batched, and memoised per request.

``EmbeddingService`` owns one worker thread. Requests that arrive while a batch is computing are queued and
embedded together in the next call, so under load the model runs on batches (cheaper per text) and the event
loop only ever awaits a future. ``RequestEmbeddings`` is the per-request memo that lets the guards, the intent
router and the semantic cache share one embedding of the same text.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from typing import Any

import numpy as np

from embeddings._base import Embedder


class EmbeddingService:
    """Async front of an ``Embedder``: ``await service.embed(texts)``; never blocks the event loop."""

    def __init__(self, embedder: Embedder, *, max_batch: int = 32) -> None:
        self.embedder = embedder
        self.name = embedder.name
        self.dim = embedder.dim
        self.max_batch = max_batch
        self._pending: list[tuple[str, asyncio.Future, asyncio.AbstractEventLoop]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="interlock-embedder", daemon=True)
        self._thread.start()
        #: Texts embedded and model calls made, for metrics and the benchmark.
        self.texts = 0
        self.calls = 0

    async def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in texts]
        with self._lock:
            if self._closed:
                raise RuntimeError("the embedding service is closed")
            self._pending.extend((t, f, loop) for t, f in zip(texts, futures, strict=True))
        self._wake.set()
        rows = await asyncio.gather(*futures)
        return np.stack(rows)

    async def embed_one(self, text: str) -> np.ndarray:
        return (await self.embed([text]))[0]

    def embed_sync(self, texts: list[str], stats: dict | None = None) -> np.ndarray:
        """For scripts and training (not the event loop): embeds in the caller's thread, bypassing the request
        queue. An embedder with ``embed_bulk`` (ONNX) sorts by token count and uses its own session on every core
        (``embeddings.bulk_threads``); others get batches of similar character length. ``stats`` receives figures.
        """
        bulk = getattr(self.embedder, "embed_bulk", None)
        if bulk is not None:
            return bulk(texts, stats)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i in range(0, len(order), 32):
            rows = order[i : i + 32]
            out[rows] = self.embedder.embed([texts[r] for r in rows])
        return out

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._wake.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            with self._lock:
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
                if not self._pending:
                    self._wake.clear()
                closed = self._closed
            if batch:
                self._compute(batch)
            elif closed:
                return

    def _compute(self, batch: list[tuple[str, asyncio.Future, asyncio.AbstractEventLoop]]) -> None:
        try:
            vectors = self.embedder.embed([text for text, _, _ in batch])
            self.calls += 1
            self.texts += len(batch)
            for i, (_, fut, loop) in enumerate(batch):
                loop.call_soon_threadsafe(_resolve, fut, vectors[i], None)
        except Exception as exc:  # every waiter learns of the failure; the thread lives on
            for _, fut, loop in batch:
                loop.call_soon_threadsafe(_resolve, fut, None, exc)


def _resolve(fut: asyncio.Future, value: Any, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)


class RequestEmbeddings:
    """One request's embeddings: ``await memo.get(text)`` embeds ``text`` at most once, whoever asks first.

    Steps that run concurrently (an input guard and the router, say) share the same in-flight future, so the
    model runs once per distinct text per request.
    """

    __slots__ = ("_futures", "service")

    def __init__(self, service: EmbeddingService) -> None:
        self.service = service
        self._futures: dict[str, asyncio.Future] = {}

    def get(self, text: str) -> asyncio.Future:
        fut = self._futures.get(text)
        if fut is None:
            fut = asyncio.ensure_future(self.service.embed_one(text))
            self._futures[text] = fut
        return fut

    @property
    def computed(self) -> int:
        """How many distinct texts this request embedded (the once-per-request check in tests)."""
        return len(self._futures)


def last_user_text(messages: Iterable[Any]) -> str:
    """The last user turn's text (content parts joined): what the router and the semantic cache embed."""
    last = ""
    for m in messages:
        if isinstance(m, dict) and m.get("role") == "user":
            last = message_text(m.get("content"))
    return last


def message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""
