"""The ``Embedder`` role and a deterministic stand-in."""

from __future__ import annotations

import hashlib
from typing import Protocol, runtime_checkable

import numpy as np


class EmbeddingError(Exception):
    """The embedding model could not be loaded or failed on an input."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit vectors. Synchronous and CPU-bound: call it through ``EmbeddingService``."""

    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """``float32`` array of shape ``(len(texts), dim)``, each row L2-normalised (cosine = dot product)."""
        ...


class HashEmbedder:
    """Bag-of-words vectors from hashed tokens: same words, same vector; no model file.

    For tests of plumbing (batching, sharing, partitions) where semantic quality does not matter. Never the
    production default.
    """

    __test__ = False

    def __init__(self, dim: int = 64) -> None:
        self.name = f"hash-{dim}"
        self.dim = dim

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
                out[i, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms
