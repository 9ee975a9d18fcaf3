"""The ``embeddings`` section of the settings tree, and the factory that builds the configured embedder."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from embeddings._base import Embedder, HashEmbedder


class EmbeddingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["onnx", "hash"] = "onnx"
    """``onnx``: a sentence-transformers ONNX export (default: the packaged int8 all-MiniLM-L6-v2). ``hash``: a
    deterministic bag-of-words stand-in with no model file, for tests of plumbing only."""
    model_path: str | None = None
    """Path of another ONNX export; needs ``tokenizer_path`` too. Unset: the packaged MiniLM."""
    tokenizer_path: str | None = None
    """The ``tokenizer.json`` that goes with ``model_path``."""
    max_length: int = Field(256, ge=8, le=8192)
    """Tokens per text; longer texts are truncated (MiniLM was trained on 256)."""
    threads: int = Field(1, ge=1, le=64)
    """ONNX Runtime threads per call. One per gateway worker keeps the event loop's core free."""
    bulk_threads: int | None = Field(None, ge=1, le=64)
    """ONNX Runtime threads of the separate session that embeds a router's examples when it trains (unset: every
    core). Training is then about as many times faster, and while it runs requests share the cores with it."""
    optimization: Literal["basic", "extended", "all"] = "basic"
    """ONNX Runtime graph optimisation level. ``basic`` (constant folding only) costs the least per call with
    the packaged MiniLM, and its vectors equal the other levels' (cosine >= 0.9999)."""
    max_batch: int = Field(32, ge=1, le=1024)
    """Texts embedded together when requests arrive at once (one call amortises the model's overhead)."""


def load_embedder(config: EmbeddingConfig | None = None) -> Embedder:
    config = config or EmbeddingConfig()
    if config.kind == "hash":
        return HashEmbedder()
    from embeddings._onnx import OnnxEmbedder

    return OnnxEmbedder(
        config.model_path,
        config.tokenizer_path,
        max_length=config.max_length,
        threads=config.threads,
        optimization=config.optimization,
        bulk_threads=config.bulk_threads,
    )
