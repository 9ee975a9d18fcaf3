"""Bulk embedding for training: the same vectors as the request path, cheaper (token-sorted, its own session)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from embeddings import EmbeddingConfig, EmbeddingService, load_embedder

SHORT = ["hi", "", "How do I reset my card PIN?", "where is my parcel", "¿Dónde está mi tarjeta?", "退款需要多久"]
LONG = [
    " ".join(["a longer prompt about invoices, refunds and the card that never arrived"] * 40),  # > 256 tokens
    "def f(x):\n    return {k: v for k, v in x.items() if v is not None}  # code tokenises densely",
]


def texts(n: int) -> list[str]:
    """Mixed lengths and scripts, in no particular order (so sorting has work to do)."""
    base = SHORT + LONG
    return [f"{base[i % len(base)]} {i}" if i % 3 else base[i % len(base)] for i in range(n)]


@pytest.fixture(scope="module")
def service():
    s = EmbeddingService(load_embedder(EmbeddingConfig()))
    yield s
    s.close()


@pytest.mark.parametrize("n", [40, 300])  # below and above the size where a separate session is built
def test_when_a_router_trains_then_bulk_vectors_equal_the_request_paths_in_order(service, n):
    batch = texts(n)
    stats: dict = {}
    bulk = service.embed_sync(batch, stats=stats)
    one_by_one = np.stack([service.embedder.embed([t])[0] for t in batch])
    assert bulk.shape == (n, 384) and bulk.dtype == np.float32
    assert (bulk * one_by_one).sum(axis=1).min() >= 0.999
    assert stats["embed_texts"] == n and stats["embed_threads"] == (1 if n <= 256 else os.cpu_count())
    # Sorted by tokens: batches hold texts of (nearly) one length, so padding is a fraction of what batches in
    # the given order would carry.
    lengths = [len(ids) for ids in service.embedder.tokenize(batch)]
    chunks = [lengths[i : i + 32] for i in range(0, n, 32)]
    unsorted = 1 - sum(lengths) / sum(max(c) * len(c) for c in chunks)
    assert stats["embed_padding"] < unsorted * (0.5 if n > 100 else 0.9)


def test_when_bulk_threads_is_set_then_the_training_session_uses_that_many():
    embedder = load_embedder(EmbeddingConfig(bulk_threads=1))
    stats: dict = {}
    embedder.embed_bulk(texts(300), stats)
    assert stats["embed_threads"] == 1
    with pytest.raises(ValueError, match="bulk_threads"):
        EmbeddingConfig(bulk_threads=0)


def test_when_embed_is_given_more_than_a_batch_then_it_sorts_them_and_keeps_their_order(service):
    # Callers that pass a plain ``embed`` many texts (scripts, the bench) get token-sorted batches, not one batch
    # padded to the longest text; the rows must still come back in the order given.
    batch = texts(70)
    many = service.embedder.embed(batch)
    one_by_one = np.stack([service.embedder.embed([t])[0] for t in batch])
    assert many.shape == (70, 384)
    assert (many * one_by_one).sum(axis=1).min() >= 0.999
