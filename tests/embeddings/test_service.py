"""The shared embedder: the packaged model's vectors, off the event loop, once per text per request."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from embeddings import (
    EmbeddingConfig,
    EmbeddingService,
    HashEmbedder,
    OnnxEmbedder,
    RequestEmbeddings,
    last_user_text,
    load_embedder,
)


@pytest.fixture(scope="module")
def onnx() -> OnnxEmbedder:
    return OnnxEmbedder()


def test_when_texts_are_paraphrases_then_the_packaged_model_puts_them_closer_than_unrelated_ones(onnx):
    v = onnx.embed(["How do I reset my card PIN?", "I forgot the PIN of my card", "Is it raining in Paris today?"])
    assert v.shape == (3, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > 0.5 > v[0] @ v[2]


def test_when_the_graph_optimisation_level_changes_then_the_vectors_do_not(onnx):
    # The router's and the cache's stored vectors were made at ONNX Runtime's default level ("all"); the cheaper
    # default must give the same vectors.
    texts = ["hi", "How do I reset my card PIN?", " ".join(["a longer prompt about invoices and refunds"] * 8)]
    default = load_embedder(EmbeddingConfig()).embed(texts)
    stock = load_embedder(EmbeddingConfig(optimization="all")).embed(texts)
    assert (default * stock).sum(axis=1).min() >= 0.9999
    assert np.allclose(default, onnx.embed(texts), atol=1e-6)


def test_when_the_graph_optimisation_level_is_unknown_then_the_config_refuses_it():
    with pytest.raises(ValueError, match="optimization"):
        EmbeddingConfig(optimization="max")


async def test_when_a_request_asks_twice_for_the_same_text_then_the_model_runs_once():
    service = EmbeddingService(HashEmbedder())
    try:
        memo = RequestEmbeddings(service)
        a, b = await asyncio.gather(memo.get("same text"), memo.get("same text"))
        assert np.array_equal(a, b)
        assert memo.computed == 1 and service.texts == 1
    finally:
        service.close()


class _Blocking:
    """An embedder that blocks its thread until released: proves the event loop is not the one waiting."""

    name, dim = "blocking", 4

    def __init__(self) -> None:
        self.release = threading.Event()
        self.threads: set[str] = set()

    def embed(self, texts):
        self.threads.add(threading.current_thread().name)
        self.release.wait(5)
        return np.ones((len(texts), 4), dtype=np.float32) / 2


async def test_when_the_model_is_computing_then_the_event_loop_keeps_running():
    blocking = _Blocking()
    service = EmbeddingService(blocking)
    try:
        pending = asyncio.ensure_future(service.embed(["a", "b"]))
        ticks = 0
        for _ in range(5):
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 5 and not pending.done()
        blocking.release.set()
        assert (await pending).shape == (2, 4)
        assert threading.current_thread().name not in blocking.threads
    finally:
        blocking.release.set()
        service.close()


class _Failing:
    name, dim = "failing", 4

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts):
        self.calls += 1
        if self.calls == 1:
            raise ValueError("model crashed")
        return np.zeros((len(texts), 4), dtype=np.float32)


async def test_when_the_model_fails_then_the_waiters_get_the_error_and_the_service_lives_on():
    service = EmbeddingService(_Failing())
    try:
        with pytest.raises(ValueError, match="model crashed"):
            await service.embed(["x"])
        assert (await service.embed(["y"])).shape == (1, 4)
    finally:
        service.close()


def test_when_messages_have_several_user_turns_then_the_last_one_is_the_query():
    messages = [
        {"role": "system", "content": "be nice"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "second"}, {"type": "text", "text": "part"}]},
    ]
    assert last_user_text(messages) == "second part"
